"""A procedure's cumulative Ka,r over time, for the report's plots.

Live procedures: from the pulse rows (and the estimated dose of missing pulses, so the curve
ends at the procedure's total), on the source clock (s). Imported procedures have no pulses: their
irradiation events (TID 10003) give the curve when every event states a start time and a Ka,r;
otherwise there is no time line and ``note`` says why.
"""

from __future__ import annotations

from dataclasses import dataclass

from fluoro.dicomtime import parse_dicom_datetime
from fluoro.doselog import DoseLog
from fluoro.report.data import ProcedureRow

__all__ = ["MAX_POINTS", "TimeLine", "timeline"]

MAX_POINTS = 600  # a plot needs no more; keeps a report of long procedures small


@dataclass(frozen=True, slots=True)
class TimeLine:
    """``points``: (t_s, cumulative Ka,r mGy) in time order; ``events``: (start_s, end_s) of each
    irradiation event; ``note``: why there is no curve (empty when there is one)."""

    points: tuple[tuple[float, float], ...]
    events: tuple[tuple[float, float], ...]
    note: str = ""


def _thin(points: list[tuple[float, float]]) -> tuple[tuple[float, float], ...]:
    """At most ``MAX_POINTS`` points, evenly spaced in index, always keeping the last."""
    if len(points) <= MAX_POINTS:
        return tuple(points)
    step = len(points) / (MAX_POINTS - 1)
    kept = [points[int(i * step)] for i in range(MAX_POINTS - 1)]
    return (*kept, points[-1])


def timeline(log: DoseLog, row: ProcedureRow) -> TimeLine:
    """The cumulative Ka,r curve of one report row (see the module docstring)."""
    p = row.summary
    if p.imported is not None:
        return _imported(row)
    steps = [(pulse.t_s, pulse.kar_mgy) for pulse in log.pulses(p.procedure_uid)]
    steps += [(gap.t_s, gap.kar_est_mgy) for gap in log.gaps(p.procedure_uid)]
    steps.sort(key=lambda step: step[0])
    if not steps:
        return TimeLine((), (), "no pulses were logged")
    total, points = 0.0, []
    for t_s, kar in steps:
        total += kar
        points.append((t_s, total))
    events = tuple((e.start_t_s, e.end_t_s) for e in log.events(p.procedure_uid))
    return TimeLine(_thin(points), events)


def _imported(row: ProcedureRow) -> TimeLine:
    report = row.summary.imported
    assert report is not None
    if not report.events:
        return TimeLine((), (), "imported report (RDSR) without irradiation events: "
                                "totals only, no time line")
    starts = [parse_dicom_datetime(e.started) for e in report.events]
    if any(s is None for s in starts) or any(e.kar_mgy is None for e in report.events):
        return TimeLine((), (), f"imported report (RDSR): {len(report.events)} irradiation "
                                "events without start times or Ka,r, no time line")
    origin = min(s for s in starts if s is not None)
    order = sorted(zip(starts, report.events, strict=True), key=lambda pair: pair[0])
    total, points, events = 0.0, [], []
    for start, event in order:
        assert start is not None and event.kar_mgy is not None
        t0 = (start - origin).total_seconds()
        t1 = t0 + (event.duration_s or 0.0)
        points.append((t0, total))
        total += event.kar_mgy
        points.append((t1, total))
        events.append((t0, t1))
    return TimeLine(_thin(points), tuple(events))
