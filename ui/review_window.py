"""``fluoro review``: the radiation safety officer's window onto a dose log.

The procedure table (filtered, sortable), the selected procedure's cumulative Ka,r curve with its
irradiation events and alarms, its alarms with who acknowledged them, exports (RDSR, JSON, the
table as CSV) and a check of the log's hash chain (``fluoro.doselog.verify``).

The log is opened read-only (``DoseLog.open_readonly``): the review never writes to it, and a
recording may go on appending while the window is open (Reload, F5, shows the new rows). All of
it runs on the GUI thread except the Verify button's hash-chain check, which runs on a worker
thread that never touches Qt (``ui.review_verify``).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, MutableMapping
from pathlib import Path

import pyqtgraph as pg
from PySide6 import QtCore, QtGui, QtWidgets

from fluoro.doselog import DoseLog, ProcedureSummary, VerifyReport
from fluoro.errors import InputError
from ui.review_details import AlarmList, ProcedureDetails
from ui.review_export import write_csv, write_json, write_rdsr
from ui.review_filters import FilterBar
from ui.review_model import (
    COLUMNS,
    ProcedureFilterProxy,
    ProcedureTableModel,
    ReviewFilter,
    Row,
    count_unacknowledged,
    visible_rows,
)
from ui.review_plot import DoseCurvePlot
from ui.review_verify import VerifyBanner

__all__ = ["SCREENSHOT_SIZE", "ReviewWindow", "choose_platform", "run_review"]

SCREENSHOT_SIZE = (1600, 1000)
ALARMS_CAPTION = "ALARMS AND ACKNOWLEDGEMENTS"
SPLIT_HEIGHTS_PX = [330, 600]  # the table over the curve and the selected procedure
SIDE_WIDTH_PX = 640
WINDOW_STYLE = """
QMainWindow, QWidget#central { background: #0c0e10; }
QWidget { color: #e4e8ec; font-size: 12pt; }
QTableView, QTableWidget { background: #15191d; alternate-background-color: #1a1f24;
    gridline-color: #2a3036; selection-background-color: #1f5fa8; selection-color: white; }
QHeaderView::section { background: #20262c; color: #c8d0d8; padding: 4px 4px;
    border: 0; border-right: 1px solid #2a3036; font-weight: 600; font-size: 11pt; }
QHeaderView::up-arrow, QHeaderView::down-arrow { width: 10px; height: 8px; }
QLineEdit, QComboBox, QDateEdit { background: #1a1f24; border: 1px solid #3a424a;
    padding: 4px; }
QPushButton { background: #24303c; border: 1px solid #3a4a5a; padding: 6px 14px; }
QPushButton:hover { background: #2e3e4e; }
QPushButton:disabled { color: #6a7078; }
QStatusBar { color: #c0c8d0; }
QSplitter::handle { background: #20262c; }
QLabel#section { font-size: 11pt; color: #a8b0b8; font-weight: 600; }
"""


def _section(text: str) -> QtWidgets.QLabel:
    label = QtWidgets.QLabel(text)
    label.setObjectName("section")
    return label


class ReviewWindow(QtWidgets.QMainWindow):
    """The review window over an open (read-only) ``log``; the caller closes the log."""

    def __init__(self, log: DoseLog) -> None:
        super().__init__()
        self.log = log
        self.path = Path(log.path)
        self.setWindowTitle(f"fluoro review — {self.path}")
        self.setStyleSheet(WINDOW_STYLE)
        self.filters = FilterBar()
        self.model = ProcedureTableModel(parent=self)
        self.proxy = ProcedureFilterProxy(self)
        self.proxy.setSourceModel(self.model)
        self.table = self._make_table()
        self.plot = DoseCurvePlot()
        self.details = ProcedureDetails()
        self.alarms = AlarmList()
        self.alarm_caption = _section(ALARMS_CAPTION)
        self.verify_banner = VerifyBanner(self.path)
        self.verify_banner.reported.connect(self._verified)
        self.buttons: dict[str, QtWidgets.QPushButton] = {}
        self.setCentralWidget(self._layout())
        self.filters.changed.connect(self.apply_filter)
        self.table.selectionModel().currentRowChanged.connect(self._current_changed)
        self._bind_keys()
        self.reload()

    # -- building ------------------------------------------------------------------------------

    def _make_table(self) -> QtWidgets.QTableView:
        table = QtWidgets.QTableView()
        table.setModel(self.proxy)
        table.setSortingEnabled(True)
        table.sortByColumn(0, QtCore.Qt.SortOrder.DescendingOrder)  # newest first
        table.setSelectionBehavior(QtWidgets.QAbstractItemView.SelectionBehavior.SelectRows)
        table.setSelectionMode(QtWidgets.QAbstractItemView.SelectionMode.SingleSelection)
        table.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        table.setAlternatingRowColors(True)
        table.verticalHeader().setVisible(False)
        table.verticalHeader().setDefaultSectionSize(30)
        header = table.horizontalHeader()
        header.setSectionResizeMode(QtWidgets.QHeaderView.ResizeMode.ResizeToContents)
        header.setStretchLastSection(True)
        return table

    def _layout(self) -> QtWidgets.QWidget:
        top = QtWidgets.QHBoxLayout()
        top.addWidget(self.filters, 1)
        for key, text, action, tip in (
                ("verify", "Verify log", self.verify_banner.start,
                 "recompute the log's hash chain"),
                ("reload", "Reload", self.reload, "read the log again (F5)"),
                ("csv", "Export CSV…", self.choose_csv, "the table as shown (filtered, sorted)")):
            top.addWidget(self._button(key, text, action, tip))
        procedure_actions = QtWidgets.QHBoxLayout()
        procedure_actions.addWidget(_section("SELECTED PROCEDURE"), 1)
        for key, text, action, tip in (
                ("rdsr", "Export RDSR…", self.choose_rdsr,
                 "as a DICOM X-Ray Radiation Dose SR (an imported one: from its own report)"),
                ("json", "Export JSON…", self.choose_json,
                 "its totals, alarms and acknowledgements")):
            procedure_actions.addWidget(self._button(key, text, action, tip))
        side = QtWidgets.QWidget()
        side_column = QtWidgets.QVBoxLayout(side)
        side_column.setContentsMargins(0, 0, 0, 0)
        side_column.addLayout(procedure_actions)
        side_column.addWidget(self.details)
        side_column.addWidget(self.alarm_caption)
        side_column.addWidget(self.alarms, 1)
        lower = QtWidgets.QSplitter(QtCore.Qt.Orientation.Horizontal)
        lower.addWidget(self.plot)
        lower.addWidget(side)
        lower.setStretchFactor(0, 1)
        lower.setSizes([SCREENSHOT_SIZE[0] - SIDE_WIDTH_PX, SIDE_WIDTH_PX])
        split = QtWidgets.QSplitter(QtCore.Qt.Orientation.Vertical)
        split.addWidget(self.table)
        split.addWidget(lower)
        split.setSizes(SPLIT_HEIGHTS_PX)
        central = QtWidgets.QWidget()
        central.setObjectName("central")
        column = QtWidgets.QVBoxLayout(central)
        column.addLayout(top)
        column.addWidget(self.verify_banner)
        column.addWidget(split, 1)
        return central

    def _button(self, key: str, text: str, action: Callable[[], object],
                tip: str) -> QtWidgets.QPushButton:
        button = QtWidgets.QPushButton(text)
        button.setToolTip(tip)
        button.clicked.connect(action)
        self.buttons[key] = button
        return button

    def _bind_keys(self) -> None:
        for key, action in (("F5", self.reload), ("Ctrl+F", self.filters.text.setFocus)):
            QtGui.QShortcut(QtGui.QKeySequence(key), self).activated.connect(action)

    # -- the table -----------------------------------------------------------------------------

    def reload(self) -> None:
        """Read the procedures again (a recording may have added some); keep the selection."""
        chosen = self.selected()
        summaries = self.log.procedures()
        rows = [Row(s, count_unacknowledged(self.log.alarms(s.procedure_uid)) if s.alarms else 0)
                for s in summaries]
        self.model.set_rows(rows)
        self.filters.set_rooms(s.info.room for s in summaries)
        if summaries:
            days = [s.started_utc.date() for s in summaries]
            self.filters.set_date_bounds(min(days), max(days))
        if chosen is None or not self.select_uid(chosen.procedure_uid):
            self._show(self.selected())
        self._update_status()

    def apply_filter(self, criteria: ReviewFilter) -> None:
        """Show only the procedures ``criteria`` accepts; the selection stays if still shown."""
        chosen = self.selected()
        self.proxy.set_filter(criteria)
        if chosen is not None and not self.select_uid(chosen.procedure_uid):
            self.table.clearSelection()
            self.table.setCurrentIndex(QtCore.QModelIndex())
            self._show(None)
        self._update_status()

    def shown_summaries(self) -> list[ProcedureSummary]:
        """The procedures the table shows, in its (filtered, sorted) order."""
        return [self.proxy.summary_at(r) for r in range(self.proxy.rowCount())]

    def selected(self) -> ProcedureSummary | None:
        index = self.table.currentIndex()
        return self.proxy.summary_at(index.row()) if index.isValid() else None

    def select_uid(self, uid: str) -> bool:
        """Select the shown procedure ``uid``; False if the table does not show it."""
        for row, summary in enumerate(self.shown_summaries()):
            if summary.procedure_uid == uid:
                self.table.selectRow(row)
                self.table.setCurrentIndex(self.proxy.index(row, 0))
                self.table.scrollTo(self.proxy.index(row, 0))
                return True
        return False

    def select_first_with_alarms(self) -> ProcedureSummary | None:
        """Select the first shown procedure with alarms (or else the first); returns it."""
        shown = self.shown_summaries()
        chosen = next((s for s in shown if s.alarms), shown[0] if shown else None)
        if chosen is not None:
            self.select_uid(chosen.procedure_uid)
        return chosen

    def _current_changed(self, current: QtCore.QModelIndex, _previous: object) -> None:
        self._show(self.proxy.summary_at(current.row()) if current.isValid() else None)

    def _show(self, summary: ProcedureSummary | None) -> None:
        self.details.show_procedure(summary)
        for key in ("rdsr", "json"):
            self.buttons[key].setEnabled(summary is not None)
        if summary is None:
            self.plot.clear_procedure()
            self.alarms.show_alarms([])
            self.alarm_caption.setText(ALARMS_CAPTION)
            return
        uid = summary.procedure_uid
        alarms = self.log.alarms(uid)
        unacknowledged = count_unacknowledged(alarms)
        self.alarm_caption.setText(
            f"{ALARMS_CAPTION} — " + (f"{len(alarms)} raised, {unacknowledged} NOT acknowledged"
                                      if unacknowledged else
                                      f"{len(alarms)} raised, all acknowledged" if alarms
                                      else "none raised"))
        if summary.imported is not None:
            self.plot.show_imported(summary.imported, alarms)
        else:
            self.plot.show_live(self.log.pulses(uid), self.log.events(uid), self.log.gaps(uid),
                                alarms)
        self.alarms.show_alarms(alarms, t0_s=self.plot.t0_s)

    def _update_status(self) -> None:
        self.statusBar().showMessage(
            f"{self.path}  —  showing {self.proxy.rowCount()} of {self.model.rowCount()} "
            "procedures  —  times in UTC; Ka,r at each procedure's reference point")

    # -- actions (tests call these with a path; the buttons ask for one) ------------------------

    def _require_selected(self) -> ProcedureSummary:
        summary = self.selected()
        if summary is None:
            raise InputError("no procedure selected: choose one in the table first")
        return summary

    def export_rdsr(self, path: str | Path) -> Path:
        """Write the selected procedure as a DICOM X-Ray Radiation Dose SR at ``path``."""
        out = write_rdsr(self.log, self._require_selected().procedure_uid, path)
        self.statusBar().showMessage(f"RDSR written: {out}", 10000)
        return out

    def export_json(self, path: str | Path) -> Path:
        """Write the selected procedure's totals, alarms and acknowledgements as JSON."""
        out = write_json(self.log, self._require_selected(), path)
        self.statusBar().showMessage(f"JSON written: {out}", 10000)
        return out

    def export_csv(self, path: str | Path) -> Path:
        """Write the table as shown (filtered, sorted) as CSV, plus each procedure's full UID
        and patient key."""
        header = [*(column.title for column in COLUMNS), "procedure UID", "patient key"]
        rows = [[*text, s.procedure_uid, s.patient_key or ""]
                for text, s in zip(visible_rows(self.proxy), self.shown_summaries(), strict=True)]
        out = write_csv(path, header, rows)
        self.statusBar().showMessage(f"CSV written: {out} ({len(rows)} procedures)", 10000)
        return out

    def verify_log(self) -> VerifyReport:
        """Recompute the log's hash chain now and show the result: OK with its anchor, or the
        first bad row in red. The Verify button runs the same check on a worker thread."""
        return self.verify_banner.run()

    def _verified(self, report: VerifyReport) -> None:
        """Select the procedure a failed check names, when the table shows it."""
        if not report.ok and report.problem:
            named = [s for s in self.shown_summaries() if s.procedure_uid in report.problem]
            if named:
                self.select_uid(named[0].procedure_uid)

    def _choose(self, caption: str, suggested: str, kinds: str,
                write: Callable[[Path], Path]) -> None:
        path, _ = QtWidgets.QFileDialog.getSaveFileName(
            self, caption, str(self.path.parent / suggested), kinds)
        if not path:
            return
        try:
            write(Path(path))
        except (InputError, OSError) as exc:
            QtWidgets.QMessageBox.warning(self, caption, str(exc))

    def _stem(self) -> str:
        summary = self.selected()
        return f"procedure-{summary.procedure_uid}" if summary else "procedure"

    def choose_rdsr(self) -> None:
        self._choose("Export RDSR", f"{self._stem()}.dcm", "DICOM (*.dcm);;All files (*)",
                     self.export_rdsr)

    def choose_json(self) -> None:
        self._choose("Export JSON", f"{self._stem()}.json", "JSON (*.json);;All files (*)",
                     self.export_json)

    def choose_csv(self) -> None:
        self._choose("Export CSV", f"{self.path.stem}-procedures.csv",
                     "CSV (*.csv);;All files (*)", self.export_csv)


def run_review(db_path: Path, *, screenshot: Path | None = None) -> int:
    """Open the review window on the dose log at ``db_path`` (read-only) until it is closed.

    With ``screenshot``, render the window offscreen once, with the first procedure that has
    alarms selected (or else the first), save it there as PNG and return. Raises ``InputError``
    (one line naming the path) before any window exists when ``db_path`` is not a readable
    fluoro dose log. Returns the exit status, 0.
    """
    log = DoseLog.open_readonly(Path(db_path))
    try:
        choose_platform(screenshot, os.environ,
                        app_exists=QtWidgets.QApplication.instance() is not None)
        app = pg.mkQApp("fluoro review")
        window = ReviewWindow(log)
        window.resize(*SCREENSHOT_SIZE)
        try:
            if screenshot is not None:
                window.select_first_with_alarms()
                window.show()
                app.processEvents()
                _save(window, Path(screenshot))
                window.close()
            else:
                window.show()
                app.exec()
        finally:
            # Tear the widgets down now, on the GUI thread, not during interpreter shutdown
            # (where PySide6 and pyqtgraph may free Qt objects in the wrong order and abort).
            window.deleteLater()
            QtCore.QCoreApplication.sendPostedEvents(None, QtCore.QEvent.Type.DeferredDelete)
            app.processEvents()
    finally:
        log.close()
    return 0


def choose_platform(screenshot: Path | None, environ: MutableMapping[str, str], *,
                    app_exists: bool) -> None:
    """Before the QApplication exists on Linux without a display: render offscreen when a
    screenshot is asked for, else raise ``InputError`` (Qt would abort the process)."""
    if app_exists or environ.get("QT_QPA_PLATFORM") or not sys.platform.startswith("linux"):
        return
    if environ.get("DISPLAY") or environ.get("WAYLAND_DISPLAY"):
        return
    if screenshot is None:
        raise InputError("fluoro review: no display to open the window on (DISPLAY is not "
                         "set); use --screenshot PNG to render it to a file")
    environ["QT_QPA_PLATFORM"] = "offscreen"


def _save(window: QtWidgets.QWidget, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not window.grab().save(str(path), "PNG"):
        raise InputError(f"{path}: could not write the screenshot (expected a .png path)")
