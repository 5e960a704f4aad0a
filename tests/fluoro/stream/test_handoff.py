import threading
import time

from fluoro.stream.handoff import DropOldestQueue, LatestSlot


def test_drop_oldest_keeps_the_newest_and_counts_drops():
    q: DropOldestQueue[int] = DropOldestQueue(2)
    dropped = [q.put(i) for i in range(5)]
    assert dropped == [None, None, 0, 1, 2]
    assert q.dropped == 3
    assert [q.get(0.01), q.get(0.01), q.get(0.01)] == [3, 4, None]


def test_blocking_mode_loses_nothing():
    q: DropOldestQueue[int] = DropOldestQueue(1, drop_when_full=False)
    got: list[int] = []

    def consume():
        while (item := q.get(0.5)) is not None:
            got.append(item)
            time.sleep(0.001)

    consumer = threading.Thread(target=consume)
    consumer.start()
    for i in range(50):
        q.put(i)
    q.close()
    consumer.join(5)
    assert got == list(range(50)) and q.dropped == 0


def test_close_wakes_a_waiting_consumer():
    q: DropOldestQueue[int] = DropOldestQueue(1)
    threading.Timer(0.05, q.close).start()
    assert q.get(5.0) is None
    assert q.closed_and_empty


def test_latest_slot_versions():
    slot: LatestSlot[str] = LatestSlot()
    assert slot.get() == (None, 0)
    slot.put("a")
    slot.put("b")
    assert slot.get() == ("b", 2)
