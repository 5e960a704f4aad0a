"""Terminal output: a progress bar and a live status line, on stderr.

On a terminal they redraw one line in place; in a log (not a TTY) they print a new line at most
every ``log_interval_s`` seconds, so CI logs stay readable.
"""

from __future__ import annotations

import sys
import time
from typing import TextIO


class LiveLine:
    """One status line that is redrawn in place on a TTY and printed now and then otherwise."""

    def __init__(self, stream: TextIO | None = None, log_interval_s: float = 2.0) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self.log_interval_s = log_interval_s
        self._last_log = float("-inf")
        self._width = 0

    def show(self, text: str, force: bool = False) -> None:
        if self.tty:
            pad = max(0, self._width - len(text))
            self.stream.write("\r" + text + " " * pad)
            self._width = len(text)
            self.stream.flush()
            return
        now = time.monotonic()
        if force or now - self._last_log >= self.log_interval_s:
            self._last_log = now
            self.stream.write(text + "\n")
            self.stream.flush()

    def done(self, text: str | None = None) -> None:
        """Finish the line (optionally with final text) so what follows starts on a new line."""
        if text is not None:
            self.show(text, force=True)
        if self.tty and self._width:
            self.stream.write("\n")
            self.stream.flush()
        self._width = 0


class Progress:
    """``label [#####.....] 120/300  40 /s`` for a job of known size."""

    def __init__(self, total: int, label: str, stream: TextIO | None = None) -> None:
        self.total = max(1, total)
        self.label = label
        self.count = 0
        self._line = LiveLine(stream)
        self._t0 = time.monotonic()

    def update(self, count: int) -> None:
        self.count = count
        self._line.show(self._text())

    def advance(self, step: int = 1) -> None:
        self.update(self.count + step)

    def close(self) -> None:
        self._line.done(self._text())

    def _text(self) -> str:
        width = 30
        filled = int(width * min(self.count, self.total) / self.total)
        elapsed_s = max(1e-9, time.monotonic() - self._t0)
        return (f"{self.label} [{'#' * filled}{'.' * (width - filled)}] "
                f"{self.count}/{self.total}  {self.count / elapsed_s:.0f}/s")


def notice(text: str, stream: TextIO | None = None) -> None:
    """One informational line on stderr, ``fluoro: text`` (e.g. "compiling kernels ...")."""
    out = stream if stream is not None else sys.stderr
    out.write(f"fluoro: {text}\n")
    out.flush()


class StageProgress:
    """A progress callback ``(done, total, label)`` for a job of several stages: each new label
    closes the previous stage's bar and starts its own."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream
        self._bar: Progress | None = None
        self._label: str | None = None

    def __call__(self, done: int, total: int, label: str) -> None:
        if label != self._label:
            self.close()
            self._bar, self._label = Progress(total, label, self.stream), label
        assert self._bar is not None
        self._bar.update(done)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
