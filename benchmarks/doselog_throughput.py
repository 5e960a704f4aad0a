"""How many pulses per second the dose log stores durably, with SQLite synchronous FULL and NORMAL.

    python benchmarks/doselog_throughput.py [--pulses 5000] [--dir DIR] [--json PATH]

Each pulse is one ``DoseLog.append``: one committed transaction (WAL mode), as in the pipeline.
The log is written in a fresh temporary folder (or ``--dir``: put it on the disk the real log
will live on). Prints pulses/s and per-append latency for each mode; the requirement is
1,000 pulses/s (the pipeline produces 7.5–30).
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from fluoro.console import Progress
from fluoro.dose.accumulator import DoseTotals, PulseDose
from fluoro.doselog import DoseLog, ProcedureInfo
from fluoro.frame import Exposure

REQUIRED_PULSES_PER_S = 1000.0


def _pulse(seq: int) -> PulseDose:
    exposure = Exposure(True, 80.0, 8.0, 8.0, 1000.0, 470.0, 300.0, 0.1, pulse_rate_hz=15.0)
    return PulseDose(seq, seq / 15.0, 1 + seq // 150, 0.0112, 0.00336, 0.0112, 0.00336, False,
                     1 / 15.0, exposure)


def run(mode: str, pulses: int, folder: Path) -> dict:
    path = folder / f"bench_{mode.lower()}.db"
    latencies_ms = np.empty(pulses)
    with DoseLog.create_or_open(path, synchronous=mode) as log:
        log.begin_procedure(ProcedureInfo(None, "doselog throughput benchmark"))
        bar = Progress(pulses, f"synchronous={mode}")
        start = time.perf_counter()
        for seq in range(pulses):
            t0 = time.perf_counter()
            log.append(_pulse(seq))
            latencies_ms[seq] = (time.perf_counter() - t0) * 1e3
            if (seq + 1) % 250 == 0:
                bar.update(seq + 1)
        seconds = time.perf_counter() - start
        bar.close()
        log.end_procedure(DoseTotals(pulses=pulses))
    report = log.verify()
    if not report.ok:
        raise SystemExit(f"benchmark log failed verification: {report.problem}")
    return {"pulses": pulses, "seconds": seconds, "pulses_per_s": pulses / seconds,
            "append_ms": {q: float(np.percentile(latencies_ms, p))
                          for q, p in (("p50", 50), ("p99", 99))} | {"max": latencies_ms.max()},
            "meets_requirement": pulses / seconds >= REQUIRED_PULSES_PER_S}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pulses", type=int, default=5000)
    parser.add_argument("--dir", type=Path, default=None,
                        help="folder for the test logs (default: a fresh temporary folder)")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = parser.parse_args()
    results = {}
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        for mode in ("FULL", "NORMAL"):
            results[mode] = run(mode, args.pulses, Path(tmp))
            r = results[mode]
            print(f"synchronous={mode:6s} {r['pulses_per_s']:9,.0f} pulses/s   append p50 "
                  f"{r['append_ms']['p50']:.3f} ms  p99 {r['append_ms']['p99']:.3f} ms  "
                  f"max {r['append_ms']['max']:.2f} ms")
    chosen = "FULL" if results["FULL"]["meets_requirement"] else "NORMAL"
    print(f"requirement {REQUIRED_PULSES_PER_S:,.0f} pulses/s: "
          f"{'FULL meets it' if chosen == 'FULL' else 'FULL is too slow here, use NORMAL'}")
    if args.json:
        args.json.write_text(json.dumps({"sqlite_version": sqlite3.sqlite_version,
                                         "required_pulses_per_s": REQUIRED_PULSES_PER_S,
                                         "synchronous": results, "chosen": chosen},
                                        indent=2, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
