"""The dose log as the pipeline and the reports use it: real SQLite files in tmp_path."""

import gc
import os
import sqlite3
import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from conftest import log_frames, make_exposure, make_frames

from fluoro.dose.accumulator import DoseGap, DoseTotals, PulseDose
from fluoro.doselog import DoseLog, DoseLogError, Head, ProcedureInfo, verify
from fluoro.errors import InputError

KEY_A = "a" * 32
KEY_B = "b" * 32
T0 = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)


class Clock:
    """An injectable wall clock: advances one second per reading."""

    def __init__(self, start: datetime = T0) -> None:
        self.now = start

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


class Tee:
    """Stores each record into the log and keeps what it was given."""

    def __init__(self, log: DoseLog) -> None:
        self.log = log
        self.records: list[PulseDose | DoseGap] = []

    def append(self, record: PulseDose | DoseGap) -> None:
        self.log.append(record)
        self.records.append(record)


def _pulse(seq: int, event: int = 1, **exposure) -> PulseDose:
    return PulseDose(seq, seq / 15, event, 0.01, 0.003, 0.01, 0.003, False, 1 / 15,
                     make_exposure(**exposure))


def _run(log: DoseLog, pattern: str, key: str | None = KEY_A,
         **info) -> tuple[str, Tee, DoseTotals]:
    uid = log.begin_procedure(ProcedureInfo(key, "lumbar facet injection", **info))
    tee = Tee(log)
    acc = log_frames(tee, make_frames(pattern))
    return uid, tee, acc.totals()


def test_round_trip_of_a_procedure_with_recomputed_totals(tmp_path):
    path = tmp_path / "dose.db"
    with DoseLog.create_or_open(path, clock=Clock()) as log:
        uid, tee, totals = _run(log, "1110111x11x1", operator="Dr Okafor", room="OR 3",
                                device="Siemens Cios Spin #1234", calibration_factor=1.08,
                                pregnant=False)
        log.log_alarm("kar-first", "kar_mgy", 0.05, 0.061, 0.4, "Ka,r passed 0.05 mGy")
        log.log_alarm("kar-second", "kar_mgy", 0.07, 0.075, 0.6, "Ka,r passed 0.07 mGy")
        log.log_ack("kar-first", "RSO Lindqvist")
        log.log_note("contrast run", author="Dr Okafor")
        anchor = log.end_procedure(totals)
        assert log.procedure_uid is None

    with DoseLog.open_readonly(path) as log:
        [summary] = log.procedures()
        assert summary.procedure_uid == uid and summary.complete
        assert summary.info.operator == "Dr Okafor" and summary.info.calibration_factor == 1.08
        assert summary.info.reference_point_code == "113860"
        assert "15 cm from the isocentre" in summary.info.reference_point
        assert summary.patient_key == KEY_A and summary.info.pregnant is False
        assert summary.started_utc < summary.ended_utc
        # recomputed from the rows, in the order written: equal to the accumulator to the bit
        assert (summary.pulses, summary.missing_pulses, summary.events) == (9, 2, 2)
        assert (summary.pulses, summary.missing_pulses, summary.events) == (
            totals.pulses, totals.missing_pulses, totals.events)
        assert summary.kar_mgy == totals.kar_mgy and summary.dap_gycm2 == totals.dap_gycm2
        assert summary.fluoro_time_s == totals.fluoro_time_s
        assert summary.reported == totals and summary.alarms == 2
        assert log.head() == anchor  # what end_procedure returned: the head after the end row
        assert summary.anchor.startswith(f"{anchor.rows - 1}:")  # the end row holds the one before
        assert verify(path, anchor=Head.parse(summary.anchor)).ok

        records = tee.records
        assert log.pulses(uid) == [r for r in records if isinstance(r, PulseDose)]
        assert log.gaps(uid) == [r for r in records if isinstance(r, DoseGap)]
        assert [g.count for g in log.gaps(uid)] == [1, 1]

        first, second = log.alarms(uid)
        assert (first.key, first.threshold, first.value, first.t_s) == ("kar-first", 0.05,
                                                                       0.061, 0.4)
        assert [a.user for a in first.acks] == ["RSO Lindqvist"] and second.acks == ()
        assert [n.text for n in log.notes(uid)] == ["contrast run"]
    assert verify(path).ok


def test_event_rows_follow_the_pulse_event_numbers(tmp_path):
    with DoseLog.create_or_open(tmp_path / "dose.db") as log:
        uid = log.begin_procedure(ProcedureInfo(KEY_A))
        for seq, event, kvp in [(0, 1, 70.0), (1, 1, 71.0), (2, 2, 85.0), (3, 2, 86.0),
                                (4, 2, 86.0), (6, 3, 90.0)]:
            log.append(_pulse(seq, event, kvp=kvp))
        log.append(DoseGap(7, 2, 0.6, 3, 0.02, 0.006, 2 / 15))  # gaps never open events
        events = log.events(uid)
    assert [(e.event, e.first_seq, e.pulses) for e in events] == [(1, 0, 2), (2, 2, 3), (3, 6, 1)]
    assert [e.technique.kvp for e in events] == [70.0, 85.0, 90.0]
    assert events[1].start_t_s == 2 / 15 and events[1].end_t_s == 4 / 15
    assert events[1].kar_mgy == pytest.approx(0.03)


def test_writes_outside_a_procedure_or_on_a_read_only_log_are_refused(tmp_path):
    path = tmp_path / "dose.db"
    with DoseLog.create_or_open(path) as log:
        with pytest.raises(DoseLogError, match="no procedure open"):
            log.append(_pulse(0))
        with pytest.raises(DoseLogError, match="no procedure open"):
            log.end_procedure(DoseTotals())
        log.begin_procedure(ProcedureInfo(KEY_A))
        with pytest.raises(DoseLogError, match="still open"):
            log.begin_procedure(ProcedureInfo(KEY_A))
        with pytest.raises(InputError, match="no such alarm"):
            log.log_ack("never-raised", "someone")
        log.end_procedure(DoseTotals())
        used = log.procedures()[0].procedure_uid
        with pytest.raises(InputError, match="already in the dose log"):
            log.begin_procedure(ProcedureInfo(KEY_A, procedure_uid=used))
    with pytest.raises(DoseLogError, match="closed"):
        log.append(_pulse(0))
    with DoseLog.open_readonly(path) as reader, pytest.raises(DoseLogError, match="read-only"):
        reader.log_note("hello")


def test_a_killed_procedure_is_kept_incomplete_with_every_pulse(tmp_path):
    path = tmp_path / "dose.db"
    log = DoseLog.create_or_open(path)
    uid, tee, _ = _run(log, "11111111")
    del log  # no end_procedure, no close: as if the process died
    gc.collect()

    with DoseLog.create_or_open(path) as log:  # the next session opens and goes on
        [summary] = log.procedures()
        assert not summary.complete and summary.ended_utc is None and summary.reported is None
        assert summary.pulses == 8 and log.pulses(uid) == tee.records
        _, _, totals = _run(log, "111")
        log.end_procedure(totals)
        assert [s.complete for s in log.procedures()] == [False, True]
    assert verify(path).ok


def test_a_failed_write_raises_and_leaves_the_log_whole(tmp_path):
    path = tmp_path / "dose.db"
    with DoseLog.create_or_open(path) as log:
        uid = log.begin_procedure(ProcedureInfo(KEY_A))
        log.append(_pulse(0, event=1))
        with pytest.raises(ValueError, match="kar_mgy is nan"):
            log.append(PulseDose(1, 0.1, 1, float("nan"), 0.0, 0.0, 0.0, False, 0.1,
                                 make_exposure()))
        # a full disk: SQLite may not grow the file past its present size
        pages = log._conn.execute("PRAGMA page_count").fetchone()[0]
        log._conn.execute(f"PRAGMA max_page_count = {pages}")
        stored = 1
        with pytest.raises(sqlite3.OperationalError, match="full"):
            for seq in range(1, 5000):
                log.append(_pulse(seq, event=1))
                stored += 1
        with pytest.raises(sqlite3.OperationalError, match="full"):
            log.append(_pulse(9000, event=2))  # would open event 2: rolled back with its pulse
        log._conn.execute("PRAGMA max_page_count = 1073741823")
        log.append(_pulse(9001, event=2))
        assert [(e.event, e.first_seq) for e in log.events(uid)] == [(1, 0), (2, 9001)]
        assert [p.seq for p in log.pulses(uid)] == [*range(stored), 9001]
    assert verify(path).ok


def test_patient_history_sums_the_procedures_of_the_last_weeks(tmp_path):
    now = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
    with DoseLog.create_or_open(tmp_path / "dose.db") as log:
        per_procedure = {}
        for key, weeks_ago, pattern in [(KEY_A, 1, "1111"), (KEY_A, 5, "11"), (KEY_A, 20, "111"),
                                        (KEY_B, 2, "11111"), (KEY_A, -1, "1")]:
            uid, _, totals = _run(log, pattern, key=key,
                                  started_utc=now - timedelta(weeks=weeks_ago))
            log.end_procedure(totals)
            per_procedure[(key, weeks_ago)] = (uid, totals)
        history = log.patient_history(KEY_A, weeks=12, now=now)
        assert history.procedures == 2
        recent = [per_procedure[(KEY_A, 1)][1], per_procedure[(KEY_A, 5)][1]]
        assert history.kar_mgy == pytest.approx(sum(t.kar_mgy for t in recent))
        assert history.dap_gycm2 == pytest.approx(sum(t.dap_gycm2 for t in recent))
        kar, dap, count = log.patient_history(KEY_A, weeks=26, now=now)
        assert count == 3 and kar > history.kar_mgy and dap > history.dap_gycm2
        assert log.patient_history(KEY_A, weeks=12, now=now,
                                   exclude_uid=per_procedure[(KEY_A, 1)][0]).procedures == 1
        assert log.patient_history("c" * 32, now=now) == (0.0, 0.0, 0)


def test_the_log_and_its_wal_are_owner_only_whatever_the_umask(tmp_path):
    path = tmp_path / "dose.db"
    old = os.umask(0)
    try:
        with DoseLog.create_or_open(path) as log:
            _run(log, "111")
            files = [path, Path(f"{path}-wal"), Path(f"{path}-shm")]
            assert all(f.exists() for f in files)
            assert {f.name: stat.S_IMODE(f.stat().st_mode) for f in files} == {
                f.name: 0o600 for f in files}
    finally:
        os.umask(old)


def test_refuses_an_sqlite_file_that_is_not_a_dose_log(tmp_path):
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE patients (name TEXT)")
    conn.close()
    for opener in (DoseLog.create_or_open, DoseLog.open_readonly, verify):
        with pytest.raises(InputError, match=r"other\.db: not a fluoro dose log \(no fluoro meta"):
            opener(other)


def test_refuses_a_text_file_and_a_folder(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("Ka,r 12 mGy\n" * 20)
    with pytest.raises(InputError, match=r"notes\.txt: not a fluoro dose log \(not an SQLite"):
        DoseLog.create_or_open(text)
    assert text.read_text().startswith("Ka,r 12 mGy")  # untouched
    with pytest.raises(InputError, match="is a folder"):
        DoseLog.create_or_open(tmp_path)


def test_refuses_paths_where_no_log_can_be_created(tmp_path):
    not_a_folder = tmp_path / "report.pdf"
    not_a_folder.write_bytes(b"%PDF-1.7")
    with pytest.raises(InputError, match=r"dose\.db: cannot create the dose log: .* not a folder"):
        DoseLog.create_or_open(not_a_folder / "dose.db")
    with pytest.raises(InputError, match="does not exist"):
        DoseLog.create_or_open(tmp_path / "missing" / "dose.db")
    with pytest.raises(InputError, match="no such dose log"):
        DoseLog.open_readonly(tmp_path / "absent.db")


def test_refuses_a_folder_that_is_not_writable():
    path = Path("/sys/fluoro-dose.db")  # sysfs refuses new files, even to root
    try:
        os.close(os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600))
    except PermissionError:
        pass
    except OSError:
        pytest.skip("/sys does not refuse with EACCES here")
    else:
        path.unlink()
        pytest.skip("/sys is writable here")
    with pytest.raises(InputError, match="cannot create the dose log: folder is not writable"):
        DoseLog.create_or_open(path)


def test_procedure_info_refuses_what_a_report_could_not_trust():
    with pytest.raises(InputError, match="never the patient ID") as caught:
        ProcedureInfo("MRN-4711-0815")
    assert "4711" not in str(caught.value)
    with pytest.raises(InputError, match="calibration_factor"):
        ProcedureInfo(KEY_A, calibration_factor=0.0)
    with pytest.raises(InputError, match="timezone-aware"):
        ProcedureInfo(KEY_A, started_utc=datetime(2025, 1, 1))
