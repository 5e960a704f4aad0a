"""Does recording slow the live pipeline? Throughput with and without ``--record``.

    python benchmarks/recording_overhead.py [--size 1024] [--frames 300] [--json PATH]

Both runs stream the same pre-rendered simulated frames through the default stages (denoise,
tracking) as fast as the pipeline takes them; the recording run also hands every frame to a
``Recorder`` (writer thread, non-blocking tap) writing to a temporary folder. Reports frames/s,
the ratio, and how many frames the recorder wrote or had to skip.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

from drivers import open_source
from drivers.recording import Recorder
from fluoro.bench.run import prerender
from fluoro.console import Progress
from fluoro.dose.accumulator import DoseAccumulator
from fluoro.stream.pipeline import Pipeline, default_stages
from fluoro.stream.prerendered import PrerenderedSource


def _throughput(frames, info, taps) -> float:
    pipe = Pipeline(PrerenderedSource(frames, info, None), default_stages(), DoseAccumulator(),
                    drop_when_full=False, taps=taps)
    pipe.warm_up()
    t0 = time.perf_counter()
    pipe.start()
    pipe.join()
    return pipe.stats().frames_processed / (time.perf_counter() - t0)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    source = open_source(f"sim://spine?size={args.size}&realtime=0&clean=0&fps=30")
    info = source.info
    bar = Progress(args.frames, "rendering frames")
    frames, _ = prerender(source, args.frames,
                          lambda done, _total, _label: bar.update(done))  # bar has its own
    bar.close()
    runs = {"without_recording": [], "with_recording": []}
    written = skipped = 0
    for repeat in range(3):
        print(f"round {repeat + 1}/3 ...", file=sys.stderr, flush=True)
        runs["without_recording"].append(_throughput(frames, info, ()))
        with tempfile.TemporaryDirectory() as folder:
            recorder = Recorder(Path(folder) / "rec")
            runs["with_recording"].append(_throughput(frames, info, [recorder.put]))
            recorder.close()
            written, skipped = recorder.frames_written, recorder.frames_skipped
    best = {k: max(v) for k, v in runs.items()}
    report = {"size": args.size, "frames": len(frames), "throughput_fps": runs,
              "best_fps": best, "ratio": best["with_recording"] / best["without_recording"],
              "last_recording": {"frames_written": written, "frames_skipped": skipped}}
    print(json.dumps(report, indent=2))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
