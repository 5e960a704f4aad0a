"""Hand-offs between threads: a bounded drop-oldest queue and a latest-result slot."""

from __future__ import annotations

import threading
from collections import deque
from typing import Generic, TypeVar

T = TypeVar("T")


class DropOldestQueue(Generic[T]):
    """A bounded FIFO. When full, ``put`` discards the oldest item and counts it, so the producer
    (the acquisition thread) never waits on the consumer. With ``drop_when_full=False`` it
    blocks instead (used to measure the pipeline's capacity without losing frames)."""

    def __init__(self, capacity: int, drop_when_full: bool = True) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.capacity = capacity
        self.drop_when_full = drop_when_full
        self._items: deque[T] = deque()
        self._cond = threading.Condition()
        self._closed = False
        self.dropped = 0

    def put(self, item: T) -> T | None:
        """Queue ``item``; returns the item dropped to make room, if any."""
        with self._cond:
            dropped = None
            if self.drop_when_full:
                if len(self._items) >= self.capacity:
                    dropped = self._items.popleft()
                    self.dropped += 1
            else:
                while len(self._items) >= self.capacity and not self._closed:
                    self._cond.wait(0.1)
            self._items.append(item)
            self._cond.notify_all()
            return dropped

    def get(self, timeout_s: float) -> T | None:
        """The oldest item, or None if none arrived within ``timeout_s`` or the queue is closed
        and empty."""
        with self._cond:
            if not self._items and not self._closed:
                self._cond.wait(timeout_s)
            if not self._items:
                return None
            item = self._items.popleft()
            self._cond.notify_all()
            return item

    def close(self) -> None:
        """No more items will come; wakes every waiter."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    @property
    def closed_and_empty(self) -> bool:
        with self._cond:
            return self._closed and not self._items

    def __len__(self) -> int:
        with self._cond:
            return len(self._items)


class LatestSlot(Generic[T]):
    """Holds only the newest value; readers (the UI timer) see the latest and its version."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._value: T | None = None
        self._version = 0

    def put(self, value: T) -> None:
        with self._lock:
            self._value = value
            self._version += 1

    def get(self) -> tuple[T | None, int]:
        """``(value, version)``; the version grows by one with every ``put``."""
        with self._lock:
            return self._value, self._version
