"""``python -m drivers.family``: write validation-family streams as recordings (replay format).

    python -m drivers.family --list
    python -m drivers.family --condition NAME [--seed S] [--size N] [--frames N] --out DIR
    python -m drivers.family --all [--seed S] [--size N] [--frames N] --out DIR

One condition goes to DIR (a new folder, replayable as ``replay:DIR``); ``--all`` writes every
condition to ``DIR/NAME-seedS/``. Bad options: one line on stderr, exit status 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from drivers.family.conditions import CONDITIONS, get_condition, with_overrides
from drivers.family.scene import build_scene
from drivers.family.source import MAX_SIZE_PX, MIN_SIZE_PX, FamilyStream
from fluoro.console import Progress
from fluoro.errors import InputError

EXIT_BAD_INPUT = 2


class _Parser(argparse.ArgumentParser):
    """argparse that reports a bad option as one line (and exit status 2)."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: {message} (see {self.prog} --help)\n")


def _int_in(low: int, high: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or not low <= value <= high:
            raise argparse.ArgumentTypeError(f"expected an integer from {low} to {high}, "
                                             f"got {text!r}")
        return value
    return parse


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m drivers.family",
                     description="Write validation-family streams in the replay format.")
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--list", action="store_true", help="list the conditions and exit")
    what.add_argument("--condition", metavar="NAME", help="the condition to write")
    what.add_argument("--all", action="store_true", help="write every condition")
    parser.add_argument("--seed", type=_int_in(0, 2**32 - 1), default=1, metavar="S")
    parser.add_argument("--size", type=_int_in(MIN_SIZE_PX, MAX_SIZE_PX), metavar="N",
                        help="frame size in pixels (default: the condition's)")
    parser.add_argument("--frames", type=_int_in(1, 100_000), metavar="N",
                        help="frames (default: the condition's)")
    parser.add_argument("--out", type=Path, metavar="DIR", help="where to write")
    parser.add_argument("--no-clean", action="store_true",
                        help="leave out the noise-free images (clean.npy)")
    return parser


def write_recording(name: str, seed: int, size: int | None, frames: int | None, out: Path,
                    want_clean: bool = True, progress: Progress | None = None) -> int:
    """Render one condition into the recording folder ``out``; returns the frames written."""
    from drivers.recording import Recorder

    condition = with_overrides(get_condition(name), size, frames)
    recorder = Recorder(out)
    stream = FamilyStream(build_scene(condition, seed), want_clean)
    try:
        for frame in stream.frames():
            recorder.put(frame, block=True)
            if progress is not None:
                progress.advance()
    finally:
        recorder.close()
    if recorder.error:
        raise InputError(f"{out}: the recording failed ({recorder.error})")
    return recorder.frames_written


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.list:
            width = max(len(n) for n in CONDITIONS)
            for name, condition in CONDITIONS.items():
                print(f"{name:<{width}}  {condition.description}")
            return 0
        if args.out is None:
            raise InputError("--out DIR is needed to write a recording")
        want_clean = not args.no_clean
        if args.condition is not None:
            get_condition(args.condition)
            if args.out.exists() and any(args.out.iterdir()):
                raise InputError(f"{args.out}: not empty; choose a new folder")
            count = with_overrides(get_condition(args.condition), args.size, args.frames).frames
            progress = Progress(count, args.condition)
            written = write_recording(args.condition, args.seed, args.size, args.frames,
                                      args.out, want_clean, progress)
            progress.close()
            print(f"wrote {written} frames of {args.condition} (seed {args.seed}) to {args.out}")
            return 0
        conditions = [with_overrides(c, args.size, args.frames) for c in CONDITIONS.values()]
        progress = Progress(sum(c.frames for c in conditions), "validation family")
        for condition in conditions:
            target = args.out / f"{condition.name}-seed{args.seed}"
            if target.exists() and any(target.iterdir()):
                raise InputError(f"{target}: not empty; choose a new folder")
            write_recording(condition.name, args.seed, args.size, args.frames, target,
                            want_clean, progress)
        progress.close()
        print(f"wrote {len(conditions)} conditions (seed {args.seed}) to {args.out}")
        return 0
    except InputError as exc:
        sys.stderr.write(f"python -m drivers.family: {exc}\n")
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        sys.stderr.write("python -m drivers.family: interrupted\n")
        return 130


if __name__ == "__main__":
    sys.exit(main())
