"""``fluoro dose ...``: verify and report on a dose log, export and import RDSRs.

``verify``, ``report`` and ``export-rdsr`` only read the log; ``import-rdsr`` appends imported
procedures to it (``fluoro.rdsr.ingest``), creating the log if needed.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from fluoro.doselog import DoseLog, Head, verify
from fluoro.errors import InputError

EXIT_FAILED = 1


def add_dose_parser(sub: Any) -> None:
    """Add ``dose verify|report|export-rdsr|import-rdsr`` to the ``fluoro`` sub-commands."""
    dose = sub.add_parser("dose", help="verify, report on, export from and import into a dose log",
                          description="The dose log: verify its hash chain, report its "
                                      "procedures, export a procedure as a DICOM RDSR, import "
                                      "other systems' RDSRs.")
    dose_sub = dose.add_subparsers(dest="dose_command", required=True,
                                   parser_class=type(dose))
    check = dose_sub.add_parser("verify", help="recompute the hash chain; name the first bad row")
    check.add_argument("--db", type=dose_log_target, required=True, metavar="PATH|URL",
                       help="the dose log")
    check.add_argument("--anchor", metavar="ROWS:HASH",
                       help="a head printed earlier (run summary); fails if rows after it are gone")
    check.set_defaults(func=cmd_verify)
    _add_report_parser(dose_sub)
    export = dose_sub.add_parser(
        "export-rdsr", help="write one procedure as a DICOM X-Ray Radiation Dose SR",
        description="Write one procedure as a DICOM X-Ray Radiation Dose SR (TID 10001).")
    export.add_argument("--db", type=dose_log_target, required=True, metavar="PATH|URL",
                       help="the dose log")
    export.add_argument("--procedure", required=True, metavar="UID",
                        help="procedure UID (see fluoro dose report)")
    export.add_argument("--out", type=Path, required=True, metavar="FILE.dcm",
                        help="the RDSR file to write")
    export.set_defaults(func=cmd_export_rdsr)
    imp = dose_sub.add_parser(
        "import-rdsr", help="import X-Ray Radiation Dose SRs from other systems",
        description="Import projection X-ray dose reports (RDSR, TID 10001) as imported "
                    "procedures. Every file is read fully first: one bad file imports nothing.")
    imp.add_argument("files", nargs="+", type=Path, metavar="FILE", help="RDSR files")
    imp.add_argument("--db", type=dose_log_target, required=True, metavar="PATH",
                     help="the dose log (created if absent)")
    imp.set_defaults(func=cmd_import_rdsr)


def dose_log_target(text: str) -> Path | str:
    """``--db``/``--dose-log``: a PostgreSQL URL stays text, anything else is a file path."""
    return text if text.startswith(("postgresql://", "postgres://")) else Path(text)


def _existing(target: Path | str) -> Path | str:
    if isinstance(target, Path) and not target.exists():
        raise InputError(f"{target}: no such dose log")
    return target


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


def cmd_export_rdsr(args: argparse.Namespace) -> int:
    from fluoro.rdsr.export import export_rdsr

    with DoseLog.open_readonly(_existing(args.db)) as log:
        p = log.procedure(args.procedure)
        out = export_rdsr(log, args.procedure, args.out)
    print(f"{out}: X-Ray Radiation Dose SR of procedure {p.procedure_uid} ({p.events} events, "
          f"Ka,r {p.kar_mgy:.4g} mGy, DAP {p.dap_gycm2:.4g} Gy·cm², fluoro time "
          f"{p.fluoro_time_s:.1f} s)", flush=True)
    return 0


def cmd_import_rdsr(args: argparse.Namespace) -> int:
    from fluoro.doselog.pseudonym import load_or_create_site_salt, patient_key
    from fluoro.paths import site_key_file
    from fluoro.rdsr.ingest import read_reports, store_reports

    salt: list[bytes] = []

    def key_of(patient_id: str) -> str:  # the site secret is read only when a report has an ID
        if not salt:
            site_key_file().parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            salt.append(load_or_create_site_salt(site_key_file()))
        return patient_key(patient_id, salt[0])

    reports = read_reports(args.files, key_of)  # every file fully, before the log is touched
    with DoseLog.create_or_open(args.db) as log:
        done = store_reports(log, reports)
        for path, uid, head in done:
            if head is None:
                print(f"{path}: already in the dose log as procedure {uid}; skipped")
                continue
            p = log.procedure(uid)
            print(f"{path}: imported as procedure {uid} ({p.events} events, Ka,r "
                  f"{p.kar_mgy:.4g} mGy, DAP {p.dap_gycm2:.4g} Gy·cm²), anchor {head}",
                  flush=True)
    return 0


def _add_report_parser(dose_sub: Any) -> None:
    from fluoro.cli.report_options import parse_since, parse_until, parse_weeks

    report = dose_sub.add_parser(
        "report", help="dose review: procedures, patients, rooms, outliers against local DRLs",
        description="Report the procedures of a dose log: totals, alarms and acknowledgements, "
                    "the source of the dose, each patient's cumulative dose over the last weeks "
                    "(NCRP Report 168 notification level: Ka,r 3 Gy, DAP 300 Gy·cm²), per-room "
                    "median and 75th percentile, and outliers against local diagnostic "
                    "reference levels (ICRP Publication 135). Formats: a text table (default), "
                    "one self-contained HTML page with plots, CSV (one row per procedure; "
                    "columns in fluoro/report/csv.py), JSON.")
    report.add_argument("--db", type=dose_log_target, required=True, metavar="PATH|URL",
                       help="the dose log")
    report.add_argument("--format", choices=("text", "html", "csv", "json"), default=None,
                        help="output format (default: a text table)")
    report.add_argument("--json", action="store_true",
                        help="the same as --format json (kept for compatibility)")
    report.add_argument("--out", type=Path, metavar="PATH",
                        help="write the report to this file instead of standard output")
    report.add_argument("--since", type=parse_since, metavar="DATE",
                        help="procedures started on or after DATE (YYYY-MM-DD or ISO time; UTC)")
    report.add_argument("--until", type=parse_until, metavar="DATE",
                        help="procedures started up to DATE (a day: the whole day; UTC)")
    report.add_argument("--patient", metavar="KEY",
                        help="one patient: the pseudonymous key, or the patient ID (keyed with "
                             "this site's secret; never stored)")
    report.add_argument("--room", metavar="R", help="one room (case-insensitive)")
    report.add_argument("--weeks", type=parse_weeks, default=12.0, metavar="N",
                        help="window of the per-patient cumulative dose, weeks (default 12)")
    report.add_argument("--drl", type=Path, metavar="PATH",
                        help="site file of local diagnostic reference levels (default: "
                             "fluoro/data/drl.toml)")
    report.set_defaults(func=cmd_report)


def cmd_report(args: argparse.Namespace) -> int:
    from fluoro.cli.report_options import check_out, resolve_patient, write_output
    from fluoro.report.data import ReportFilter, build_report
    from fluoro.report.drl import load_drl_table
    from fluoro.report.json import procedure_json

    fmt = args.format or ("json" if args.json else "text")
    if args.json and fmt != "json":
        raise InputError(f"--json and --format {fmt}: choose one format")
    if args.since and args.until and args.since >= args.until:
        raise InputError(f"--since {args.since.isoformat()} is not before --until "
                         f"{args.until.isoformat()}: no time is left between them")
    check_out(args.out)
    drl = load_drl_table(args.drl)
    filters = ReportFilter(args.since, args.until, resolve_patient(args.patient), args.room,
                           args.weeks)
    with DoseLog.open_readonly(_existing(args.db)) as log:
        report = build_report(log, filters, drl)
        if fmt == "html":
            from fluoro.report.html import render_html
            from fluoro.report.timeline import timeline

            text = render_html(report, lambda row: timeline(log, row))
        elif fmt == "json":
            from fluoro.report.json import report_json

            docs = [procedure_json(log, r.summary) for r in report.procedures]
            text = json.dumps(report_json(report, docs), indent=2) + "\n"
        elif fmt == "csv":
            from fluoro.report.csv import render_csv

            text = render_csv(report)
        else:
            text = _report_table([procedure_json(log, r.summary) for r in report.procedures])
    if args.out is None:
        sys.stdout.write(text)
        sys.stdout.flush()
        return 0
    write_output(args.out, text)
    outliers = len(report.outliers)
    print(f"{args.out}: {fmt} report of {len(report.procedures)} procedures "
          f"({outliers} above their DRL)", file=sys.stderr, flush=True)
    return 0


def _report_table(procedures: list[dict[str, Any]]) -> str:
    """The text table: one line per procedure."""
    lines = [f"{'started (UTC)':<20} {'procedure':<24} {'pulses':>7} {'events':>6} "
             f"{'fluoro':>7} {'Ka,r mGy':>10} {'DAP Gy·cm²':>11} {'alarms':>6}  state"]
    for p in procedures:
        state = ("imported (RDSR)" if p["imported"] else
                 "complete" if p["complete"] else "INCOMPLETE")
        if p["missing_pulses"]:
            state += f", {p['missing_pulses']} missing pulses"
        minutes, seconds = divmod(int(p["fluoro_time_s"]), 60)
        lines.append(f"{p['started_utc'][:19]:<20} {(p['procedure_name'] or '-')[:24]:<24} "
                     f"{p['pulses']:>7} {p['events']:>6} {minutes:>4}:{seconds:02d} "
                     f"{p['kar_mgy']:>10.3f} {p['dap_gycm2']:>11.4f} {len(p['alarms']):>6}  "
                     f"{state}")
    return "\n".join(lines) + "\n"
