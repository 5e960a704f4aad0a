"""The failover writer: a live procedure's one way to its dose log, and to the fallback journal
when the log fails (a real SQLite file, a real PostgreSQL server that drops the connection)."""

import os
import threading
from pathlib import Path

import psycopg
from conftest import make_frames
from pg_server import pg_server_fixture, pg_url_fixture  # noqa: F401 - pytest fixtures

from fluoro.dose.accumulator import DoseAccumulator
from fluoro.dose.alarms import Acknowledgement, Alarm
from fluoro.dose.meter import MeterEvent, MeterReading
from fluoro.doselog import DoseLog, FallbackJournal, ProcedureInfo, verify
from fluoro.doselog.failover import FailoverWriter

KEY = "0123456789abcdef0123456789abcdef"


def _records(pattern: str, seq0: int = 0, acc: DoseAccumulator | None = None):
    acc = acc if acc is not None else DoseAccumulator()
    return [r for f in make_frames(pattern, seq0=seq0) for r in acc.add(f).records]


def _alarm() -> Alarm:
    return Alarm(key="kar_notification_1", kind="notification", quantity="kar_mgy",
                 threshold=3000.0, value=3001.5, t_s=12.5, message="Ka,r passed 3000 mGy",
                 severity="warning", requires_ack=True, citation="NCRP Report No. 168")


def _open(tmp_path):
    log = DoseLog.create_or_open(tmp_path / "dose.sqlite")
    uid = log.begin_procedure(ProcedureInfo(KEY, "L4-5 TFESI"))
    return log, FailoverWriter(log, uid)


def test_a_working_log_gets_every_record_and_the_end_row(tmp_path):
    log, writer = _open(tmp_path)
    uid = writer.procedure_uid
    acc = DoseAccumulator()
    for record in _records("1110111", acc=acc):
        writer.append(record)
    writer.log_alarm(_alarm())
    writer.log_ack(Acknowledgement("kar_notification_1", "Dr Rivera", 1.0))
    head = writer.end_procedure(acc.totals())
    writer.close()
    assert writer.failure is None and not writer.failed and head is not None
    assert not (tmp_path / "dose.sqlite.fallback.jsonl").exists()
    summary = log.procedure(uid)
    assert summary.complete and summary.pulses == 6
    assert [a.acks[0].user for a in log.alarms(uid)] == ["Dr Rivera"]
    log.close()
    assert verify(tmp_path / "dose.sqlite", head).ok


def test_after_the_first_failure_every_kind_of_record_goes_to_the_journal_in_order(tmp_path):
    log, writer = _open(tmp_path)
    uid = writer.procedure_uid
    first, rest = _records("111"), _records("11x1", seq0=3)
    for record in first:
        writer.append(record)
    os.unlink(tmp_path / "dose.sqlite")  # the file is removed under the running procedure
    for record in rest:
        writer.append(record)
    writer.log_alarm(_alarm())
    writer.log_ack(Acknowledgement("kar_notification_1", "Dr Rivera", 2.0))
    writer.log_meter_reading(MeterReading(5_000, 0.0125, None, None, "PTW DIAMENTOR"))
    writer.log_meter_event(MeterEvent("disconnected", "cable pulled", 6_000))
    assert writer.failed
    assert "the dose log file was removed" in writer.failure
    assert f"records go to {tmp_path / 'dose.sqlite.fallback.jsonl'}" in writer.failure
    assert writer.end_procedure(DoseAccumulator().totals()) is None  # stays incomplete
    writer.close()
    entries = FallbackJournal.read(tmp_path / "dose.sqlite.fallback.jsonl")
    assert [e.kind for e in entries] == ["pulse", "pulse", "gap", "pulse", "alarm", "ack",
                                         "meter_reading", "meter_event"]
    assert [e.record for e in entries[:4]] == rest
    assert {e.procedure_uid for e in entries} == {uid}
    assert entries[5].record == {"key": "kar_notification_1", "user": "Dr Rivera",
                                 "t_wall_s": 2.0}
    assert writer.unwritten == []
    log.close()


def test_when_the_journal_cannot_be_written_either_nothing_raises_and_records_stay(tmp_path):
    log, writer = _open(tmp_path)
    (tmp_path / "dose.sqlite.fallback.jsonl").mkdir()  # the journal's name is taken by a folder
    os.unlink(tmp_path / "dose.sqlite")
    records = _records("1111")
    for record in records:
        writer.append(record)  # must not raise: the dose path goes on
    writer.log_alarm(_alarm())
    assert "the dose log file was removed" in writer.failure
    assert "fallback journal failed too" in writer.failure
    assert [r for kind, r in writer.unwritten if kind in ("pulse", "gap")] == records
    assert writer.unwritten[-1][0] == "alarm"
    writer.close()
    log.close()


def test_records_from_several_threads_are_all_journalled_once(tmp_path):
    log, writer = _open(tmp_path)
    os.unlink(tmp_path / "dose.sqlite")
    batches = [_records("1" * 50, seq0=1000 * n) for n in range(4)]
    threads = [threading.Thread(target=lambda b=b: [writer.append(r) for r in b])
               for b in batches]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    writer.close()
    entries = FallbackJournal.read(tmp_path / "dose.sqlite.fallback.jsonl")
    assert [e.n for e in entries] == list(range(1, 201))  # no line lost, torn or doubled
    assert sorted(e.record.seq for e in entries) == sorted(r.seq for b in batches for r in b)
    log.close()


def test_the_department_database_going_away_journals_on_this_computer(pg_url):
    log = DoseLog.create_or_open(pg_url)
    assert log.file is None  # not a file: no identity check, no journal beside it
    uid = log.begin_procedure(ProcedureInfo(KEY, "L4-5 TFESI", room="OR 3"))
    writer = FailoverWriter(log, uid)
    first, rest = _records("1111"), _records("111", seq0=4)
    for record in first:
        writer.append(record)
    with psycopg.connect(pg_url, autocommit=True) as admin:  # the database drops this room
        admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                      "WHERE datname = current_database() AND pid <> pg_backend_pid()")
    for record in rest:
        writer.append(record)
    assert writer.failed and "postgresql://" in writer.failure
    journal = writer.journal_path()  # this computer's data folder ($FLUORO_DATA_DIR here)
    assert journal == Path(os.environ["FLUORO_DATA_DIR"]) / f"fallback-{uid}.jsonl"
    assert [e.record for e in FallbackJournal.read(journal)] == rest
    writer.close()
    log.close()
    with DoseLog.open_readonly(pg_url) as reader:
        assert [p.seq for p in reader.pulses(uid)] == [r.seq for r in first]
        assert not reader.procedure(uid).complete


def test_no_writer_raises_for_a_log_that_was_closed_under_it(tmp_path):
    log, writer = _open(tmp_path)
    log.close()
    writer.append(_records("1")[0])
    assert "closed" in writer.failure
    writer.close()
    assert [e.kind for e in FallbackJournal.read(tmp_path / "dose.sqlite.fallback.jsonl")] == [
        "pulse"]
