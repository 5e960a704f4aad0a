"""Needle tracking on the independent validation family (drivers/family), per condition.

    python benchmarks/tracking_family.py [--conditions a,b,...] [--seeds 1,2,3] [--size 1024]
        [--frames N] [--out benchmarks/out]

For every condition and seed the family's frames are rendered in memory (without the
noise-free images), the default processing stages (``fluoro.stream.pipeline.default_stages``:
denoise, then needle tracking) run over every frame in order through
``fluoro.bench.run.quality_pass`` with a ``TrackingScorer``, and the track stage is timed per
frame. ``OUT/tracking_family.json`` holds, per condition, the tracking section and the track
stage's p50/p99 ms for every seed and for the seeds pooled; ``OUT/tracking_family.md`` is a
table with one row per condition (seeds pooled), every figure that misses its target marked.

The tracking section's keys are read as they come (``fluoro/bench/tracking_score.py``); a
figure the scorer does not report is shown as "n/a".
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from drivers.family import CONDITIONS, stream
from fluoro.bench.run import quality_pass
from fluoro.bench.tracking_score import TrackingScorer
from fluoro.console import StageProgress
from fluoro.frame import Stage, WorkItem
from fluoro.stream.pipeline import default_stages

OUT = Path(__file__).parent / "out"

class TimedStage:
    """A stage that records how long each call of the wrapped stage took, ms."""

    def __init__(self, stage: Stage) -> None:
        self.stage = stage
        self.name = stage.name
        self.ms: list[float] = []

    def warm_up(self, shape: tuple[int, int]) -> None:
        self.stage.warm_up(shape)

    def reset(self) -> None:
        self.stage.reset()

    def __call__(self, item: WorkItem) -> None:
        t0 = time.perf_counter_ns()
        self.stage(item)
        self.ms.append((time.perf_counter_ns() - t0) * 1e-6)


def _percentiles(values: Sequence[float]) -> dict[str, float] | None:
    if not values:
        return None
    arr = np.asarray(values, float)
    return {"p50": round(float(np.percentile(arr, 50)), 3),
            "p99": round(float(np.percentile(arr, 99)), 3)}


def run_condition(name: str, seeds: Sequence[int], size: int | None, frames: int | None,
                  progress: StageProgress) -> dict[str, Any]:
    """Per seed and pooled: the tracking section and the track stage's times."""
    pooled = TrackingScorer()
    pooled_ms: list[float] = []
    per_seed: dict[str, Any] = {}
    for seed in seeds:
        family = stream(CONDITIONS[name], seed, size, frames, want_clean=False)
        label = f"{name} seed {seed}"
        rendered = []
        for frame in family.frames():
            rendered.append(frame)
            progress(len(rendered), family.count, f"{label}: rendering")
        stages = default_stages()
        timed = [TimedStage(s) if s.name == "track" else s for s in stages]
        scorer = TrackingScorer()
        quality_pass(rendered, timed, [scorer, pooled],
                     lambda done, total, what, label=label: progress(done, total,
                                                                     f"{label}: {what}"))
        track_ms = [ms for s in timed if isinstance(s, TimedStage) for ms in s.ms]
        pooled_ms += track_ms
        scene = family.scene
        per_seed[str(seed)] = {
            "view": scene.view, "spacing_mm": round(scene.spacing_mm, 4),
            "size": scene.size_px, "frames": len(rendered),
            "tracking": scorer.section(), "track_ms": _percentiles(track_ms)}
    return {"description": CONDITIONS[name].description,
            "pooled": {"tracking": pooled.section(), "track_ms": _percentiles(pooled_ms)},
            "seeds": per_seed}


def _get(section: dict[str, Any] | None, *keys: str) -> float | None:
    value: Any = section or {}
    for key in keys:
        if not isinstance(value, dict) or key not in value:
            return None
        value = value[key]
    return value if isinstance(value, (int, float)) else None


def _cell(value: float | None, text: str, ok: bool | None) -> str:
    if value is None:
        return "n/a"
    return text if ok or ok is None else f"**{text}** ✗"


def _frames_to_find(section: dict[str, Any] | None) -> str:
    """``median (max)`` frames from a needle's appearance to its first detection; appearances
    never found count against the target too."""
    found = (section or {}).get("frames_to_find")
    if isinstance(found, (int, float)):
        return _cell(found, f"{found:g}", found <= 3)
    if not isinstance(found, dict):
        return "n/a"
    median, worst = found.get("median"), found.get("max")
    entries, missed = found.get("entries"), found.get("missed") or 0
    lost = f", {missed}/{entries} never found" if missed else ""
    if not isinstance(median, (int, float)):
        return f"**never** ✗{lost}" if entries else "n/a"
    text = f"{median:g}" + (f" (max {worst:g})" if isinstance(worst, (int, float)) else "")
    return _cell(median, text, median <= 3 and not missed) + lost


HEADER = ("| condition | detection (≥ 95 %) | tip err median / p95 mm (≤ 0.5 / 1.5) | "
          "angle err median ° (≤ 1) | false positives (≤ 1 %) | frames to find (≤ 3) | "
          "wrong object (≤ 1 %) | track p50 ms (≤ 8) |")


def table_row(name: str, entry: dict[str, Any]) -> str:
    section = entry["pooled"]["tracking"]
    det = _get(section, "detection_rate")
    tip50, tip95 = _get(section, "tip_err_mm", "median"), _get(section, "tip_err_mm", "p95")
    angle = _get(section, "angle_err_deg", "median")
    fp = _get(section, "false_positive_rate")
    wrong = _get(section, "wrong_object_rate")
    track = _get(entry["pooled"]["track_ms"], "p50")
    tip = ("n/a" if tip50 is None else
           f"{_cell(tip50, f'{tip50:.2f}', tip50 <= 0.5)} / "
           f"{_cell(tip95, f'{tip95:.2f}', tip95 is not None and tip95 <= 1.5)}")
    cells = [
        _cell(det, f"{100 * det:.1f} %", det is not None and det >= 0.95) if det is not None
        else "n/a",
        tip,
        _cell(angle, f"{angle:.2f}", angle is not None and angle <= 1.0) if angle is not None
        else "n/a",
        _cell(fp, f"{100 * fp:.1f} %", fp is not None and fp <= 0.01) if fp is not None
        else "n/a",
        _frames_to_find(section),
        _cell(wrong, f"{100 * wrong:.1f} %", wrong is not None and wrong <= 0.01)
        if wrong is not None else "n/a",
        _cell(track, f"{track:.2f}", track is not None and track <= 8.0) if track is not None
        else "n/a",
    ]
    return f"| {name} | " + " | ".join(cells) + " |"


def markdown(results: dict[str, Any], config: dict[str, Any]) -> str:
    lines = [
        "# Needle tracking on the independent validation family",
        "",
        f"Seeds {', '.join(map(str, config['seeds']))} pooled per condition; size "
        f"{config['size'] or 'per condition (1024)'}; frames {config['frames'] or 'per condition'}"
        "; default stages (denoise, then track). Targets in the header; a figure that misses "
        "its target is **bold** and marked ✗; n/a: not measured (no needle, or the scorer "
        "does not report it).",
        "",
        HEADER,
        "|---|---|---|---|---|---|---|---|",
        *(table_row(name, entry) for name, entry in results.items()),
    ]
    return "\n".join(lines) + "\n"


def _names(text: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in CONDITIONS]
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown condition(s) {', '.join(unknown)}; expected "
                                         f"some of {', '.join(CONDITIONS)}")
    return names


def _seeds(text: str) -> list[int]:
    try:
        return [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seeds like 1,2,3, got {text!r}") from None


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conditions", type=_names, default=list(CONDITIONS),
                        metavar="A,B,...", help="conditions to run (default: all)")
    parser.add_argument("--seeds", type=_seeds, default=[1, 2, 3], metavar="S,S,...")
    parser.add_argument("--size", type=int, metavar="N", help="frame size (default 1024)")
    parser.add_argument("--frames", type=int, metavar="N",
                        help="frames per stream (default: the condition's)")
    parser.add_argument("--out", type=Path, default=OUT, metavar="DIR")
    args = parser.parse_args(argv)
    progress = StageProgress()
    results: dict[str, Any] = {}
    t0 = time.perf_counter()
    for name in args.conditions:
        results[name] = run_condition(name, args.seeds, args.size, args.frames, progress)
    progress.close()
    config = {"conditions": args.conditions, "seeds": args.seeds, "size": args.size,
              "frames": args.frames, "elapsed_s": round(time.perf_counter() - t0, 1),
              "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                          "platform": platform.platform()}}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "tracking_family.json").write_text(
        json.dumps({"config": config, "conditions": results}, indent=2) + "\n")
    table = markdown(results, config)
    (args.out / "tracking_family.md").write_text(table)
    print(table, end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
