"""Needle tracking through ``fluoro.bench.run``, with or without the denoiser in front.

Reports latency at a pulse rate, stage times and the tracking section (``TrackingScorer``) on a
simulated spine scenario. ``fluoro bench`` runs denoise -> tracking by default and reports these
sections too; this script scores tracking alone and adds ``--no-denoise``, which tracks the raw
noisy frames: run it with and without to see what the denoiser does for tracking.

    python benchmarks/tracking_pipeline.py [--size 1024] [--fps 30] [--frames 300]
        [--quanta 50] [--scenario fusion-hardware] [--no-denoise] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from drivers.sim import open_sim
from fluoro.bench.run import BenchConfig, run_bench, summary_lines
from fluoro.bench.tracking_score import TrackingScorer
from fluoro.console import StageProgress
from fluoro.imaging.needle import NeedleTracker


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--fps", type=float, default=30.0)
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--quanta", type=float, default=50.0)
    parser.add_argument("--scenario", default="fusion-hardware")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--no-denoise", action="store_true")
    parser.add_argument("--json", type=Path, metavar="PATH")
    args = parser.parse_args(argv)
    url = (f"sim://spine?size={args.size}&fps={args.fps:g}&quanta={args.quanta:g}"
           f"&seed={args.seed}&realtime=0&clean=0&scenario={args.scenario}")

    def stages():
        chain = [] if args.no_denoise else [_denoiser()]
        return [*chain, NeedleTracker()]

    progress = StageProgress()

    cfg = BenchConfig(url, args.frames, args.fps, args.scenario, args.json)
    report = run_bench(cfg, open_sim(url), stages, progress, lambda: [TrackingScorer()])
    progress.close()
    print("\n".join(summary_lines(report)))
    print("tracking: " + json.dumps(report.get("tracking")))
    return 0


def _denoiser():
    from fluoro.imaging.denoise import Denoiser

    return Denoiser()


if __name__ == "__main__":
    sys.exit(main())
