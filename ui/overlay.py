"""The needle overlay: shaft, tip marker, projected trajectory with 10 mm ticks, the target.

Drawn from a ``fluoro.imaging.needle_result.NeedleResult`` in image pixel coordinates (x = column,
y = row). What is drawn says how sure the tracker is (``state``):

- ``"needle"``: a confident active needle (``NeedleResult.confident``): solid shaft, tip,
  trajectory with ticks, and the tip-to-target distance;
- ``"unsure"``: reported, but not confident: the shaft dashed and faded, the tip, and
  neither trajectory nor distance (a path drawn from a doubtful line would be read as right);
- ``"not found"``: nothing of the needle is drawn: never a stale line.

Other needles in view (``NeedleResult.others``) are drawn thin and faint, without trajectory.
"""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore

from fluoro.imaging.needle_result import NeedleResult, distance_mm

SHAFT_PEN = pg.mkPen((60, 230, 90), width=2)
UNSURE_PEN = pg.mkPen((60, 230, 90, 140), width=2, style=QtCore.Qt.PenStyle.DashLine)
OTHER_PEN = pg.mkPen((60, 230, 90, 110), width=1)
TRAJECTORY_PEN = pg.mkPen((255, 210, 40), width=2, style=QtCore.Qt.PenStyle.DashLine)
TICK_PEN = pg.mkPen((255, 210, 40), width=2)
TICK_MM = 10.0
TICK_HALF_LENGTH_MM = 1.5


class NeedleOverlay:
    """Items added to a view box; ``update(result)`` moves them, ``hide()`` hides them."""

    def __init__(self, view: pg.ViewBox) -> None:
        self.shaft = pg.PlotCurveItem(pen=SHAFT_PEN)
        self.trajectory = pg.PlotCurveItem(pen=TRAJECTORY_PEN)
        self.ticks = pg.PlotCurveItem(pen=TICK_PEN, connect="pairs")
        self.tip = pg.ScatterPlotItem(size=12, pen=pg.mkPen((255, 60, 60), width=2),
                                      brush=None, symbol="o")
        self.target = pg.ScatterPlotItem(size=16, pen=pg.mkPen((80, 200, 255), width=2),
                                         brush=None, symbol="+")
        self.target_label = pg.TextItem("", color=(80, 200, 255), anchor=(0, 1))
        self.others = pg.PlotCurveItem(pen=OTHER_PEN, connect="pairs")
        for item in (self.shaft, self.trajectory, self.ticks, self.tip, self.target,
                     self.target_label, self.others):
            item.setZValue(5)
            view.addItem(item, ignoreBounds=True)
        self.target_px: tuple[float, float] | None = None
        self.visible = False
        self.state = "not found"
        self.hide()

    def hide(self) -> None:
        self.visible = False
        self.state = "not found"
        for item in (self.shaft, self.trajectory, self.ticks, self.tip, self.others):
            item.setVisible(False)

    def set_target(self, target_px: tuple[float, float] | None) -> None:
        self.target_px = target_px
        if target_px is None:
            self.target.setVisible(False)
            self.target_label.setVisible(False)
            return
        self.target.setData([target_px[0]], [target_px[1]])
        self.target.setVisible(True)
        self.target_label.setPos(target_px[0] + 8, target_px[1] - 8)
        self.target_label.setVisible(True)

    def update(self, result: NeedleResult | None) -> float | None:
        """Draw ``result``; returns the tip-to-target distance in mm when both are known."""
        if result is None or not result.detected or result.tip_px is None:
            self.hide()
            if self.target_px is not None:
                self.target_label.setText("target")
            return None
        confident = result.confident
        self.state = "needle" if confident else "unsure"
        tip = result.tip_px
        hub = result.hub_px or tip
        self.shaft.setPen(SHAFT_PEN if confident else UNSURE_PEN)
        self.shaft.setData([hub[0], tip[0]], [hub[1], tip[1]])
        self.tip.setData([tip[0]], [tip[1]])
        end = result.trajectory_end_px if confident else None
        if end is not None:
            self.trajectory.setData([tip[0], end[0]], [tip[1], end[1]])
            self.ticks.setData(*_ticks(tip, end, result.trajectory_mm, result.pixel_spacing_mm))
        self.shaft.setVisible(True)
        self.tip.setVisible(True)
        self.trajectory.setVisible(end is not None)
        self.ticks.setVisible(end is not None)
        self._draw_others(result.others)
        self.visible = True
        if self.target_px is None:
            return None
        if not confident:
            self.target_label.setText("target")
            return None
        distance = distance_mm(tip, self.target_px, result.pixel_spacing_mm)
        self.target_label.setText(f"{distance:.1f} mm")
        return distance


    def _draw_others(self, others: tuple[NeedleResult, ...]) -> None:
        xs: list[float] = []
        ys: list[float] = []
        for other in others:
            if other.tip_px is not None and other.hub_px is not None:
                xs += [other.hub_px[0], other.tip_px[0]]
                ys += [other.hub_px[1], other.tip_px[1]]
        self.others.setData(np.asarray(xs), np.asarray(ys))
        self.others.setVisible(bool(xs))


def _ticks(tip: tuple[float, float], end: tuple[float, float], length_mm: float,
           spacing_mm: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    """Short segments across the trajectory every 10 mm (pairs of points for connect="pairs")."""
    dx, dy = end[0] - tip[0], end[1] - tip[1]
    length_px = math.hypot(dx, dy)
    if length_px == 0 or length_mm <= 0:
        return np.zeros(0), np.zeros(0)
    ux, uy = dx / length_px, dy / length_px
    mm_per_px = math.hypot(ux * spacing_mm[1], uy * spacing_mm[0])
    half_px = TICK_HALF_LENGTH_MM / mm_per_px
    xs, ys = [], []
    for k in range(1, int(length_mm // TICK_MM) + 1):
        t = k * TICK_MM / length_mm * length_px
        cx, cy = tip[0] + ux * t, tip[1] + uy * t
        xs += [cx - uy * half_px, cx + uy * half_px]
        ys += [cy + ux * half_px, cy - ux * half_px]
    return np.asarray(xs), np.asarray(ys)
