"""The Session: one procedure opened in order and closed in reverse, with a real SQLite dose
log; sources, meter and recorder are small in-memory stand-ins that note when they open and
close (the real drivers have their own tests, and tests/e2e runs `fluoro run` whole)."""

import threading
from pathlib import Path

import pytest
from conftest import make_frames

from fluoro.dose.meter import DoseSourceInfo, MeterEvent, MeterReading
from fluoro.dose.siteconfig import load_site_config
from fluoro.doselog import DoseLog, verify
from fluoro.errors import InputError
from fluoro.frame import SourceInfo
from fluoro.session.session import Openers, Session, SessionConfig
from fluoro.stream.prerendered import PrerenderedSource

INFO = SourceInfo("test://frames", "synthetic", (32, 32), 60.0, (0.25, 0.25))


class Journal(list):
    """What opened and closed, in order."""


class Frames(PrerenderedSource):
    def __init__(self, journal: Journal, pattern: str) -> None:
        super().__init__(make_frames(pattern, fps=60.0), INFO, 60.0)
        self.journal = journal
        journal.append("open source")

    def close(self) -> None:
        self.journal.append("close source")


class Meter:
    """A DAP meter that answers once, then stays quiet."""

    def __init__(self, journal: Journal) -> None:
        self.info = DoseSourceInfo("test://meter", "test meter", reset_at_start=True)
        self.journal = journal
        self._items = [MeterEvent("connected", "", 1), MeterReading(2, 0.001, None, None, "m")]
        journal.append("open meter")

    def read(self, timeout_s: float = 0.1):
        if self._items:
            return self._items.pop(0)
        threading.Event().wait(timeout_s)
        return None

    def close(self) -> None:
        self.journal.append("close meter")


class Recorder:
    def __init__(self, journal: Journal, directory: Path) -> None:
        if directory.exists():
            raise InputError(f"{directory}: already holds a recording; choose a new folder")
        self.directory, self.journal = directory, journal
        self.frames_written = self.frames_skipped = 0
        self.error = None
        journal.append("open recorder")

    def put(self, frame) -> None:
        self.frames_written += 1

    def close(self) -> None:
        self.journal.append("close recorder")


def _session(tmp_path, journal, pattern="1" * 20, **config):
    openers = Openers(frame_source=lambda url: Frames(journal, pattern),
                      dose_source=lambda url: Meter(journal),
                      recorder=lambda folder: Recorder(journal, folder))
    cfg = SessionConfig(source_url="test://frames", site=load_site_config(None),
                        dose_log=tmp_path / "dose.sqlite", **config)
    return Session(cfg, openers, say=journal.append, stages=list)


def test_a_session_opens_in_order_runs_and_closes_in_reverse(tmp_path):
    journal = Journal()
    session = _session(tmp_path, journal, dose_source_url="test://meter",
                       record_dir=tmp_path / "rec", procedure_name="L4-5 TFESI", patient_id="MRN 7")
    result = session.run()
    opened = [e for e in journal if e.startswith("open")]
    closed = [e for e in journal if e.startswith("close")]
    assert opened == ["open meter", "open source", "open recorder"]
    # the pipeline closes the source as soon as it ends; then the session, in reverse order
    assert closed == ["close source", "close recorder", "close source", "close meter"]
    assert journal.index("compiling kernels ...") > journal.index("open recorder")
    assert any(e.startswith("patient ") for e in journal)
    # the procedure is complete, with every pulse, and the summary names its anchor
    assert result.stats.frames_received == 20 and result.stats.dose.pulses == 20
    assert result.head is not None and f"anchor {result.head}" in result.summary()
    assert "20 frames in" in result.summary() and "meter" in result.summary()
    assert session.log is not None and session.log._conn is None  # closed last
    with DoseLog.open_readonly(tmp_path / "dose.sqlite") as log:
        (summary,) = log.procedures()
        assert summary.complete and summary.pulses == 20
        assert summary.procedure_name == "L4-5 TFESI" and summary.patient_key is not None
        assert log.meter_record(summary.procedure_uid).readings == 1
    assert verify(tmp_path / "dose.sqlite", result.head).ok


def test_bad_input_half_way_closes_what_was_opened_and_writes_no_procedure(tmp_path):
    journal = Journal()
    (tmp_path / "rec").mkdir()  # the recording folder is taken
    session = _session(tmp_path, journal, dose_source_url="test://meter",
                       record_dir=tmp_path / "rec")
    with pytest.raises(InputError, match="already holds a recording"):
        session.run()
    assert journal[-2:] == ["close source", "close meter"]
    assert "compiling kernels ..." not in journal
    assert session.log is not None and session.log._conn is None
    with DoseLog.open_readonly(tmp_path / "dose.sqlite") as log:
        assert log.procedures() == []  # refused before the log got a procedure


def test_a_window_runs_over_the_open_session_and_its_target_reaches_the_stages(tmp_path):
    journal = Journal()
    seen = []

    class Targeted:
        name = "track"

        def warm_up(self, shape):
            pass

        def reset(self):
            pass

        def __call__(self, item):
            seen.append(item.target_px)

    def window(session):
        assert session.pipeline is not None and session.engine is not None
        session.pipeline.set_target((12.0, 7.5))
        session.pipeline.start()
        session.pipeline.join(30)
        return session.pipeline.stats(), 0.5

    session = _session(tmp_path, journal, pattern="1" * 10)
    session._stages = lambda: [Targeted()]
    result = session.run(window)
    assert seen and set(seen) == {(12.0, 7.5)}
    assert result.wall_s == 0.5 and result.stats.dose.pulses == 10 and result.head is not None


def test_a_session_ended_early_leaves_every_committed_pulse_and_an_anchor(tmp_path):
    journal = Journal()
    session = _session(tmp_path, journal, pattern="1" * 2000)
    stop = threading.Event()
    threading.Timer(0.5, stop.set).start()
    result = session.run(stop=stop)
    received = result.stats.frames_received
    assert 0 < received < 2000
    with DoseLog.open_readonly(tmp_path / "dose.sqlite") as log:
        (summary,) = log.procedures()
        assert summary.complete and summary.pulses == result.stats.dose.pulses == received
