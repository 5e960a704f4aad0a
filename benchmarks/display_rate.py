"""How fast does the live window draw? Display rate offscreen at 1024² with every overlay.

    QT_QPA_PLATFORM=offscreen python benchmarks/display_rate.py [--size 1024] [--seconds 8]

1. **display rate**: pre-rendered frames offered at 1000 frames/s (always a new one), each
   with a needle result (shaft, tip, dashed trajectory with 10 mm ticks, target and distance);
   the window's timer draws every new result -> frames drawn per second.
2. **keeping up**: the default stages (denoise, tracking) on a 30 pulses/s simulated stream in
   the window -> processing latency p50/p99 over the first and the second half of the run (it
   must not grow) and frames dropped.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np

from drivers import open_source
from fluoro.bench.run import prerender
from fluoro.dose.accumulator import DoseAccumulator
from fluoro.imaging.needle_result import NeedleResult
from fluoro.stream.pipeline import Pipeline, default_stages
from fluoro.stream.prerendered import PrerenderedSource
from ui.app import application
from ui.live_window import LiveWindow


class FixedNeedle:
    """A tracking stage that reports the same needle every frame (the window's drawing is
    measured, not the tracker)."""

    name = "track"

    def __init__(self, size: int) -> None:
        s = size / 1024
        self.result = NeedleResult(True, 0.95, tip_px=(600 * s, 500 * s), hub_px=(900 * s, 300 * s),
                                   angle_deg=146.3, trajectory_end_px=(500 * s, 566 * s),
                                   trajectory_mm=30.0, pixel_spacing_mm=(0.25, 0.25))

    def warm_up(self, shape):
        pass

    def reset(self):
        pass

    def __call__(self, item):
        item.results["track"] = self.result


def _window(pipe):
    app = application("fluoro-bench")
    window = LiveWindow(pipe, None)
    window.resize(1600, 960)
    window.show()
    window.set_target(520.0, 560.0)
    return app, window


def display_rate(frames, info, seconds: float) -> dict:
    # a new frame every millisecond for the whole run: the window always has one to draw
    offered_fps = 1000.0
    looped = [frames[i % len(frames)] for i in range(int((seconds + 2) * offered_fps))]
    pipe = Pipeline(PrerenderedSource(looped, info, offered_fps), [FixedNeedle(info.shape[0])],
                    DoseAccumulator())
    app, window = _window(pipe)
    pipe.start()
    window.start()
    t0 = time.monotonic()
    while time.monotonic() - t0 < 1.0:  # settle
        app.processEvents()
    shown0, t1 = window.frames_shown, time.monotonic()
    while time.monotonic() - t1 < seconds:
        app.processEvents()
    rate = (window.frames_shown - shown0) / (time.monotonic() - t1)
    window.close()
    return {"display_fps": rate, "overlay_visible": window.overlay.visible}


def keeping_up(size: int, seconds: float) -> dict:
    source = open_source(f"sim://spine?size={size}&fps=30&realtime=1")
    pipe = Pipeline(source, default_stages(), DoseAccumulator())
    pipe.warm_up()
    app, window = _window(pipe)
    pipe.start()
    window.start()
    t0 = time.monotonic()
    while time.monotonic() - t0 < seconds:
        app.processEvents()
    window.close()
    lat = pipe.latency_samples_ms()
    half = len(lat) // 2
    stats = pipe.stats()
    return {"frames": stats.frames_received, "dropped": stats.frames_dropped,
            "latency_ms_first_half": {"p50": float(np.percentile(lat[:half], 50)),
                                      "p99": float(np.percentile(lat[:half], 99))},
            "latency_ms_second_half": {"p50": float(np.percentile(lat[half:], 50)),
                                       "p99": float(np.percentile(lat[half:], 99))},
            "display_fps_last_second": window._display_rate.rate_hz()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--json")
    args = parser.parse_args()
    source = open_source(f"sim://spine?size={args.size}&realtime=0&clean=0&frames=30")
    frames, _ = prerender(source, 30)
    print("measuring the display rate ...", file=sys.stderr, flush=True)
    report = {"size": args.size, **display_rate(frames, source.info, args.seconds)}
    print("running at 30 pulses/s with denoise and tracking ...", file=sys.stderr, flush=True)
    report["at_30_pulses_per_s"] = keeping_up(args.size, args.seconds * 2)
    print(json.dumps(report, indent=2))
    if args.json:
        with open(args.json, "w") as file:
            json.dump(report, file, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
