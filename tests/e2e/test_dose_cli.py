"""The dose log through the command line: a killed process, a tampered file, bad log files."""

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
from conftest import REPO, assert_one_error_line, run_fluoro

from drivers.sim import open_sim
from fluoro.doselog import DoseLog, verify
from fluoro.frame import EndOfStream

FAST_SIM = "sim://spine?size=256&realtime=0"


def _logged_procedure(tmp_path: Path, frames: int = 60, *extra: str) -> Path:
    db = tmp_path / "dose.sqlite"
    result = run_fluoro("run", "--headless", "--frames", str(frames), "--source", FAST_SIM,
                        "--dose-log", str(db), "--procedure", "L5-S1 TFESI", *extra)
    assert result.returncode == 0, result.stderr
    return db


def _beam_on_seqs(url: str, count: int) -> list[int]:
    """The seq numbers of the first ``count`` pulses the (deterministic) simulator emits."""
    seqs: list[int] = []
    with open_sim(url) as sim:
        while len(seqs) < count:
            try:
                frame = sim.read(1.0)
            except EndOfStream:
                break
            if frame is not None and frame.beam_on:
                seqs.append(frame.seq)
    return seqs


@pytest.mark.slow
def test_sigkill_mid_procedure_leaves_a_log_that_verifies_with_every_committed_pulse(tmp_path):
    db = tmp_path / "killed.sqlite"
    url = "sim://spine?size=256&fps=30"
    child = subprocess.Popen(
        [sys.executable, "-m", "fluoro", "run", "--headless", "--seconds", "30", "--source", url,
         "--dose-log", str(db), "--patient", "MRN-0042", "--procedure", "L4-5 TFESI"],
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=dict(os.environ))
    try:
        deadline = time.monotonic() + 90
        pulses = 0
        while pulses < 40:
            assert time.monotonic() < deadline, "the run never logged 40 pulses"
            assert child.poll() is None, "fluoro run ended before it was killed"
            time.sleep(0.2)
            if db.exists():
                with DoseLog.open_readonly(db) as log:
                    procs = log.procedures()
                    pulses = procs[0].pulses if procs else 0
        child.send_signal(signal.SIGKILL)
        child.wait(10)
    finally:
        if child.poll() is None:
            child.kill()
    report = verify(db)
    assert report.ok, report.problem
    with DoseLog.open_readonly(db) as log:
        (proc,) = log.procedures()
        logged = [p.seq for p in log.pulses(proc.procedure_uid)]
    assert not proc.complete, "a killed procedure has no end row"
    assert proc.missing_pulses == 0 and len(logged) >= 40
    # exactly the pulses the source emitted, in order, up to the last one committed
    assert logged == _beam_on_seqs(url + "&realtime=0", len(logged))
    # the command line agrees, and reports the procedure as incomplete
    result = run_fluoro("dose", "verify", "--db", str(db))
    assert result.returncode == 0 and "OK" in result.stdout
    table = run_fluoro("dose", "report", "--db", str(db)).stdout
    assert "INCOMPLETE" in table


def _tamper(db: Path, sql: str) -> None:
    """Change the file as an outsider would, with the sqlite3 command-line tool."""
    tool = shutil.which("sqlite3")
    if tool is None:
        pytest.skip("the sqlite3 command-line tool is not installed (.ci/run installs it)")
    drop = "DROP TRIGGER IF EXISTS ledger_no_update; DROP TRIGGER IF EXISTS ledger_no_delete;"
    subprocess.run([tool, str(db), drop + sql], check=True, capture_output=True, timeout=30)


@pytest.mark.parametrize(
    ("sql", "words"),
    [
        ("UPDATE ledger SET kar_mgy = kar_mgy * 0.5 WHERE id = 20;", ["row 20"]),
        ("UPDATE ledger SET payload = replace(payload, '\"kvp\":', '\"kvp\": ') WHERE id = 25;",
         ["row 25"]),
        ("DELETE FROM ledger WHERE id = 30;", ["row 30", "missing"]),
    ],
    ids=["changed-value", "changed-payload", "deleted-row"],
)
def test_tampering_is_detected_and_the_row_named(tmp_path, sql, words):
    db = _logged_procedure(tmp_path)
    assert run_fluoro("dose", "verify", "--db", str(db)).returncode == 0
    _tamper(db, sql)
    result = run_fluoro("dose", "verify", "--db", str(db))
    assert result.returncode == 1, result.stdout + result.stderr
    assert "FAILED" in result.stdout
    for word in words:
        assert word in result.stdout, result.stdout


def test_report_json_has_the_procedure_totals(tmp_path):
    db = _logged_procedure(tmp_path, 60, "--patient", "MRN-7", "--operator", "Dr. Okafor")
    result = run_fluoro("dose", "report", "--db", str(db), "--json")
    assert result.returncode == 0, result.stderr
    (proc,) = json.loads(result.stdout)["procedures"]
    assert proc["procedure_name"] == "L5-S1 TFESI" and proc["operator"] == "Dr. Okafor"
    assert proc["complete"] and proc["pulses"] > 50 and proc["events"] >= 1
    assert proc["kar_mgy"] > 0 and proc["dap_gycm2"] > 0 and proc["fluoro_time_s"] > 0
    assert "MRN-7" not in db.read_bytes().decode("latin-1")


def test_second_procedure_of_a_patient_shows_the_history(tmp_path):
    db = _logged_procedure(tmp_path, 30, "--patient", "MRN-99")
    result = run_fluoro("run", "--headless", "--frames", "10", "--source", FAST_SIM,
                        "--dose-log", str(db), "--patient", "MRN-99")
    assert result.returncode == 0, result.stderr
    assert "1 earlier procedures in the last 12 weeks" in result.stderr


def test_a_file_that_is_not_a_dose_log_is_refused_at_start(tmp_path):
    other = tmp_path / "other.sqlite"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE patients (id TEXT)")
    text = tmp_path / "notes.txt"
    text.write_text("not a database at all\n" * 100)
    for path in (other, text):
        result = run_fluoro("run", "--headless", "--frames", "5", "--source", FAST_SIM,
                            "--dose-log", str(path))
        assert_one_error_line(result, str(path))
        assert_one_error_line(run_fluoro("dose", "verify", "--db", str(path)), str(path))


def test_an_unwritable_folder_is_refused_at_start(tmp_path):
    target = "/sys/fluoro-dose.sqlite"  # refuses new files even to root
    result = run_fluoro("run", "--headless", "--frames", "5", "--source", FAST_SIM,
                        "--dose-log", target)
    assert_one_error_line(result, target)


def test_dose_commands_name_a_missing_log(tmp_path):
    missing = tmp_path / "nowhere.sqlite"
    assert_one_error_line(run_fluoro("dose", "report", "--db", str(missing)), str(missing))
    assert_one_error_line(run_fluoro("dose", "verify", "--db", str(missing), "--anchor", "x"),
                          "--anchor")


def test_alarms_are_announced_live_and_logged(tmp_path):
    site = tmp_path / "room3.toml"
    site.write_text('[site]\nroom = "Room 3"\n\n[alarms.ncrp_notification]\n'
                    "kar_first_mgy = 0.5\nkar_step_mgy = 0.25\n"
                    "dap_first_gycm2 = 0.05\ndap_step_gycm2 = 0.05\n"
                    "fluoro_time_first_min = 0.02\nfluoro_time_step_min = 0.02\n")
    db = tmp_path / "dose.sqlite"
    result = run_fluoro("run", "--headless", "--frames", "60", "--source", FAST_SIM,
                        "--dose-log", str(db), "--site-config", str(site))
    assert result.returncode == 0, result.stderr
    announced = [line for line in result.stderr.splitlines() if line.startswith("ALARM")]
    assert any("Ka,r 0.5 mGy" in line for line in announced), announced
    assert len(announced) == len(set(announced)), "an alarm was announced twice"
    report = json.loads(run_fluoro("dose", "report", "--db", str(db), "--json").stdout)
    (proc,) = report["procedures"]
    assert proc["room"] == "Room 3"
    assert len(proc["alarms"]) == len(announced) >= 3
    assert f"{len(announced)} raised" in result.stdout


def test_a_bad_site_config_is_one_line(tmp_path):
    site = tmp_path / "bad.toml"
    site.write_text("[alarms.ncrp_notification]\nkar_first_mgy = -3\n")
    result = run_fluoro("run", "--headless", "--frames", "5", "--source", FAST_SIM,
                        "--site-config", str(site))
    assert_one_error_line(result, str(site), "kar_first_mgy")


def test_an_alarm_is_acknowledged_at_the_console_by_name(tmp_path):
    site = tmp_path / "low.toml"
    site.write_text("[alarms.ncrp_notification]\nkar_first_mgy = 0.3\nkar_step_mgy = 1000\n")
    db = tmp_path / "dose.sqlite"
    child = subprocess.Popen(
        [sys.executable, "-m", "fluoro", "run", "--headless", "--seconds", "4", "--source",
         "sim://spine?size=256&fps=30", "--dose-log", str(db), "--site-config", str(site)],
        cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, env=dict(os.environ))
    try:
        deadline = time.monotonic() + 60
        line = ""
        while "ALARM" not in line:
            assert time.monotonic() < deadline and child.poll() is None, "no alarm was shown"
            line = child.stderr.readline()
        child.stdin.write("ack Dr. Lee\n")
        child.stdin.flush()
        _, err = child.communicate(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
    assert child.returncode == 0, err
    assert "ACKNOWLEDGED by Dr. Lee: 1 alarm(s)" in err
    report = json.loads(run_fluoro("dose", "report", "--db", str(db), "--json").stdout)
    (alarm,) = report["procedures"][0]["alarms"]
    assert [a["user"] for a in alarm["acknowledgements"]] == ["Dr. Lee"]


def test_a_patient_run_creates_the_site_key_folder(tmp_path, monkeypatch):
    data = tmp_path / "fresh" / "fluoro"  # does not exist yet
    monkeypatch.setenv("FLUORO_DATA_DIR", str(data))
    result = run_fluoro("run", "--headless", "--frames", "5", "--source", FAST_SIM,
                        "--dose-log", str(tmp_path / "elsewhere.sqlite"), "--patient", "MRN-5")
    assert result.returncode == 0, result.stderr
    assert (data / "site.key").stat().st_mode & 0o077 == 0


def test_review_window_renders_a_log_offscreen(tmp_path):
    import cv2

    db = _logged_procedure(tmp_path, 30)
    png = tmp_path / "review.png"
    result = run_fluoro("review", "--db", str(db), "--screenshot", str(png))
    assert result.returncode == 0, result.stderr
    image = cv2.imread(str(png))
    assert image is not None and image.std() > 10
    assert_one_error_line(run_fluoro("review", "--db", str(tmp_path / "none.sqlite")),
                          "none.sqlite")
