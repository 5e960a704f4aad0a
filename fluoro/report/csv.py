"""The dose report as CSV: one row per selected procedure, totals and flags.

Columns (``COLUMNS``, in this order; empty where a value does not apply):

==========================  =====================================================================
procedure_uid               DICOM UID of the procedure
started_utc, ended_utc      ISO 8601, UTC (ended: empty when the procedure has no end)
room, device, operator      as recorded when the procedure started
procedure_name              free text, matched against the DRL patterns
patient_key                 pseudonymous key (never the patient ID); empty for phantom / QA runs
origin                      ``live`` (recorded pulse by pulse) or ``rdsr-import``
dose_source                 ``measured``, ``modelled``, ``mixed (N of M pulses measured)`` or
                            ``stated (RDSR)``, plus ``, DAP meter`` when a meter reported
complete                    ``true``/``false``: whether the procedure has an end row
pulses, missing_pulses      logged pulses; pulses numbered by the source but never received
measured_pulses             pulses whose dose came from the source or a meter
events                      irradiation events (DICOM TID 10003)
fluoro_time_s               beam-on time, s (21 CFR 1020.32(h)), 3 decimals
kar_mgy                     Ka,r at the reference point, mGy (6 significant digits, as all doses)
dap_gycm2                   DAP (air-kerma–area product), Gy·cm²
alarms, alarms_unacknowledged  alarms raised; of them, never acknowledged
drl_type                    the DRL entry the name matched (ICRP 135 local DRLs), empty if none
drl_dap_gycm2, drl_fluoro_time_s, drl_kar_mgy  that entry's levels (empty where not set)
above_drl                   quantities above their DRL, ``;``-separated (``dap_gycm2;...``)
window_weeks                the per-patient window, weeks
window_kar_mgy, window_dap_gycm2, window_procedures
                            the patient's cumulative Ka,r, DAP and procedure count over the
                            window up to and including this procedure (all rooms)
ncrp_notification           ``true`` when that cumulative dose reached the NCRP Report 168
                            notification level (Ka,r 3000 mGy or DAP 300 Gy·cm²)
==========================  =====================================================================
"""

from __future__ import annotations

import csv
import io

from fluoro.report.data import ProcedureRow, Report

__all__ = ["COLUMNS", "render_csv"]

COLUMNS = (
    "procedure_uid", "started_utc", "ended_utc", "room", "device", "operator", "procedure_name",
    "patient_key", "origin", "dose_source", "complete", "pulses", "missing_pulses",
    "measured_pulses", "events", "fluoro_time_s", "kar_mgy", "dap_gycm2", "alarms",
    "alarms_unacknowledged", "drl_type", "drl_dap_gycm2", "drl_fluoro_time_s", "drl_kar_mgy",
    "above_drl", "window_weeks", "window_kar_mgy", "window_dap_gycm2", "window_procedures",
    "ncrp_notification",
)


def _opt(value: float | None) -> str:
    return "" if value is None else _g(value)


def _g(value: float) -> str:
    """Six significant digits: more than any dosimeter gives, without float noise."""
    return f"{value:.6g}"


def _row(r: ProcedureRow, weeks: float) -> list[str]:
    p, drl = r.summary, r.drl
    has_key = p.patient_key is not None
    return [
        p.procedure_uid, p.started_utc.isoformat(), p.ended_utc.isoformat() if p.ended_utc else "",
        p.info.room, p.info.device, p.info.operator, p.procedure_name, p.patient_key or "",
        p.source, r.dose_source, str(p.complete).lower(), str(p.pulses), str(p.missing_pulses),
        str(p.measured_pulses), str(p.events), f"{p.fluoro_time_s:.3f}", _g(p.kar_mgy),
        _g(p.dap_gycm2), str(len(r.alarms)), str(r.unacknowledged), drl.name if drl else "",
        _opt(drl.dap_gycm2 if drl else None), _opt(drl.fluoro_time_s if drl else None),
        _opt(drl.kar_mgy if drl else None), ";".join(e.quantity for e in r.above_drl),
        f"{weeks:g}", _g(r.window_kar_mgy) if has_key else "",
        _g(r.window_dap_gycm2) if has_key else "", str(r.window_procedures) if has_key else "",
        str(r.notification).lower(),
    ]


def render_csv(report: Report) -> str:
    """The CSV text (header row, then one row per procedure in start order)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for r in report.procedures:
        writer.writerow(_row(r, report.filters.weeks))
    return out.getvalue()
