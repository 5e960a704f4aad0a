"""``TrackingScorer``: the ``tracking`` section of ``fluoro bench`` (a ``fluoro.bench.run.Scorer``).

Compares each frame's ``NeedleResult`` (``item.results["track"]``) with the frame's truth:

- ``detection_rate``: detected / frames with a visible needle, leaving out the first
  ``skip_frames`` (5) frames of every run (a run starts with the stream and after every gap in
  ``seq``: a beam-off frame or a lost pulse, which is where the tracker restarts);
- ``false_positive_rate``: detected / frames without a visible needle (all of them);
- ``tip_err_mm``: distance of detected tip to true tip, mm (pixel spacing of the frame);
- ``angle_err_deg``: angle between detected and true hub -> tip directions (0..180°);
- ``trajectory_err_mm_at_20mm``: distance between the point 20 mm beyond the detected tip
  along the detected axis and the point 20 mm beyond the true tip along the true axis, mm.

Errors are taken over every detected frame with a visible needle (runs' first frames
included). The true direction needs the true hub: when the hub is outside the image the
truth has none, and that frame counts for the tip error only (``frames_with_direction`` says
how many had one). Percentiles: median and p95. Sections are left out when not measured.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from fluoro.imaging.needle_result import distance_mm

TRAJECTORY_MM = 20.0


def _ahead(tip: tuple[float, float], ux: float, uy: float, spacing: tuple[float, float],
           mm: float) -> tuple[float, float]:
    """The point ``mm`` beyond ``tip`` along the unit pixel direction (ux, uy)."""
    step_mm = math.hypot(ux * spacing[1], uy * spacing[0])
    return (tip[0] + mm / step_mm * ux, tip[1] + mm / step_mm * uy)


def _summary(values: list[float]) -> dict[str, float]:
    arr = np.asarray(values, float)
    return {"median": round(float(np.median(arr)), 4),
            "p95": round(float(np.percentile(arr, 95)), 4)}


class TrackingScorer:
    """Scores needle tracking against the truth; see the module docstring."""

    section_name = "tracking"

    def __init__(self, skip_frames: int = 5, key: str = "track") -> None:
        self.skip_frames = skip_frames
        self.key = key
        self._last_seq: int | None = None
        self._in_run = 0
        self._truth_frames = 0
        self._visible = 0
        self._visible_detected = 0
        self._absent = 0
        self._absent_detected = 0
        self._tip_mm: list[float] = []
        self._angle_deg: list[float] = []
        self._traj_mm: list[float] = []

    def add(self, frame: Any, item: Any) -> None:
        if self._last_seq is None or frame.seq != self._last_seq + 1:
            self._in_run = 0
        self._last_seq = frame.seq
        self._in_run += 1
        truth = frame.truth
        result = item.results.get(self.key)
        if truth is None or result is None:
            return
        self._truth_frames += 1
        detected = bool(result.detected)
        if not truth.needle_visible or truth.tip_px is None:
            self._absent += 1
            self._absent_detected += detected
            return
        if self._in_run > self.skip_frames:
            self._visible += 1
            self._visible_detected += detected
        if not detected:
            return
        spacing = tuple(frame.pixel_spacing_mm)
        self._tip_mm.append(distance_mm(result.tip_px, truth.tip_px, spacing))
        if truth.hub_px is None:
            return
        tx, ty = truth.tip_px[0] - truth.hub_px[0], truth.tip_px[1] - truth.hub_px[1]
        norm = math.hypot(tx, ty)
        if norm < 1e-6:
            return
        tx, ty = tx / norm, ty / norm
        a = math.radians(result.angle_deg)
        dx, dy = math.cos(a), math.sin(a)
        diff = math.degrees(abs(math.atan2(dx * ty - dy * tx, dx * tx + dy * ty)))
        self._angle_deg.append(diff)
        p_det = _ahead(result.tip_px, dx, dy, spacing, TRAJECTORY_MM)
        p_true = _ahead(truth.tip_px, tx, ty, spacing, TRAJECTORY_MM)
        self._traj_mm.append(distance_mm(p_det, p_true, spacing))

    def section(self) -> dict[str, Any] | None:
        if self._truth_frames == 0:
            return None
        out: dict[str, Any] = {
            "frames_scored": self._truth_frames,
            "frames_visible": self._visible,
            "frames_without_needle": self._absent,
        }
        if self._visible:
            out["detection_rate"] = round(self._visible_detected / self._visible, 4)
        if self._absent:
            out["false_positive_rate"] = round(self._absent_detected / self._absent, 4)
        if self._tip_mm:
            out["tip_err_mm"] = _summary(self._tip_mm)
        if self._angle_deg:
            out["angle_err_deg"] = _summary(self._angle_deg)
            out["trajectory_err_mm_at_20mm"] = round(float(np.median(self._traj_mm)), 4)
            out["trajectory_err_mm_at_20mm_p95"] = round(float(np.percentile(self._traj_mm, 95)),
                                                          4)
            out["frames_with_direction"] = len(self._angle_deg)
        return out
