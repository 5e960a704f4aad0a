"""The streaming pipeline: source -> synchronous dose -> bounded queue -> processing stages.

Two threads (DESIGN.md, "Data flow"):

- **acquisition** reads the source, accounts for the frame's dose synchronously (the dose path
  never waits on image processing and never goes through a queue that can drop), then offers
  the frame to a bounded queue that drops the *oldest* frame when processing falls behind;
- **processing** runs the stages (denoise, needle tracking, ...) on each queued frame and puts
  the result in a latest-result slot that the display polls.

Latency is measured from ``Frame.t_host_ns`` (the frame handed to the pipeline) to the moment
its result is in the slot. Durations are in ms.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from fluoro.dose.accumulator import DoseAccumulator, DoseTotals
from fluoro.frame import EndOfStream, Frame, FrameSource, Stage, WorkItem, now_ns
from fluoro.stream.handoff import DropOldestQueue, LatestSlot
from fluoro.stream.stats import LatencyRecorder, RateMeter

READ_TIMEOUT_S = 0.1
NO_SIGNAL_AFTER_S = 1.0  # a source silent this long while the beam is on: NO SIGNAL
DEFAULT_QUEUE_FRAMES = 2


@dataclass(frozen=True, slots=True)
class Result:
    """The newest processed frame, as the display sees it."""

    frame: Frame
    image: np.ndarray
    results: dict[str, Any]
    latency_ms: float
    stage_ms: dict[str, float]
    lih: bool  # last-image hold: the beam is off and this is the last image


class DosePath(Protocol):
    """What the acquisition thread feeds: ``fluoro.dose.accumulator.DoseAccumulator`` or
    ``fluoro.session.engine.DoseEngine``. ``add`` returns only when the pulse is accounted for."""

    def add(self, frame: Frame) -> object: ...

    def totals(self) -> DoseTotals: ...


class PassThrough:
    """The identity stage: the image goes through untouched."""

    name = "passthrough"

    def warm_up(self, shape: tuple[int, int]) -> None:
        pass

    def reset(self) -> None:
        pass

    def __call__(self, item: WorkItem) -> None:
        pass


class StageRunner:
    """Runs stages on one frame: resets their temporal state when the beam goes off or the frame
    size changes, skips beam-off frames (their image is the last one, held), times each stage."""

    def __init__(self, stages: Sequence[Stage]) -> None:
        self.stages = list(stages) if stages else [PassThrough()]
        self._last_shape: tuple[int, int] | None = None

    def warm_up(self, shape: tuple[int, int]) -> None:
        for stage in self.stages:
            stage.warm_up(shape)

    def run(self, frame: Frame, target_px: tuple[float, float] | None = None,
            ) -> tuple[WorkItem, dict[str, float]]:
        """``(item, stage_ms)``; for a beam-off frame the stages do not run (``stage_ms`` empty).
        ``target_px`` is the planned target (x, y) the stages see in ``WorkItem.target_px``."""
        if frame.shape != self._last_shape or not frame.beam_on:
            for stage in self.stages:
                stage.reset()
            self._last_shape = frame.shape
        item = WorkItem(frame, frame.pixels, target_px=target_px)
        stage_ms: dict[str, float] = {}
        if frame.beam_on:
            for stage in self.stages:
                t0 = time.perf_counter_ns()
                stage(item)
                stage_ms[stage.name] = (time.perf_counter_ns() - t0) * 1e-6
        return item, stage_ms


@dataclass(frozen=True, slots=True)
class PipelineStats:
    frames_received: int
    frames_processed: int
    frames_dropped: int
    frames_failed: int
    fps_in: float
    fps_out: float
    latency_ms: dict[str, float] | None
    stages_ms: dict[str, dict[str, float]]
    seconds_since_frame: float | None
    source_ended: bool
    running: bool
    error: str | None
    dose: DoseTotals


class Pipeline:
    """Runs ``source`` through ``stages`` with dose accounting; see the module docstring.

    Parameters
    ----------
    source : FrameSource
        Where frames come from; closed by the pipeline when it stops.
    stages : sequence of Stage
        Run in order on the processing thread.
    dose : DosePath
        Fed synchronously by the acquisition thread, before the frame is queued.
    max_frames : int or None
        Stop acquiring after this many frames (all frames, beam-off frames included).
    queue_frames : int
        Capacity of the processing queue.
    drop_when_full : bool
        True (live use): drop the oldest queued frame and count it. False: make acquisition wait
        (benchmarks measuring capacity).
    taps : sequence of callables
        Called with every frame on the acquisition thread after its dose is accounted for (a
        recorder); each must return at once, never block.
    """

    def __init__(
        self,
        source: FrameSource,
        stages: Sequence[Stage] = (),
        dose: DosePath | None = None,
        *,
        max_frames: int | None = None,
        queue_frames: int = DEFAULT_QUEUE_FRAMES,
        drop_when_full: bool = True,
        taps: Sequence[Callable[[Frame], None]] = (),
    ) -> None:
        self.source = source
        self._runner = StageRunner(stages)
        self.stages = self._runner.stages
        self.dose: DosePath = dose if dose is not None else DoseAccumulator()
        self.max_frames = max_frames
        self.taps = list(taps)
        self._queue: DropOldestQueue[Frame] = DropOldestQueue(queue_frames, drop_when_full)
        self._slot: LatestSlot[Result] = LatestSlot()
        self._stop = threading.Event()
        self._latency = LatencyRecorder()
        self._stage_ms = {s.name: LatencyRecorder() for s in self.stages}
        self._stage_ms["dose"] = LatencyRecorder()
        self._rate_in = RateMeter()
        self._rate_out = RateMeter()
        self._received = 0
        self._processed = 0
        self._failed = 0
        self._last_frame_ns: int | None = None
        self._source_ended = False
        self._error: str | None = None
        self._threads: list[threading.Thread] = []
        self._target_lock = threading.Lock()
        self._target_px: tuple[float, float] | None = None

    # -- control -----------------------------------------------------------------------------

    def warm_up(self) -> None:
        """Compile every stage's kernels for the source's frame shape (before the first frame)."""
        self._runner.warm_up(self.source.info.shape)

    def start(self) -> None:
        self._threads = [
            threading.Thread(target=self._acquire, name="fluoro-acquisition", daemon=True),
            threading.Thread(target=self._process, name="fluoro-processing", daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        """Stop now: acquisition ends within one read timeout; queued frames are discarded
        (their dose is already accounted for)."""
        self._stop.set()
        self._queue.close()
        self.join()

    def join(self, timeout_s: float | None = None) -> bool:
        """Wait for both threads; True when they have finished."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        for thread in self._threads:
            remaining = None if deadline is None else max(0.0, deadline - time.monotonic())
            thread.join(remaining)
        return not self.running

    @property
    def running(self) -> bool:
        return any(t.is_alive() for t in self._threads)

    def set_target(self, target_px: tuple[float, float] | None) -> None:
        """Set (or, with None, clear) the planned target, (x, y) px in frame coordinates; any
        thread may call it (the window's, on a click). The stages see it from the next frame
        processed on (needle tracking reports the tip-to-target distance)."""
        with self._target_lock:
            self._target_px = None if target_px is None else (float(target_px[0]),
                                                               float(target_px[1]))

    @property
    def target_px(self) -> tuple[float, float] | None:
        with self._target_lock:
            return self._target_px

    def latest(self) -> tuple[Result | None, int]:
        """The newest result and its version number (grows with every new result)."""
        return self._slot.get()

    def stats(self) -> PipelineStats:
        last = self._last_frame_ns
        return PipelineStats(
            frames_received=self._received,
            frames_processed=self._processed,
            frames_dropped=self._queue.dropped,
            frames_failed=self._failed,
            fps_in=self._rate_in.rate_hz(),
            fps_out=self._rate_out.rate_hz(),
            latency_ms=self._latency.summary(),
            stages_ms={k: s for k, r in self._stage_ms.items() if (s := r.summary()) is not None},
            seconds_since_frame=None if last is None else (now_ns() - last) * 1e-9,
            source_ended=self._source_ended,
            running=self.running,
            error=self._error,
            dose=self.dose.totals(),
        )

    def latency_samples_ms(self) -> np.ndarray:
        return self._latency.values()

    # -- threads -----------------------------------------------------------------------------

    def _acquire(self) -> None:
        try:
            while not self._stop.is_set():
                if self.max_frames is not None and self._received >= self.max_frames:
                    break
                try:
                    frame = self.source.read(READ_TIMEOUT_S)
                except EndOfStream:
                    break
                if frame is None:
                    continue
                t0 = time.perf_counter_ns()
                self.dose.add(frame)
                self._stage_ms["dose"].record((time.perf_counter_ns() - t0) * 1e-6)
                self._received += 1
                self._last_frame_ns = now_ns()
                self._rate_in.tick()
                for tap in self.taps:
                    tap(frame)
                self._queue.put(frame)
        except Exception as exc:  # a device that fails mid-run: stop acquiring, say why
            self._error = f"source {self.source.info.url}: {type(exc).__name__}: {exc}"
        finally:
            self._source_ended = True
            self._queue.close()
            try:
                self.source.close()
            except Exception as exc:
                self._error = self._error or f"closing {self.source.info.url}: {exc}"

    def _process(self) -> None:
        while not self._stop.is_set():
            frame = self._queue.get(READ_TIMEOUT_S)
            if frame is None:
                if self._queue.closed_and_empty:
                    return
                continue
            try:
                self._run_stages(frame)
            except Exception as exc:  # a stage bug must not stop imaging or dose accounting
                self._failed += 1
                if self._error is None:
                    self._error = f"stage failed on frame {frame.seq}: {type(exc).__name__}: {exc}"

    def _run_stages(self, frame: Frame) -> None:
        item, stage_ms = self._runner.run(frame, self.target_px)
        for name, elapsed_ms in stage_ms.items():
            self._stage_ms[name].record(elapsed_ms)
        if not frame.beam_on:
            previous, _ = self._slot.get()
            if previous is not None and previous.frame.shape == frame.shape:
                item = WorkItem(frame, previous.image, dict(previous.results))
        latency_ms = (now_ns() - frame.t_host_ns) * 1e-6
        self._slot.put(Result(frame, item.image, item.results, latency_ms, stage_ms,
                              lih=not frame.beam_on))
        self._latency.record(latency_ms)
        self._processed += 1
        self._rate_out.tick()


def signal_state(stats: PipelineStats) -> str:
    """BEAM ON, BEAM OFF (last-image hold), NO SIGNAL (source silent while the beam was on),
    ENDED."""
    if stats.source_ended:
        return "ENDED"
    if stats.seconds_since_frame is None:
        return "WAITING"
    if not stats.dose.beam_on:
        return "BEAM OFF (LIH)"
    if stats.seconds_since_frame > NO_SIGNAL_AFTER_S:
        return "NO SIGNAL"
    return "BEAM ON"


def default_stages() -> list[Stage]:
    """The stages ``fluoro run`` and ``fluoro bench`` use, fresh and stateful: denoise first
    (``fluoro.imaging.denoise``: causal, motion-adaptive, numba), then needle tracking on the
    denoised image (``fluoro.imaging.needle``)."""
    from fluoro.imaging.denoise import Denoiser
    from fluoro.imaging.needle import NeedleTracker

    return [Denoiser(), NeedleTracker()]
