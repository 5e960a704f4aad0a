"""The procedure table of the dose review window: a Qt table model over the dose log's
procedure summaries, and the filters the radiation safety officer narrows it with.

Columns carry their unit in the title (Ka,r in mGy at the procedure's reference point, DAP in
Gy·cm², fluoroscopy time as mm:ss of beam-on time, 21 CFR 1020.32(h)). Start times are shown in
UTC, as the log stores them, and the date filters compare UTC dates. Sorting uses the raw values
(``SORT_ROLE``), never the formatted text, so 10.5 mGy sorts above 9.8 mGy.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from PySide6 import QtCore, QtGui

from fluoro.doselog import AlarmRecord, ProcedureSummary

__all__ = ["COLUMNS", "COLUMN_INDEX", "SORT_ROLE", "SUMMARY_ROLE", "Column",
           "ProcedureFilterProxy", "ProcedureTableModel", "ReviewFilter", "Row", "accepts",
           "count_unacknowledged", "mm_ss", "short_key", "visible_rows"]

SORT_ROLE = QtCore.Qt.ItemDataRole.UserRole
SUMMARY_ROLE = QtCore.Qt.ItemDataRole.UserRole + 1
INCOMPLETE_COLOUR = "#ff5050"
UNACKNOWLEDGED_COLOUR = "#ffb020"
IMPORTED_COLOUR = "#8fb8e8"
NO_PATIENT = "— (QA)"


def mm_ss(seconds: float) -> str:
    """Beam-on time ``seconds`` (s) as mm:ss, whole seconds truncated (a microsecond of
    tolerance absorbs the rounding of summed pulse times); minutes go on past 59 (``75:02``)."""
    whole = int(seconds + 1e-6)
    return f"{whole // 60:02d}:{whole % 60:02d}"


def short_key(patient_key: str | None) -> str:
    """The first 8 hex digits of the pseudonymous patient key (enough to tell patients apart
    in a day's list); procedures without a patient (phantom, QA) show ``— (QA)``."""
    return f"{patient_key[:8]}…" if patient_key else NO_PATIENT


@dataclass(frozen=True, slots=True)
class Row:
    """One procedure as the table shows it: its summary and its unacknowledged alarm count."""

    summary: ProcedureSummary
    unacknowledged: int = 0


def _pulses_text(s: ProcedureSummary) -> str:
    if s.is_imported:
        return "—"
    return f"{s.pulses} (+{s.missing_pulses} missing)" if s.missing_pulses else str(s.pulses)


def _alarms_text(r: Row) -> str:
    count = r.summary.alarms
    return f"{count} ({r.unacknowledged} not ack.)" if r.unacknowledged else str(count)


@dataclass(frozen=True, slots=True)
class Column:
    """A table column: its title (with unit; the CSV header), shown text, sort value,
    right-aligned (numbers) or not, and the header the table shows (the title on two lines
    where that keeps the column narrow)."""

    title: str
    text: Callable[[Row], str]
    sort_value: Callable[[Row], Any]
    numeric: bool = False
    header: str = ""


COLUMNS: tuple[Column, ...] = (
    Column("start (UTC)", lambda r: r.summary.started_utc.strftime("%Y-%m-%d %H:%M"),
           lambda r: r.summary.started_utc.timestamp()),
    Column("room", lambda r: r.summary.info.room, lambda r: r.summary.info.room.lower()),
    Column("procedure", lambda r: r.summary.procedure_name,
           lambda r: r.summary.procedure_name.lower()),
    Column("patient", lambda r: short_key(r.summary.patient_key),
           lambda r: r.summary.patient_key or ""),
    Column("operator", lambda r: r.summary.info.operator,
           lambda r: r.summary.info.operator.lower()),
    Column("pulses", lambda r: _pulses_text(r.summary), lambda r: r.summary.pulses, True),
    Column("events", lambda r: str(r.summary.events), lambda r: r.summary.events, True),
    Column("fluoro time", lambda r: mm_ss(r.summary.fluoro_time_s),
           lambda r: r.summary.fluoro_time_s, True, "fluoro\ntime"),
    Column("Ka,r (mGy)", lambda r: f"{r.summary.kar_mgy:.2f}", lambda r: r.summary.kar_mgy, True,
           "Ka,r\n(mGy)"),
    Column("DAP (Gy·cm²)", lambda r: f"{r.summary.dap_gycm2:.3f}",
           lambda r: r.summary.dap_gycm2, True, "DAP\n(Gy·cm²)"),
    Column("alarms", _alarms_text, lambda r: (r.summary.alarms, r.unacknowledged), True),
    Column("state", lambda r: "complete" if r.summary.complete else "INCOMPLETE",
           lambda r: r.summary.complete),
    Column("source", lambda r: "imported" if r.summary.is_imported else "live",
           lambda r: r.summary.is_imported),
)
COLUMN_INDEX = {column.title: i for i, column in enumerate(COLUMNS)}


def count_unacknowledged(alarms: Sequence[AlarmRecord]) -> int:
    return sum(1 for alarm in alarms if not alarm.acks)


class ProcedureTableModel(QtCore.QAbstractTableModel):
    """The procedures of one dose log, one per row, in start order (sort through a proxy)."""

    def __init__(self, rows: Sequence[Row] = (), parent: QtCore.QObject | None = None) -> None:
        super().__init__(parent)
        self._rows: list[Row] = list(rows)

    def set_rows(self, rows: Sequence[Row]) -> None:
        self.beginResetModel()
        self._rows = list(rows)
        self.endResetModel()

    def row(self, index: int) -> Row:
        return self._rows[index]

    def rowCount(self, parent: QtCore.QModelIndex | None = None) -> int:  # noqa: N802
        return 0 if parent is not None and parent.isValid() else len(self._rows)

    def columnCount(self, parent: QtCore.QModelIndex | None = None) -> int:  # noqa: N802
        return 0 if parent is not None and parent.isValid() else len(COLUMNS)

    def headerData(self, section: int, orientation: QtCore.Qt.Orientation,  # noqa: N802
                   role: int = QtCore.Qt.ItemDataRole.DisplayRole) -> Any:
        if (orientation == QtCore.Qt.Orientation.Horizontal
                and role == QtCore.Qt.ItemDataRole.DisplayRole):
            return COLUMNS[section].header or COLUMNS[section].title
        return None

    def data(self, index: QtCore.QModelIndex,
             role: int = QtCore.Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        row, column = self._rows[index.row()], COLUMNS[index.column()]
        roles = QtCore.Qt.ItemDataRole
        if role == roles.DisplayRole:
            return column.text(row)
        if role == SORT_ROLE:
            return column.sort_value(row)
        if role == SUMMARY_ROLE:
            return row.summary
        if role == roles.TextAlignmentRole:
            horizontal = (QtCore.Qt.AlignmentFlag.AlignRight if column.numeric
                          else QtCore.Qt.AlignmentFlag.AlignLeft)
            return horizontal | QtCore.Qt.AlignmentFlag.AlignVCenter
        if role == roles.ForegroundRole:
            return self._colour(row, column)
        if role == roles.ToolTipRole:
            s = row.summary
            return (f"procedure UID {s.procedure_uid}\npatient key {s.patient_key or '(none)'}\n"
                    f"device {s.info.device or '-'}\nreference point: {s.info.reference_point}")
        return None

    @staticmethod
    def _colour(row: Row, column: Column) -> QtGui.QColor | None:
        if column.title == "state" and not row.summary.complete:
            return QtGui.QColor(INCOMPLETE_COLOUR)
        if column.title == "alarms" and row.unacknowledged:
            return QtGui.QColor(UNACKNOWLEDGED_COLOUR)
        if column.title == "source" and row.summary.is_imported:
            return QtGui.QColor(IMPORTED_COLOUR)
        return None


@dataclass(frozen=True, slots=True)
class ReviewFilter:
    """What the table shows: ``text`` matched case-insensitively in the procedure name,
    operator, patient key and procedure UID; ``room`` exactly ("" = every room); ``since`` and
    ``until`` UTC dates, both inclusive (None = open); only procedures with alarms; only
    incomplete ones (no end row: the recording process died)."""

    text: str = ""
    room: str = ""
    since: date | None = None
    until: date | None = None
    only_alarms: bool = False
    only_incomplete: bool = False


def accepts(summary: ProcedureSummary, criteria: ReviewFilter) -> bool:
    """Whether ``summary`` passes every criterion of ``criteria``."""
    needle = criteria.text.strip().lower()
    if needle and not any(needle in (field or "").lower() for field in (
            summary.procedure_name, summary.info.operator, summary.patient_key,
            summary.procedure_uid)):
        return False
    if criteria.room and summary.info.room != criteria.room:
        return False
    day = summary.started_utc.date()
    if criteria.since is not None and day < criteria.since:
        return False
    if criteria.until is not None and day > criteria.until:
        return False
    if criteria.only_alarms and not summary.alarms:
        return False
    return not (criteria.only_incomplete and summary.complete)


class ProcedureFilterProxy(QtCore.QSortFilterProxyModel):
    """Filters rows with ``accepts`` and sorts them by their raw values."""

    def __init__(self, parent: QtCore.QObject | None = None) -> None:
        super().__init__(parent)
        self.criteria = ReviewFilter()
        self.setSortRole(SORT_ROLE)

    def set_filter(self, criteria: ReviewFilter) -> None:
        self.beginFilterChange()
        self.criteria = criteria
        self.endFilterChange(QtCore.QSortFilterProxyModel.Direction.Rows)

    def filterAcceptsRow(self, source_row: int,  # noqa: N802 (Qt naming)
                         source_parent: QtCore.QModelIndex) -> bool:
        model = self.sourceModel()
        assert isinstance(model, ProcedureTableModel)
        return accepts(model.row(source_row).summary, self.criteria)

    def lessThan(self, left: QtCore.QModelIndex,  # noqa: N802 (Qt naming)
                 right: QtCore.QModelIndex) -> bool:
        return left.data(SORT_ROLE) < right.data(SORT_ROLE)

    def summary_at(self, proxy_row: int) -> ProcedureSummary:
        return self.index(proxy_row, 0).data(SUMMARY_ROLE)


def visible_rows(proxy: QtCore.QAbstractItemModel) -> list[list[str]]:
    """The shown text of every row the (filtered, sorted) ``proxy`` shows, in its order."""
    return [[proxy.index(r, c).data() for c in range(proxy.columnCount())]
            for r in range(proxy.rowCount())]
