"""Run the simulated-stream benchmarks and write JSON plus a markdown table.

    python benchmarks/run_all.py [--size 1024] [--frames 300] [--out benchmarks/out]

Each case is one ``fluoro bench`` run (see fluoro/bench/run.py for what is measured and how);
``out/<case>.json`` holds its full report and ``out/RESULTS.md`` one row per case.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from fluoro.cli.main import main as fluoro_main

CASES = [  # (scenario, pulses/s)
    ("clean-spine", 15.0),
    ("clean-spine", 30.0),
    ("fusion-hardware", 30.0),
    ("no-needle", 30.0),
]


def _row(report: dict) -> str:
    lat = report.get("latency_ms", {})
    dose = report["dose"]
    denoise = report.get("denoise", {})
    tracking = report.get("tracking", {})
    tip = (tracking.get("tip_err_mm") or {}).get("median")
    detection = tracking.get("detection_rate")
    return (f"| {report['scenario']} | {report['size'][1]}² | {report['fps_target']:g} | "
            f"{report['throughput_fps']:.1f} | {lat.get('p50', float('nan')):.2f} | "
            f"{lat.get('p99', float('nan')):.2f} | {report['frames_dropped_processing']} | "
            f"{denoise.get('psnr_in_db', '-')} → {denoise.get('psnr_out_db', '-')} | "
            f"{'-' if detection is None else f'{detection:.3f}'} | "
            f"{'-' if tip is None else f'{tip:.2f}'} | "
            f"{tracking.get('false_positive_rate', '-')} | "
            f"{dose['pulses_emitted']} / {dose['pulses_logged']} |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "out")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    for scenario, fps in CASES:
        path = args.out / f"{scenario}_{args.size}_{fps:g}fps.json"
        status = fluoro_main(["bench", "--size", str(args.size), "--frames", str(args.frames),
                              "--fps", str(fps), "--scenario", scenario, "--json", str(path)])
        if status != 0:
            return status
        rows.append(_row(json.loads(path.read_text())))
    table = "\n".join([
        "| scenario | size | pulses/s | throughput fps | latency p50 ms | latency p99 ms | "
        "dropped | PSNR in → out dB | detection | tip err median mm | false positives | "
        "pulses emitted / logged |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
        *rows,
    ])
    (args.out / "RESULTS.md").write_text(table + "\n")
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
