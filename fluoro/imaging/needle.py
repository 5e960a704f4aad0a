"""Needle tracking: the ``track`` pipeline stage, reporting a ``NeedleResult`` per frame.

A 22 G spinal needle images as a thin (~1.2 mm at the detector), straight, strongly
attenuating dark line with its hub's wider ferrule at the proximal end. Per frame:

1. **track** (the usual path, ~1–2 ms at 1024²): the line predicted from the previous frames
   is refined in a narrow strip around it (``fluoro.imaging.needle_detect.measure``: sub-pixel
   centres fitted by RANSAC + least squares, tip and hub at the half-maximum of the shaft's
   attenuation along the axis);
2. **search** when there is no track or the track is lost: dark-line pixels of a 2× downsampled
   frame (Hessian ridge with a both-sides test, after Frangi et al. 1998) voted into an
   orientation-restricted Hough accumulator; each strong line is measured as in 1 and the best
   thin, straight, long, contrasted one is taken (screws and rods are wide; bone edges fail
   the both-sides test and are faint in relative terms);
3. **filter**: a constant-velocity Kalman filter (Kalman 1960) on the tip (x, y) and the
   direction angle predicts where to look next and gates the measurement; a measurement far
   from the prediction is not reported until it is confirmed on the next frame.

"Not detected" (``NOT_DETECTED``-like result, confidence < ``accept``) is reported rather than
a doubtful line. Coordinates follow ``fluoro.imaging.needle_result``: (x, y) = (column, row)
px, pixel centres at integers; angles in degrees from +x towards +y, hub -> tip.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from fluoro.frame import WorkItem
from fluoro.imaging.needle_detect import NeedleScale, Segment, hypotheses, measure
from fluoro.imaging.needle_result import NeedleResult, Point, distance_mm

__all__ = ["ConstantVelocityKalman", "NeedleTracker"]

GATE_MM = 6.0  # a tracked tip may move this far from its prediction
GATE_DEG = 6.0
ACCEPT = 0.5  # lowest confidence reported as detected
CONFIRM_ALONE = 0.9  # a new (not confirmed) line this sure is reported at once


class ConstantVelocityKalman:
    """Kalman filter (Kalman 1960) with a constant-velocity model on ``m`` independent
    coordinates sharing one time step; state ``[position, velocity]`` per coordinate.

    ``q`` is the white-acceleration spectral density (units²/s³), ``r`` the measurement
    variance (units²) per coordinate.
    """

    def __init__(self, z: np.ndarray, q: np.ndarray, r: np.ndarray) -> None:
        m = z.size
        self.x = np.concatenate([z, np.zeros(m)])
        self.p = np.diag(np.concatenate([r, np.full(m, 1e2) * np.maximum(r, 1e-6)]))
        self.q = np.asarray(q, float)
        self.r = np.asarray(r, float)
        self.m = m

    def predict(self, dt: float) -> np.ndarray:
        m = self.m
        f = np.eye(2 * m)
        f[:m, m:] = np.eye(m) * dt
        g = np.zeros((2 * m, 2 * m))
        g[:m, :m] = np.diag(self.q) * dt**3 / 3.0
        g[:m, m:] = g[m:, :m] = np.diag(self.q) * dt**2 / 2.0
        g[m:, m:] = np.diag(self.q) * dt
        self.x = f @ self.x
        self.p = f @ self.p @ f.T + g
        return self.x[:m].copy()

    def update(self, z: np.ndarray) -> None:
        m = self.m
        h = np.zeros((m, 2 * m))
        h[:, :m] = np.eye(m)
        s = h @ self.p @ h.T + np.diag(self.r)
        gain = self.p @ h.T @ np.linalg.inv(s)
        self.x = self.x + gain @ (z - h @ self.x)
        self.p = (np.eye(2 * m) - gain @ h) @ self.p

    @property
    def velocity(self) -> np.ndarray:
        return self.x[self.m:].copy()


@dataclass(slots=True)
class _Track:
    segment: Segment
    kalman: ConstantVelocityKalman
    t_s: float | None
    confirmed: bool


def _angle(direction: tuple[float, float]) -> float:
    return math.atan2(direction[1], direction[0])


def _wrap(a: float) -> float:
    return (a + math.pi) % (2.0 * math.pi) - math.pi


class NeedleTracker:
    """The ``track`` stage: finds and follows the needle, one ``NeedleResult`` per frame in
    ``item.results["track"]``.

    The planned target, when the operator set one, comes with each frame
    (``WorkItem.target_px``, set through ``Pipeline.set_target``); the result then reports
    ``tip_to_target_mm``.

    Parameters
    ----------
    trajectory_mm : float
        Length of the projected path drawn beyond the tip, mm (>= 30 by default).
    accept : float
        Lowest confidence (0..1) reported as a detection.

    Example
    -------
    >>> tracker = NeedleTracker()
    >>> tracker.warm_up((512, 512))
    >>> result = tracker.detect(image, pixel_spacing_mm=(0.25, 0.25))  # doctest: +SKIP
    """

    name = "track"

    def __init__(self, trajectory_mm: float = 30.0, accept: float = ACCEPT) -> None:
        self.trajectory_mm = trajectory_mm
        self.accept = accept
        self._track: _Track | None = None
        self._hint: Segment | None = None  # the last pose before a reset or a loss
        self._buffers: dict = {}
        self.last_path = "none"  # "track", "search" or "none": how the last frame was handled

    # -- Stage ----------------------------------------------------------------------------
    def warm_up(self, shape: tuple[int, int]) -> None:
        """Compile every kernel (numba, cached on disk) for uint16 and float32 frames, on a
        small synthetic needle, so that the first real frame is not compile time. The kernels
        do not depend on the frame size, so ``shape`` (the Stage protocol's) is not needed."""
        size = 128
        yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
        across = np.abs((xx - 20.0) * 0.8 - (yy - 30.0) * 0.6)
        along = (xx - 20.0) * 0.6 + (yy - 30.0) * 0.8
        chord = np.sqrt(np.clip(1.0 - (across / 2.3) ** 2, 0.0, 1.0))
        img = 1500.0 * np.exp(-1.08 * chord * ((along >= 0) & (along <= 90)))
        scale = NeedleScale.for_spacing(0.25)
        for arr in (img.astype(np.float32), img.astype(np.uint16)):
            hypotheses(arr, scale, {})
            measure(arr, (20.0, 30.0), (0.6, 0.8), -10.0, 100.0, 4.0, scale)
            NeedleTracker().track(arr, (0.25, 0.25))
        self.reset()

    def reset(self) -> None:
        """Forget the track (beam off, new size, scene cut); its last pose is kept only as a
        hint where to look first, and must be re-measured before anything is reported."""
        if self._track is not None:
            self._hint = self._track.segment
        self._track = None

    def __call__(self, item: WorkItem) -> None:
        frame = item.frame
        item.results["track"] = self.track(item.image, frame.pixel_spacing_mm, frame.t_s,
                                           target_px=item.target_px)

    # -- public API -----------------------------------------------------------------------
    def detect(self, image: np.ndarray, pixel_spacing_mm: Point = (1.0, 1.0),
               detection_spacing_mm: float | None = None) -> NeedleResult:
        """Needle in one image, without history (the cold-start search)."""
        self._track = None
        self._hint = None
        return self.track(image, pixel_spacing_mm, None, single=True,
                          detection_spacing_mm=detection_spacing_mm)

    def track(self, image: np.ndarray, pixel_spacing_mm: Point, t_s: float | None = None,
              single: bool = False, detection_spacing_mm: float | None = None,
              target_px: Point | None = None) -> NeedleResult:
        """One frame: ``image`` H×W (uint16 or float32; others are converted), its pixel
        spacing (row, col) mm, the source's clock ``t_s`` (s) for the motion model.
        ``detection_spacing_mm`` sets the needle's expected size in pixels when the pixel
        spacing is unknown (default: from ``pixel_spacing_mm``); ``single``: one image, report
        a first sighting without waiting for the next frame to confirm it; ``target_px``: the
        planned target (x, y), to report the tip's distance to it."""
        img = np.asarray(image)
        if img.dtype not in (np.uint16, np.float32) or not img.flags.c_contiguous:
            img = np.ascontiguousarray(img, dtype=np.float32)
        spacing = (float(pixel_spacing_mm[0]), float(pixel_spacing_mm[1]))
        scale = NeedleScale.for_spacing(detection_spacing_mm or math.sqrt(spacing[0] * spacing[1]))
        seg = None
        self.last_path = "none"
        if self._track is not None:
            seg = self._follow(img, scale, t_s)
            self.last_path = "track"
        if seg is None:
            seg = self._search(img, scale, t_s, single)
            self.last_path = "search"
        if seg is None or seg.confidence < self.accept:
            return NeedleResult(False, 0.0 if seg is None else seg.confidence,
                                pixel_spacing_mm=spacing, target_px=target_px,
                                trajectory_mm=self.trajectory_mm)
        return self._result(seg, spacing, target_px)

    # -- internals ------------------------------------------------------------------------
    def _follow(self, img: np.ndarray, scale: NeedleScale, t_s: float | None) -> Segment | None:
        track = self._track
        assert track is not None
        dt = 1.0 / 15.0
        if t_s is not None and track.t_s is not None:
            dt = min(max(t_s - track.t_s, 1e-3), 1.0)
        pred = track.kalman.predict(dt)
        ux, uy = math.cos(pred[2]), math.sin(pred[2])
        speed = float(np.hypot(*track.kalman.velocity[:2])) * dt
        px_mm = 1.0 / scale.spacing_mm
        length = track.segment.length_px
        seg = measure(img, (pred[0], pred[1]), (ux, uy), -(length + 8.0 * px_mm),
                      6.0 * px_mm + 2.0 * speed, 3.0 * px_mm + speed, scale, prior=(ux, uy),
                      extend_back=False)  # t_lo is the hub side, with a margin
        if seg is None or seg.confidence < self.accept or not self._gated(seg, pred, scale,
                                                                           speed):
            self._hint = track.segment
            self._track = None
            return None
        self._update(seg, t_s, confirmed=True)
        return seg

    def _gated(self, seg: Segment, pred: np.ndarray, scale: NeedleScale, speed: float) -> bool:
        d_px = math.hypot(seg.tip[0] - pred[0], seg.tip[1] - pred[1])
        d_ang = abs(_wrap(_angle(seg.direction) - pred[2]))
        return (d_px <= GATE_MM / scale.spacing_mm + 2.0 * speed
                and d_ang <= math.radians(GATE_DEG))

    def _search(self, img: np.ndarray, scale: NeedleScale, t_s: float | None,
                single: bool) -> Segment | None:
        hint = self._hint
        best: Segment | None = None
        px_mm = 1.0 / scale.spacing_mm
        if hint is not None:  # look where the needle was first (cheap, usually right)
            seg = measure(img, hint.tip, hint.direction, -(hint.length_px + 8.0 * px_mm),
                          6.0 * px_mm, 4.0 * px_mm, scale, prior=hint.direction)
            if seg is not None and seg.confidence >= self.accept and _near(seg, hint, scale):
                self._update(seg, t_s, confirmed=True)
                return seg
        prior = hint.direction if hint is not None else None
        seen: list[Segment] = []
        for origin, direction, t_lo, t_hi in hypotheses(img, scale, self._buffers):
            if any(_on_line(origin, direction, s) for s in seen):
                continue
            seg = measure(img, origin, direction, t_lo, t_hi, 2.0 * px_mm, scale, prior=prior)
            if seg is None:
                continue
            seen.append(seg)
            if best is None or (seg.confidence, seg.support) > (best.confidence, best.support):
                best = seg
        if best is None or best.confidence < self.accept:
            return best
        confirmed = (single or best.confidence >= CONFIRM_ALONE
                     or (hint is not None and _near(best, hint, scale)))
        self._update(best, t_s, confirmed=confirmed)
        return best if confirmed else None

    def _update(self, seg: Segment, t_s: float | None, confirmed: bool) -> None:
        z = np.array([seg.tip[0], seg.tip[1], _angle(seg.direction)])
        track = self._track
        if track is None or not (track.confirmed or confirmed):
            r = np.array([0.5, 0.5, math.radians(0.3) ** 2])
            q = np.array([400.0, 400.0, math.radians(20.0) ** 2])
            self._track = _Track(seg, ConstantVelocityKalman(z, q, r), t_s, confirmed)
            return
        z[2] = track.kalman.x[2] + _wrap(z[2] - track.kalman.x[2])
        track.kalman.update(z)
        track.segment = seg
        track.t_s = t_s
        track.confirmed = True

    def _result(self, seg: Segment, spacing: Point, target_px: Point | None) -> NeedleResult:
        ux, uy = seg.direction
        step_mm = math.hypot(ux * spacing[1], uy * spacing[0])
        reach_px = self.trajectory_mm / step_mm
        end = (seg.tip[0] + reach_px * ux, seg.tip[1] + reach_px * uy)
        to_target = None
        if target_px is not None:
            to_target = distance_mm(seg.tip, target_px, spacing)
        return NeedleResult(
            detected=True,
            confidence=round(float(seg.confidence), 4),
            tip_px=(float(seg.tip[0]), float(seg.tip[1])),
            hub_px=(float(seg.hub[0]), float(seg.hub[1])),
            angle_deg=math.degrees(_angle(seg.direction)) % 360.0,
            trajectory_end_px=(float(end[0]), float(end[1])),
            trajectory_mm=self.trajectory_mm,
            pixel_spacing_mm=spacing,
            target_px=target_px,
            tip_to_target_mm=to_target,
        )


def _near(a: Segment, b: Segment, scale: NeedleScale) -> bool:
    """Same needle: tips within 10 mm, directions within 8°."""
    d_px = math.hypot(a.tip[0] - b.tip[0], a.tip[1] - b.tip[1])
    d_ang = abs(_wrap(_angle(a.direction) - _angle(b.direction)))
    return d_px * scale.spacing_mm <= 10.0 and d_ang <= math.radians(8.0)


def _on_line(origin: tuple[float, float], direction: tuple[float, float], seg: Segment) -> bool:
    """A hypothesis already measured: the segment's tip is on its line, directions agree."""
    ux, uy = direction
    dist = abs(-(seg.tip[0] - origin[0]) * uy + (seg.tip[1] - origin[1]) * ux)
    cos = abs(ux * seg.direction[0] + uy * seg.direction[1])
    return dist < 3.0 and cos > math.cos(math.radians(3.0))
