"""Reading the dose log back: procedure summaries, pulses, events, alarms, patient history.

Totals are always *recomputed from the pulse and gap rows* (not taken from the procedure-end row),
summed in the order the rows were written, so that for an intact log they equal the
accumulator's running totals to the last bit; the totals the pipeline reported at the end are
kept beside them (``ProcedureSummary.reported``) for comparison. A procedure without an end row
(the process was killed, the machine lost power) is listed as incomplete with every pulse that
was committed.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta
from typing import Any

from fluoro.dicomtime import parse_dicom_datetime
from fluoro.dose.accumulator import DoseGap, DoseTotals, PulseDose
from fluoro.doselog.imported import (
    IMPORTED_EVENT,
    IMPORTED_PROCEDURE,
    SOURCE_RDSR,
    ImportedProcedure,
)
from fluoro.doselog.ledger import (
    ACK,
    ALARM,
    EVENT,
    GAP,
    METER_EVENT,
    METER_READING,
    NOTE,
    PROCEDURE_END,
    PROCEDURE_START,
    PULSE,
    parse_utc,
    utc_now,
)
from fluoro.doselog.records import (
    Acknowledgement,
    AlarmRecord,
    IrradiationEvent,
    NoteRecord,
    PatientHistory,
    ProcedureInfo,
    ProcedureSummary,
)
from fluoro.frame import Exposure


@dataclass(slots=True)
class _Sums:
    pulses: int = 0
    missing_pulses: int = 0
    measured_pulses: int = 0
    events: int = 0
    alarms: int = 0
    fluoro_time_s: float = 0.0
    kar_mgy: float = 0.0
    dap_gycm2: float = 0.0
    uids: list[str] = field(default_factory=list)


def _data(payload: str) -> dict[str, Any]:
    return json.loads(payload)["data"]


def pulse_from_data(data: dict[str, Any]) -> PulseDose:
    values = {f.name: data[f.name] for f in fields(PulseDose)}
    values["exposure"] = Exposure(**data["exposure"])
    return PulseDose(**values)


def gap_from_data(data: dict[str, Any]) -> DoseGap:
    return DoseGap(**{f.name: data[f.name] for f in fields(DoseGap)})


def pulses(conn: sqlite3.Connection, uid: str) -> list[PulseDose]:
    rows = conn.execute("SELECT payload FROM ledger WHERE procedure_uid = ? AND kind = ? "
                        "ORDER BY id", (uid, PULSE))
    return [pulse_from_data(_data(payload)) for (payload,) in rows]


def gaps(conn: sqlite3.Connection, uid: str) -> list[DoseGap]:
    rows = conn.execute("SELECT payload FROM ledger WHERE procedure_uid = ? AND kind = ? "
                        "ORDER BY id", (uid, GAP))
    return [gap_from_data(_data(payload)) for (payload,) in rows]


def events(conn: sqlite3.Connection, uid: str) -> list[IrradiationEvent]:
    sums: dict[int, tuple[int, float, float, float, float]] = {}
    for event, kar, dap, beam, t_s in conn.execute(  # summed in row order, as the accumulator
            "SELECT event, kar_mgy, dap_gycm2, beam_time_s, t_s FROM ledger "
            "WHERE procedure_uid = ? AND kind = ? ORDER BY id", (uid, PULSE)):
        n, k, d, b, end = sums.get(event, (0, 0.0, 0.0, 0.0, t_s))
        sums[event] = (n + 1, k + kar, d + dap, b + beam, max(end, t_s))
    result = []
    for (payload,) in conn.execute("SELECT payload FROM ledger WHERE procedure_uid = ? AND "
                                   "kind = ? ORDER BY id", (uid, EVENT)):
        d = _data(payload)
        n, kar, dap, beam, end = sums.get(d["event"], (0, 0.0, 0.0, 0.0, d["start_t_s"]))
        result.append(IrradiationEvent(d["event"], d["start_t_s"], d["first_seq"],
                                       Exposure(**d["technique"]), n, kar, dap, beam, end))
    return result


def alarms(conn: sqlite3.Connection, uid: str) -> list[AlarmRecord]:
    found: dict[int, AlarmRecord] = {}
    acks: dict[int, list[Acknowledgement]] = {}
    for row_id, kind, puid, wall, payload in conn.execute(
            "SELECT id, kind, procedure_uid, wall_time_utc, payload FROM ledger "
            "WHERE kind IN (?, ?) AND alarm_key IN "
            "(SELECT alarm_key FROM ledger WHERE procedure_uid = ? AND kind = ?) ORDER BY id",
            (ALARM, ACK, uid, ALARM)):
        d = _data(payload)
        if kind == ALARM and puid == uid:
            found[row_id] = AlarmRecord(row_id, d["key"], d["quantity"], d["threshold"],
                                        d["value"], d["t_s"], d["message"], parse_utc(wall))
        elif kind == ACK and d["alarm_row"] in found:
            acks.setdefault(d["alarm_row"], []).append(Acknowledgement(d["user"],
                                                                        parse_utc(wall)))
    return [AlarmRecord(**{**{f.name: getattr(a, f.name) for f in fields(AlarmRecord)},
                           "acks": tuple(acks.get(row_id, ()))})
            for row_id, a in found.items()]


def notes(conn: sqlite3.Connection, uid: str | None) -> list[NoteRecord]:
    rows = conn.execute("SELECT wall_time_utc, payload FROM ledger WHERE kind = ? AND "
                        "procedure_uid IS ? ORDER BY id", (NOTE, uid))
    return [NoteRecord(d["text"], d["author"], parse_utc(wall))
            for wall, d in ((wall, _data(payload)) for wall, payload in rows)]


def _sums(conn: sqlite3.Connection, uid: str | None = None) -> dict[str, _Sums]:
    """Per-procedure totals, summed in row order (the order the accumulator added them)."""
    where, args = ("procedure_uid = ? AND ", (uid,)) if uid is not None else ("", ())
    result: dict[str, _Sums] = {}
    for puid, kind, missing, measured, beam, kar, dap in conn.execute(
            "SELECT procedure_uid, kind, missing_pulses, measured, beam_time_s, kar_mgy, "
            f"dap_gycm2 FROM ledger WHERE {where}kind IN (?, ?, ?, ?) ORDER BY id",
            (*args, PULSE, GAP, EVENT, ALARM)):
        s = result.setdefault(puid, _Sums())
        if kind == EVENT:
            s.events += 1
        elif kind == ALARM:
            s.alarms += 1
        else:
            s.pulses += kind == PULSE
            s.missing_pulses += missing or 0
            s.measured_pulses += measured or 0
            s.fluoro_time_s += beam
            s.kar_mgy += kar
            s.dap_gycm2 += dap
    return result


def imported(conn: sqlite3.Connection, uid: str | None = None) -> dict[str, ImportedProcedure]:
    """The imported procedures (all, or the one ``uid``) from their ``imported_procedure`` and
    ``imported_event`` rows, by procedure UID."""
    where, args = ("AND procedure_uid = ? ", (uid,)) if uid is not None else ("", ())
    reports: dict[str, dict[str, Any]] = {}
    events: dict[str, list[dict[str, Any]]] = {}
    for puid, kind, payload in conn.execute(
            f"SELECT procedure_uid, kind, payload FROM ledger WHERE kind IN (?, ?) {where}"
            "ORDER BY id", (IMPORTED_PROCEDURE, IMPORTED_EVENT, *args)):
        if kind == IMPORTED_PROCEDURE:
            reports[puid] = _data(payload)
        else:
            events.setdefault(puid, []).append(_data(payload))
    return {puid: ImportedProcedure.from_rows(data, events.get(puid, []))
            for puid, data in reports.items()}


def _irradiation_end(report: ImportedProcedure) -> datetime | None:
    """End of the last irradiation event of a report (its start plus its duration)."""
    ends = []
    for event in report.events:
        start = parse_dicom_datetime(event.started)
        if start is not None:
            ends.append(start + timedelta(seconds=event.duration_s or 0.0))
    return max(ends) if ends else None


def procedures(conn: sqlite3.Connection, uid: str | None = None,
               patient_key: str | None = None) -> list[ProcedureSummary]:
    """Summaries in the order the procedures started (optionally one uid or one patient)."""
    where, args = "kind = ?", [PROCEDURE_START]
    if uid is not None:
        where, args = where + " AND procedure_uid = ?", [*args, uid]
    if patient_key is not None:
        where, args = where + " AND patient_key = ?", [*args, patient_key]
    starts = conn.execute(f"SELECT procedure_uid, payload FROM ledger WHERE {where} ORDER BY id",
                          args).fetchall()
    if not starts:
        return []
    if uid is None and patient_key is not None:  # a few procedures: sum each one's rows
        sums = {puid: s for puid, _ in starts for s in _sums(conn, puid).values()}
    else:
        sums = _sums(conn, uid)
    # one index lookup (procedure_uid, kind) per procedure, never a scan of the pulse rows
    reports = {puid: r for puid, _ in starts for r in imported(conn, puid).values()}
    ends: dict[str, tuple[str, dict[str, Any]]] = {}
    end_where, end_args = ("AND procedure_uid = ?", (uid,)) if uid is not None else ("", ())
    for puid, wall, payload in conn.execute(
            f"SELECT procedure_uid, wall_time_utc, payload FROM ledger WHERE kind = ? {end_where} "
            "ORDER BY id", (PROCEDURE_END, *end_args)):
        ends[puid] = (wall, _data(payload))
    result = []
    for puid, payload in starts:
        info = ProcedureInfo.from_data(_data(payload)["info"])
        s = sums.get(puid, _Sums())
        end = ends.get(puid)
        reported = anchor = ended = None
        if end is not None:
            ended = parse_utc(end[0])
            reported = DoseTotals(**end[1]["totals"])
            anchor = f"{end[1]['anchor']['rows']}:{end[1]['anchor']['hash']}"
        report = reports.get(puid)
        if report is not None:  # imported: the report's stated totals (no pulse rows)
            kar, dap, time_s, _ = report.summary_totals()
            result.append(ProcedureSummary(
                info, puid, info.patient_key, info.procedure_name, info.started_utc,
                _irradiation_end(report), 0, 0, 0, len(report.events), time_s, kar, dap,
                s.alarms, end is not None, reported, anchor, SOURCE_RDSR, report))
            continue
        result.append(ProcedureSummary(
            info, puid, info.patient_key, info.procedure_name, info.started_utc, ended,
            s.pulses, s.missing_pulses, s.measured_pulses, s.events, s.fluoro_time_s, s.kar_mgy,
            s.dap_gycm2, s.alarms, end is not None, reported, anchor))
    return result


def patient_history(conn: sqlite3.Connection, patient_key: str, weeks: float,
                    now: datetime | None, exclude_uid: str | None) -> PatientHistory:
    now = now if now is not None else utc_now()
    if now.tzinfo is None:
        raise ValueError(f"now={now!r}: expected a timezone-aware datetime")
    since = now - timedelta(weeks=weeks)
    kar = dap = 0.0
    count = 0
    for summary in procedures(conn, patient_key=patient_key):
        if summary.procedure_uid == exclude_uid or not since <= summary.started_utc <= now:
            continue
        kar += summary.kar_mgy
        dap += summary.dap_gycm2
        count += 1
    return PatientHistory(kar, dap, count)


@dataclass(frozen=True, slots=True)
class MeterRecord:
    """What a DAP meter reported during one procedure: ``readings`` and the last total
    (Gy·cm², the meter's count since its reset), link ``events`` by kind, and ``gaps`` — each
    disconnect that was followed by a reconnect — with their total duration in s."""

    readings: int
    last_total_gycm2: float | None
    first_total_gycm2: float | None
    events: dict[str, int]
    gaps: int
    gap_s: float


def meter_record(conn: sqlite3.Connection, uid: str) -> MeterRecord:
    rows = conn.execute("SELECT kind, payload FROM ledger WHERE procedure_uid = ? AND kind IN "
                        "(?, ?) ORDER BY id", (uid, METER_READING, METER_EVENT))
    readings, first, last = 0, None, None
    events: dict[str, int] = {}
    gaps, gap_s, down_ns = 0, 0.0, None
    for kind, payload in rows:
        data = _data(payload)
        if kind == METER_READING:
            readings += 1
            last = float(data["dap_total_gycm2"])
            first = last if first is None else first
            continue
        events[data["kind"]] = events.get(data["kind"], 0) + 1
        if data["kind"] == "disconnected" and down_ns is None:
            down_ns = int(data["t_host_ns"])
        elif data["kind"] == "connected" and down_ns is not None:
            gaps, gap_s = gaps + 1, gap_s + (int(data["t_host_ns"]) - down_ns) * 1e-9
            down_ns = None
    return MeterRecord(readings, last, first, events, gaps, gap_s)
