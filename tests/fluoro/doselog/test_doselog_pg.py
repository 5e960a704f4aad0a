"""The department dose log in PostgreSQL: a throw-away server (tests/pg_server.py) per session,
a fresh database per test. Same schema, payloads, hashes and verification as the SQLite log."""

import sqlite3
import threading
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from conftest import log_frames, make_frames
from pg_server import pg_server_fixture, pg_url_fixture  # noqa: F401 - fixtures

from fluoro.dose.meter import MeterEvent, MeterReading
from fluoro.doselog import DoseLog, DoseLogError, ProcedureInfo, postgres, verify
from fluoro.errors import InputError

T0 = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)
KEY = "c" * 32
UID = "2.25.1234567890"


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


def _superuser(url: str):
    import psycopg

    return psycopg.connect(url, autocommit=True)


def _write_sequence(log: DoseLog, uid: str = UID):
    """One procedure with pulses, gaps (``x``), two events, alarms, an ack, a note and meter
    rows; returns the accumulator's final totals and the anchor."""
    log.begin_procedure(ProcedureInfo(KEY, "lumbar facet injection", operator="Dr Okafor",
                                      room="OR 3", calibration_factor=1.08, procedure_uid=uid))
    acc = log_frames(log, make_frames("1110111x11x1") + make_frames("11x11", seq0=20))
    log.log_alarm("kar-first", "kar_mgy", 0.05, 0.061, 0.4, "Ka,r passed 0.05 mGy")
    log.log_ack("kar-first", "RSO Lindqvist")
    log.log_note("contrast run", author="Dr Okafor")
    log.log_meter_reading(MeterReading(1_000, 0.001, None, None, "PTW DIAMENTOR"))
    log.log_meter_event(MeterEvent("disconnected", "cable", 2_000))
    log.log_meter_event(MeterEvent("connected", "", 3_000_000_000))
    log.log_meter_reading(MeterReading(4_000, 0.004, 0.1, 1.5, "PTW DIAMENTOR"))
    totals = acc.totals()
    return totals, log.end_procedure(totals)


def _ledger(target) -> list[tuple]:
    sql = "SELECT id, kind, payload, prev_hash, hash FROM ledger ORDER BY id"
    if isinstance(target, str):
        with _superuser(target) as conn:
            return [tuple(r) for r in conn.execute(sql).fetchall()]
    with sqlite3.connect(target) as conn:
        return conn.execute(sql).fetchall()


def _read_all(target) -> dict:
    with DoseLog.open_readonly(target) as log:
        [summary] = log.procedures()
        uid = summary.procedure_uid
        return {"summary": summary, "pulses": log.pulses(uid), "gaps": log.gaps(uid),
                "events": log.events(uid), "alarms": log.alarms(uid), "notes": log.notes(uid),
                "meter": log.meter_record(uid), "history": log.patient_history(
                    KEY, now=T0 + timedelta(days=1))}


def test_round_trip_equals_the_sqlite_backend(pg_url, tmp_path):
    sqlite_path = tmp_path / "dose.db"
    with DoseLog.create_or_open(sqlite_path, clock=Clock()) as log:
        _write_sequence(log)
    with DoseLog.create_or_open(pg_url, clock=Clock()) as log:
        assert log.path == pg_url
        totals, anchor = _write_sequence(log)
        assert log.head() == anchor
    pg, lite = _read_all(pg_url), _read_all(sqlite_path)
    summary = pg["summary"]
    # the anchors differ only because each log has its own random log_id in row 1
    pg["summary"] = replace(summary, anchor=None)
    lite["summary"] = replace(lite["summary"], anchor=None)
    assert pg == lite
    assert summary.complete and summary.pulses == 13 and summary.missing_pulses == 11
    assert summary.events == len(pg["events"]) == 2 and summary.alarms == 1
    assert summary.anchor.startswith(f"{anchor.rows - 1}:")  # the head before the end row
    assert (summary.kar_mgy, summary.dap_gycm2) == (totals.kar_mgy, totals.dap_gycm2)
    assert summary.reported == totals
    assert [a.acks[0].user for a in pg["alarms"]] == ["RSO Lindqvist"]
    assert pg["meter"].readings == 2 and pg["meter"].gaps == 1
    assert len(pg["gaps"]) == 4 and pg["notes"][0].text == "contrast run"
    assert pg["history"].procedures == 1
    # row 1 (random log_id, engine) and hence the chain differ; every other payload is the same
    payloads = [[(r[0], r[1], r[2]) for r in _ledger(t)[1:] if r[1] != "procedure_end"]
                for t in (pg_url, sqlite_path)]
    assert payloads[0] == payloads[1] and len(payloads[0]) == 27


def test_the_same_records_have_the_same_hashes_in_both_backends(pg_url, tmp_path, monkeypatch):
    fixed = uuid.UUID(int=42)
    monkeypatch.setattr(postgres, "engine_data", lambda conn: {"sqlite": sqlite3.sqlite_version})
    with monkeypatch.context() as m:
        m.setattr(uuid, "uuid4", lambda: fixed)
        lite = DoseLog.create_or_open(tmp_path / "dose.db", clock=Clock())
        pg = DoseLog.create_or_open(pg_url, clock=Clock())
    with lite, pg:
        _write_sequence(lite)
        _write_sequence(pg)
    rows_pg, rows_lite = _ledger(pg_url), _ledger(tmp_path / "dose.db")
    assert len(rows_pg) == 29
    assert rows_pg == rows_lite  # ids, kinds, canonical payloads, prev_hash and hash


def test_log_created_row_names_the_engine(pg_url):
    DoseLog.create_or_open(pg_url).close()
    assert '"postgresql":' in _ledger(pg_url)[0][2]


def test_verify_then_tamper_update_and_delete(pg_url):
    with DoseLog.create_or_open(pg_url, clock=Clock()) as log:
        _, anchor = _write_sequence(log)
        assert log.verify(anchor).ok
    report = verify(pg_url, anchor)
    assert report.ok and report.rows_checked == anchor.rows
    import psycopg

    with _superuser(pg_url) as conn:
        with pytest.raises(psycopg.Error, match="append-only"):
            conn.execute("UPDATE ledger SET kar_mgy = 0 WHERE kind = 'pulse'")
        with pytest.raises(psycopg.Error, match="append-only"):
            conn.execute("DELETE FROM ledger WHERE id = 5")
        pulse_id = conn.execute("SELECT min(id) FROM ledger WHERE kind = 'pulse'").fetchone()[0]
        conn.execute("ALTER TABLE ledger DISABLE TRIGGER ledger_no_update")
        conn.execute("UPDATE ledger SET kar_mgy = kar_mgy / 2 WHERE id = %s", (pulse_id,))
    report = verify(pg_url)
    assert not report.ok and report.first_bad_row == pulse_id
    assert f"row {pulse_id} (pulse seq 0 of procedure {UID})" in report.problem
    assert "kar_mgy" in report.problem
    with _superuser(pg_url) as conn:
        conn.execute("UPDATE ledger SET kar_mgy = kar_mgy * 2 WHERE id = %s", (pulse_id,))
        assert verify(pg_url).ok
        conn.execute("ALTER TABLE ledger DISABLE TRIGGER ledger_no_delete")
        conn.execute("DELETE FROM ledger WHERE id = %s", (pulse_id + 2,))
    report = verify(pg_url)
    assert not report.ok and report.first_bad_row == pulse_id + 2
    assert f"row {pulse_id + 2} missing" in report.problem


def test_two_writers_keep_the_chain_whole(pg_url):
    logs = [DoseLog.create_or_open(pg_url) for _ in range(2)]
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def room(log: DoseLog, n: int) -> None:
        try:
            log.begin_procedure(ProcedureInfo(KEY, f"room {n}", room=f"OR {n}"))
            start.wait()
            acc = log_frames(log, make_frames("1" * 60))
            log.end_procedure(acc.totals())
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=room, args=(log, n)) for n, log in enumerate(logs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    for log in logs:
        log.close()
    assert not errors
    report = verify(pg_url)
    assert report.ok, report.problem
    rows = _ledger(pg_url)
    assert [r[0] for r in rows] == list(range(1, len(rows) + 1))
    assert len(rows) == 1 + 2 * (1 + 1 + 60 + 1)
    with DoseLog.open_readonly(pg_url) as log:
        assert sorted(p.pulses for p in log.procedures()) == [60, 60]


def test_readonly_refuses_writes(pg_url):
    DoseLog.create_or_open(pg_url).close()
    with DoseLog.open_readonly(pg_url) as log:
        with pytest.raises(DoseLogError, match="read-only"):
            log.log_note("x")
        assert log.head().rows == 1


def test_append_is_committed_before_it_returns(pg_url):
    with DoseLog.create_or_open(pg_url) as log, DoseLog.open_readonly(pg_url) as reader:
        log.log_note("first")
        assert [n.text for n in reader.notes()] == ["first"]


def _one_line_error(target, fn=DoseLog.create_or_open) -> str:
    with pytest.raises(InputError) as info:
        fn(target)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_unreachable_port(pg_server):
    url = f"postgresql://postgres:s3cret@127.0.0.1:{_closed_port()}/fluoro"
    message = _one_line_error(url)
    assert message.startswith(f"postgresql://postgres@127.0.0.1:{_closed_port.port}/fluoro:")
    assert "s3cret" not in message and "cannot open" in message
    message = _one_line_error(url, verify)
    assert "s3cret" not in message


def _closed_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        _closed_port.port = sock.getsockname()[1]
    return _closed_port.port


def test_bad_url_and_missing_database(pg_server):
    message = _one_line_error("postgresql://postgres@127.0.0.1:notaport/x")
    assert message.startswith("postgresql://postgres@127.0.0.1:notaport/x")
    missing = pg_server.url("no_such_database")
    message = _one_line_error(missing, DoseLog.open_readonly)
    assert message.startswith(missing) and "no_such_database" in message


def test_a_database_that_is_not_a_fluoro_log(pg_url):
    with _superuser(pg_url) as conn:
        conn.execute("CREATE TABLE patients (id int)")
    assert "not a fluoro dose log" in _one_line_error(pg_url)
    assert "not a fluoro dose log" in _one_line_error(pg_url, DoseLog.open_readonly)
    assert "not a fluoro dose log" in _one_line_error(pg_url, verify)
    with _superuser(pg_url) as conn:
        conn.execute("CREATE TABLE meta (key text, value text)")
        conn.execute("INSERT INTO meta VALUES ('application', 'other')")
    assert "meta application is 'other'" in _one_line_error(pg_url)


def test_an_empty_database_is_not_a_log_to_read(pg_url):
    assert "no fluoro meta table" in _one_line_error(pg_url, DoseLog.open_readonly)


def test_imported_report_and_a_url_passed_as_path(pg_url):
    from pathlib import Path

    from fluoro.rdsr.export import live_report

    with DoseLog.create_or_open(pg_url, clock=Clock()) as log:
        _write_sequence(log)
        report = live_report(log, log.procedure(UID))
        head = log.import_procedure(ProcedureInfo(KEY, "imported", procedure_uid="2.25.99"), report)
        with pytest.raises(InputError, match="already in the dose log"):
            log.import_procedure(ProcedureInfo(KEY, "imported", procedure_uid="2.25.99"), report)
    with DoseLog.open_readonly(Path(pg_url)) as log:  # a command-line option typed Path
        assert [p.source for p in log.procedures()] == ["live", "rdsr-import"]
        assert log.imported("2.25.99") is not None and log.head() == head
    assert verify(Path(pg_url), head).ok
