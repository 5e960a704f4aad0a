"""``fluoro dose report`` through the command line: HTML rendered in headless Chromium, CSV,
JSON, filters and bad input, on the synthetic clinic log of
``tests/fluoro/report/test_report_data.py``."""

from __future__ import annotations

import csv
import importlib.util
import json
import re
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from conftest import REPO, assert_one_error_line, run_fluoro

from fluoro.cli.main import main
from fluoro.doselog import DoseLog, ProcedureInfo
from fluoro.report.csv import COLUMNS

_spec = importlib.util.spec_from_file_location(
    "report_clinic", REPO / "tests" / "fluoro" / "report" / "test_report_data.py")
assert _spec is not None and _spec.loader is not None
clinic_module = sys.modules.setdefault("report_clinic", importlib.util.module_from_spec(_spec))
_spec.loader.exec_module(clinic_module)

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update",
                  "--disable-sync"]


@pytest.fixture(scope="module")
def clinic(tmp_path_factory) -> Path:
    return clinic_module.build_clinic_log(tmp_path_factory.mktemp("clinic") / "dose.sqlite")


def _main(capsys, *args: str) -> tuple[int, str, str]:
    """``fluoro ARGS`` in this process (cheap): exit status, stdout, stderr."""
    try:
        code = main(list(args))
    except SystemExit as exc:  # argparse
        code = exc.code if isinstance(exc.code, int) else 2
    out = capsys.readouterr()
    return code, out.out, out.err


def _chromium(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (apt-get install chromium; .ci/run installs it)")
    profile = tmp_path / f"chromium-profile-{len(list(tmp_path.iterdir()))}"
    profile.mkdir()
    result = subprocess.run([CHROMIUM, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    return result


def test_html_report_is_one_self_contained_file_that_chromium_draws(clinic, tmp_path):
    page = tmp_path / "report.html"
    result = run_fluoro("dose", "report", "--db", str(clinic), "--format", "html",
                        "--out", str(page))
    assert result.returncode == 0, result.stderr
    assert result.stdout == "" and "27 procedures" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.html"]  # one file
    html = page.read_text(encoding="utf-8")
    assert "<script" not in html.lower() and "@import" not in html and "url(" not in html
    assert not re.search(r'(src|href)="(?!#)', html), "no external resources or links"
    assert set(re.findall(r"https?://[^\s\"'<>]+", html)) == {"http://www.w3.org/2000/svg"}

    dom = _chromium(tmp_path, "--dump-dom", page.as_uri()).stdout
    charts = re.findall(r'<svg class="chart"', dom)
    assert len(charts) == 1 + 27  # the DAP chart and one time line per procedure
    lines = re.findall(r'<path class="line" d="M([^"]+)"', dom)
    assert len(lines) == 27  # the imported procedure's events give it a curve too
    assert all(len(d.split()) >= 2 for d in lines)
    bars = re.findall(r'<rect class="bar( over)?" x="[\d.]+" y="[\d.]+" width="([\d.]+)" '
                      r'height="([\d.]+)"', dom)
    assert len(bars) == 27 and all(float(w) > 0 and float(h) > 0 for _, w, h in bars)
    assert sum(1 for over, _, _ in bars if over) == 4  # DAP above the DRL (the 5th: time)
    assert dom.count('<line class="drl"') >= 5
    alarm_marks = re.findall(r'<g class="alarm( unack)?"><title>([^<]+)</title>', dom)
    assert len(alarm_marks) == 6 and sum(1 for unack, _ in alarm_marks if unack) == 1
    assert any("acknowledged by Dr Okafor" in title for _, title in alarm_marks)
    assert dom.count("<title>") > 100  # every mark has a text alternative
    outliers = dom.index('id="outliers"')
    assert outliers < dom.index('id="dap"') < dom.index('id="procedures"')

    shot = tmp_path / "report.png"
    _chromium(tmp_path, f"--screenshot={shot}", "--window-size=1400,2400", page.as_uri())
    import cv2
    import numpy as np

    image = cv2.imread(str(shot))
    assert image is not None and image.shape[:2] == (2400, 1400)
    assert image.std() > 20 and len(np.unique(image.reshape(-1, 3), axis=0)) > 200
    red = np.abs(image.astype(int) - (40, 40, 198)).sum(axis=2) < 30  # BGR of the "over" bars
    assert red.sum() > 500, "the bars above their DRL are drawn in the first screen"
    rows_with_ink = (np.abs(image.astype(int) - image[5, 5].astype(int)).sum(axis=2) > 30
                     ).any(axis=1).mean()
    assert rows_with_ink > 0.5, "the page is not mostly blank"


def test_csv_has_one_row_per_procedure_with_totals_and_flags(clinic, tmp_path):
    out = tmp_path / "report.csv"
    assert run_fluoro("dose", "report", "--db", str(clinic), "--format", "csv",
                      "--out", str(out)).returncode == 0
    with out.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        assert tuple(reader.fieldnames or ()) == COLUMNS
        rows = {row["procedure_uid"]: row for row in reader}
    assert len(rows) == 27
    assert rows["2.25.1004"]["above_drl"] == "dap_gycm2"
    assert rows["2.25.1004"]["drl_dap_gycm2"] == "2.5"
    assert (rows["2.25.1004"]["alarms"], rows["2.25.1004"]["alarms_unacknowledged"]) == ("2", "1")
    assert rows["2.25.1009"]["above_drl"] == "fluoro_time_s"
    assert rows["2.25.1009"]["missing_pulses"] == "2"
    assert [rows[f"2.25.{u}"]["ncrp_notification"] for u in (1021, 1022, 1023)] == [
        "false", "false", "true"]
    assert float(rows["2.25.1023"]["window_kar_mgy"]) == pytest.approx(3600)
    assert rows["2.25.1099"]["complete"] == "false" and rows["2.25.1099"]["ended_utc"] == ""
    assert rows["2.25.999"]["origin"] == "rdsr-import"
    assert rows["2.25.999"]["dose_source"] == "stated (RDSR)"
    assert rows["2.25.1000"]["dose_source"] == "measured"
    assert rows["2.25.1024"]["patient_key"] == "" and rows["2.25.1024"]["window_kar_mgy"] == ""


def test_json_shape_and_the_json_alias(clinic, capsys):
    code, out, err = _main(capsys, "dose", "report", "--db", str(clinic), "--format", "json")
    assert code == 0, err
    doc = json.loads(out)
    assert list(doc) == ["dose_log", "filters", "drl_source", "procedures", "patients", "rooms",
                         "outliers"]
    assert len(doc["procedures"]) == 27 and len(doc["patients"]) == 8 and len(doc["rooms"]) == 3
    first = doc["procedures"][0]
    for key in ("procedure_uid", "kar_mgy", "dap_gycm2", "fluoro_time_s", "alarms", "complete",
                "source", "review"):
        assert key in first
    assert set(first["review"]) == {"dose_source", "meter", "alarms_unacknowledged", "drl",
                                    "above_drl", "patient_window"}
    assert {o["procedure_uid"] for o in doc["outliers"]} == {
        "2.25.1004", "2.25.1009", "2.25.1021", "2.25.1022", "2.25.1023"}
    notified = [p for p in doc["patients"] if p["ncrp_notification"]]
    assert [p["notified_procedure_uid"] for p in notified] == ["2.25.1023"]
    assert doc["rooms"][0]["room"] == "OR 1" and doc["rooms"][0]["dap_p75_gycm2"] > 0
    code, alias, _ = _main(capsys, "dose", "report", "--db", str(clinic), "--json")
    assert code == 0 and json.loads(alias)["procedures"] == doc["procedures"]


@pytest.mark.parametrize(("args", "uids"), [
    (["--since", "2025-05-01"], ["2.25.1020", "2.25.1024", "2.25.1099"]),
    (["--until", "2025-03-03"], ["2.25.1000"]),  # a day: the whole day
    (["--since", "2025-03-06T09:00", "--until", "2025-03-09"], ["2.25.1001", "2.25.1002"]),
    (["--room", "pain clinic", "--until", "2025-03-18"], ["2.25.1002", "2.25.1005"]),
    (["--patient", clinic_module.patient(7)], ["2.25.1021", "2.25.1022", "2.25.1023"]),
])
def test_filters_on_the_command_line(clinic, capsys, args, uids):
    code, out, err = _main(capsys, "dose", "report", "--db", str(clinic), "--json", *args)
    assert code == 0, err
    assert [p["procedure_uid"] for p in json.loads(out)["procedures"]] == uids


def test_patient_by_id_is_keyed_with_the_site_secret(tmp_path, capsys):
    from fluoro.doselog.pseudonym import load_or_create_site_salt, patient_key
    from fluoro.paths import site_key_file

    site_key_file().parent.mkdir(parents=True, exist_ok=True)
    key = patient_key("MRN-0042", load_or_create_site_salt(site_key_file()))
    db = tmp_path / "dose.sqlite"
    with DoseLog.create_or_open(db) as log:
        for who in (key, "c" * 32):
            log.begin_procedure(ProcedureInfo(who, "TFESI", room="OR 1",
                                              started_utc=datetime(2025, 1, 2, tzinfo=UTC)))
            log.end_procedure(clinic_module.DoseTotals())
    code, out, err = _main(capsys, "dose", "report", "--db", str(db), "--json",
                           "--patient", "mrn-0042")
    assert code == 0, err
    assert [p["patient_key"] for p in json.loads(out)["procedures"]] == [key]
    assert "MRN-0042" not in out.upper()


def test_text_table_is_still_the_default(clinic, capsys):
    code, out, _ = _main(capsys, "dose", "report", "--db", str(clinic), "--since", "2025-05-04")
    assert code == 0
    header, row = out.splitlines()
    assert header.startswith("started (UTC)") and "INCOMPLETE" in row


def test_a_site_drl_file_replaces_the_shipped_levels(clinic, tmp_path, capsys):
    site = tmp_path / "drl.toml"
    site.write_text('[[procedure]]\nname = "Spine"\npatterns = ["tfesi", "facet"]\n'
                    "dap_gycm2 = 1.0\n", encoding="utf-8")
    code, out, err = _main(capsys, "dose", "report", "--db", str(clinic), "--json",
                           "--drl", str(site), "--until", "2025-03-10")
    assert code == 0, err
    doc = json.loads(out)
    assert doc["drl_source"] == str(site)
    assert {o["procedure_uid"] for o in doc["outliers"]} == {"2.25.1001"}  # facet, 1.05 Gy·cm²
    interlaminar = doc["procedures"][2]["review"]
    assert interlaminar["drl"] is None and interlaminar["above_drl"] == []


def _bad(tmp_path: Path, case: str) -> tuple[list[str], str]:
    not_a_log = tmp_path / "notes.sqlite"
    not_a_log.write_text("these are not dose records\n" * 50, encoding="utf-8")
    bad_drl = tmp_path / "drl.toml"
    bad_drl.write_text('[[procedure]]\nname = "x"\npatterns = ["x"]\ndap_gycm2 = -1\n',
                       encoding="utf-8")
    return {
        "format": (["--format", "pdf"], "--format"),
        "since": (["--since", "2025-13-40"], "2025-13-40"),
        "until": (["--until", "yesterday"], "yesterday"),
        "weeks": (["--weeks", "0"], "--weeks"),
        "order": (["--since", "2025-04-01", "--until", "2025-03-01"], "--since"),
        "alias": (["--json", "--format", "csv"], "--json"),
        "out-folder": (["--format", "html", "--out", str(tmp_path / "no" / "r.html")], "--out"),
        "out-is-dir": (["--format", "csv", "--out", str(tmp_path)], "--out"),
        "drl": (["--drl", str(bad_drl)], "dap_gycm2"),
        "drl-missing": (["--drl", str(tmp_path / "none.toml")], "none.toml"),
        "patient-id-without-site-key": (["--patient", "MRN-7"], "--patient"),
        "not-a-log": (["--db", str(not_a_log)], str(not_a_log)),
    }[case]


@pytest.mark.parametrize("case", ["format", "since", "until", "weeks", "order", "alias",
                                  "out-folder", "out-is-dir", "drl", "drl-missing",
                                  "patient-id-without-site-key", "not-a-log"])
def test_bad_input_is_one_line_and_exit_2(clinic, tmp_path, capsys, case):
    args, word = _bad(tmp_path, case)
    db = [] if "--db" in args else ["--db", str(clinic)]
    code, out, err = _main(capsys, "dose", "report", *db, *args)
    assert code == 2, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and word in lines[0], lines
    assert "Traceback" not in err and out == ""
    assert "MRN-7" not in err


def test_bad_date_through_the_installed_command(clinic):
    result = run_fluoro("dose", "report", "--db", str(clinic), "--since", "2025-13-40")
    assert_one_error_line(result, "--since", "2025-13-40")
