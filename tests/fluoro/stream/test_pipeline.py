"""The streaming pipeline with small synthetic frames (the simulator has its own tests)."""

import time

import numpy as np
import pytest
from conftest import make_frames

from fluoro.dose.accumulator import DoseAccumulator, PulseDose
from fluoro.frame import EndOfStream, SourceInfo, WorkItem
from fluoro.stream.pipeline import Pipeline
from fluoro.stream.prerendered import PrerenderedSource

FPS = 60.0


def _info(size: int = 32) -> SourceInfo:
    return SourceInfo("test://frames", "synthetic", (size, size), FPS, (0.25, 0.25))


class SleepyStage:
    """Takes ``delay_s`` per frame: processing slower than the pulse rate."""

    name = "sleepy"

    def __init__(self, delay_s: float) -> None:
        self.delay_s = delay_s
        self.seen: list[int] = []
        self.resets = 0

    def warm_up(self, shape):
        pass

    def reset(self):
        self.resets += 1

    def __call__(self, item: WorkItem) -> None:
        time.sleep(self.delay_s)
        self.seen.append(item.frame.seq)


class RecordingDose(DoseAccumulator):
    """The accumulator, keeping the pulse records it hands out (what the engine would log)."""

    def __init__(self) -> None:
        super().__init__()
        self.pulses: list[PulseDose] = []

    def add(self, frame):
        done = super().add(frame)
        if done.pulse is not None:
            self.pulses.append(done.pulse)
        return done


def _run(frames, stages=(), fps=FPS, **kwargs):
    log = RecordingDose()
    pipe = Pipeline(PrerenderedSource(frames, _info(), fps), stages, log, **kwargs)
    pipe.warm_up()
    pipe.start()
    assert pipe.join(30), "pipeline did not finish"
    return pipe, log


def test_pass_through_processes_every_frame_and_logs_every_pulse():
    frames = make_frames("1" * 40 + "0" + "1" * 20)
    pipe, log = _run(frames)
    s = pipe.stats()
    assert s.frames_received == s.frames_processed == 61
    assert s.frames_dropped == 0 and s.error is None and s.source_ended
    assert len(log.pulses) == 60 and s.dose.pulses == 60 and s.dose.events == 2
    latencies_ms = pipe.latency_samples_ms()
    assert latencies_ms.size == 61 and (latencies_ms > 0).all()  # one per processed frame
    assert s.latency_ms["max"] == latencies_ms.max()
    assert set(s.stages_ms) == {"passthrough", "dose"}
    result, version = pipe.latest()
    assert version == 61 and result.frame.seq == 60


def test_slow_processing_drops_frames_but_never_dose():
    # a stage that sleeps three pulse intervals: processing runs at a third of the pulse rate
    stage = SleepyStage(3 / FPS)
    frames = make_frames("1" * 30 + "0" + "1" * 29)
    pipe, log = _run(frames, [stage])
    s = pipe.stats()
    emitted = sum(f.beam_on for f in frames)
    assert s.frames_dropped > 20, "processing at 1/3 of the rate must drop frames"
    assert s.frames_processed + s.frames_dropped == s.frames_received == len(frames)
    assert len(log.pulses) == emitted == s.dose.pulses  # every pulse accounted for
    assert [p.seq for p in log.pulses] == [f.seq for f in frames if f.beam_on]
    assert len(stage.seen) < emitted
    # latency runs from hand-off to result, so a processed pulse's includes the stage's three
    # pulse intervals (only the one beam-off frame skips the stage)
    assert np.median(pipe.latency_samples_ms()) >= 3000 / FPS
    # the newest frame wins: the last frame reached the display
    assert pipe.latest()[0].frame.seq == frames[-1].seq


def test_beam_off_gives_last_image_hold_and_resets_temporal_state():
    stage = SleepyStage(0.0)
    frames = make_frames("1110111")
    _run(frames, [stage], fps=20.0)
    assert stage.seen == [0, 1, 2, 4, 5, 6]  # the beam-off frame is not processed
    assert stage.resets >= 2  # first frame (new size) and the beam-off frame


def test_lih_result_shows_the_previous_image():
    frames = make_frames("110")
    pipe = Pipeline(PrerenderedSource(frames, _info(), None), [], DoseAccumulator(),
                    drop_when_full=False)
    pipe.start()
    assert pipe.join(10)
    last, version = pipe.latest()
    assert version == 3
    assert last.lih and last.frame.seq == 2
    assert int(last.image[0, 0]) == int(frames[1].pixels[0, 0])


def test_a_failing_stage_does_not_stop_dose_or_display():
    class Broken:
        name = "broken"

        def warm_up(self, shape):
            pass

        def reset(self):
            pass

        def __call__(self, item):
            raise RuntimeError("kernel exploded")

    frames = make_frames("11111")
    pipe, log = _run(frames, [Broken()])
    s = pipe.stats()
    assert s.frames_failed == 5 and "kernel exploded" in s.error
    assert len(log.pulses) == 5


def test_a_source_that_fails_mid_run_is_reported_and_closed():
    class FailingSource:
        info = _info()
        closed = False

        def __init__(self):
            self.frames = iter(make_frames("111"))

        def read(self, timeout_s=0.1):
            try:
                return next(self.frames)
            except StopIteration:
                raise OSError("capture card unplugged") from None

        def close(self):
            FailingSource.closed = True

    pipe = Pipeline(FailingSource(), [], DoseAccumulator())
    pipe.start()
    assert pipe.join(10)
    s = pipe.stats()
    assert s.dose.pulses == 3 and "capture card unplugged" in s.error
    assert FailingSource.closed


def test_stop_returns_promptly_on_a_silent_source():
    class Silent:
        info = _info()

        def read(self, timeout_s=0.1):
            time.sleep(timeout_s)
            return None

        def close(self):
            pass

    pipe = Pipeline(Silent(), [], DoseAccumulator())
    pipe.start()
    time.sleep(0.3)
    assert pipe.stats().seconds_since_frame is None and pipe.running
    t0 = time.monotonic()
    pipe.stop()
    assert not pipe.running
    assert time.monotonic() - t0 < 5.0


def test_max_frames_bounds_a_run():
    pipe, log = _run(make_frames("1" * 50), max_frames=12)
    assert pipe.stats().frames_received == 12 and len(log.pulses) == 12


def test_prerendered_source_ends():
    src = PrerenderedSource(make_frames("1"), _info(), None)
    assert src.read() is not None
    with pytest.raises(EndOfStream):
        src.read()
