"""Headless live session: a status line while the pipeline runs, a summary when it ends."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Sequence
from typing import TextIO

from fluoro.console import LiveLine
from fluoro.stream.pipeline import Pipeline, PipelineStats, signal_state

STATUS_INTERVAL_S = 0.25


def format_minutes(seconds: float) -> str:
    """Fluoroscopy time in minutes and tenths, as C-arm dose displays show it."""
    return f"{seconds / 60:.1f} min"


def status_text(stats: PipelineStats) -> str:
    d = stats.dose
    lat = stats.latency_ms
    latency = f"lat p50 {lat['p50']:.1f} p99 {lat['p99']:.1f} ms" if lat else "lat -"
    text = (f"{signal_state(stats):<14} frames {stats.frames_received:>6}  "
            f"{stats.fps_in:5.1f} fps  {latency}  dropped {stats.frames_dropped}  "
            f"Ka,r {d.kar_mgy:8.3f} mGy  {d.akr_mgy_min:6.2f} mGy/min  "
            f"DAP {d.dap_gycm2:8.4f} Gy·cm²  fluoro {format_minutes(d.fluoro_time_s)}  "
            f"pulses {d.pulses} events {d.events}")
    if d.missing_pulses:
        text += f"  MISSING {d.missing_pulses} pulses"
    if d.log_error:
        text += "  DOSE LOG FAILED"
    return text


def summary_text(url: str, stats: PipelineStats, wall_s: float,
                 extra: Sequence[tuple[str, str]] = ()) -> str:
    d = stats.dose
    lat = stats.latency_ms
    rows = [
        ("source", url),
        ("frames", f"{stats.frames_received} frames received, {stats.frames_processed} processed, "
                   f"{stats.frames_dropped} dropped by processing, {stats.frames_failed} failed"),
        ("pulses", f"{d.pulses} pulses in {d.events} irradiation events, "
                   f"{d.missing_pulses} missing (dose estimated)"),
        ("rate", f"{stats.frames_received / max(wall_s, 1e-9):.1f} frames/s over {wall_s:.1f} s"),
        ("latency", f"p50 {lat['p50']:.2f} ms, p99 {lat['p99']:.2f} ms, max {lat['max']:.2f} ms"
                    if lat else "no frame processed"),
        ("dose", f"Ka,r {d.kar_mgy:.4f} mGy  DAP {d.dap_gycm2:.5f} Gy·cm²  fluoro time "
                 f"{d.fluoro_time_s:.1f} s ({d.fluoro_time_s / 60:.1f} min)"),
    ]
    rows.extend(extra)
    if d.log_error:
        rows.append(("DOSE LOG", f"FAILED: {d.log_error}"))
    if stats.error:
        rows.append(("error", stats.error))
    return "fluoro run summary\n" + "\n".join(f"  {k:<9} {v}" for k, v in rows)


def run_headless(pipe: Pipeline, seconds: float | None = None, stream: TextIO | None = None,
                 stop: threading.Event | None = None,
                 announcements: Callable[[], list[str]] | None = None,
                 ) -> tuple[PipelineStats, float]:
    """Start ``pipe`` and show its status until it ends, ``seconds`` pass or ``stop`` is set.

    ``announcements`` is polled with the status line; each line it returns (a new alarm) is
    printed once, on a line of its own, above the status line.

    Ctrl-C stops the pipeline cleanly (dose already accounted for); the caller prints the
    summary. Returns the final statistics and the wall time in seconds.
    """
    line = LiveLine(stream if stream is not None else sys.stderr)
    t0 = time.monotonic()
    pipe.start()
    try:
        while pipe.running:
            if seconds is not None and time.monotonic() - t0 >= seconds:
                break
            if stop is not None and stop.is_set():
                break
            for text in announcements() if announcements else ():
                line.done(text)
            line.show(status_text(pipe.stats()))
            pipe.join(STATUS_INTERVAL_S)
    except KeyboardInterrupt:
        line.done("interrupted: stopping")
    finally:
        pipe.stop()
    wall_s = time.monotonic() - t0
    stats = pipe.stats()
    for text in announcements() if announcements else ():
        line.done(text)
    line.done(status_text(stats))
    return stats, wall_s


class ConsoleAcknowledger:
    """Acknowledges alarms typed at the console during a headless run.

    A line ``ack`` (or ``a``) acknowledges every active alarm as ``default_user``; ``ack NAME``
    as NAME. Each acknowledgement is logged by the dose engine (21 CFR 1020.32(h): the
    five-minute signal sounds until reset). Reads ``stream`` on a daemon thread; at end of input
    (no console, as in CI) the thread just ends.
    """

    def __init__(self, stream: TextIO, acknowledge: Callable[[str], list[object]],
                 default_user: str | None) -> None:
        self._stream = stream
        self._acknowledge = acknowledge
        self._default_user = default_user
        self._lock = threading.Lock()
        self._lines: list[str] = []
        self._thread = threading.Thread(target=self._read, name="fluoro-console-ack", daemon=True)

    def start(self) -> ConsoleAcknowledger:
        self._thread.start()
        return self

    def take_lines(self) -> list[str]:
        """What happened since the last call, one line each, for the console."""
        with self._lock:
            lines, self._lines = self._lines, []
        return lines

    def _say(self, text: str) -> None:
        with self._lock:
            self._lines.append(text)

    def _read(self) -> None:
        try:
            for raw in self._stream:
                words = raw.strip().split(maxsplit=1)
                if not words or words[0].lower() not in ("a", "ack"):
                    if words:
                        self._say(f"console: {raw.strip()!r} not understood; type: ack [NAME]")
                    continue
                user = words[1] if len(words) > 1 else self._default_user
                if not user:
                    self._say("console: who acknowledges? type: ack NAME (or start with "
                              "--operator NAME)")
                    continue
                try:
                    acks = self._acknowledge(user)
                except Exception as exc:
                    self._say(f"console: {exc}")
                    continue
                self._say(f"ACKNOWLEDGED by {user}: {len(acks)} alarm(s)" if acks
                          else "console: no active alarm to acknowledge")
        except (OSError, ValueError):
            return
