"""The filter bar of the review window: free text, room, start-date range (UTC, inclusive),
only procedures with alarms, only incomplete ones. It emits ``changed`` with a ``ReviewFilter``
whenever one of them changes."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

from PySide6 import QtCore, QtWidgets

from ui.review_model import ReviewFilter

__all__ = ["ALL_ROOMS", "FilterBar"]

ALL_ROOMS = "all rooms"


def _qdate(day: date) -> QtCore.QDate:
    return QtCore.QDate(day.year, day.month, day.day)


class FilterBar(QtWidgets.QWidget):
    """``text``, ``room``, ``since``/``until`` (a check box turns each bound on), ``only_alarms``,
    ``only_incomplete``: set them (tests do) and ``changed`` follows."""

    changed = QtCore.Signal(object)  # ReviewFilter

    def __init__(self) -> None:
        super().__init__()
        layout = QtWidgets.QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.text = QtWidgets.QLineEdit()
        self.text.setPlaceholderText("search procedure, operator, patient key")
        self.text.setToolTip("matches the procedure name, operator, patient key or UID")
        self.text.setClearButtonEnabled(True)
        self.text.setMinimumWidth(220)
        self.room = QtWidgets.QComboBox()
        self.room.setMinimumWidth(130)
        self.room.addItem(ALL_ROOMS)
        self.use_since = QtWidgets.QCheckBox("since")
        self.since = QtWidgets.QDateEdit()
        self.use_until = QtWidgets.QCheckBox("until")
        self.until = QtWidgets.QDateEdit()
        for edit in (self.since, self.until):
            edit.setCalendarPopup(True)
            edit.setDisplayFormat("yyyy-MM-dd")
            edit.setDate(QtCore.QDate.currentDate())
            edit.setEnabled(False)
            edit.setToolTip("start date, UTC, inclusive")
        self.only_alarms = QtWidgets.QCheckBox("with alarms")
        self.only_incomplete = QtWidgets.QCheckBox("incomplete")
        self.only_alarms.setToolTip("only procedures in which a dose alarm was raised")
        self.only_incomplete.setToolTip("only procedures without a recorded end")
        only = QtWidgets.QLabel("only:")
        for widget in (self.text, self.room, self.use_since, self.since, self.use_until,
                       self.until, only, self.only_alarms, self.only_incomplete):
            layout.addWidget(widget)
        layout.setStretch(0, 1)
        self.text.textChanged.connect(self._emit)
        self.room.currentIndexChanged.connect(self._emit)
        self.use_since.toggled.connect(self.since.setEnabled)
        self.use_until.toggled.connect(self.until.setEnabled)
        for box in (self.use_since, self.use_until, self.only_alarms, self.only_incomplete):
            box.toggled.connect(self._emit)
        self.since.dateChanged.connect(self._emit)
        self.until.dateChanged.connect(self._emit)

    def set_rooms(self, rooms: Iterable[str]) -> None:
        """Offer ``rooms`` (sorted, blanks left out), keeping the chosen one if still there."""
        chosen = self.room.currentText()
        self.room.blockSignals(True)
        self.room.clear()
        self.room.addItem(ALL_ROOMS)
        self.room.addItems(sorted({room for room in rooms if room}))
        index = self.room.findText(chosen)
        self.room.setCurrentIndex(max(index, 0))
        self.room.blockSignals(False)
        self._emit()

    def set_date_bounds(self, first: date, last: date) -> None:
        """Start the date pickers (while their bound is off) at the log's first and last day."""
        for box, edit, day in ((self.use_since, self.since, first),
                               (self.use_until, self.until, last)):
            if not box.isChecked():
                edit.blockSignals(True)
                edit.setDate(_qdate(day))
                edit.blockSignals(False)

    def set_range(self, since: date | None, until: date | None) -> None:
        """Set the start-date range (UTC dates, inclusive; None turns a bound off)."""
        for box, edit, day in ((self.use_since, self.since, since),
                               (self.use_until, self.until, until)):
            if day is not None:
                edit.setDate(_qdate(day))
            box.setChecked(day is not None)

    def criteria(self) -> ReviewFilter:
        every_room = self.room.currentIndex() <= 0  # the first entry is "all rooms"
        return ReviewFilter(
            text=self.text.text(),
            room="" if every_room else self.room.currentText(),
            since=self.since.date().toPython() if self.use_since.isChecked() else None,
            until=self.until.date().toPython() if self.use_until.isChecked() else None,
            only_alarms=self.only_alarms.isChecked(),
            only_incomplete=self.only_incomplete.isChecked())

    def _emit(self, *_: object) -> None:
        self.changed.emit(self.criteria())
