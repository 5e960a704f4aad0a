"""The fallback journal written when the dose log database fails."""

import json
import stat
from dataclasses import fields

from conftest import make_exposure

from fluoro.dose.accumulator import DoseGap, PulseDose
from fluoro.doselog import FallbackJournal


def _records():
    measured = make_exposure(kar_mgy=0.0123, dap_gycm2=0.0041, pulse_rate_hz=None)
    return [
        PulseDose(10, 0.6667, 2, 0.0123, 0.0041, 0.011, 0.0039, True, 0.0667, measured),
        DoseGap(11, 3, 0.8667, 2, 0.0369, 0.0123, 0.2),
        PulseDose(14, 0.9333, 2, 0.011, 0.0039, 0.011, 0.0039, False, 1 / 15, make_exposure()),
    ]


def test_every_field_of_every_record_comes_back(tmp_path):
    log_path = tmp_path / "dose.db"
    with FallbackJournal.beside(log_path) as journal:
        for record in _records():
            journal.append(record, procedure_uid="2.25.1")
        journal.write("alarm", {"key": "kar-1", "value": 0.05}, procedure_uid="2.25.1")
    path = tmp_path / "dose.db.fallback.jsonl"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    entries = FallbackJournal.read(path)
    assert [e.record for e in entries[:3]] == _records()  # all fields, exposure included
    assert entries[0].record.exposure.kar_mgy == 0.0123
    assert [e.kind for e in entries] == ["pulse", "gap", "pulse", "alarm"]
    assert [e.n for e in entries] == [1, 2, 3, 4]
    assert {e.procedure_uid for e in entries} == {"2.25.1"}
    assert len(path.read_text().splitlines()) == 4
    assert {f.name for f in fields(PulseDose)} <= set(
        json.loads(path.read_text().splitlines()[0])["data"])


def test_lines_go_on_numbering_after_a_restart_and_a_torn_line_is_cut(tmp_path):
    path = tmp_path / "j.jsonl"
    with FallbackJournal(path) as journal:
        journal.append(_records()[0])
    with open(path, "a") as file:
        file.write('{"n":2,"kind":"pulse","da')  # the process died mid-line
    assert [e.n for e in FallbackJournal.read(path)] == [1]  # a reader skips the torn tail
    with FallbackJournal(path) as journal:
        journal.append(_records()[1])
        journal.append(_records()[2])
    entries = FallbackJournal.read(path)
    assert [e.n for e in entries] == [1, 2, 3]
    assert [e.record for e in entries] == _records()
