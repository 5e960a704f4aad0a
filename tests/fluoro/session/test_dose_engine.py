"""The dose engine with a real SQLite dose log: alarms, acknowledgements, log failures."""

import dataclasses

import pytest
from conftest import make_frames

from fluoro.dose.alarms import AlarmConfig, AlarmLevel
from fluoro.dose.model import pulse_kar_mgy
from fluoro.dose.siteconfig import load_site_config
from fluoro.doselog import DoseLog, FallbackJournal, ProcedureInfo, verify
from fluoro.session.engine import DoseEngine

KEY = "0123456789abcdef0123456789abcdef"


def _site(**changes):
    return dataclasses.replace(load_site_config(None), **changes)


def _engine(tmp_path, site=None):
    log = DoseLog.create_or_open(tmp_path / "dose.sqlite")
    engine = DoseEngine(site or _site(), log, ProcedureInfo(KEY, procedure_name="L4-5 TFESI"))
    return engine, log


def test_every_pulse_reaches_the_log_and_the_procedure_ends_complete(tmp_path):
    engine, log = _engine(tmp_path)
    frames = make_frames("1111101111xx11")
    for frame in frames:
        engine.add(frame)
    head = engine.close()
    (summary,) = log.procedures()
    assert summary.complete and head is not None
    assert summary.pulses == 11 and summary.missing_pulses == 2 and summary.events == 2
    assert summary.kar_mgy == pytest.approx(engine.totals().kar_mgy, rel=1e-12)
    assert [p.seq for p in log.pulses(summary.procedure_uid)] == [
        f.seq for f in frames if f.beam_on]
    log.close()
    assert verify(tmp_path / "dose.sqlite").ok


def test_alarms_are_raised_once_logged_and_acknowledged_by_name(tmp_path):
    per_pulse = pulse_kar_mgy(make_frames("1")[0].exposure)
    levels = (AlarmLevel("notification", "kar_mgy", first=2.5 * per_pulse, step=2 * per_pulse),)
    engine, log = _engine(tmp_path, _site(alarms=AlarmConfig(levels=levels)))
    for frame in make_frames("1" * 6):
        engine.add(frame)
    raised = engine.take_new_alarms()
    assert [round(a.threshold / per_pulse, 6) for a in raised] == [2.5, 4.5]
    assert engine.take_new_alarms() == []  # each announced once
    acks = engine.acknowledge("Dr. Rivera")
    assert {a.key for a in acks} == {a.key for a in raised}
    engine.close()
    uid = engine.procedure_uid
    logged = log.alarms(uid)
    assert [a.key for a in logged] == [a.key for a in raised]
    assert all(a.acks and a.acks[0].user == "Dr. Rivera" for a in logged)


def test_measured_dose_far_from_the_model_warns_once(tmp_path):
    engine, log = _engine(tmp_path)
    frames = make_frames("111")
    model = pulse_kar_mgy(frames[0].exposure)
    for frame in frames:
        exposure = dataclasses.replace(frame.exposure, kar_mgy=1.6 * model)
        engine.add(dataclasses.replace(frame, exposure=exposure))
    warnings = [a for a in engine.take_new_alarms() if a.kind == "calibration"]
    assert len(warnings) == 1 and warnings[0].quantity == "kar_mgy"
    assert "1.60×" in warnings[0].message and "1020.32(k)" in warnings[0].citation
    assert engine.totals().kar_mgy == pytest.approx(3 * 1.6 * model)  # measured value wins
    engine.close()
    assert [a.key for a in log.alarms(engine.procedure_uid)] == [warnings[0].key]


def test_a_full_disk_mid_procedure_keeps_totals_and_journals_the_rest(tmp_path):
    engine, log = _engine(tmp_path)
    frames = make_frames("1" * 400)
    for frame in frames[:10]:
        engine.add(frame)
    # a failing write: SQLite may not grow the file any further (as on a full disk)
    pages = log._conn.execute("PRAGMA page_count").fetchone()[0]
    log._conn.execute(f"PRAGMA max_page_count = {pages}")
    for frame in frames[10:]:
        engine.add(frame)
    totals = engine.totals()
    assert totals.pulses == 400, "accounting must go on in memory"
    assert totals.kar_mgy == pytest.approx(400 * pulse_kar_mgy(frames[0].exposure))
    assert totals.log_error and "fallback.jsonl" in totals.log_error
    assert engine.close() is None  # no end row: the procedure stays incomplete
    (summary,) = log.procedures()
    assert not summary.complete
    in_db = {p.seq for p in log.pulses(summary.procedure_uid)}
    journal = FallbackJournal.read(tmp_path / "dose.sqlite.fallback.jsonl")
    in_journal = {e.record.seq for e in journal if e.kind == "pulse"}
    assert in_db | in_journal == {f.seq for f in frames}, "every pulse is in the log or journal"
    assert not in_db & in_journal
    log.close()
    assert verify(tmp_path / "dose.sqlite").ok


def test_a_removed_log_file_is_noticed_not_written_into_the_void(tmp_path):
    engine, log = _engine(tmp_path)
    frames = make_frames("1" * 20)
    for frame in frames[:5]:
        engine.add(frame)
    for suffix in ("", "-wal", "-shm"):
        (tmp_path / f"dose.sqlite{suffix}").unlink(missing_ok=True)
    for frame in frames[5:]:
        engine.add(frame)
    assert "removed" in engine.totals().log_error
    journal = FallbackJournal.read(tmp_path / "dose.sqlite.fallback.jsonl")
    assert [e.record.seq for e in journal] == [f.seq for f in frames[5:]]
    engine.close()
    log.close()
