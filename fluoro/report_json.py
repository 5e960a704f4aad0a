"""The dose report as JSON: ``{"dose_log", "filters", "drl_source", "procedures", "patients",
"rooms", "outliers"}``.

``procedures`` holds ``fluoro.cli_dose.procedure_json`` for each selected procedure (the shape
``fluoro dose report --json`` always had) with the report's additions under ``"review"``: the
dose source, the DRL entry and the quantities above it, and the patient's cumulative dose over
the window. Units as everywhere: Ka,r mGy, DAP Gy·cm², times s.
"""

from __future__ import annotations

from typing import Any

from fluoro.report_data import PatientRow, ProcedureRow, Report, RoomRow

__all__ = ["report_json"]


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
