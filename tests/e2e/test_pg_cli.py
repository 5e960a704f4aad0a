"""The department database end to end: fluoro run logs into a real PostgreSQL server that this
test session starts itself (tests/pg_server.py), and the dose commands read it back."""

import json

from conftest import run_fluoro
from pg_server import pg_server_fixture, pg_url_fixture  # noqa: F401 (pytest fixtures)

FAST_SIM = "sim://spine?size=128&realtime=0"


def test_run_logs_into_postgresql_and_the_dose_commands_read_it(pg_url):
    result = run_fluoro("run", "--headless", "--frames", "40", "--source", FAST_SIM,
                        "--dose-log", pg_url, "--procedure", "L4-5 TFESI", "--patient", "MRN-3")
    assert result.returncode == 0, result.stderr
    assert "INCOMPLETE" not in result.stdout
    check = run_fluoro("dose", "verify", "--db", pg_url)
    assert check.returncode == 0 and "OK" in check.stdout, check.stdout + check.stderr
    report = json.loads(run_fluoro("dose", "report", "--db", pg_url, "--json").stdout)
    (procedure,) = report["procedures"]
    assert procedure["procedure_name"] == "L4-5 TFESI" and procedure["complete"]
    assert procedure["pulses"] > 30 and procedure["kar_mgy"] > 0
    assert "MRN-3" not in json.dumps(report)


def test_html_report_and_review_window_read_the_department_database(pg_url, tmp_path):
    import cv2

    for procedure in ("TFESI L5-S1", "Facet L4-5"):
        result = run_fluoro("run", "--headless", "--frames", "20", "--source", FAST_SIM,
                            "--dose-log", pg_url, "--procedure", procedure)
        assert result.returncode == 0, result.stderr
    page = tmp_path / "report.html"
    result = run_fluoro("dose", "report", "--db", pg_url, "--format", "html", "--out", str(page))
    assert result.returncode == 0, result.stderr
    html = page.read_text()
    assert "TFESI L5-S1" in html and "Facet L4-5" in html and html.count("<svg") >= 3
    png = tmp_path / "review.png"
    result = run_fluoro("review", "--db", pg_url, "--screenshot", str(png))
    assert result.returncode == 0, result.stderr
    assert cv2.imread(str(png)).std() > 10
