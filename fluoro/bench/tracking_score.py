"""``TrackingScorer``: the ``tracking`` section of ``fluoro bench`` (a ``fluoro.bench.run.Scorer``).

Compares each frame's ``NeedleResult`` (``item.results["track"]``) with the frame's truth:

- ``detection_rate``: detected / frames with a visible needle, leaving out the first
  ``skip_frames`` (5) frames of every run (a run starts with the stream and after every gap in
  ``seq``: a beam-off frame or a lost pulse, which is where the tracker restarts);
- ``false_positive_rate``: detected / frames without a visible needle (all of them);
- ``tip_err_mm``: distance of detected tip to true tip, mm (pixel spacing of the frame);
- ``angle_err_deg``: angle between detected and true hub -> tip directions (0..180°);
- ``trajectory_err_mm_at_20mm``: distance between the point 20 mm beyond the detected tip
  along the detected axis and the point 20 mm beyond the true tip along the true axis, mm;
- ``wrong_object_rate``: reported detections that are on no needle at all (on a screw, a
  K-wire, a cable...) / all reported detections. A detection is *on* a needle when its tip is
  within ``ON_NEEDLE_TIP_MM`` of that needle's true tip and, where the true direction is
  known, its axis within ``ON_NEEDLE_DEG``; a detection on a frame without any needle is on
  no needle. ``other_needle_rate``: reported on a needle, but not the active one (with
  several needles in view, ``Truth.others``);
- ``frames_to_find``: for every appearance of the needle (visible after a frame without it,
  or at the start of a run), the frames from its first visible frame to its first detection
  on it (0: found at once); ``median`` and ``max`` over the appearances found, ``entries``
  and ``missed`` (appearances never found while visible).

Errors are taken over every detected frame with a visible needle (runs' first frames
included). The true direction needs the true hub: when the hub is outside the image the
truth has none, and that frame counts for the tip error only (``frames_with_direction`` says
how many had one). Percentiles: median and p95. Sections are left out when not measured.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from fluoro.frame import NeedleTruth, Truth
from fluoro.imaging.needle_result import NeedleResult, distance_mm

TRAJECTORY_MM = 20.0
ON_NEEDLE_TIP_MM = 5.0
ON_NEEDLE_DEG = 10.0


def _ahead(tip: tuple[float, float], ux: float, uy: float, spacing: tuple[float, float],
           mm: float) -> tuple[float, float]:
    """The point ``mm`` beyond ``tip`` along the unit pixel direction (ux, uy)."""
    step_mm = math.hypot(ux * spacing[1], uy * spacing[0])
    return (tip[0] + mm / step_mm * ux, tip[1] + mm / step_mm * uy)


def _unit(tip: tuple[float, float], hub: tuple[float, float] | None
          ) -> tuple[float, float] | None:
    """The unit hub -> tip direction, px; None without a hub (or a zero-length shaft)."""
    if hub is None:
        return None
    tx, ty = tip[0] - hub[0], tip[1] - hub[1]
    norm = math.hypot(tx, ty)
    return None if norm < 1e-6 else (tx / norm, ty / norm)


def _angle_between_deg(a_deg: float, unit: tuple[float, float]) -> float:
    """Angle (0..180°) between the direction ``a_deg`` and the unit vector ``unit``."""
    a = math.radians(a_deg)
    dx, dy = math.cos(a), math.sin(a)
    return math.degrees(abs(math.atan2(dx * unit[1] - dy * unit[0], dx * unit[0] + dy * unit[1])))


def _on_needle(result: NeedleResult, needle: NeedleTruth, spacing: tuple[float, float]) -> bool:
    if result.tip_px is None or distance_mm(result.tip_px, needle.tip_px,
                                            spacing) > ON_NEEDLE_TIP_MM:
        return False
    unit = _unit(needle.tip_px, needle.hub_px)
    return unit is None or result.angle_deg is None or _angle_between_deg(
        result.angle_deg, unit) <= ON_NEEDLE_DEG


def _needles(truth: Truth) -> list[NeedleTruth]:
    """The needles in view, the active one first."""
    active = ([NeedleTruth(truth.tip_px, truth.hub_px)]
              if truth.needle_visible and truth.tip_px is not None else [])
    return active + list(truth.others)


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
        self._reported = 0
        self._wrong_object = 0
        self._other_needle = 0
        self._since_appeared: int | None = None  # visible frames of this appearance so far
        self._found_now = False  # this appearance was found
        self._found_after: list[int] = []
        self._entries = 0

    def add(self, frame: Any, item: Any) -> None:
        if self._last_seq is None or frame.seq != self._last_seq + 1:
            self._in_run = 0
            self._end_appearance()  # the tracker restarts with the run
        self._last_seq = frame.seq
        self._in_run += 1
        truth = frame.truth
        result = item.results.get(self.key)
        if truth is None or result is None:
            return
        self._truth_frames += 1
        detected = bool(result.detected)
        spacing = tuple(frame.pixel_spacing_mm)
        needles = _needles(truth)
        on = next((i for i, n in enumerate(needles) if _on_needle(result, n, spacing)), None)
        if detected:
            self._reported += 1
            self._wrong_object += on is None
            self._other_needle += on is not None and on > 0
        if not truth.needle_visible or truth.tip_px is None:
            self._end_appearance()
            self._absent += 1
            self._absent_detected += detected
            return
        self._appearance(found=detected and on == 0)
        if self._in_run > self.skip_frames:
            self._visible += 1
            self._visible_detected += detected
        if not detected or (on is not None and on > 0):
            return  # no result, or one on another needle: no error against the active one
        self._tip_mm.append(distance_mm(result.tip_px, truth.tip_px, spacing))
        unit = _unit(truth.tip_px, truth.hub_px)
        if unit is None:
            return
        self._angle_deg.append(_angle_between_deg(result.angle_deg, unit))
        a = math.radians(result.angle_deg)
        p_det = _ahead(result.tip_px, math.cos(a), math.sin(a), spacing, TRAJECTORY_MM)
        p_true = _ahead(truth.tip_px, unit[0], unit[1], spacing, TRAJECTORY_MM)
        self._traj_mm.append(distance_mm(p_det, p_true, spacing))

    def _appearance(self, found: bool) -> None:
        """One visible frame of the current appearance of the needle."""
        if self._since_appeared is None:  # it has just appeared
            self._entries += 1
            self._since_appeared = 0
            self._found_now = False
        elif not self._found_now:
            self._since_appeared += 1
        if found and not self._found_now:
            self._found_after.append(self._since_appeared)
            self._found_now = True

    def _end_appearance(self) -> None:
        self._since_appeared = None
        self._found_now = False

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
        if self._reported:
            out["wrong_object_rate"] = round(self._wrong_object / self._reported, 4)
            out["other_needle_rate"] = round(self._other_needle / self._reported, 4)
        out["reported_frames"] = self._reported
        if self._entries:
            found = self._found_after
            out["frames_to_find"] = {
                "median": float(np.median(found)) if found else None,
                "max": max(found) if found else None,
                "entries": self._entries, "missed": self._entries - len(found)}
        return out
