"""Time per frame of the ``denoise`` stage, single thread, with a frame copy as the yardstick.

    .venv/bin/python benchmarks/denoise_timing.py [--size 1024] [--frames 40] [--passes 5]

The frames are rendered first (simulated ``clean-spine``, quanta 50); then the stage runs over
them ``--passes`` times through ``StageRunner`` (as the pipeline calls it) and each call is timed;
between calls a copy of the frame is timed too, so a loaded, shared machine shows in both.
Prints p50 / p90 / min of the stage and of the copy, and the 1-minute load average.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fluoro.imaging.denoise import Denoiser
from fluoro.stream.pipeline import StageRunner


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--frames", type=int, default=40)
    parser.add_argument("--passes", type=int, default=5)
    args = parser.parse_args()
    from drivers.sim import open_sim

    source = open_sim(f"sim://spine?size={args.size}&fps=15&quanta=50&realtime=0&clean=0"
                      "&scenario=clean-spine&seed=1")
    frames = []
    while len(frames) < args.frames:
        frame = source.read(1.0)
        if frame is not None:
            frames.append(frame)
    source.close()
    den = Denoiser()
    runner = StageRunner([den])
    runner.warm_up(frames[0].shape)
    stage_ms: list[float] = []
    copy_ms: list[float] = []
    for _ in range(args.passes):
        den.reset()
        for k, frame in enumerate(frames):
            _, timed = runner.run(frame)
            if k >= 3 and "denoise" in timed:  # the steady state: not the reset frames
                stage_ms.append(timed["denoise"])
            t0 = time.perf_counter()
            frame.pixels.copy()
            copy_ms.append((time.perf_counter() - t0) * 1e3)
    for name, values in (("denoise stage", stage_ms), ("frame copy", copy_ms)):
        v = np.array(values)
        print(f"{name:>14}: p50 {np.percentile(v, 50):6.2f} ms  p90 {np.percentile(v, 90):6.2f} ms"
              f"  min {v.min():6.2f} ms  (n={v.size})")
    print(f"state bytes: {den.state_bytes}  load average (1 min): {os.getloadavg()[0]:.2f} "
          f"on {os.cpu_count()} CPUs")


if __name__ == "__main__":
    main()
