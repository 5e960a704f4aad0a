"""The dose report as JSON: ``{"dose_log", "filters", "drl_source", "procedures", "patients",
"rooms", "outliers"}``, and one procedure's JSON (``procedure_json``).

``procedures`` holds ``procedure_json`` for each selected procedure (the shape
``fluoro dose report --json`` always had, and what the review window exports for one
procedure) with the report's additions under ``"review"``: the dose source, the DRL entry and
the quantities above it, and the patient's cumulative dose over the window. Units as
everywhere: Ka,r mGy, DAP Gy·cm², times s.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from fluoro.doselog import DoseLog, ProcedureSummary
from fluoro.report.data import PatientRow, ProcedureRow, Report, RoomRow

__all__ = ["procedure_json", "report_json"]


def procedure_json(log: DoseLog, p: ProcedureSummary) -> dict[str, Any]:
    """One procedure's totals, alarms and acknowledgements, as plain JSON values."""
    return {
        "procedure_uid": p.procedure_uid,
        "procedure_name": p.procedure_name,
        "patient_key": p.patient_key,
        "operator": p.info.operator,
        "room": p.info.room,
        "device": p.info.device,
        "reference_point": p.info.reference_point,
        "started_utc": p.started_utc.isoformat(),
        "ended_utc": p.ended_utc.isoformat() if p.ended_utc else None,
        "complete": p.complete,
        "pulses": p.pulses,
        "missing_pulses": p.missing_pulses,
        "measured_pulses": p.measured_pulses,
        "events": p.events,
        "fluoro_time_s": round(p.fluoro_time_s, 3),
        "kar_mgy": p.kar_mgy,
        "dap_gycm2": p.dap_gycm2,
        "anchor": p.anchor,
        "source": p.source,
        "imported": p.is_imported,
        "reference_point_code": p.info.reference_point_code,
        **(imported_json(p) if p.imported is not None else {}),
        **meter_json(log, p.procedure_uid),
        "alarms": [
            {"key": a.key, "quantity": a.quantity, "threshold": a.threshold, "value": a.value,
             "t_s": a.t_s, "message": a.message, "time_utc": a.wall_time_utc.isoformat(),
             "acknowledgements": [{"user": k.user, "time_utc": k.wall_time_utc.isoformat()}
                                  for k in a.acks]}
            for a in log.alarms(p.procedure_uid)
        ],
    }


def meter_json(log: DoseLog, uid: str) -> dict[str, Any]:
    """The DAP meter's record of a live procedure (absent when no meter was attached)."""
    meter = log.meter_record(uid)
    if not meter.readings and not meter.events:
        return {}
    return {"meter": {"readings": meter.readings, "dap_total_gycm2": meter.last_total_gycm2,
                      "first_total_gycm2": meter.first_total_gycm2, "events": meter.events,
                      "gaps": meter.gaps, "gap_s": round(meter.gap_s, 3)}}


def imported_json(p: ProcedureSummary) -> dict[str, Any]:
    """An imported procedure's report as stated: totals summed over planes (DAP Gy·cm², Ka,r
    mGy, times s), each plane, the sums over its events, and every event."""
    report = p.imported
    assert report is not None
    stated = report.stated_totals()
    *_, origin = report.summary_totals()
    return {
        "totals_from": origin,
        "fluoro_dap_gycm2": stated["fluoro_dap_gycm2"],
        "fluoro_kar_mgy": stated["fluoro_kar_mgy"],
        "acquisition_dap_gycm2": stated["acquisition_dap_gycm2"],
        "acquisition_kar_mgy": stated["acquisition_kar_mgy"],
        "acquisition_time_s": stated["acquisition_time_s"],
        "radiographic_frames": stated["radiographic_frames"],
        "stated": stated,
        "event_sums": report.event_sums(),
        "plane_count": len(report.planes),
        "planes": [asdict(plane) for plane in report.planes],
        "rdsr": {"sop_instance_uid": report.sop_instance_uid,
                 "study_instance_uid": report.study_instance_uid,
                 "file_name": report.file_name, "manufacturer": report.manufacturer,
                 "model": report.model, "device_serial": report.device_serial,
                 "device_observer_name": report.device_observer_name,
                 "completion_flag": report.completion_flag,
                 "time_zone_stated": report.time_zone_stated,
                 "warnings": list(report.warnings)},
        "irradiation_events": [asdict(event) for event in report.events],
    }


def review_json(r: ProcedureRow, weeks: float) -> dict[str, Any]:
    """What the report adds to one procedure's JSON."""
    return {
        "dose_source": r.dose_source,
        "meter": r.meter,
        "alarms_unacknowledged": r.unacknowledged,
        "drl": None if r.drl is None else {"type": r.drl.name, **r.drl.levels()},
        "above_drl": [{"quantity": e.quantity, "value": e.value, "level": e.level,
                       "ratio": round(e.ratio, 4)} for e in r.above_drl],
        "patient_window": None if r.summary.patient_key is None else {
            "weeks": weeks, "kar_mgy": r.window_kar_mgy, "dap_gycm2": r.window_dap_gycm2,
            "procedures": r.window_procedures, "ncrp_notification": r.notification},
    }


def patient_json(p: PatientRow) -> dict[str, Any]:
    return {"patient_key": p.patient_key, "procedures": p.procedures, "kar_mgy": p.kar_mgy,
            "dap_gycm2": p.dap_gycm2, "window_peak_kar_mgy": p.peak_kar_mgy,
            "window_peak_dap_gycm2": p.peak_dap_gycm2,
            "window_peak_procedures": p.peak_procedures,
            "window_peak_at_utc": p.peak_at_utc.isoformat(),
            "ncrp_notification": p.notification, "notified_procedure_uid": p.notified_uid,
            "notified_utc": p.notified_utc.isoformat() if p.notified_utc else None}


def room_json(r: RoomRow) -> dict[str, Any]:
    return {"room": r.room, "procedures": r.procedures, "dap_median_gycm2": r.dap_median_gycm2,
            "dap_p75_gycm2": r.dap_p75_gycm2, "fluoro_time_median_s": r.fluoro_time_median_s,
            "fluoro_time_p75_s": r.fluoro_time_p75_s, "kar_median_mgy": r.kar_median_mgy}


def report_json(report: Report, procedures: list[dict[str, Any]]) -> dict[str, Any]:
    """The document; ``procedures``: ``procedure_json`` of each row of ``report``, in order."""
    weeks = report.filters.weeks
    docs = [{**doc, "review": review_json(r, weeks)}
            for doc, r in zip(procedures, report.procedures, strict=True)]
    return {
        "dose_log": report.dose_log,
        "filters": report.filters.to_json(),
        "drl_source": report.drl.source,
        "procedures": docs,
        "patients": [patient_json(p) for p in report.patients],
        "rooms": [room_json(r) for r in report.rooms],
        "outliers": [{"procedure_uid": r.uid, "procedure_name": r.summary.procedure_name,
                      "started_utc": r.summary.started_utc.isoformat(), "room": r.room,
                      "drl_type": r.drl.name if r.drl else None,
                      "above_drl": review_json(r, weeks)["above_drl"]}
                     for r in report.outliers],
    }
