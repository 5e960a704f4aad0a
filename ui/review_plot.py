"""The dose curve of one procedure in the review window: cumulative Ka,r against time.

Live procedures: the curve is the running sum of the logged pulses' Ka,r (mGy, at the
procedure's reference point), summed in the order the pulses were logged, against their source
time ``t_s`` (s, counted from the first pulse). Irradiation events (pedal presses, DICOM PS3.16
TID 10003) are shaded. Each sequence gap (pulses the source numbered but never delivered) is a
dashed red line: its estimated dose is in the procedure's totals but not in the curve. Alarms are
markers on the curve (red: not acknowledged, amber: acknowledged) with a short label.

Imported procedures (another system's RDSR) have no pulse rows: their irradiation events are
drawn as the cumulative stated Ka,r climbing over each event (dotted; a point at each event's
end, s from the first event's start), or the plot says that the report has no events.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtGui

from fluoro.dicomtime import parse_dicom_datetime
from fluoro.dose.accumulator import DoseGap, PulseDose
from fluoro.dose.alarms import QUANTITIES
from fluoro.doselog import AlarmRecord, ImportedProcedure, IrradiationEvent

__all__ = ["DoseCurvePlot", "alarm_label", "cumulative_kar", "imported_curve"]

BACKGROUND = "#0c0e10"
CURVE_COLOUR = "#40c0ff"
EVENT_BRUSH = (120, 170, 255, 38)
ACKED_COLOUR = "#ffb020"
NOT_ACKED_COLOUR = "#ff4040"
GAP_COLOUR = "#ff6060"
LIVE_AXIS = "time since the first pulse (s)"
AXIS_STYLE = {"color": "#c8d0d8", "font-size": "13pt"}
# Alarms closer than this fraction of the time axis share one label (they fired together).
SAME_LABEL_FRACTION = 0.04


def cumulative_kar(pulses: Sequence[PulseDose]) -> tuple[np.ndarray, np.ndarray]:
    """Times (s, source clock) and the running sum of Ka,r (mGy) of ``pulses``, in log order."""
    t_s = np.fromiter((p.t_s for p in pulses), dtype=np.float64, count=len(pulses))
    kar_mgy = np.fromiter((p.kar_mgy for p in pulses), dtype=np.float64, count=len(pulses))
    return t_s, np.cumsum(kar_mgy)


def alarm_label(alarm: AlarmRecord) -> str:
    """A short label for the curve, e.g. ``"Ka,r 3000 mGy"`` or ``"fluoroscopy time 5 min"``."""
    quantity = QUANTITIES.get(alarm.quantity)
    if quantity is None:
        return alarm.message
    if alarm.quantity == "fluoro_time_s":
        return f"{quantity.label} {alarm.threshold / 60:g} min"
    return f"{quantity.label} {alarm.threshold:g} {quantity.unit}"


def imported_curve(report: ImportedProcedure) -> tuple[np.ndarray, np.ndarray, int]:
    """The cumulative stated Ka,r (mGy) of an imported report's events against time (s after
    the first event's start), events in time order: each climbs from its start to its end
    (start plus its duration). Without stated start times the events are placed at their index.

    Returns ``x``, ``y`` and ``step``: with times, the start and end of every event in turn
    (``step`` 2), else one point per event (``step`` 1); the events' ends are
    ``x[step - 1::step]``, ``y[step - 1::step]``."""
    events = report.events
    starts = [parse_dicom_datetime(e.started) for e in events]
    if not events or any(start is None for start in starts):
        return (np.arange(1.0, len(events) + 1),
                np.cumsum([e.kar_mgy or 0.0 for e in events], dtype=np.float64), 1)
    timed = sorted(zip(starts, events, strict=True), key=lambda pair: pair[0])
    first = timed[0][0]
    x: list[float] = []
    y: list[float] = []
    total_mgy = 0.0
    for start, event in timed:
        begin_s = (start - first).total_seconds()
        x += [begin_s, begin_s + (event.duration_s or 0.0)]
        y.append(total_mgy)
        total_mgy += event.kar_mgy or 0.0
        y.append(total_mgy)
    return np.asarray(x), np.asarray(y), 2


class DoseCurvePlot(pg.PlotWidget):
    """``curve`` holds the cumulative Ka,r; ``alarm_points`` the alarm markers; ``note`` says
    what is (or is not) drawn."""

    def __init__(self) -> None:
        super().__init__(background=BACKGROUND)
        self.plot_item = self.getPlotItem()
        self.plot_item.showGrid(x=True, y=True, alpha=0.2)
        self.plot_item.setLabel("left", "cumulative Ka,r", units=None, **AXIS_STYLE)
        self._set_axis(LIVE_AXIS)
        tick_font = QtGui.QFont()
        tick_font.setPointSize(12)
        for side in ("left", "bottom"):
            axis = self.plot_item.getAxis(side)
            axis.setTickFont(tick_font)
            axis.setTextPen("#c8d0d8")
        self.plot_item.getAxis("left").setLabel("cumulative Ka,r (mGy)", **AXIS_STYLE)
        self.curve = self.plot_item.plot(pen=pg.mkPen(CURVE_COLOUR, width=3))
        self.curve.setClipToView(True)
        self.curve.setDownsampling(auto=True, method="peak")
        self.event_points = pg.ScatterPlotItem(size=12, brush=pg.mkBrush(CURVE_COLOUR),
                                               pen=pg.mkPen("white", width=1))
        self.alarm_points = pg.ScatterPlotItem(size=18, symbol="t1")
        self.plot_item.addItem(self.event_points)
        self.plot_item.addItem(self.alarm_points)
        self.note = ""
        self.t0_s = 0.0  # source time (s) of the first pulse: the time axis starts there
        self._extras: list[pg.GraphicsObject] = []
        self.setMinimumHeight(260)

    # -- what is drawn ---------------------------------------------------------------------

    def clear_procedure(self, note: str = "no procedure selected") -> None:
        self.t0_s = 0.0
        self._set_axis(LIVE_AXIS)
        for item in self._extras:
            self.plot_item.removeItem(item)
        self._extras = []
        self.curve.setData([], [])
        self.curve.setPen(pg.mkPen(CURVE_COLOUR, width=3))
        self.event_points.setData([], [])
        self.alarm_points.setData([], [])
        self._set_note(note)

    def show_live(self, pulses: Sequence[PulseDose], events: Sequence[IrradiationEvent],
                  gaps: Sequence[DoseGap], alarms: Sequence[AlarmRecord]) -> None:
        """Draw a live procedure: its pulses' cumulative Ka,r, events, gaps and alarms."""
        self.clear_procedure()
        t_s, kar_mgy = cumulative_kar(pulses)
        self.t0_s = float(t_s[0]) if len(t_s) else 0.0
        t_s = t_s - self.t0_s
        self.curve.setData(t_s, kar_mgy)
        for event in events:
            interval_s = 1.0 / (event.technique.pulse_rate_hz or 10.0)
            start_s, end_s = event.start_t_s - self.t0_s, event.end_t_s - self.t0_s + interval_s
            region = pg.LinearRegionItem((start_s, end_s),
                                         movable=False, brush=EVENT_BRUSH,
                                         pen=pg.mkPen(None))
            region.setZValue(-10)
            self._add(region)
        for gap in gaps:
            dashed = pg.mkPen(GAP_COLOUR, width=2, style=QtCore.Qt.PenStyle.DashLine)
            self._add(pg.InfiniteLine(
                gap.t_s - self.t0_s, angle=90, pen=dashed,
                label=f"{gap.count} missing", labelOpts={"color": GAP_COLOUR, "position": 0.1}))
        self._draw_alarms(alarms, t_s, kar_mgy, self.t0_s)
        note = (f"{len(pulses)} pulses · {len(events)} irradiation events (shaded)"
                if len(pulses) else "no pulses logged in this procedure")
        missing = sum(g.count for g in gaps)
        if missing:
            estimated_mgy = sum(g.kar_est_mgy for g in gaps)
            note += (f" · {missing} missing pulses, est. {estimated_mgy:.3g} mGy (in the totals, "
                     "not the curve)")
        self._set_note(note)

    def show_imported(self, report: ImportedProcedure, alarms: Sequence[AlarmRecord]) -> None:
        """Draw an imported procedure: its events as points, or a note when it has none."""
        self.clear_procedure()
        if not report.events:
            self._set_note("imported RDSR: no pulse-level data and no irradiation events "
                           "(totals only)")
            return
        x, y, step = imported_curve(report)
        self.curve.setData(x, y)
        self.curve.setPen(pg.mkPen(CURVE_COLOUR, width=2, style=QtCore.Qt.PenStyle.DotLine))
        self.event_points.setData(x[step - 1::step], y[step - 1::step])
        self._draw_alarms(alarms, x, y)
        stated = sum(1 for e in report.events if e.kar_mgy is not None)
        self._set_axis("time since the first irradiation event (s)" if step == 2
                       else "irradiation event (no start times stated)")
        self._set_note(f"imported RDSR: no pulse-level data · {len(report.events)} irradiation "
                       f"events as reported ({stated} state Ka,r)")

    # -- internals -------------------------------------------------------------------------

    def _draw_alarms(self, alarms: Sequence[AlarmRecord], x: np.ndarray, y: np.ndarray,
                     t0_s: float = 0.0) -> None:
        """Markers at each alarm's time (``t_s - t0_s``, s) on the curve ``x``, ``y``."""
        if not alarms:
            return
        times = np.array([a.t_s - t0_s for a in alarms], dtype=np.float64)
        on_curve = np.interp(times, x, y) if len(x) else np.zeros_like(times)
        colours = [NOT_ACKED_COLOUR if not a.acks else ACKED_COLOUR for a in alarms]
        self.alarm_points.setData(times, on_curve, brush=[pg.mkBrush(c) for c in colours],
                                  pen=pg.mkPen("white", width=1))
        x_max = float(max(x.max() if len(x) else 0.0, times.max(), 1e-9))
        x_min = float(min(x.min() if len(x) else 0.0, times.min()))
        span = max(x_max - x_min, 1e-9)
        groups: list[list[int]] = []
        for i in np.argsort(times, kind="stable"):
            if groups and times[i] - times[groups[-1][0]] <= SAME_LABEL_FRACTION * span:
                groups[-1].append(int(i))
            else:
                groups.append([int(i)])
        for group in groups:
            first = group[0]
            lines = [f"{alarm_label(alarms[i])}{'' if alarms[i].acks else '  NOT ACK'}"
                     for i in group]
            right_half = times[first] - x_min > 0.6 * span
            colour = NOT_ACKED_COLOUR if any(not alarms[i].acks for i in group) else ACKED_COLOUR
            label = pg.TextItem("\n".join(lines), color=colour,
                                anchor=(1.05, 1.1) if right_half else (-0.05, 1.1),
                                fill=pg.mkBrush(12, 14, 16, 200))
            font = QtGui.QFont()
            font.setPointSize(12)
            font.setBold(True)
            label.setFont(font)
            label.setPos(float(times[first]), float(on_curve[first]))
            self._add(label)

    def _add(self, item: pg.GraphicsObject) -> None:
        self.plot_item.addItem(item)
        self._extras.append(item)

    def _set_axis(self, label: str) -> None:
        self.plot_item.setLabel("bottom", label, **AXIS_STYLE)

    def _set_note(self, note: str) -> None:
        self.note = note
        self.plot_item.setTitle(note, color="#a8b0b8", size="12pt")
