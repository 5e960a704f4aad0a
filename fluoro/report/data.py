"""What ``fluoro dose report`` reports: procedures selected by filters, and their aggregates.

Pure functions over ``ProcedureSummary`` lists (the log is read once by ``build_report``):

- per procedure: totals, alarms with acknowledgements, the source of the dose values (measured by
  the source or a DAP meter, modelled, or stated by an imported RDSR), the local DRL it is
  compared with and the quantities above it (ICRP Publication 135);
- per patient: procedures and totals in the selection, and the *cumulative* Ka,r (mGy) and DAP
  (Gy·cm²) over the ``weeks`` before each of the patient's selected procedures, counting every
  procedure of that patient in the log (any room, also before ``since``), flagged when it
  reaches the NCRP Report 168 (2010, Section 5) notification level of 3 Gy Ka,r / 300 Gy·cm²
  — the cumulative follow-up OpenREM calls a cumulative alert;
- per room: procedure count, median and 75th percentile of DAP (Gy·cm²) and fluoro time (s).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from fluoro.doselog import AlarmRecord, DoseLog, ProcedureSummary
from fluoro.report.drl import DrlEntry, DrlTable, Exceedance

__all__ = ["NCRP_NOTIFICATION_DAP_GYCM2", "NCRP_NOTIFICATION_KAR_MGY", "PatientRow",
           "ProcedureRow", "Report", "ReportFilter", "RoomRow", "build_report", "dose_source",
           "patient_rows", "percentile", "room_rows", "select"]

# NCRP Report 168 (2010), Section 5: first notification level for the patient's cumulative dose.
NCRP_NOTIFICATION_KAR_MGY = 3000.0
NCRP_NOTIFICATION_DAP_GYCM2 = 300.0
NO_ROOM = "(no room)"


@dataclass(frozen=True, slots=True)
class ReportFilter:
    """Which procedures a report covers: started in [``since_utc``, ``until_utc``) (either may
    be None: open), one ``patient_key``, one ``room`` (case-insensitive). ``weeks``: the window
    of the per-patient cumulative sums."""

    since_utc: datetime | None = None
    until_utc: datetime | None = None
    patient_key: str | None = None
    room: str | None = None
    weeks: float = 12.0

    def admits(self, p: ProcedureSummary) -> bool:
        if self.since_utc is not None and p.started_utc < self.since_utc:
            return False
        if self.until_utc is not None and p.started_utc >= self.until_utc:
            return False
        if self.patient_key is not None and p.patient_key != self.patient_key:
            return False
        return self.room is None or _room(p).casefold() == self.room.strip().casefold()

    def to_json(self) -> dict[str, object]:
        """``since_utc`` is included, ``before_utc`` (the ``until`` bound) excluded."""
        return {"since_utc": self.since_utc.isoformat() if self.since_utc else None,
                "before_utc": self.until_utc.isoformat() if self.until_utc else None,
                "patient_key": self.patient_key, "room": self.room, "weeks": self.weeks}


@dataclass(frozen=True, slots=True)
class ProcedureRow:
    """One selected procedure with what the report adds: its alarms, the source of its dose,
    its DRL entry, the quantities above it, and its patient's cumulative Ka,r (mGy) and DAP
    (Gy·cm²) over the ``weeks`` up to and including it (``window_*``)."""

    summary: ProcedureSummary
    alarms: tuple[AlarmRecord, ...]
    dose_source: str
    meter: bool
    drl: DrlEntry | None
    above_drl: tuple[Exceedance, ...]
    window_kar_mgy: float = 0.0
    window_dap_gycm2: float = 0.0
    window_procedures: int = 0

    @property
    def uid(self) -> str:
        return self.summary.procedure_uid

    @property
    def room(self) -> str:
        return _room(self.summary)

    @property
    def unacknowledged(self) -> int:
        return sum(1 for a in self.alarms if not a.acks)

    @property
    def notification(self) -> bool:
        """Whether the patient's cumulative dose had reached the NCRP 168 level here."""
        return (self.window_kar_mgy >= NCRP_NOTIFICATION_KAR_MGY
                or self.window_dap_gycm2 >= NCRP_NOTIFICATION_DAP_GYCM2)


@dataclass(frozen=True, slots=True)
class PatientRow:
    """A patient's selected procedures (count, Ka,r mGy, DAP Gy·cm² summed), the largest
    cumulative sums over ``weeks`` ending at one of them (``peak_*``, with the count and the
    end procedure), and the first selected procedure at which the NCRP 168 notification level
    was reached (None if never)."""

    patient_key: str
    procedures: int
    kar_mgy: float
    dap_gycm2: float
    peak_kar_mgy: float
    peak_dap_gycm2: float
    peak_procedures: int
    peak_at_utc: datetime
    notified_uid: str | None
    notified_utc: datetime | None

    @property
    def notification(self) -> bool:
        return self.notified_uid is not None


@dataclass(frozen=True, slots=True)
class RoomRow:
    """A room's procedure count, median and 75th-percentile DAP (Gy·cm²) and fluoro time (s)."""

    room: str
    procedures: int
    dap_median_gycm2: float
    dap_p75_gycm2: float
    fluoro_time_median_s: float
    fluoro_time_p75_s: float
    kar_median_mgy: float


@dataclass(slots=True)
class Report:
    """Everything a report format shows."""

    dose_log: str
    filters: ReportFilter
    drl: DrlTable
    procedures: list[ProcedureRow]
    patients: list[PatientRow] = field(default_factory=list)
    rooms: list[RoomRow] = field(default_factory=list)
    generated_utc: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def outliers(self) -> list[ProcedureRow]:
        """Procedures above their DRL, the largest ratio first."""
        found = [r for r in self.procedures if r.above_drl]
        return sorted(found, key=lambda r: -max(e.ratio for e in r.above_drl))


def _room(p: ProcedureSummary) -> str:
    return p.info.room.strip() or NO_ROOM


def select(procedures: Iterable[ProcedureSummary], filters: ReportFilter
           ) -> list[ProcedureSummary]:
    """The procedures the filters admit, in start order."""
    return sorted((p for p in procedures if filters.admits(p)), key=lambda p: p.started_utc)


def dose_source(p: ProcedureSummary, meter_readings: int = 0) -> str:
    """Where the dose values come from: ``"stated (RDSR)"`` for an imported report,
    ``"measured"`` when every logged pulse carries the source's or meter's value,
    ``"modelled"`` when none does, else ``"mixed (N of M pulses measured)"``; ``", DAP meter"``
    is added when a meter reported during the procedure."""
    if p.is_imported:
        return "stated (RDSR)"
    if p.pulses and p.measured_pulses >= p.pulses:
        text = "measured"
    elif p.measured_pulses == 0:
        text = "modelled"
    else:
        text = f"mixed ({p.measured_pulses} of {p.pulses} pulses measured)"
    return text + (", DAP meter" if meter_readings else "")


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0–100) with linear interpolation between order statistics (the
    method of ``numpy.percentile``'s default); 0.0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100.0
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def room_rows(rows: Iterable[ProcedureRow]) -> list[RoomRow]:
    """Per-room counts, median and p75 of DAP (Gy·cm²) and fluoro time (s), by room name."""
    by_room: dict[str, list[ProcedureSummary]] = {}
    for row in rows:
        by_room.setdefault(row.room, []).append(row.summary)
    result = []
    for room in sorted(by_room, key=str.casefold):
        group = by_room[room]
        dap = [p.dap_gycm2 for p in group]
        time_s = [p.fluoro_time_s for p in group]
        result.append(RoomRow(room, len(group), percentile(dap, 50), percentile(dap, 75),
                              percentile(time_s, 50), percentile(time_s, 75),
                              percentile([p.kar_mgy for p in group], 50)))
    return result


def window_sums(history: Sequence[ProcedureSummary], at: datetime, weeks: float
                ) -> tuple[float, float, int]:
    """Ka,r (mGy), DAP (Gy·cm²) and count of the procedures in ``history`` started in the
    ``weeks`` up to and including ``at``."""
    since = at - timedelta(weeks=weeks)
    inside = [p for p in history if since < p.started_utc <= at]
    return (sum(p.kar_mgy for p in inside), sum(p.dap_gycm2 for p in inside), len(inside))


def patient_rows(rows: Sequence[ProcedureRow]) -> list[PatientRow]:
    """Per-patient rows from procedure rows whose ``window_*`` are filled (see
    ``build_report``); procedures without a patient key (phantom, QA) are left out."""
    by_patient: dict[str, list[ProcedureRow]] = {}
    for row in rows:
        if row.summary.patient_key is not None:
            by_patient.setdefault(row.summary.patient_key, []).append(row)
    result = []
    for key, group in by_patient.items():
        peak = max(group, key=lambda r: (r.window_kar_mgy / NCRP_NOTIFICATION_KAR_MGY,
                                         r.window_dap_gycm2 / NCRP_NOTIFICATION_DAP_GYCM2))
        first = next((r for r in group if r.notification), None)
        result.append(PatientRow(
            key, len(group), sum(r.summary.kar_mgy for r in group),
            sum(r.summary.dap_gycm2 for r in group), peak.window_kar_mgy, peak.window_dap_gycm2,
            peak.window_procedures, peak.summary.started_utc,
            first.uid if first else None, first.summary.started_utc if first else None))
    return sorted(result, key=lambda r: (-r.peak_kar_mgy, r.patient_key))


def build_report(log: DoseLog, filters: ReportFilter, drl: DrlTable) -> Report:
    """Read the log once and assemble the report of the procedures ``filters`` admit."""
    everything = log.procedures()
    chosen = select(everything, filters)
    history: dict[str, list[ProcedureSummary]] = {}
    for p in everything:
        if p.patient_key is not None:
            history.setdefault(p.patient_key, []).append(p)
    rows = []
    for p in chosen:
        meter_readings = 0 if p.is_imported else log.meter_record(p.procedure_uid).readings
        entry = drl.match(p.procedure_name)
        above = drl.exceedances(entry, {"dap_gycm2": p.dap_gycm2,
                                        "fluoro_time_s": p.fluoro_time_s,
                                        "kar_mgy": p.kar_mgy})
        window = (window_sums(history[p.patient_key], p.started_utc, filters.weeks)
                  if p.patient_key is not None else (0.0, 0.0, 0))
        rows.append(ProcedureRow(p, tuple(log.alarms(p.procedure_uid)),
                                 dose_source(p, meter_readings), meter_readings > 0, entry,
                                 tuple(above), *window))
    return Report(str(log.path), filters, drl, rows, patient_rows(rows), room_rows(rows))
