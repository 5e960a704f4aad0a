"""The dose review window (``fluoro review``), offscreen, with real widgets over real SQLite dose
logs built here with ``DoseLog``."""

import csv
import json
import sqlite3
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import numpy as np
import pydicom
import pytest
from conftest import make_exposure
from PySide6 import QtCore, QtGui

from fluoro.dose.accumulator import DoseGap, DoseTotals, PulseDose
from fluoro.doselog import DoseLog, ImportedEvent, ImportedPlane, ImportedProcedure, ProcedureInfo
from fluoro.errors import InputError
from ui.review_details import NOT_ACKNOWLEDGED
from ui.review_model import COLUMN_INDEX
from ui.review_window import ReviewWindow, choose_platform, run_review

RDSR_SOP_CLASS = "1.2.840.10008.5.1.4.1.1.88.67"
DAY = datetime(2025, 3, 3, 8, 0, tzinfo=UTC)
PULSE_RATE_HZ = 15.0


class Clock:
    """The log's wall clock, set by the builder to where the story is."""

    def __init__(self) -> None:
        self.now = DAY

    def __call__(self) -> datetime:
        self.now += timedelta(milliseconds=10)
        return self.now


@dataclass
class Built:
    """A dose log and what went into it (procedure name -> UID, -> pulses' Ka,r)."""

    path: Path
    uids: dict[str, str] = field(default_factory=dict)
    kar_mgy: dict[str, list[float]] = field(default_factory=dict)
    pulses: dict[str, list[PulseDose]] = field(default_factory=dict)


def _pulses(runs: list[tuple[float, float, float]], seq0: int = 0) -> list[PulseDose]:
    """Pulses of irradiation events given as (start s, duration s, Ka,r per pulse mGy)."""
    pulses, seq = [], seq0
    for event, (start_s, duration_s, kar_mgy) in enumerate(runs, start=1):
        for i in range(int(duration_s * PULSE_RATE_HZ)):
            wobble = 1.0 + 0.15 * np.sin(0.3 * i + event)
            kar, dap = kar_mgy * wobble, kar_mgy * wobble * 0.3
            pulses.append(PulseDose(seq, start_s + i / PULSE_RATE_HZ, event, kar, dap, kar, dap,
                                    False, 1 / PULSE_RATE_HZ, make_exposure()))
            seq += 1
    return pulses


def _crossing(pulses: list[PulseDose], quantity: str, threshold: float) -> tuple[int, float]:
    """Index of the pulse that took ``quantity`` (Ka,r mGy or beam-on time s) to ``threshold``,
    and the value it reached."""
    values = (np.cumsum([p.kar_mgy for p in pulses]) if quantity == "kar_mgy"
              else np.cumsum([p.beam_time_s for p in pulses]))
    i = int(np.argmax(values >= threshold - 1e-9))
    return i, float(values[i])


def _live(log: DoseLog, clock: Clock, built: Built, name: str, started: datetime,
          runs: list[tuple[float, float, float]], *, alarms=(), end: bool = True,
          gap_after: int | None = None, **info) -> str:
    """One live procedure; ``alarms``: (key, quantity, threshold, message, who acknowledged it
    or None), each raised by the pulse that reached its threshold."""
    clock.now = started
    uid = log.begin_procedure(ProcedureInfo(info.pop("patient_key", "c0ffee" + "0" * 26), name,
                                            started_utc=started, **info))
    pulses = _pulses(runs)
    raised = {}
    for key, quantity, threshold, message, user in alarms:
        i, value = _crossing(pulses, quantity, threshold)
        raised.setdefault(i, []).append((key, quantity, threshold, value, message, user))
    for i, pulse in enumerate(pulses):
        clock.now = started + timedelta(seconds=pulse.t_s)
        log.append(pulse)
        if gap_after == i:
            log.append(DoseGap(pulse.seq + 1, 3, pulse.t_s, pulse.event, 0.05, 0.015, 0.2))
        for key, quantity, threshold, value, message, user in raised.get(i, []):
            log.log_alarm(key, quantity, threshold, value, pulse.t_s, message)
            if user:
                clock.now += timedelta(seconds=4)
                log.log_ack(key, user)
    if end:
        log.end_procedure(DoseTotals(kar_mgy=sum(p.kar_mgy for p in pulses), pulses=len(pulses)))
    built.uids[name], built.kar_mgy[name] = uid, [p.kar_mgy for p in pulses]
    built.pulses[name] = pulses
    return uid


def _imported(log: DoseLog, built: Built, started: datetime) -> str:
    plane = ImportedPlane("Single Plane", 4.2, 31.0, 4.2, 31.0, 150.0, None, None, None, 0.0,
                          "15cm from Isocenter toward Source", "113860")
    events = tuple(
        ImportedEvent(i, None, (started + timedelta(seconds=60 * i)).strftime("%Y%m%d%H%M%S"),
                      "fluoroscopy", "44491008^SCT", "Single Plane", "", 1.05, 7.75, 300.0,
                      80.0, 8.0, 15.0, 500.0, 8.0, 37.5, None, None) for i in range(1, 5))
    report = ImportedProcedure("1.2.3.4.5", "1.2.3.4", "other.dcm", "Acme", "C-arm 9", "77",
                               "Cath lab 2", "", "COMPLETE", started.strftime("%Y%m%d%H%M%S"),
                               True, "15cm from Isocenter toward Source", "113860", (plane,),
                               events)
    uid = "1.2.3.4.5.6"
    log.import_procedure(ProcedureInfo(None, "imported angiogram", room="Cath lab 2",
                                       device="Acme C-arm 9", started_utc=started,
                                       procedure_uid=uid), report)
    built.uids["imported angiogram"] = uid
    return uid


def build_log(path: Path, *, scale: float = 1.0) -> Built:
    """Five procedures over three days in two rooms (``scale`` stretches their durations):
    a vertebroplasty with two Ka,r alarms (one acknowledged) and a fluoro-time signal, a facet
    injection with a gap, a quiet one, an imported RDSR, and an incomplete one (never ended)."""
    built, clock = Built(path), Clock()
    log = DoseLog.create_or_open(path, synchronous="NORMAL", clock=clock)
    _live(log, clock, built, "lumbar facet injection", DAY,
          [(0.0, 8 * scale, 0.02), (20 * scale, 6 * scale, 0.025)], gap_after=30,
          operator="Dr Okafor", room="OR 3", patient_key="a" * 32)
    _live(log, clock, built, "vertebroplasty L1", DAY + timedelta(days=1, hours=2),
          [(0.0, 20 * scale, 0.08), (35 * scale, 25 * scale, 0.12),
           (75 * scale, 30 * scale, 0.10), (120 * scale, 20 * scale, 0.14)],
          alarms=[("kar50", "kar_mgy", 50.0, "Pregnant patient notification: Ka,r 50 mGy "
                   "reached (50.1 mGy); keep the conceptus out of the beam", "RSO Lindqvist"),
                  ("time1", "fluoro_time_s", 60.0 * scale, "Fluoroscopy time signal: "
                   f"fluoroscopy time {scale:g} min reached; sounds until reset", "Dr Chen"),
                  ("kar100", "kar_mgy", 100.0, "Pregnant patient consult: Ka,r 100 mGy reached "
                   "(100 mGy)", None)],
          operator="Dr Chen", room="Angio 1", patient_key="b" * 32,
          device="Siemens Cios Spin #1234", pregnant=True)
    _live(log, clock, built, "hip pinning", DAY + timedelta(days=1, hours=5),
          [(0.0, 5 * scale, 0.01)], operator="Dr Park", room="OR 3", patient_key=None)
    _imported(log, built, DAY + timedelta(days=2))
    log.close()
    log = DoseLog.create_or_open(path, synchronous="NORMAL", clock=clock)
    _live(log, clock, built, "nephrostomy", DAY + timedelta(days=2, hours=3),
          [(0.0, 4 * scale, 0.03)], end=False, operator="Dr Okafor", room="Angio 1",
          patient_key="d" * 32)
    log.close()
    return built


@pytest.fixture(scope="module")
def built_log(tmp_path_factory) -> Built:
    return build_log(tmp_path_factory.mktemp("review") / "dose.sqlite")


@pytest.fixture
def window(qtbot, built_log):
    log = DoseLog.open_readonly(built_log.path)
    window = ReviewWindow(log)
    qtbot.addWidget(window)
    window.resize(1400, 900)
    window.show()
    yield window
    window.close()
    log.close()


def _names(window: ReviewWindow) -> list[str]:
    return [s.procedure_name for s in window.shown_summaries()]


def test_the_table_lists_every_procedure_newest_first(window, built_log):
    assert _names(window) == ["nephrostomy", "imported angiogram", "hip pinning",
                              "vertebroplasty L1", "lumbar facet injection"]
    row = window.shown_summaries().index(
        next(s for s in window.shown_summaries() if s.procedure_name == "nephrostomy"))
    text = [window.proxy.index(row, c).data() for c in range(window.proxy.columnCount())]
    assert text[COLUMN_INDEX["state"]] == "INCOMPLETE"
    assert text[COLUMN_INDEX["patient"]] == "dddddddd…"
    assert text[COLUMN_INDEX["fluoro time"]] == "00:04"
    imported = _names(window).index("imported angiogram")
    assert window.proxy.index(imported, COLUMN_INDEX["source"]).data() == "imported"
    assert window.proxy.index(imported, COLUMN_INDEX["Ka,r (mGy)"]).data() == "31.00"
    vertebro = _names(window).index("vertebroplasty L1")
    assert window.proxy.index(vertebro, COLUMN_INDEX["alarms"]).data() == "3 (1 not ack.)"
    assert "showing 5 of 5" in window.statusBar().currentMessage()


@pytest.mark.parametrize(("change", "expected"), [
    (lambda f: f.text.setText("OKAFOR"), {"lumbar facet injection", "nephrostomy"}),
    (lambda f: f.text.setText("bbbbbb"), {"vertebroplasty L1"}),
    (lambda f: f.text.setText("pinning"), {"hip pinning"}),
    (lambda f: f.room.setCurrentText("OR 3"), {"lumbar facet injection", "hip pinning"}),
    (lambda f: f.room.setCurrentText("Cath lab 2"), {"imported angiogram"}),
    (lambda f: f.set_range(date(2025, 3, 4), None),
     {"vertebroplasty L1", "hip pinning", "imported angiogram", "nephrostomy"}),
    (lambda f: f.set_range(None, date(2025, 3, 4)),
     {"lumbar facet injection", "vertebroplasty L1", "hip pinning"}),
    (lambda f: f.set_range(date(2025, 3, 4), date(2025, 3, 4)),
     {"vertebroplasty L1", "hip pinning"}),
    (lambda f: f.only_alarms.setChecked(True), {"vertebroplasty L1"}),
    (lambda f: f.only_incomplete.setChecked(True), {"nephrostomy"}),
])
def test_each_filter_narrows_the_table(window, change, expected):
    change(window.filters)
    assert set(_names(window)) == expected
    assert f"showing {len(expected)} of 5" in window.statusBar().currentMessage()


def test_filters_combine_and_a_hidden_selection_is_cleared(window):
    window.select_uid(window.shown_summaries()[-1].procedure_uid)  # lumbar facet injection
    window.filters.room.setCurrentText("Angio 1")
    assert window.selected() is None and window.plot.note == "no procedure selected"
    window.filters.only_incomplete.setChecked(True)
    assert _names(window) == ["nephrostomy"]
    window.filters.only_incomplete.setChecked(False)
    window.filters.room.setCurrentIndex(0)
    assert len(_names(window)) == 5


def test_sorting_by_dap_uses_the_values(window, qtbot):
    column = COLUMN_INDEX["DAP (Gy·cm²)"]
    window.table.sortByColumn(column, QtCore.Qt.SortOrder.AscendingOrder)
    dap = [s.dap_gycm2 for s in window.shown_summaries()]
    assert dap == sorted(dap) and dap[-1] > 10 * dap[0]
    window.table.sortByColumn(column, QtCore.Qt.SortOrder.DescendingOrder)
    assert [s.dap_gycm2 for s in window.shown_summaries()] == sorted(dap, reverse=True)
    # a click on the header sorts too
    header = window.table.horizontalHeader()
    x = header.sectionViewportPosition(column) + header.sectionSize(column) // 2
    qtbot.mouseClick(header.viewport(), QtCore.Qt.MouseButton.LeftButton,
                     pos=QtCore.QPoint(x, header.height() // 2))
    assert [s.dap_gycm2 for s in window.shown_summaries()] in (sorted(dap), sorted(dap)[::-1])


def test_selecting_a_procedure_draws_its_curve_and_lists_its_alarms(window, built_log):
    assert window.select_uid(built_log.uids["vertebroplasty L1"])
    x, y = window.plot.curve.getData()
    expected = np.cumsum(built_log.kar_mgy["vertebroplasty L1"])
    np.testing.assert_allclose(y, expected, rtol=1e-12)
    assert x[0] == 0.0 and len(x) == len(expected)
    assert window.details.values["kar"].text() == f"{expected[-1]:.2f}"
    rows = window.alarms.rows_text()
    assert [r[1].split(":")[0] for r in rows] == ["Pregnant patient notification",
                                                  "Fluoroscopy time signal",
                                                  "Pregnant patient consult"]
    pulses = built_log.pulses["vertebroplasty L1"]
    at_s = [pulses[np.searchsorted(expected, 50.0)].t_s, pulses[899].t_s,
            pulses[np.searchsorted(expected, 100.0)].t_s]  # the 900th pulse: 60 s of beam
    assert rows[0][0] == f"00:{int(at_s[0]):02d}\n10:00:{int(at_s[0]):02d} UTC"
    assert rows[0][2] == f"RSO Lindqvist\n10:00:{int(at_s[0]) + 4:02d} UTC"
    assert rows[1][2].startswith("Dr Chen\n10:01:")
    assert rows[2][2] == NOT_ACKNOWLEDGED
    assert window.alarm_caption.text().endswith("3 raised, 1 NOT acknowledged")
    assert window.alarms.item(2, 2).background().color() == QtGui.QColor("#9a0016")
    ax, ay = window.plot.alarm_points.getData()
    np.testing.assert_allclose(ax, at_s)
    np.testing.assert_allclose(ay, np.interp(ax, x, y))
    assert ay[0] == pytest.approx(50.0, abs=0.2) and ay[2] == pytest.approx(100.0, abs=0.2)
    assert "4 irradiation events" in window.plot.note


def test_a_gap_and_an_imported_procedure_are_said_so(window, built_log):
    window.select_uid(built_log.uids["lumbar facet injection"])
    assert "3 missing pulses" in window.plot.note
    assert window.alarms.rowCount() == 0
    assert window.alarm_caption.text().endswith("none raised")
    window.select_uid(built_log.uids["imported angiogram"])
    assert "no pulse-level data" in window.plot.note
    x, y = window.plot.event_points.getData()  # each event's end: 37.5 s after its start
    np.testing.assert_allclose(x, [37.5, 97.5, 157.5, 217.5])
    np.testing.assert_allclose(y, [7.75, 15.5, 23.25, 31.0])
    x, y = window.plot.curve.getData()
    np.testing.assert_allclose(x[:4], [0, 37.5, 60, 97.5])
    np.testing.assert_allclose(y[:4], [0, 7.75, 7.75, 15.5])
    assert window.plot.plot_item.getAxis("bottom").labelText.startswith("time since the first")


def test_export_rdsr_writes_a_dose_sr(window, built_log, tmp_path):
    window.select_uid(built_log.uids["vertebroplasty L1"])
    out = window.export_rdsr(tmp_path / "vertebroplasty.dcm")
    ds = pydicom.dcmread(out)
    assert ds.SOPClassUID == RDSR_SOP_CLASS
    assert ds.PatientID == "b" * 32
    window.table.clearSelection()
    window.table.setCurrentIndex(QtCore.QModelIndex())
    with pytest.raises(InputError, match="no procedure selected"):
        window.export_rdsr(tmp_path / "none.dcm")
    assert not window.buttons["rdsr"].isEnabled()


def test_export_json_is_the_selected_procedure(window, built_log, tmp_path):
    window.select_uid(built_log.uids["vertebroplasty L1"])
    document = json.loads(window.export_json(tmp_path / "p.json").read_text())
    [p] = document["procedures"]
    assert p["procedure_uid"] == built_log.uids["vertebroplasty L1"]
    assert p["kar_mgy"] == pytest.approx(sum(built_log.kar_mgy["vertebroplasty L1"]))
    assert [a["key"] for a in p["alarms"]] == ["kar50", "time1", "kar100"]
    assert [len(a["acknowledgements"]) for a in p["alarms"]] == [1, 1, 0]
    assert p["alarms"][0]["acknowledgements"][0]["user"] == "RSO Lindqvist"


def test_export_csv_is_the_filtered_table(window, tmp_path):
    window.filters.room.setCurrentText("OR 3")
    window.table.sortByColumn(COLUMN_INDEX["Ka,r (mGy)"], QtCore.Qt.SortOrder.AscendingOrder)
    with open(window.export_csv(tmp_path / "t.csv"), newline="", encoding="utf-8") as file:
        header, *rows = list(csv.reader(file))
    assert header[:3] == ["start (UTC)", "room", "procedure"] and header[-1] == "patient key"
    assert [r[2] for r in rows] == ["hip pinning", "lumbar facet injection"]
    shown = [[window.proxy.index(r, c).data() for c in range(window.proxy.columnCount())]
             for r in range(window.proxy.rowCount())]
    assert [r[:-2] for r in rows] == shown
    assert rows[1][-1] == "a" * 32 and rows[0][-1] == ""


def _tamper(path: Path, sql: str) -> None:
    conn = sqlite3.connect(path)
    conn.executescript("DROP TRIGGER IF EXISTS ledger_no_update; "
                       "DROP TRIGGER IF EXISTS ledger_no_delete; " + sql)
    conn.commit()
    conn.close()


def test_verify_shows_ok_then_names_the_tampered_row(qtbot, tmp_path):
    built = build_log(tmp_path / "dose.sqlite")
    log = DoseLog.open_readonly(built.path)
    window = ReviewWindow(log)
    qtbot.addWidget(window)
    window.show()
    try:
        report = window.verify_log()
        assert report.ok and window.verify_banner.isVisible()
        assert window.verify_banner.text().startswith("dose log OK:")
        assert str(report.head) in window.verify_banner.text()
        uid = built.uids["hip pinning"]
        row = sqlite3.connect(built.path).execute(
            "SELECT id FROM ledger WHERE kind = 'pulse' AND procedure_uid = ? AND seq = 2",
            (uid,)).fetchone()[0]
        _tamper(built.path, f"UPDATE ledger SET kar_mgy = kar_mgy / 10 WHERE id = {row};")
        report = window.verify_log()
        assert not report.ok and report.first_bad_row == row
        assert window.verify_banner.text().startswith(
            f"dose log FAILED verification: row {row} (pulse seq 2 of procedure {uid})")
        assert "b00020" in window.verify_banner.styleSheet()
        assert window.selected().procedure_uid == uid
    finally:
        window.close()
        log.close()


def test_the_verify_button_checks_on_a_worker_and_shows_the_result(window, qtbot):
    qtbot.mouseClick(window.buttons["verify"], QtCore.Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not window.verify_banner.running(), timeout=10000)
    assert window.verify_banner.text().startswith("dose log OK:")


def test_the_export_buttons_ask_for_a_file_and_report_errors(window, built_log, tmp_path,
                                                             monkeypatch):
    from PySide6 import QtWidgets

    answers = iter([str(tmp_path / "table.csv"), str(tmp_path / "p.json"),
                    str(tmp_path / "p.dcm"), str(tmp_path / "missing" / "x.csv"), ""])
    monkeypatch.setattr(QtWidgets.QFileDialog, "getSaveFileName",
                        lambda *args: (next(answers), ""))
    warnings = []
    monkeypatch.setattr(QtWidgets.QMessageBox, "warning",
                        lambda parent, title, text: warnings.append(text))
    window.select_uid(built_log.uids["hip pinning"])
    for key in ("csv", "json", "rdsr", "csv", "csv"):
        window.buttons[key].click()
    assert (tmp_path / "table.csv").read_text().count("\n") == 6
    assert json.loads((tmp_path / "p.json").read_text())["procedures"][0]["procedure_name"] == (
        "hip pinning")
    assert pydicom.dcmread(tmp_path / "p.dcm").SOPClassUID == RDSR_SOP_CLASS
    assert len(warnings) == 1 and "does not exist" in warnings[0]  # the last answer: cancelled


def test_reload_shows_procedures_recorded_meanwhile(window, built_log, tmp_path):
    import shutil

    copy = tmp_path / "copy.sqlite"
    shutil.copy(built_log.path, copy)
    log = DoseLog.open_readonly(copy)
    other = ReviewWindow(log)
    try:
        assert len(other.shown_summaries()) == 5
        writer = DoseLog.create_or_open(copy, synchronous="NORMAL")
        _live(writer, Clock(), Built(copy), "late case", DAY + timedelta(days=3),
              [(0.0, 2.0, 0.02)], operator="Dr Late", room="OR 9", patient_key=None)
        writer.close()
        other.reload()
        assert other.shown_summaries()[0].procedure_name == "late case"
        assert other.filters.room.findText("OR 9") > 0
    finally:
        other.close()
        other.deleteLater()
        log.close()


def test_run_review_on_an_empty_log(tmp_path):
    path = tmp_path / "empty.sqlite"
    DoseLog.create_or_open(path).close()
    assert run_review(path, screenshot=tmp_path / "empty.png") == 0
    assert QtGui.QImage(str(tmp_path / "empty.png")).width() > 0


def test_run_review_writes_a_screenshot(built_log, tmp_path):
    out = tmp_path / "shots" / "review.png"
    assert run_review(built_log.path, screenshot=out) == 0
    image = QtGui.QImage(str(out))
    assert image.width() >= 1200 and image.height() >= 800
    grey = image.convertToFormat(QtGui.QImage.Format.Format_Grayscale8)
    pixels = np.frombuffer(grey.constBits(), np.uint8).reshape(grey.height(),
                                                                grey.bytesPerLine())
    assert pixels.std() > 10 and len(np.unique(pixels)) > 32  # drawn, not blank


@pytest.mark.parametrize("kind", ["missing", "folder", "not sqlite", "other sqlite"])
def test_a_bad_db_path_is_one_input_error(tmp_path, kind):
    path = tmp_path / "x.sqlite"
    if kind == "folder":
        path.mkdir()
    elif kind == "not sqlite":
        path.write_text("hello")
    elif kind == "other sqlite":
        sqlite3.connect(path).execute("CREATE TABLE t (x)").connection.close()
    with pytest.raises(InputError) as caught:
        run_review(path)
    message = str(caught.value)
    assert str(path) in message and "\n" not in message


def test_without_a_display_only_a_screenshot_is_possible(tmp_path, monkeypatch):
    monkeypatch.setattr("sys.platform", "linux")
    environ = {}
    with pytest.raises(InputError, match="no display"):
        choose_platform(None, environ, app_exists=False)
    choose_platform(tmp_path / "x.png", environ, app_exists=False)
    assert environ == {"QT_QPA_PLATFORM": "offscreen"}
    for environ in ({"DISPLAY": ":0"}, {"QT_QPA_PLATFORM": "xcb"}):
        choose_platform(None, environ, app_exists=False)  # Qt will find its screen
    choose_platform(None, {}, app_exists=True)  # the platform was chosen already
