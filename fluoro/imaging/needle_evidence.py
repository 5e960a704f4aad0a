"""Is this tracked line the needle? The evidence a track gathers, and its probability.

A needle and the things that look like one (pedicle screws and rods, a K-wire, a vertebral
body's cortex, an ECG lead, the edge of a cage) differ less in one frame than over a few:
an inserted needle is thin, runs to a hub or out of the field at one end and ends inside the
field at its tip, and it is *worked*: advanced, withdrawn, redirected, so its tip moves
against the anatomy. Hardware and bone are fixed to the anatomy and move only with it
(breathing). So a track keeps, beside its latest measurement (``Segment``), how it has
behaved since it was first seen, in anatomy coordinates (``fluoro.imaging.anatomy_motion``).

The tracker's probability that a track is the needle is the product of two parts:

- ``worked_factor``: the motion, a rule, not a fit: 0 until the tip has travelled
  ``WORKED_LO_MM``–``WORKED_HI_MM`` along the shaft against the anatomy (with its hub, when
  the hub is in the field), 0 while it swings to and fro (a catheter or a vessel that the
  heart moves) or strays sideways from its line, and travel counted afresh after a jump no
  hand makes (the measurement slid along a fixed line). Hardware, bone and a K-wire left in
  place never pass it, however needle-like they look.
- ``needle_probability``: the shape and history, a logistic model (Cox 1958) over the
  features of ``features``: one model for a line seen in fewer than ``FIRST_SIGHT`` frames
  (what one image shows: ``NeedleTracker.detect``), one for a track with a history. The
  weights were fitted by ``benchmarks/needle_confidence_fit.py`` on training seeds of the
  independent validation family (``drivers/family``) and of the simulator (``drivers/sim``),
  among the lines the worked factor lets through, and ``ACCEPT`` was chosen on other seeds
  as the lowest level at which at least 99 % of the tracker's reported detections are on a
  needle (DESIGN.md: a reported detection must be right). The family benchmark
  (``benchmarks/tracking_family.py``) measures it again on seeds used by neither.

Units: lengths in mm at the detector (pixel spacing applied), times in s (the source's clock).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from fluoro.imaging.needle_detect import Segment

__all__ = ["ACCEPT", "FEATURES", "FIRST_SIGHT", "STATIC_FEATURES", "TrackEvidence", "features",
           "needle_probability", "worked_factor"]

MOVED_CAP_MM = 10.0  # beyond this the needle has plainly been worked; more says nothing new
EMA = 0.3  # weight of the newest frame in the running fractions (ferrule seen, ends out)
WINDOW = 10  # measured frames of tip history the motion trend is fitted over
# A line is reported as the needle only once its tip was seen to move against the anatomy:
# P(worked) rises from 0 at WORKED_LO_MM of net travel to 1 at WORKED_HI_MM. The end of a
# screw, a rod or a bone edge, measured again in each frame, wanders by up to ~1 mm (its
# half-maximum is noisy); a needle being advanced at 2-6 mm/s passes 3.5 mm within 1-2 s.
WORKED_LO_MM, WORKED_HI_MM = 2.0, 3.5
RECENT_FRAMES = 3  # tips whose median is where the track started, and where it is now
IMAGE_MOVE_MM = 1.0  # travel counts only while the tip has also moved this far in the image
JUMP_MM_S = 25.0  # a tip faster than this jumped (a hand advances a needle at 1-20 mm/s) ...
JUMP_FACTOR = 3.0  # ... if its step is also this many times its recent ones (plus 1 mm)
JUMPS = 2  # a tip that jumped this many times
JUMP_WINDOW_S = 5.0  # ... within this long is not vouched for
# ... and while its recent tips stray from its current line (RMS) by more than LATERAL_LO_MM
# it is not (0 at LATERAL_HI_MM): a needle moves along its shaft (0.04-0.13 mm RMS on the
# validation family, more only while it is redirected), a vessel or a catheter that the heart
# moves strays 0.5-1.5 mm across its length (the real coronary cine).
LATERAL_LO_MM, LATERAL_HI_MM = 0.5, 1.0
# ... and while its tip swings back and forth along the shaft (SWINGS reversals of at
# least SWING_MM within SWING_WINDOW_S) it is not: a hand advances, pauses and withdraws a
# needle over seconds, while the heart moves a catheter or a vessel to and fro about once a
# second (a real coronary cine, ../shared/data/xray: 16-32 mm/s, on-axis; speed alone does
# not tell, the simulator's needle is pushed at up to 35 mm/s).
SWING_MM = 3.0
SWINGS = 2
SWING_WINDOW_S = 2.0
NOMINAL_FPS = 15.0  # frames per second assumed when no clock is given

FEATURES = ("bias", "contrast", "residual_px", "thinness", "support", "length_mm",
            "ferrule", "hub_out", "tip_out", "tip_sharpness", "tip_hidden", "worked_mm",
            "trend_mm", "jitter_mm", "seen", "steady")

# What one frame shows (the first-sight model uses only these).
STATIC_FEATURES = ("bias", "contrast", "residual_px", "thinness", "support", "length_mm",
                   "ferrule", "hub_out", "tip_out", "tip_sharpness", "tip_hidden")
FIRST_SIGHT = 3  # a track seen in fewer frames than this is judged by the first-sight model

# Fitted by benchmarks/needle_confidence_fit.py (see its report); order as FEATURES.
WEIGHTS = np.array([-5.401, 0.07112, -2.196, -7.731, 5.917, 0.04351, 2.23, 0, 0, 2.756, -5.623, 0,
                    0.1188, -4.043, 0, 0])
WEIGHTS_FIRST = np.array([-10.68, 1.462, 0, 0, 5.261, 0.06032, 2.376, 0.2821, -1.884, 2.269, -3.203,
                          0, 0, 0, 0, 0])
ACCEPT = 0.684


@dataclass(slots=True)
class TrackEvidence:
    """What a track has shown since it was first seen (updated once per measured frame).

    For the worked factor: ``travel_mm``, the farthest the tip (median of the latest
    ``RECENT_FRAMES``) has been along the shaft from where the track started (median of its
    first ``RECENT_FRAMES``), with the hub end when it is in the field; ``lateral_mm``, the RMS
    distance of the recent tips from the current line; ``reversals_s``, when the tip's motion
    along the shaft last reversed by ``SWING_MM`` or more (``swinging``); ``gap`` after a
    beam-off. As features of the model: the tip's recent path in anatomy coordinates
    (``history``: the last ``WINDOW`` measured frames, with the source's clock): a
    straight-line fit of position against time gives the
    *trend* (how far the tip travelled systematically over the window, mm) and the *jitter*
    (the RMS scatter about a parabola fitted likewise, mm, so that a push that gathers and
    loses speed is not scatter). A needle being advanced or withdrawn has a trend and
    little jitter; the ill-defined end of a bone edge or a lead wanders (jitter) without a
    trend; hardware has neither. ``worked_mm`` is the largest trend seen so far (the needle
    was worked, even if it rests now). ``ferrule``, ``hub_out``, ``tip_out``: running
    fractions of frames with the hub's ferrule seen, with the hub end, and with the tip end
    leaving the field; ``seen``: frames measured; ``age``: frames since first seen.
    """

    history: deque[tuple[float, float, float]] = field(
        default_factory=lambda: deque(maxlen=WINDOW))
    start: list[tuple[float, float]] = field(default_factory=list)
    hub_start: list[tuple[float, float]] = field(default_factory=list)
    hubs: deque[tuple[float, float]] = field(default_factory=lambda: deque(maxlen=RECENT_FRAMES))
    image_start: list[tuple[float, float]] = field(default_factory=list)
    images: deque[tuple[float, float]] = field(
        default_factory=lambda: deque(maxlen=RECENT_FRAMES))
    travel_mm: float = 0.0
    lateral_mm: float = 0.0
    now_s: float = 0.0
    axial_mm: float = 0.0  # the tip's path along the shaft (median of 3 tips), summed
    _recent: deque[tuple[float, float]] = field(default_factory=lambda: deque(maxlen=3))
    _smoothed: tuple[float, float] | None = None
    _extreme_mm: float = 0.0
    _heading: int = 0  # +1 / -1: moving out / in along the shaft since the last reversal
    reversals_s: deque[float] = field(default_factory=lambda: deque(maxlen=8))
    jumps_s: deque[float] = field(default_factory=lambda: deque(maxlen=8))
    _steps: deque[float] = field(default_factory=lambda: deque(maxlen=3))  # recent tip steps
    worked_mm: float = 0.0
    trend_mm: float = 0.0
    jitter_mm: float = 0.0
    ferrule: float = 0.0
    hub_out: float = 0.0
    tip_out: float = 0.0
    seen: int = 0
    age: int = 0

    def add(self, seg: Segment, tip_mm: tuple[float, float], frame: int,
            t_s: float | None = None, hub_mm: tuple[float, float] | None = None,
            image_tip_mm: tuple[float, float] | None = None) -> None:
        """One more frame (index ``frame``, at the source's clock ``t_s`` s when known) in
        which the track was measured, its tip at ``tip_mm`` and its hub end at ``hub_mm`` in
        anatomy coordinates, its tip at ``image_tip_mm`` in image coordinates (mm from the
        image origin; default: ``tip_mm``, no anatomy motion)."""
        now_s = t_s if t_s is not None else frame / NOMINAL_FPS
        hub_mm = hub_mm if hub_mm is not None else tip_mm
        image_tip_mm = image_tip_mm if image_tip_mm is not None else tip_mm
        if self.history:
            last_s, last_x, last_y = self.history[-1]
            step_mm = math.hypot(tip_mm[0] - last_x, tip_mm[1] - last_y)
            usual_mm = _median(self._steps) if self._steps else 0.0
            self._steps.append(step_mm)
            # faster than a hand, and out of the blue: a push gathers speed over frames
            if (step_mm > JUMP_MM_S * max(now_s - last_s, 1.0 / NOMINAL_FPS)
                    and step_mm > JUMP_FACTOR * usual_mm + 1.0):
                # no hand moves a needle so fast: the measurement jumped (the line's end was
                # found further on: in a screw head, along a K-wire, on a cortex the needle
                # points at); whatever it is on now has shown nothing yet: the travel is
                # earned again from here
                self.gap()
                self.travel_mm = 0.0
                self.jumps_s.append(now_s)
        self.history.append((now_s, tip_mm[0], tip_mm[1]))
        self.hubs.append(hub_mm)
        self.images.append(image_tip_mm)
        if len(self.start) < RECENT_FRAMES:
            self.start.append(tip_mm)
            self.hub_start.append(hub_mm)
            self.image_start.append(image_tip_mm)
        if len(self.history) >= RECENT_FRAMES:
            ux, uy = seg.direction  # a needle is pushed and pulled along its shaft
            tip = _axial(self.start, list(self.history)[-RECENT_FRAMES:], ux, uy, 1)
            hub = _axial(self.hub_start, list(self.hubs)[-RECENT_FRAMES:], ux, uy, 0)
            # a needle is pushed whole: with its hub in the field, the hub goes as far as the
            # tip; a tip that moves while the hub end keeps still is a measurement wandering
            # along a fixed line (into a screw head, along a K-wire), not a needle being worked
            travel = abs(tip) if self.hub_out >= 0.5 else (
                min(abs(tip), abs(hub)) if tip * hub > 0.0 else 0.0)
            # and a needle is in the patient: a line that keeps still in the image while
            # the anatomy moves under it (a table's rail, a collimator's or a wedge's edge:
            # fixed to the detector) has travelled against the anatomy without being worked
            image = _axial(self.image_start, list(self.images), ux, uy, 0)
            if abs(image) >= IMAGE_MOVE_MM:
                self.travel_mm = max(self.travel_mm, travel)
        h = np.asarray(self.history)[:, 1:]
        ux, uy = seg.direction
        across = -(h[:, 0] - tip_mm[0]) * uy + (h[:, 1] - tip_mm[1]) * ux
        self.lateral_mm = float(np.sqrt(np.mean(across ** 2)))
        self.trend_mm, self.jitter_mm = _trend(self.history)
        self.now_s = now_s
        self._swing(tip_mm, seg.direction, now_s)
        self.worked_mm = max(self.worked_mm, self.trend_mm)
        weight = 1.0 if self.seen == 0 else EMA
        self.ferrule += weight * (float(seg.ferrule) - self.ferrule)
        self.hub_out += weight * (float(seg.hub_exits) - self.hub_out)
        self.tip_out += weight * (float(seg.tip_exits) - self.tip_out)
        self.seen += 1

    def gap(self) -> None:
        """The beam was off: what the track has shown is kept (``travel_mm``, the fractions,
        the reversals), but motion is not measured across the gap: the trend window and the
        start of the travel begin again with the next frame."""
        self.history.clear()
        self.hubs.clear()
        self.start, self.hub_start, self.image_start = [], [], []
        self.images.clear()
        self._recent.clear()
        self._smoothed = None

    def _swing(self, tip_mm: tuple[float, float], direction: tuple[float, float],
               now_s: float) -> None:
        """Count reversals of the tip's motion along the shaft (a zig-zag with hysteresis
        ``SWING_MM`` on the median of the last three tips, so one bad frame does not count)."""
        self._recent.append(tip_mm)
        smoothed = _median_xy(self._recent)
        if self._smoothed is not None:
            self.axial_mm += ((smoothed[0] - self._smoothed[0]) * direction[0]
                              + (smoothed[1] - self._smoothed[1]) * direction[1])
        self._smoothed = smoothed
        moved = self.axial_mm - self._extreme_mm
        if self._heading == 0:
            if abs(moved) >= SWING_MM:
                self._heading, self._extreme_mm = (1 if moved > 0 else -1), self.axial_mm
        elif moved * self._heading > 0:
            self._extreme_mm = self.axial_mm  # further the same way
        elif abs(moved) >= SWING_MM:
            self.reversals_s.append(now_s)
            self._heading, self._extreme_mm = -self._heading, self.axial_mm

    def jumping(self) -> bool:
        """Whether the tip has jumped ``JUMPS`` times within ``JUMP_WINDOW_S``: its end is
        found at one place, then at another (a line ending at a dark object, a rail in the
        noise): where it is, is not known."""
        return _within(self.jumps_s, self.now_s, JUMP_WINDOW_S) >= JUMPS

    def swinging(self) -> bool:
        """Whether the tip has swung to and fro ``SWINGS`` times within ``SWING_WINDOW_S``."""
        return _within(self.reversals_s, self.now_s, SWING_WINDOW_S) >= SWINGS


def _within(times_s, now_s: float, window_s: float) -> int:
    """How many of ``times_s`` are at most ``window_s`` before ``now_s``."""
    return sum(now_s - t <= window_s for t in times_s)


def _median(values) -> float:
    """Median of a few numbers (plain Python: numpy's call costs more than the sort)."""
    v = sorted(values)
    n = len(v)
    return float(v[n // 2]) if n % 2 else 0.5 * (v[n // 2 - 1] + v[n // 2])


def _median_xy(points, first: int = 0) -> tuple[float, float]:
    """Per-coordinate median of a few points (their x, y from column ``first`` on)."""
    return (_median([p[first] for p in points]), _median([p[first + 1] for p in points]))


def _axial(start: list, recent: list, ux: float, uy: float, first: int) -> float:
    """Signed distance along (ux, uy), mm, from the median of ``start`` (x, y) points to the
    median of ``recent`` (their x, y from column ``first`` on)."""
    a = _median_xy(start)
    b = _median_xy(recent, first)
    return (b[0] - a[0]) * ux + (b[1] - a[1]) * uy


def _trend(history: deque[tuple[float, float, float]]) -> tuple[float, float]:
    """(systematic travel over the window, RMS scatter about it), mm, of a straight-line fit
    of position against time."""
    if len(history) < 3:
        return 0.0, 0.0
    h = np.asarray(history, float)
    f = h[:, 0] - h[:, 0].mean()
    span = float(f.max() - f.min())
    denom = float(f @ f)
    if denom <= 0.0:
        return 0.0, 0.0
    slope = (f @ (h[:, 1:] - h[:, 1:].mean(axis=0))) / denom  # mm per s, (x, y)
    if len(history) < 4:
        residual = h[:, 1:] - h[:, 1:].mean(axis=0) - np.outer(f, slope)
    else:  # the scatter about a parabola: a hand's push gathers and loses speed smoothly
        basis = np.stack([np.ones_like(f), f, f * f], axis=1)
        coef, *_ = np.linalg.lstsq(basis, h[:, 1:], rcond=None)
        residual = h[:, 1:] - basis @ coef
    return (float(np.hypot(*slope)) * span,
            float(np.sqrt(np.mean(np.sum(residual ** 2, axis=1)))))


def features(seg: Segment, ev: TrackEvidence, spacing_mm: float) -> np.ndarray:
    """The model's inputs for a track whose latest measurement is ``seg`` (order: FEATURES)."""
    return np.array([
        1.0,
        float(np.clip(seg.contrast, 0.0, 1.0)),
        float(min(seg.residual_px, 3.0)),
        float(np.clip(seg.thinness, 0.0, 2.0)),
        float(np.clip(seg.support / max(seg.length_px, 1.0), 0.0, 1.0)),
        float(min(seg.length_px * spacing_mm, 100.0)),
        ev.ferrule,
        ev.hub_out,
        ev.tip_out,
        float(seg.tip_sharpness),
        float(seg.tip_hidden),
        float(min(ev.worked_mm, MOVED_CAP_MM)),
        float(min(ev.trend_mm, MOVED_CAP_MM)),
        float(min(ev.jitter_mm, MOVED_CAP_MM)),
        math.log1p(ev.seen),
        ev.seen / max(ev.age, 1),
    ])


def worked_factor(ev: TrackEvidence) -> float:
    """How surely the track's tip has been *worked* (moved against the anatomy), 0..1: a ramp
    of ``travel_mm`` (the farthest the median of its latest ``RECENT_FRAMES`` tips has been
    from the median of its first ones, in anatomy coordinates, *along the shaft*: a needle is
    advanced and withdrawn along its axis, while a vessel or a lead that the heart or the
    breath moves is carried sideways) from ``WORKED_LO_MM`` to ``WORKED_HI_MM``, times a ramp
    from 1 to 0 as its recent tips stray from its current line (``lateral_mm``, RMS) from
    ``LATERAL_LO_MM`` to ``LATERAL_HI_MM``; 0 while its tip swings to and fro
    (``TrackEvidence.swinging``) or its end jumps from place to place (``jumping``).
    Hardware, bone and a K-wire left in place move only with the anatomy and stay at 0,
    however needle-like they look in one frame: the tracker's confidence is the shape
    model's probability times this factor, so a line that never moved is at most "unsure"
    (DESIGN.md: right, or honestly unsure)."""
    worked = (ev.travel_mm - WORKED_LO_MM) / (WORKED_HI_MM - WORKED_LO_MM)
    along = (LATERAL_HI_MM - ev.lateral_mm) / (LATERAL_HI_MM - LATERAL_LO_MM)
    if ev.swinging() or ev.jumping():
        return 0.0
    return float(np.clip(worked, 0.0, 1.0) * np.clip(along, 0.0, 1.0))


def needle_probability(x: np.ndarray, seen: int, weights: np.ndarray = WEIGHTS,
                       weights_first: np.ndarray = WEIGHTS_FIRST) -> float:
    """P(on a needle) of a track with features ``x``, measured in ``seen`` frames (logistic
    model, 0..1; the first-sight model below ``FIRST_SIGHT`` frames)."""
    z = float(np.dot(weights_first if seen < FIRST_SIGHT else weights, x))
    return 1.0 / (1.0 + math.exp(-max(min(z, 40.0), -40.0)))
