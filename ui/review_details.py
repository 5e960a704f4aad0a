"""The selected procedure in the review window: its totals in large type, and its alarms with
who acknowledged them and when (an alarm nobody acknowledged is shown NOT acknowledged, in red).

Totals: Ka,r (mGy, at the procedure's reference point), DAP (Gy·cm²), fluoroscopy time (mm:ss of
beam-on time, 21 CFR 1020.32(h)). Alarm times: source time since the procedure's clock origin
(mm:ss) and the wall time the log recorded (UTC).
"""

from __future__ import annotations

from collections.abc import Sequence

from PySide6 import QtCore, QtGui, QtWidgets

from fluoro.doselog import AlarmRecord, ProcedureSummary
from ui.review_model import mm_ss

__all__ = ["ALARM_COLUMNS", "NOT_ACKNOWLEDGED", "AlarmList", "ProcedureDetails", "ack_text"]

NOT_ACKNOWLEDGED = "NOT acknowledged"
ALARM_COLUMNS = ("at", "alarm", "acknowledged")
NOT_ACK_BACKGROUND = "#9a0016"
VALUE_STYLE = "font-size: 22pt; font-weight: 700; color: #f0f0f0;"
CAPTION_STYLE = "font-size: 11pt; color: #a8b0b8;"
TITLE_STYLE = "font-size: 15pt; font-weight: 700; color: #f0f0f0;"
SMALL_STYLE = "font-size: 11pt; color: #a8b0b8;"


def _utc(moment: object) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S")  # type: ignore[attr-defined]


def ack_text(alarm: AlarmRecord) -> str:
    """Who acknowledged ``alarm`` and when (UTC), one line each: ``"RSO Lindqvist\n10:00:12"``
    (the date too when it is not the day the alarm was raised), or ``NOT acknowledged``."""
    if not alarm.acks:
        return NOT_ACKNOWLEDGED
    lines = []
    for ack in alarm.acks:
        same_day = ack.wall_time_utc.date() == alarm.wall_time_utc.date()
        when = ack.wall_time_utc.strftime("%H:%M:%S" if same_day else "%Y-%m-%d %H:%M:%S")
        lines.append(f"{ack.user}\n{when} UTC")
    return "\n".join(lines)


class ProcedureDetails(QtWidgets.QFrame):
    """Name, UID, device, reference point and the totals of one procedure."""

    def __init__(self) -> None:
        super().__init__()
        self.setStyleSheet("QFrame { background: #15191d; }")
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(12, 8, 12, 8)
        self.title = QtWidgets.QLabel("no procedure selected")
        self.title.setStyleSheet(TITLE_STYLE)
        self.title.setWordWrap(True)
        self.subtitle = QtWidgets.QLabel("")
        self.subtitle.setStyleSheet(SMALL_STYLE)
        self.subtitle.setWordWrap(True)
        self.subtitle.setTextInteractionFlags(
            QtCore.Qt.TextInteractionFlag.TextSelectableByMouse)
        layout.addWidget(self.title)
        layout.addWidget(self.subtitle)
        totals = QtWidgets.QGridLayout()
        self.values: dict[str, QtWidgets.QLabel] = {}
        for column, (key, caption) in enumerate((("kar", "Ka,r (mGy)"), ("dap", "DAP (Gy·cm²)"),
                                                 ("time", "fluoro time"),
                                                 ("pulses", "pulses / events"))):
            label = QtWidgets.QLabel(caption)
            label.setStyleSheet(CAPTION_STYLE)
            value = QtWidgets.QLabel("-")
            value.setStyleSheet(VALUE_STYLE)
            totals.addWidget(label, 0, column)
            totals.addWidget(value, 1, column)
            self.values[key] = value
        layout.addLayout(totals)

    def show_procedure(self, s: ProcedureSummary | None) -> None:
        if s is None:
            self.title.setText("no procedure selected")
            self.subtitle.setText("")
            for value in self.values.values():
                value.setText("-")
            return
        state = "" if s.complete else "  —  INCOMPLETE (no end recorded)"
        source = "  —  imported RDSR" if s.is_imported else ""
        self.title.setText(f"{s.procedure_name or '(unnamed procedure)'}{state}{source}")
        ended = _utc(s.ended_utc) if s.ended_utc else "—"
        self.subtitle.setText(
            f"room {s.info.room or '-'} · {s.info.device or 'device not recorded'} · operator "
            f"{s.info.operator or '-'}\nstarted {_utc(s.started_utc)} UTC · ended {ended}\n"
            f"UID {s.procedure_uid}\npatient key {s.patient_key or '(none: QA / phantom)'}\n"
            f"reference point: {s.info.reference_point}")
        self.values["kar"].setText(f"{s.kar_mgy:.2f}")
        self.values["dap"].setText(f"{s.dap_gycm2:.3f}")
        self.values["time"].setText(mm_ss(s.fluoro_time_s))
        pulses = "—" if s.is_imported else str(s.pulses)
        self.values["pulses"].setText(f"{pulses} / {s.events}")


class AlarmList(QtWidgets.QTableWidget):
    """One row per alarm of the selected procedure, in the order raised."""

    def __init__(self) -> None:
        super().__init__(0, len(ALARM_COLUMNS))
        self.setHorizontalHeaderLabels(ALARM_COLUMNS)
        self.verticalHeader().setVisible(False)
        self.setEditTriggers(QtWidgets.QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setSelectionBehavior(QtWidgets.QAbstractItemView.SelectionBehavior.SelectRows)
        self.setWordWrap(True)
        header = self.horizontalHeader()
        header.setSectionResizeMode(0, QtWidgets.QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QtWidgets.QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(2, QtWidgets.QHeaderView.ResizeMode.ResizeToContents)
        self.setHorizontalScrollBarPolicy(QtCore.Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.empty_text = "no alarms"

    def show_alarms(self, alarms: Sequence[AlarmRecord], *, t0_s: float = 0.0) -> None:
        """List ``alarms``: when (mm:ss after ``t0_s``, s on the source clock, and the wall time
        raised, UTC), the message, and the acknowledgements (NOT acknowledged in red)."""
        self.setRowCount(len(alarms))
        bold = QtGui.QFont()
        bold.setBold(True)
        for row, alarm in enumerate(alarms):
            at = f"{mm_ss(max(0.0, alarm.t_s - t0_s))}\n{alarm.wall_time_utc:%H:%M:%S} UTC"
            cells = (at, alarm.message, ack_text(alarm))
            for column, text in enumerate(cells):
                item = QtWidgets.QTableWidgetItem(text)
                item.setToolTip(f"{alarm.key}: {alarm.quantity} {alarm.value:g} (threshold "
                                f"{alarm.threshold:g}), raised {_utc(alarm.wall_time_utc)} UTC")
                if not alarm.acks and column == 2:
                    item.setBackground(QtGui.QColor(NOT_ACK_BACKGROUND))
                    item.setForeground(QtGui.QColor("white"))
                    item.setFont(bold)
                self.setItem(row, column, item)
        self.resizeRowsToContents()

    def rows_text(self) -> list[list[str]]:
        """What the list shows, row by row (tests, copy)."""
        return [[self.item(r, c).text() for c in range(self.columnCount())]
                for r in range(self.rowCount())]
