"""Tamper evidence and crash safety of the dose log, checked by really editing and killing."""

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import REPO, log_frames, make_frames

from fluoro.doselog import DoseLog, Head, ProcedureInfo, verify
from fluoro.doselog.ledger import canonical_json, chain_hash
from fluoro.doselog.pseudonym import load_or_create_site_salt, patient_key

KEY = "0123456789abcdef" * 2


def _logged(path: Path, pattern: str = "1111101111") -> tuple[str, Head]:
    with DoseLog.create_or_open(path) as log:
        uid = log.begin_procedure(ProcedureInfo(KEY, "vertebroplasty"))
        acc = log_frames(log, make_frames(pattern))
        log.log_alarm("kar-1", "kar_mgy", 0.01, 0.02, 0.3, "Ka,r passed 0.01 mGy")
        log.log_ack("kar-1", "RSO")
        head = log.end_procedure(acc.totals())
    return uid, head


def _sql(path: Path, script: str) -> None:
    """Edit the file as an outsider would: the sqlite3 command-line tool when present."""
    if shutil.which("sqlite3"):
        subprocess.run(["sqlite3", str(path)], input=script, text=True, check=True,
                       capture_output=True)
    else:
        conn = sqlite3.connect(path)
        conn.executescript(script)
        conn.close()


def _row_id(path: Path, where: str) -> int:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(f"SELECT id FROM ledger WHERE {where}").fetchone()[0]
    finally:
        conn.close()


def test_an_untouched_log_verifies(tmp_path):
    path = tmp_path / "dose.db"
    _, head = _logged(path)
    report = verify(path)
    assert report.ok and report.first_bad_row is None and report.problem is None
    assert report.rows_checked == head.rows and report.head == head
    assert verify(path, anchor=head).ok
    assert str(report).startswith("dose log OK")


def test_the_triggers_refuse_changes_made_by_mistake(tmp_path):
    path = tmp_path / "dose.db"
    _logged(path)
    conn = sqlite3.connect(path)
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute("UPDATE ledger SET kar_mgy = 0 WHERE kind = 'pulse'")
    with pytest.raises(sqlite3.IntegrityError, match="append-only"):
        conn.execute("DELETE FROM ledger WHERE kind = 'pulse'")
    conn.close()
    assert verify(path).ok


@pytest.mark.parametrize("column", ["kar_mgy", "payload"])
def test_an_altered_row_is_named(tmp_path, column):
    path = tmp_path / "dose.db"
    uid, _ = _logged(path)
    row = _row_id(path, "kind = 'pulse' AND seq = 7")
    change = ("kar_mgy = kar_mgy / 2" if column == "kar_mgy"
              else "payload = replace(payload, '\"kar_mgy\":', '\"kar_mgy\":0.000')")
    _sql(path, f"DROP TRIGGER ledger_no_update; UPDATE ledger SET {change} WHERE id = {row};")
    report = verify(path)
    assert not report.ok and report.first_bad_row == row and report.rows_checked == row - 1
    assert report.problem.startswith(
        f"row {row} (pulse seq 7 of procedure {uid}): content does not match its hash")


def test_a_row_rehashed_by_the_tamperer_still_breaks_the_chain(tmp_path):
    path = tmp_path / "dose.db"
    _logged(path)
    row = _row_id(path, "kind = 'pulse' AND seq = 2")
    conn = sqlite3.connect(path)
    prev_hash, payload = conn.execute("SELECT prev_hash, payload FROM ledger WHERE id = ?",
                                      (row,)).fetchone()
    content = json.loads(payload)
    content["data"]["kar_mgy"] /= 10
    forged = canonical_json(content)
    conn.execute("DROP TRIGGER ledger_no_update")
    conn.execute("UPDATE ledger SET payload = ?, kar_mgy = ?, hash = ? WHERE id = ?",
                 (forged, content["data"]["kar_mgy"], chain_hash(prev_hash, forged), row))
    conn.commit()
    conn.close()
    report = verify(path)
    assert not report.ok and report.first_bad_row == row + 1
    assert f"does not chain to row {row}" in report.problem


def test_a_deleted_row_is_named_missing(tmp_path):
    path = tmp_path / "dose.db"
    _logged(path)
    row = _row_id(path, "kind = 'pulse' AND seq = 4")
    _sql(path, f"DROP TRIGGER ledger_no_delete; DELETE FROM ledger WHERE id = {row};")
    report = verify(path)
    assert not report.ok and report.first_bad_row == row
    assert report.problem.startswith(f"row {row} missing")


def test_deleting_the_last_rows_needs_the_anchor_to_be_seen(tmp_path):
    path = tmp_path / "dose.db"
    _, head = _logged(path)
    _sql(path, f"DROP TRIGGER ledger_no_delete; DELETE FROM ledger WHERE id > {head.rows - 3};")
    assert verify(path).ok  # the documented limit of a hash chain alone
    report = verify(path, anchor=Head.parse(str(head)))
    assert not report.ok and report.first_bad_row == head.rows - 2
    assert f"rows {head.rows - 2}–{head.rows} missing" in report.problem


_CHILD = """
import sys
from fluoro.dose.accumulator import PulseDose
from fluoro.doselog import DoseLog, ProcedureInfo
from fluoro.frame import Exposure

log = DoseLog.create_or_open(sys.argv[1])
print(log.begin_procedure(ProcedureInfo(None, "killed mid-procedure")), flush=True)
exposure = Exposure(True, 80.0, 8.0, 8.0, 1000.0, 470.0, 300.0, 0.1, pulse_rate_hz=30.0)
seq = 0
while True:
    log.append(PulseDose(seq, seq / 30, 1 + seq // 50, 0.01, 0.003, 0.01, 0.003, False,
                         1 / 30, exposure))
    print(seq, flush=True)  # only after append returned: committed
    seq += 1
"""


def test_a_process_killed_mid_procedure_loses_no_committed_pulse(tmp_path):
    path = tmp_path / "dose.db"
    child = subprocess.Popen([sys.executable, "-c", _CHILD, str(path)], cwd=REPO,
                             stdout=subprocess.PIPE, text=True)
    try:
        uid = child.stdout.readline().strip()
        printed = []
        deadline = time.monotonic() + 30
        while len(printed) < 300 and time.monotonic() < deadline:
            printed.append(int(child.stdout.readline()))
        os.kill(child.pid, signal.SIGKILL)
        printed += [int(line) for line in child.stdout.read().split()]
    finally:
        child.kill()
        child.wait()
    assert child.returncode == -signal.SIGKILL and len(printed) >= 300

    report = verify(path)
    assert report.ok, report.problem
    with DoseLog.open_readonly(path) as log:
        logged = [p.seq for p in log.pulses(uid)]
        [summary] = log.procedures()
    assert set(printed) <= set(logged)
    assert logged == list(range(len(logged)))  # nothing half-written, nothing out of order
    assert not summary.complete and summary.pulses == len(logged)
    assert summary.events == logged[-1] // 50 + 1


def test_the_patient_id_never_reaches_the_file(tmp_path):
    patient_id = "MRN-4711-0815"
    salt = load_or_create_site_salt(tmp_path / "site.key")
    key = patient_key(patient_id, salt)
    path = tmp_path / "dose.db"
    log = DoseLog.create_or_open(path)
    log.begin_procedure(ProcedureInfo(key, "lumbar facet injection"))
    acc = log_frames(log, make_frames("1111"))

    def contents() -> bytes:
        return b"".join(Path(f"{path}{suffix}").read_bytes() for suffix in ("", "-wal", "-shm")
                        if Path(f"{path}{suffix}").exists())

    def check(stage: str) -> None:
        data = contents()
        assert key.encode() in data, stage  # we are looking in the right bytes
        for needle in (patient_id, patient_id.lower(), "4711-0815", "47110815"):
            for encoded in (needle.encode("utf-8"), needle.encode("utf-16-le")):
                assert encoded not in data, (stage, needle)

    check("while open")
    log.end_procedure(acc.totals())
    log.close()
    check("after close")
