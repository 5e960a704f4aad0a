"""Latency and rate statistics kept in fixed memory, safe to read while one thread writes."""

from __future__ import annotations

import threading
import time
from collections import deque

import numpy as np

PERCENTILES = (50, 95, 99)


class LatencyRecorder:
    """The last ``capacity`` samples of a duration in ms, and their percentiles.

    One thread records; any thread may call ``summary``. Memory is fixed (a ring buffer), so a
    procedure that runs for hours costs no more than one that runs for seconds.
    """

    def __init__(self, capacity: int = 65536) -> None:
        self._values_ms = np.zeros(capacity, dtype=np.float64)
        self._count = 0
        self._lock = threading.Lock()

    def record(self, value_ms: float) -> None:
        with self._lock:
            self._values_ms[self._count % self._values_ms.size] = value_ms
            self._count += 1

    @property
    def count(self) -> int:
        return self._count

    def values(self) -> np.ndarray:
        """A copy of the samples still held (oldest first is not guaranteed)."""
        with self._lock:
            n = min(self._count, self._values_ms.size)
            return self._values_ms[:n].copy()

    def summary(self) -> dict[str, float] | None:
        """``{"p50", "p95", "p99", "max", "mean"}`` in ms, or None before the first sample."""
        values = self.values()
        if values.size == 0:
            return None
        p50, p95, p99 = np.percentile(values, PERCENTILES)
        return {"p50": float(p50), "p95": float(p95), "p99": float(p99),
                "max": float(values.max()), "mean": float(values.mean())}


class RateMeter:
    """Events per second over a sliding window of wall-clock time."""

    def __init__(self, window_s: float = 1.0) -> None:
        self.window_s = window_s
        self._stamps: deque[float] = deque()
        self._lock = threading.Lock()

    def tick(self, t_s: float | None = None) -> None:
        now = time.monotonic() if t_s is None else t_s
        with self._lock:
            self._stamps.append(now)
            cutoff = now - self.window_s
            while self._stamps and self._stamps[0] < cutoff:
                self._stamps.popleft()

    def rate_hz(self) -> float:
        now = time.monotonic()
        with self._lock:
            recent = [t for t in self._stamps if t >= now - self.window_s]
        return len(recent) / self.window_s
