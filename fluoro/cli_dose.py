"""``fluoro dose ...``: verify and report on a dose log (read-only; never changes the log)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from fluoro.doselog import DoseLog, Head, ProcedureSummary, verify
from fluoro.errors import InputError

EXIT_FAILED = 1


def add_dose_parser(sub: Any) -> None:
    """Add ``dose verify`` and ``dose report`` to the ``fluoro`` sub-command parsers."""
    dose = sub.add_parser("dose", help="verify and report on a dose log",
                          description="Read a dose log: verify its hash chain, report its "
                                      "procedures.")
    dose_sub = dose.add_subparsers(dest="dose_command", required=True,
                                   parser_class=type(dose))
    check = dose_sub.add_parser("verify", help="recompute the hash chain; name the first bad row")
    check.add_argument("--db", type=Path, required=True, metavar="PATH", help="the dose log")
    check.add_argument("--anchor", metavar="ROWS:HASH",
                       help="a head printed earlier (run summary); fails if rows after it are gone")
    check.set_defaults(func=cmd_verify)
    report = dose_sub.add_parser("report", help="per-procedure totals, alarms, acknowledgements")
    report.add_argument("--db", type=Path, required=True, metavar="PATH", help="the dose log")
    report.add_argument("--json", action="store_true", help="JSON instead of a table")
    report.set_defaults(func=cmd_report)


def _existing(path: Path) -> Path:
    if not path.exists():
        raise InputError(f"{path}: no such dose log")
    return path


def cmd_verify(args: argparse.Namespace) -> int:
    anchor = None
    if args.anchor is not None:
        try:
            anchor = Head.parse(args.anchor)
        except ValueError:
            raise InputError(f"--anchor {args.anchor!r}: expected ROWS:HASH as printed by "
                             "fluoro run") from None
    result = verify(_existing(args.db), anchor)
    print(f"{args.db}: {result}", flush=True)
    return 0 if result.ok else EXIT_FAILED


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
        "alarms": [
            {"key": a.key, "quantity": a.quantity, "threshold": a.threshold, "value": a.value,
             "t_s": a.t_s, "message": a.message, "time_utc": a.wall_time_utc.isoformat(),
             "acknowledgements": [{"user": k.user, "time_utc": k.wall_time_utc.isoformat()}
                                  for k in a.acks]}
            for a in log.alarms(p.procedure_uid)
        ],
    }


def cmd_report(args: argparse.Namespace) -> int:
    with DoseLog.open_readonly(_existing(args.db)) as log:
        procedures = [procedure_json(log, p) for p in log.procedures()]
    if args.json:
        json.dump({"dose_log": str(args.db), "procedures": procedures}, sys.stdout, indent=2)
        sys.stdout.write("\n")
        return 0
    header = (f"{'started (UTC)':<20} {'procedure':<24} {'pulses':>7} {'events':>6} "
              f"{'fluoro':>7} {'Ka,r mGy':>10} {'DAP Gy·cm²':>11} {'alarms':>6}  state")
    print(header)
    for p in procedures:
        state = "complete" if p["complete"] else "INCOMPLETE"
        if p["missing_pulses"]:
            state += f", {p['missing_pulses']} missing pulses"
        minutes, seconds = divmod(int(p["fluoro_time_s"]), 60)
        print(f"{p['started_utc'][:19]:<20} {(p['procedure_name'] or '-')[:24]:<24} "
              f"{p['pulses']:>7} {p['events']:>6} {minutes:>4}:{seconds:02d} "
              f"{p['kar_mgy']:>10.3f} {p['dap_gycm2']:>11.4f} {len(p['alarms']):>6}  {state}")
    return 0
