"""Needle tracking quality and stage time on the simulator, per scenario.

    python benchmarks/tracking_quality.py [--frames 300] [--size 1024] [--quanta 50]
        [--fps 15] [--scenarios clean-spine,fusion-hardware,no-needle] [--view ap|oblique]
        [--smooth none|gauss|recursive|denoise] [--seed 1] [--json PATH]

Each scenario's frames run in order through an optional smoothing step (standing in for the
denoiser: ``gauss`` = Gaussian sigma 1 px, ``recursive`` = recursive average 0.5, ``denoise``
= ``fluoro.denoise.Denoiser`` when present) and ``fluoro.needle.NeedleTracker``, reset at every
beam-off frame as the pipeline does. Prints the ``TrackingScorer`` section and the tracking
stage's ms per frame (p50 / p99, single thread; the smoothing step is not timed).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from drivers.sim import open_sim
from fluoro.console import Progress
from fluoro.needle import NeedleTracker
from fluoro.needle_score import TrackingScorer
from fluoro.pipeline import WorkItem


def make_smoother(kind: str, shape: tuple[int, int]):
    """A callable image -> image and a reset callable, for the chosen smoothing."""
    if kind == "none":
        return (lambda img: img), (lambda: None)
    if kind == "gauss":
        return (lambda img: cv2.GaussianBlur(img.astype(np.float32), (0, 0), 1.0)), (lambda: None)
    if kind == "recursive":
        state: dict[str, np.ndarray | None] = {"avg": None}

        def smooth(img: np.ndarray) -> np.ndarray:
            x = img.astype(np.float32)
            state["avg"] = x if state["avg"] is None else 0.5 * state["avg"] + 0.5 * x
            return state["avg"]

        return smooth, (lambda: state.update(avg=None))
    from fluoro.denoise import Denoiser  # the real denoiser, once it exists

    den = Denoiser()
    den.warm_up(shape)

    def run(img: np.ndarray) -> np.ndarray:
        if hasattr(den, "process"):
            return den.process(img)
        item = WorkItem(None, img)  # type: ignore[arg-type]
        den(item)
        return item.image

    return run, den.reset


def run_scenario(scenario: str, args: argparse.Namespace) -> dict:
    url = (f"sim://spine?size={args.size}&fps={args.fps:g}&quanta={args.quanta:g}&seed="
           f"{args.seed}&realtime=0&clean=0&scenario={scenario}&view={args.view}")
    source = open_sim(url)
    shape = source.info.shape
    tracker = NeedleTracker()
    tracker.warm_up(shape)
    smooth, smooth_reset = make_smoother(args.smooth, shape)
    scorer = TrackingScorer()
    stage_ms: list[float] = []
    paths = {"track": 0, "search": 0}
    bar = Progress(args.frames, f"{scenario} q={args.quanta:g}")
    for i in range(args.frames):
        frame = source.read(1.0)
        if frame is None:
            continue
        if not frame.beam_on:
            tracker.reset()
            smooth_reset()
            continue
        item = WorkItem(frame, smooth(frame.pixels))
        t0 = time.perf_counter_ns()
        tracker(item)
        stage_ms.append((time.perf_counter_ns() - t0) * 1e-6)
        paths[tracker.last_path] = paths.get(tracker.last_path, 0) + 1
        scorer.add(frame, item)
        if (i + 1) % 10 == 0:
            bar.update(i + 1)
    bar.close()
    source.close()
    section = scorer.section() or {}
    ms = np.asarray(stage_ms)
    section["stage_ms"] = {"p50": round(float(np.percentile(ms, 50)), 3),
                           "p99": round(float(np.percentile(ms, 99)), 3),
                           "max": round(float(ms.max()), 3)}
    section["paths"] = paths
    return section


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--quanta", type=float, default=50.0)
    parser.add_argument("--fps", type=float, default=15.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--view", default="ap", choices=("ap", "oblique"))
    parser.add_argument("--scenarios", default="clean-spine,fusion-hardware,no-needle")
    parser.add_argument("--smooth", default="gauss",
                        choices=("none", "gauss", "recursive", "denoise"))
    parser.add_argument("--json", type=Path, metavar="PATH")
    args = parser.parse_args(argv)
    cv2.setNumThreads(1)
    report = {}
    for scenario in args.scenarios.split(","):
        report[scenario] = run_scenario(scenario.strip(), args)
        print(f"{scenario}: {json.dumps(report[scenario])}", flush=True)
    if args.json:
        args.json.write_text(json.dumps({"args": vars(args) | {"json": str(args.json)},
                                         "scenarios": report}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
