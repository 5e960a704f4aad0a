"""Test set-up shared by every layer's tests."""

import os
import subprocess
import sys
from pathlib import Path

# Qt must never look for a screen in tests; set before any QApplication exists.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pytest

from fluoro.dose.accumulator import DoseAccumulator

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(autouse=True)
def _isolated_data_dir(tmp_path_factory, monkeypatch):
    """Every test (and every ``fluoro`` it starts) keeps its dose log and site key in a fresh
    folder, never in the user's data folder."""
    monkeypatch.setenv("FLUORO_DATA_DIR", str(tmp_path_factory.mktemp("fluoro-data")))


def run_fluoro(*args: str, timeout: float = 240) -> subprocess.CompletedProcess:
    """``python -m fluoro ARGS`` as a user runs it, without a display."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env.pop("DISPLAY", None)
    env.pop("WAYLAND_DISPLAY", None)
    return subprocess.run([sys.executable, "-m", "fluoro", *args], capture_output=True,
                          text=True, timeout=timeout, cwd=REPO, env=env)


def assert_one_error_line(result: subprocess.CompletedProcess, *words: str,
                          status: int = 2) -> str:
    """The bad-input contract: exit ``status``, one line on stderr naming the input, no
    traceback."""
    assert result.returncode == status, result.stderr
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, lines
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def shared_data() -> Path:
    """``../shared/data`` (real third-party files); skips when this checkout has none."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"{SHARED_DATA} is absent: the real third-party data lives beside the repo")
    return SHARED_DATA


def make_exposure(beam_on: bool = True, **overrides: object):
    """A typical lumbar pulsed-fluoro technique (80 kVp, 8 mA, 8 ms, 0.1 mm Cu, 15 pulses/s)."""
    from fluoro.frame import Exposure

    values = dict(beam_on=beam_on, kvp=80.0, ma=8.0, pulse_ms=8.0, sid_mm=1000.0, sirp_mm=470.0,
                  field_area_cm2=300.0, filter_mm_cu=0.1, pulse_rate_hz=15.0)
    values.update(overrides)
    return Exposure(**values)


def make_frames(beam: str, size: int = 32, fps: float = 15.0, seq0: int = 0):
    """Frames from a beam pattern: ``"1"`` a pulse, ``"0"`` a beam-off frame, ``"x"`` a pulse lost
    in transmission (its seq number is skipped). E.g. ``"1111011x11"``."""
    import numpy as np

    from fluoro.frame import Frame, now_ns

    frames = []
    for i, c in enumerate(beam):
        if c == "x":
            continue
        pixels = np.full((size, size), 1000 + i, dtype=np.uint16)
        pixels.flags.writeable = False
        frames.append(Frame(pixels, seq0 + i, i / fps, now_ns(), (0.25, 0.25),
                            make_exposure(beam_on=c == "1", pulse_rate_hz=fps)))
    return frames


@pytest.fixture
def frames_factory():
    return make_frames


@pytest.fixture
def exposure_factory():
    return make_exposure


def read_all(source, timeout_s: float = 1.0) -> list:
    """Every frame a source gives until it ends (``EndOfStream``)."""
    from fluoro.frame import EndOfStream

    frames = []
    while True:
        try:
            frame = source.read(timeout_s)
        except EndOfStream:
            return frames
        if frame is not None:
            frames.append(frame)


def log_frames(log, frames, accumulator: DoseAccumulator | None = None) -> DoseAccumulator:
    """Account for ``frames`` and append each record to ``log`` (anything with ``append``: a
    ``DoseLog``, a list), as the dose engine does; returns the accumulator with the totals."""
    acc = accumulator if accumulator is not None else DoseAccumulator()
    for frame in frames:
        for record in acc.add(frame).records:
            log.append(record)
    return acc
