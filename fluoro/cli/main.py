"""The ``fluoro`` command line: the composition root.

This is the one module of ``fluoro/`` that may import ``drivers`` (sources) and ``ui`` (windows),
and it does so inside the command functions, so ``fluoro bench`` never loads Qt.

Exit status: 0 success, 1 a failure during the run, 2 bad input (one line on stderr naming the
input and what was expected; never a traceback).
"""

from __future__ import annotations

import argparse
import math
import os
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from fluoro import __version__
from fluoro.cli.dose import add_dose_parser, dose_log_target
from fluoro.errors import InputError

if TYPE_CHECKING:  # the command functions import what they use, so `fluoro bench` stays light
    from fluoro.session.session import Openers, Session
    from fluoro.stream.pipeline import PipelineStats

DEFAULT_SOURCE = "sim://spine"
SCREENSHOT_FRAMES = 120
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2


class _Parser(argparse.ArgumentParser):
    """argparse that reports a bad option as one line, not usage plus a message."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: {message} (see {self.prog} --help)\n")


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of frames") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a frame count of at least 1")
    return value


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a number greater than 0")
    return value


def _size(text: str) -> int:
    value = _count(text)
    if not 64 <= value <= 4096:
        raise argparse.ArgumentTypeError(f"{text!r}: expected an image size from 64 to 4096 pixels")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="fluoro", description="Real-time fluoroscopy guidance and dose monitor.")
    parser.add_argument("--version", action="version", version=f"fluoro {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    run = sub.add_parser("run", help="live guidance on a source (default: the simulated C-arm)",
                         description="Live guidance: frames through the pipeline, dose accounted "
                                     "for every pulse. Runs until the source ends, a bound is "
                                     "reached or Ctrl-C.")
    run.add_argument("--source", default=DEFAULT_SOURCE, metavar="URL",
                     help=f"frame source URL (default {DEFAULT_SOURCE})")
    run.add_argument("--headless", action="store_true",
                     help="no window: a live status line and a summary "
                          "(automatic without a display)")
    run.add_argument("--frames", type=_count, metavar="N", help="stop after N frames")
    run.add_argument("--seconds", type=_positive, metavar="S", help="stop after S seconds")
    run.add_argument("--dose-log", type=dose_log_target, metavar="PATH|URL",
                     help="the dose log: an SQLite file (default: dose-log.sqlite in the user's "
                          "data folder, or $FLUORO_DATA_DIR) or a department PostgreSQL "
                          "database, postgresql://user@host:port/dbname")
    run.add_argument("--patient", metavar="ID",
                     help="patient ID (only a salted hash of it is stored)")
    run.add_argument("--procedure", metavar="NAME", help="procedure name, for the dose log")
    run.add_argument("--operator", metavar="NAME", help="who operates the C-arm")
    run.add_argument("--pregnant", action="store_true",
                     help="pregnant patient: add the site's lower alarm levels")
    run.add_argument("--dose-source", metavar="URL",
                     help="a DAP meter, e.g. serial:/dev/ttyUSB0?protocol=diamentor&baud=9600; "
                          "its readings become the measured DAP")
    run.add_argument("--record", type=Path, metavar="DIR",
                     help="record the session (frames.npy, frames.jsonl) into a new folder; "
                          "play it back with --source replay:DIR")
    run.add_argument("--passthrough", action="store_true",
                     help="no image processing (no denoise, no needle tracking)")
    run.add_argument("--screenshot", type=Path, metavar="PNG",
                     help="render the window (offscreen without a display) after the run's "
                          f"frames (default {SCREENSHOT_FRAMES}) and save it as PNG")
    run.add_argument("--site-config", type=Path, metavar="TOML",
                     help="site configuration (room, calibration, alarm levels); "
                          "default: the shipped defaults")
    run.set_defaults(func=cmd_run)

    bench = sub.add_parser("bench", help="measure the pipeline on a simulated or recorded stream",
                           description="Pre-render frames, then measure throughput (capacity "
                                       "pass) and latency, drops and dose (paced pass).")
    bench.add_argument("--source", default=DEFAULT_SOURCE, metavar="URL",
                       help=f"frame source URL (default {DEFAULT_SOURCE})")
    bench.add_argument("--size", type=_size, metavar="N",
                       help="image size for sim:// sources (default 1024)")
    bench.add_argument("--frames", type=_count, default=300, metavar="N",
                       help="frames (default 300)")
    bench.add_argument("--fps", type=_positive, default=15.0, metavar="F",
                       help="pulse rate of the paced pass, pulses/s (default 15)")
    bench.add_argument("--quanta", type=_positive, metavar="Q",
                       help="quanta per pixel for sim:// sources (default 50)")
    bench.add_argument("--scenario", metavar="NAME",
                       help="sim:// scenario: clean-spine (default), fusion-hardware, no-needle")
    bench.add_argument("--seed", type=int, metavar="S", help="sim:// random seed (default 1)")
    bench.add_argument("--json", type=Path, metavar="PATH", help="write the report as JSON here")
    bench.add_argument("--baselines", action="store_true",
                       help="also score reference denoisers (recursive filter, Gaussian, "
                            "bilateral, OpenCV NLM single- and multi-frame) in the same run")
    bench.add_argument("--baseline-frames", type=_count, default=8, metavar="N",
                       help="frames the slow baselines run on (default 8)")
    bench.add_argument("--passthrough", action="store_true",
                       help="measure the bare pipeline: no denoise, no tracking")
    bench.add_argument("--save-frames", type=Path, metavar="DIR",
                       help="save a picture of the last frame (and its noise-free truth) here")
    bench.set_defaults(func=cmd_bench)

    add_dose_parser(sub)
    from fluoro.cli.track import add_track_parser

    add_track_parser(sub)
    review = sub.add_parser("review", help="review window for a dose log (radiation safety)",
                            description="Procedures with filters, dose curves, alarms and "
                                        "acknowledgements, exports and verification.")
    review.add_argument("--db", type=Path, required=True, metavar="PATH", help="the dose log")
    review.add_argument("--screenshot", type=Path, metavar="PNG",
                        help="render the window offscreen and save it as PNG, then exit")
    review.set_defaults(func=cmd_review)
    emulate = sub.add_parser("emulate", help="run a device emulator (for tests and demos)",
                             description="Serve an emulated device on a pseudo-terminal.")
    emulate.add_argument("device", choices=["diamentor"], help="which device")
    emulate.add_argument("options", nargs=argparse.REMAINDER,
                         help="the emulator's own options (see fluoro emulate diamentor --help)")
    emulate.set_defaults(func=cmd_emulate)
    return parser


def cmd_review(args: argparse.Namespace) -> int:
    from ui.review_window import run_review

    return run_review(args.db, screenshot=args.screenshot)


def cmd_emulate(args: argparse.Namespace) -> int:
    from drivers.diamentor.emulator import main as diamentor_main

    return diamentor_main(args.options)


def has_display() -> bool:
    """True when a window could be shown (an X11 or Wayland display, or a non-Linux desktop)."""
    if os.environ.get("QT_QPA_PLATFORM", "").startswith(("offscreen", "minimal")):
        return False
    if sys.platform.startswith("linux"):
        return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return True


def _say(message: str) -> None:
    from fluoro.console import notice

    notice(message)


def _open(url: str) -> Any:
    """Open a source; a driver validates its URL before any slow start-up (and says so)."""
    from drivers import open_source

    return open_source(url)


def cmd_run(args: argparse.Namespace) -> int:
    from fluoro.dose.siteconfig import load_site_config
    from fluoro.session.session import Session, SessionConfig

    config = SessionConfig(
        source_url=args.source, site=load_site_config(args.site_config), dose_log=args.dose_log,
        dose_source_url=args.dose_source, patient_id=args.patient,
        procedure_name=args.procedure or "", operator=args.operator or "",
        pregnant=bool(args.pregnant), record_dir=args.record, passthrough=args.passthrough,
        max_frames=args.frames if args.frames is not None
        else SCREENSHOT_FRAMES if args.screenshot is not None and args.seconds is None else None)
    use_window = args.screenshot is not None or (not args.headless and has_display())
    if args.screenshot is not None and not has_display():
        os.environ["QT_QPA_PLATFORM"] = "offscreen"  # render the window without a screen
    window = None
    if use_window:
        from ui.app import run_window

        def window(session: Session) -> tuple[PipelineStats, float]:
            return run_window(session, seconds=args.seconds, screenshot=args.screenshot,
                              close_when_done=config.max_frames is not None)

    stop = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        with Session(config, _openers(), console=sys.stdin) as session:
            if not args.headless and not use_window:
                _say("no display found; running headless")
            result = session.run(window, seconds=args.seconds, stop=stop)
    finally:
        signal.signal(signal.SIGTERM, previous)
    if args.screenshot is not None:
        _say(f"screenshot written to {args.screenshot}")
    print(result.summary(), flush=True)
    if result.stats.error:
        _say(result.stats.error)
        return EXIT_FAILED
    if result.stats.dose.log_error:
        _say(f"DOSE LOG FAILED: {result.stats.dose.log_error}")
        return EXIT_FAILED
    return 0


def _openers() -> Openers:
    """The drivers' openers: frame sources and dose sources by URL, the recorder."""
    from drivers import open_source
    from drivers.dose_sources import open_dose_source
    from drivers.recording import Recorder
    from fluoro.session.session import Openers

    return Openers(frame_source=open_source, dose_source=open_dose_source, recorder=Recorder)


def with_query(url: str, **params: object) -> str:
    """``url`` with the given query parameters set (others kept, ``None`` values skipped)."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    query.update({k: str(v) for k, v in params.items() if v is not None})
    return urlunsplit(parts._replace(query=urlencode(query)))


def cmd_bench(args: argparse.Namespace) -> int:
    from fluoro.bench.run import BenchConfig, run_bench, summary_lines
    from fluoro.console import StageProgress

    url = args.source
    if url.startswith("sim:"):
        url = with_query(url, size=args.size or 1024, fps=args.fps, quanta=args.quanta or 50,
                         scenario=args.scenario, seed=args.seed, realtime=0, frames=args.frames,
                         clean=0 if args.passthrough and not args.save_frames else 1)
        query = dict(parse_qsl(urlsplit(url).query))
        scenario = query.get("scenario", "clean-spine")
    else:
        given = [f"--{n}" for n in ("size", "scenario", "seed") if getattr(args, n) is not None]
        if given:
            raise InputError(f"{', '.join(given)}: only for sim:// sources, not {url!r}")
        scenario = None
    progress = StageProgress()

    source = _open(url)
    noise = args.quanta if not url.startswith("sim:") else None
    cfg = BenchConfig(url, args.frames, args.fps, scenario, args.json, args.save_frames,
                      noise_quanta=noise, seed=args.seed or 1, baselines=args.baselines,
                      baseline_frames=args.baseline_frames)
    from fluoro.bench.run import default_scorers
    from fluoro.stream.pipeline import PassThrough, default_stages

    if args.passthrough:
        report = run_bench(cfg, source, lambda: [PassThrough()], progress)
    else:
        report = run_bench(cfg, source, default_stages, progress, default_scorers)
    progress.close()
    print("\n".join(summary_lines(report)), flush=True)
    if args.json:
        _say(f"report written to {args.json}")
    return EXIT_FAILED if report.get("errors") else 0


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except InputError as exc:
        _say(str(exc))
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        _say("interrupted")
        return 130
    except OSError as exc:
        _say(f"{exc.filename or ''}: {exc.strerror or exc}".lstrip(": "))
        return EXIT_FAILED
    except Exception as exc:  # a bug: one line, the traceback only on request
        if os.environ.get("FLUORO_DEBUG"):
            raise
        _say(f"internal error: {type(exc).__name__}: {exc} (set FLUORO_DEBUG=1 for the traceback)")
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
