"""An in-memory frame source: frames read once (pre-rendered), handed out again as if live.

``fluoro bench`` reads its frames before the clock starts so that the source is never what is
measured; tests and benchmarks use the same source to feed a pipeline known frames.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import replace

from fluoro.frame import EndOfStream, Frame, SourceInfo, now_ns


class PrerenderedSource:
    """Replays frames held in memory; paced at ``fps`` or as fast as the reader takes them.

    Each frame is re-stamped with the host clock at hand-off, so latency is measured from the
    moment the pipeline receives the frame.
    """

    def __init__(self, frames: Sequence[Frame], info: SourceInfo, fps: float | None) -> None:
        self.frames = frames
        self.info = info
        self.fps = fps
        self._next = 0
        self._t0_ns: int | None = None

    def read(self, timeout_s: float = 0.1) -> Frame | None:
        if self._next >= len(self.frames):
            raise EndOfStream
        if self.fps:
            if self._t0_ns is None:
                self._t0_ns = now_ns()
            due_ns = self._t0_ns + int(self._next * 1e9 / self.fps)
            wait_s = (due_ns - now_ns()) * 1e-9
            if wait_s > timeout_s:
                time.sleep(timeout_s)
                return None
            if wait_s > 0:
                time.sleep(wait_s)
        frame = replace(self.frames[self._next], t_host_ns=now_ns())
        self._next += 1
        return frame

    def close(self) -> None:
        pass
