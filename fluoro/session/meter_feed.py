"""Feeds a DAP meter's readings and link events to the dose engine, on a thread of its own.

The meter is polled by its driver; this thread only hands each item over, so a slow or silent
meter never delays frame acquisition or the per-pulse dose path. The meter is its opener's to
close (the session closes it after the feed has stopped).
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from fluoro.dose.meter import DoseSource, MeterEvent, MeterReading


class MeterFeed:
    """Reads ``source`` on a thread of its own and hands every reading and event to
    ``deliver`` (``DoseEngine.add_meter``); a failure is kept in ``error``, never raised."""

    def __init__(self, source: DoseSource,
                 deliver: Callable[[MeterReading | MeterEvent], None]) -> None:
        self.source = source
        self._deliver = deliver
        self._stop = threading.Event()
        self.items = 0
        self.error: str | None = None
        self._thread = threading.Thread(target=self._run, name="fluoro-meter", daemon=True)

    def start(self) -> MeterFeed:
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop reading (within one read timeout)."""
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                item = self.source.read(0.1)
                if item is not None:
                    self._deliver(item)
                    self.items += 1
            except Exception as exc:  # the meter must never take the session down
                self.error = f"{type(exc).__name__}: {exc}"
                self._stop.wait(0.5)
