"""Needle tracking: the ``track`` pipeline stage, reporting a ``NeedleResult`` per frame.

A spinal needle (18–25 G) images as a thin, straight, dark line that runs from a hub (a
wider ferrule) or from the edge of the field to a tip inside the field. So do many things
that are not the needle: screws and rods, a K-wire, the cortex of a vertebral body, a cable,
a catheter. In one frame they can look alike; over frames they do not: the needle is
*worked* (advanced, withdrawn, redirected) so its tip travels along its shaft against the
anatomy, while hardware and bone move only with the anatomy. The tracker therefore follows
every line that looks like a needle, not only the best one, and reports a line as the needle
only once it has behaved like one (``fluoro.imaging.needle_evidence``). Per frame:

1. **anatomy**: the anatomy's offset since the key frame (``fluoro.imaging.anatomy_motion``,
   template matching with the tracked lines left out), so that each track's motion can be
   told from breathing;
2. **follow** the likeliest tracks (``HOT_TRACKS``, and the active one) on every frame, the
   others on search frames: the line predicted by its constant-velocity Kalman filter
   (Kalman 1960; tip (x, y) and direction angle, moved with the anatomy) is re-measured in a
   narrow strip (``fluoro.imaging.needle_detect.measure``: sub-pixel centres fitted by RANSAC
   and least squares, tip and hub at the half-maximum of the shaft's contrast); a measurement
   far from the prediction (gate) does not count, and a track not measured for a few frames
   is dropped;
3. **search** the whole frame regularly (every ``search_every`` frames, after a beam-off,
   and on the first frame): dark-line pixels
   of a downsampled frame (Hessian ridge with a both-sides test, after Frangi et al. 1998)
   voted into an orientation-restricted Hough accumulator; each strong line not already
   tracked is measured and becomes a new track. A better candidate can thus replace a worse
   one at any time: the tracker never locks on;
4. **decide**: each measured track's probability of being the needle is the shape model's
   (a logistic model fitted on scenes of the independent validation family and the
   simulator, ``benchmarks/needle_confidence_fit.py``) times its worked factor (0 until its
   tip has travelled 2–3.5 mm along its shaft against the anatomy, and in the image: a line
   fixed to the detector does not count; 0 while it swings to and fro, strays sideways or
   its end jumps from place to place), and 0 for a line with another beside it (``_paired``:
   the two walls of a metal hub, the edges of a rod: a needle is one line). Measured ends
   (``needle_detect``) stop where the line is plainly absent, not at a dash beyond it, and
   the hub is the ferrule even when the shaft is seen on inside the hub; a line seen from
   its ferrule's far side is no needle. Those at ``accept`` or above are needles; the
   *active* one is the
   needle whose tip moved most recently, the others are reported beside it. Below ``accept``
   the answer is "not detected", never a doubtful line. ``detect`` (one image, no history)
   has only the shape to go on and says so.

Coordinates follow ``fluoro.imaging.needle_result``: (x, y) = (column, row) px, pixel
centres at integers; angles in degrees from +x towards +y, hub -> tip.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from fluoro.frame import WorkItem
from fluoro.imaging.anatomy_motion import AnatomyMotion
from fluoro.imaging.needle_detect import NeedleScale, Segment, hypotheses, measure
from fluoro.imaging.needle_evidence import (
    ACCEPT,
    WEIGHTS,
    WEIGHTS_FIRST,
    TrackEvidence,
    features,
    needle_probability,
    worked_factor,
)
from fluoro.imaging.needle_result import NeedleResult, Point, distance_mm

__all__ = ["Candidate", "ConstantVelocityKalman", "NeedleTracker"]

GATE_MM = 6.0  # a tracked tip may move this far from its prediction
GATE_DEG = 6.0
SEARCH_EVERY = 4  # frames between whole-frame searches while a needle is tracked
MAX_MISSED = 3  # a track not measured in this many frames in a row is dropped
MAX_TRACKS = 12
SEARCH_LINES = 6  # new lines measured per whole-frame search
MOVE_MM = 1.0  # a tip that has moved this far against the anatomy has "moved" again
SAME_TIP_MM = 3.0  # two measurements this close, and as parallel, are one line
SAME_DEG = 4.0
HOT_TRACKS = 2  # tracks followed on every frame (the likeliest) ...
HOT_PROBABILITY = 0.05  # ... unless this unlikely; the others take turns:
COLD_PER_FRAME = 1  # ... this many a frame
PROMISING_FRAMES = 10  # a track seen in fewer frames, or whose tip has travelled this far,
PROMISING_MM = 0.5  # ... may still turn out to be a needle being worked
QUEUED_PER_FRAME = 1  # lines found by a whole-frame search measured a frame
REJECTED_FRAMES = 12  # a line measured as no needle is not measured again for this long
PAIR_DEG = 3.0  # two lines this parallel,
PAIR_MM = (1.5, 12.0)  # ... this far apart (mm),
PAIR_OVERLAP = 0.6  # ... side by side over this share of the longer, are one object's edges


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
    evidence: TrackEvidence
    move_ref_mm: tuple[float, float]  # where the tip was when it last "moved"
    last_moved: int  # frame index of that
    offset_px: tuple[float, float] = (0.0, 0.0)  # the anatomy's offset when last followed
    followed_frame: int = 0  # the tracker's frame count when last followed
    missed: int = 0
    measured: bool = True  # measured in the current frame
    x: np.ndarray | None = None  # the model's features at the latest measurement
    probability: float = 0.0
    shape_probability: float = 0.0  # the model's alone, before the worked factor
    worked: float = 0.0  # needle_evidence.worked_factor at the latest measurement


@dataclass(frozen=True, slots=True)
class Candidate:
    """One tracked line as the tracker judged it in the latest frame (for the bench's
    confidence fit and for diagnostics): its measurement, features, probability, whether it
    was measured in this frame and whether it is the active needle."""

    segment: Segment
    features: np.ndarray
    probability: float
    measured: bool
    active: bool
    worked: float = 0.0  # needle_evidence.worked_factor: the probability is shape x this


def _angle(direction: tuple[float, float]) -> float:
    return math.atan2(direction[1], direction[0])


def _wrap(a: float) -> float:
    return (a + math.pi) % (2.0 * math.pi) - math.pi


class NeedleTracker:
    """The ``track`` stage: finds and follows the needle(s), one ``NeedleResult`` per frame
    in ``item.results["track"]`` (the active needle, the others in ``others``).

    The planned target, when the operator set one, comes with each frame
    (``WorkItem.target_px``, set through ``Pipeline.set_target``); the result then reports
    ``tip_to_target_mm``.

    Parameters
    ----------
    trajectory_mm : float
        Length of the projected path drawn beyond the tip, mm (>= 30 by default).
    accept : float
        Lowest probability (0..1) of being on a needle that is reported as a detection.
    search_every : int
        Frames between whole-frame searches while a needle is tracked.

    Example
    -------
    >>> tracker = NeedleTracker()
    >>> tracker.warm_up((512, 512))
    >>> result = tracker.detect(image, pixel_spacing_mm=(0.25, 0.25))  # doctest: +SKIP
    """

    name = "track"

    def __init__(self, trajectory_mm: float = 30.0, accept: float = ACCEPT,
                 search_every: int = SEARCH_EVERY, weights: np.ndarray = WEIGHTS,
                 weights_first: np.ndarray = WEIGHTS_FIRST) -> None:
        self.trajectory_mm = trajectory_mm
        self.accept = accept
        self.search_every = max(1, search_every)
        self.weights = weights
        self.weights_first = weights_first
        self._tracks: list[_Track] = []
        self._active: _Track | None = None
        self._motion = AnatomyMotion()
        self._offset_px = (0.0, 0.0)
        self._frame = 0
        self._shape: tuple[int, int] | None = None
        self._resume = True  # search on the next frame
        self._buffers: dict = {}
        self._queue: list = []  # lines of the latest whole-frame search not yet measured
        self._rejected: list = []  # (origin, direction, frame) of lines measured as no needle
        self.last_path = "none"  # "track" or "search": how the last frame was handled

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
        """Beam off (or a scene cut): every track must be measured again before it is
        reported, and the next frame is searched whole. What the tracks have shown (a needle
        that was worked) is kept: the needle is still there after a pedal release."""
        for track in self._tracks:
            track.measured = False
            track.kalman.x[track.kalman.m:] = 0.0  # no velocity across the gap
            track.evidence.gap()
        self._active = None
        self._queue = []
        self._rejected = []
        self._resume = True

    def __call__(self, item: WorkItem) -> None:
        frame = item.frame
        item.results["track"] = self.track(item.image, frame.pixel_spacing_mm, frame.t_s,
                                           target_px=item.target_px)

    # -- public API -----------------------------------------------------------------------
    def detect(self, image: np.ndarray, pixel_spacing_mm: Point = (1.0, 1.0),
               detection_spacing_mm: float | None = None) -> NeedleResult:
        """Needle in one image, without history (the cold-start search). One image cannot
        show a line being worked, so the answer rests on its shape alone (the first-sight
        model, ``needle_evidence.WEIGHTS_FIRST``, without the worked factor): a screw or a
        K-wire can look like a needle in one image. Live tracking (``track``) reports a line
        only once it has moved like a needle."""
        self._clear()
        return self.track(image, pixel_spacing_mm, None, single=True,
                          detection_spacing_mm=detection_spacing_mm)

    def track(self, image: np.ndarray, pixel_spacing_mm: Point, t_s: float | None = None,
              single: bool = False, detection_spacing_mm: float | None = None,
              target_px: Point | None = None) -> NeedleResult:
        """One frame: ``image`` H×W (uint16 or float32; others are converted), its pixel
        spacing (row, col) mm, the source's clock ``t_s`` (s) for the motion model.
        ``detection_spacing_mm`` sets the needle's expected size in pixels when the pixel
        spacing is unknown (default: from ``pixel_spacing_mm``); ``single``: one image (no
        anatomy motion); ``target_px``: the planned target (x, y), to report the tip's
        distance to it."""
        img = np.asarray(image)
        if img.dtype not in (np.uint16, np.float32) or not img.flags.c_contiguous:
            img = np.ascontiguousarray(img, dtype=np.float32)
        spacing = (float(pixel_spacing_mm[0]), float(pixel_spacing_mm[1]))
        scale = NeedleScale.for_spacing(detection_spacing_mm or math.sqrt(spacing[0] * spacing[1]))
        shape = (int(img.shape[0]), int(img.shape[1]))
        if shape != self._shape:
            self._clear()
            self._shape = shape
        self._frame += 1
        self._offset_px = (0.0, 0.0) if single else self._motion.update(
            img, [(tr.segment.hub, tr.segment.tip) for tr in self._tracks])
        at_once = single or self._resume  # one image, or the first after a gap: all lines
        searching = at_once or self._frame % self.search_every == 0
        hot = self._hot()
        cold = [tr for tr in self._tracks if tr not in hot]
        # the others take turns (COLD_PER_FRAME a frame), so that no frame follows them all
        turn = set(map(id, cold)) if at_once else {
            id(tr) for tr in sorted(cold, key=lambda tr: tr.followed_frame)[:COLD_PER_FRAME]}
        for track in self._tracks:
            if track in hot or id(track) in turn:
                track.evidence.age += 1
                track.followed_frame = self._frame
                self._follow(track, img, scale, t_s)
            else:  # its turn comes within a few frames
                track.measured = False
        self._tracks = [tr for tr in self._tracks if tr.missed < MAX_MISSED]
        self._score(scale, single)
        self.last_path = "track"
        # lines not yet reported are followed as tracks while they show what they are, so
        # the whole frame is searched only every search_every frames (a needle entering the
        # field is thus found within that many frames; it cannot be reported sooner anyway)
        if searching:
            self._queue_lines(img, scale)
            self._resume = False
            self.last_path = "search"
        if self._queue:
            self._measure_queued(img, scale, t_s,
                                 len(self._queue) if at_once else QUEUED_PER_FRAME)
            self._score(scale, single)
        self._active = self._choose()
        return self._result(spacing, target_px)

    def candidates(self) -> list[Candidate]:
        """Every tracked line as judged in the latest frame, most probable first."""
        out = [Candidate(tr.segment, tr.x if tr.x is not None else np.zeros(0),
                         tr.probability, tr.measured, tr is self._active, tr.worked)
               for tr in self._tracks]
        return sorted(out, key=lambda c: -c.probability)

    # -- internals ------------------------------------------------------------------------
    def _clear(self) -> None:
        self._tracks = []
        self._queue = []
        self._rejected = []
        self._active = None
        self._motion.reset()
        self._offset_px = (0.0, 0.0)
        self._resume = True

    def _tip_mm(self, seg: Segment, scale: NeedleScale) -> tuple[float, float]:
        """The tip in anatomy coordinates, mm."""
        return self._anatomy_mm(seg.tip, scale)

    @staticmethod
    def _image_mm(p: Point, scale: NeedleScale) -> tuple[float, float]:
        """An image point (x, y) px in image coordinates, mm."""
        return (p[0] * scale.spacing_mm, p[1] * scale.spacing_mm)

    def _anatomy_mm(self, p: Point, scale: NeedleScale) -> tuple[float, float]:
        """An image point (x, y) px in anatomy coordinates, mm."""
        return ((p[0] - self._offset_px[0]) * scale.spacing_mm,
                (p[1] - self._offset_px[1]) * scale.spacing_mm)

    def _hot(self) -> list[_Track]:
        """The tracks followed on every frame: the active one and the likeliest others: those
        reported first, then those that may yet show themselves to be needles (young, or
        moving against the anatomy), by their shape; a needle-shaped line that has kept
        still for long (hardware, a bone edge) waits for its turn."""
        def rank(tr: _Track) -> tuple[float, bool, float]:
            ev = tr.evidence
            promising = ev.seen < PROMISING_FRAMES or ev.travel_mm >= PROMISING_MM
            return (tr.probability, promising, tr.shape_probability)

        likely = sorted((tr for tr in self._tracks if tr.shape_probability >= HOT_PROBABILITY),
                        key=rank, reverse=True)[:HOT_TRACKS]
        if self._active is not None and self._active not in likely:
            likely.append(self._active)
        return likely

    def _follow(self, track: _Track, img: np.ndarray, scale: NeedleScale,
                t_s: float | None) -> None:
        dt = 1.0 / 15.0
        if t_s is not None and track.t_s is not None:
            dt = min(max(t_s - track.t_s, 1e-3), 1.0)
        # the anatomy carries the needle with it (breathing) since the track was last followed
        track.kalman.x[0] += self._offset_px[0] - track.offset_px[0]
        track.kalman.x[1] += self._offset_px[1] - track.offset_px[1]
        track.offset_px = self._offset_px
        pred = track.kalman.predict(dt)
        ux, uy = math.cos(pred[2]), math.sin(pred[2])
        speed = float(np.hypot(*track.kalman.velocity[:2])) * dt
        px_mm = 1.0 / scale.spacing_mm
        length = track.segment.length_px
        seg = measure(img, (pred[0], pred[1]), (ux, uy), -(length + 8.0 * px_mm),
                      6.0 * px_mm + 2.0 * speed, 3.0 * px_mm + speed, scale, prior=(ux, uy),
                      extend_back=False)  # t_lo is the hub side, with a margin
        if seg is None or not _gated(seg, pred, scale, speed):
            track.missed += 1
            track.measured = False
            return
        self._update(track, seg, t_s, scale)

    def _queue_lines(self, img: np.ndarray, scale: NeedleScale) -> None:
        """The whole-frame search: the strong lines not already tracked, queued to be
        measured (``QUEUED_PER_FRAME`` a frame, so that no frame measures them all)."""
        # lines already tracked come back among the strongest: ask for more than that many,
        # so that a fainter needle among hardware still gets its turn
        # and lines measured lately as no needle are not measured again for a while: they
        # would come back in every search and keep the queue from lines not yet seen
        wanted = min(SEARCH_LINES + sum(tr.measured for tr in self._tracks), MAX_TRACKS + 2)
        self._rejected = [r for r in self._rejected if self._frame - r[2] < REJECTED_FRAMES]
        self._queue = [(origin, direction, t_lo, t_hi) for origin, direction, t_lo, t_hi
                       in hypotheses(img, scale, self._buffers, wanted)
                       if not any(tr.measured and _on_line(origin, direction, tr.segment.tip,
                                                           tr.segment.direction)
                                  for tr in self._tracks)
                       and not any(_on_line(origin, direction, o, d)
                                   for o, d, _ in self._rejected)]

    def _measure_queued(self, img: np.ndarray, scale: NeedleScale, t_s: float | None,
                        count: int) -> None:
        px_mm = 1.0 / scale.spacing_mm
        while self._queue and count > 0:
            origin, direction, t_lo, t_hi = self._queue.pop(0)
            if any(tr.measured and _on_line(origin, direction, tr.segment.tip,
                                            tr.segment.direction) for tr in self._tracks):
                continue
            count -= 1
            prior = next((tr.segment.direction for tr in self._tracks
                          if _on_line(origin, direction, tr.segment.tip, tr.segment.direction)),
                         None)
            seg = measure(img, origin, direction, t_lo, t_hi, 2.0 * px_mm, scale, prior=prior)
            if seg is None:
                self._rejected.append((origin, direction, self._frame))
                continue
            # the same line as a track, or (a track not followed this frame) the line it was
            # on, its tip moved along it since: found again
            same = next((tr for tr in self._tracks if _same_line(seg, tr.segment, scale)
                         or (not tr.measured and _collinear(seg, tr.segment))), None)
            if same is not None:
                if not same.measured:  # found again where it was lost
                    self._update(same, seg, t_s, scale)
                continue
            self._new_track(seg, t_s, scale)

    def _new_track(self, seg: Segment, t_s: float | None, scale: NeedleScale) -> None:
        if len(self._tracks) >= MAX_TRACKS:  # make room: the least likely unmeasured one goes
            spare = [tr for tr in self._tracks if not tr.measured] or self._tracks
            self._tracks.remove(min(spare, key=lambda tr: tr.probability))
        z = np.array([seg.tip[0], seg.tip[1], _angle(seg.direction)])
        r = np.array([0.5, 0.5, math.radians(0.3) ** 2])
        q = np.array([400.0, 400.0, math.radians(20.0) ** 2])
        tip_mm = self._tip_mm(seg, scale)
        evidence = TrackEvidence()
        evidence.add(seg, tip_mm, self._frame, t_s, self._anatomy_mm(seg.hub, scale),
                     self._image_mm(seg.tip, scale))
        evidence.age = 1
        self._tracks.append(_Track(seg, ConstantVelocityKalman(z, q, r), t_s, evidence,
                                   tip_mm, self._frame, self._offset_px))

    def _update(self, track: _Track, seg: Segment, t_s: float | None,
                scale: NeedleScale) -> None:
        z = np.array([seg.tip[0], seg.tip[1], _angle(seg.direction)])
        z[2] = track.kalman.x[2] + _wrap(z[2] - track.kalman.x[2])
        track.kalman.update(z)
        track.segment, track.t_s = seg, t_s
        track.missed, track.measured = 0, True
        track.offset_px = self._offset_px
        tip_mm = self._tip_mm(seg, scale)
        track.evidence.add(seg, tip_mm, self._frame, t_s, self._anatomy_mm(seg.hub, scale),
                           self._image_mm(seg.tip, scale))
        if math.dist(tip_mm, track.move_ref_mm) >= MOVE_MM:
            track.move_ref_mm, track.last_moved = tip_mm, self._frame

    def _score(self, scale: NeedleScale, single: bool) -> None:
        """Each measured track's probability: the shape model's times its worked factor
        (``single``, one image: the shape model's alone)."""
        for track in self._tracks:
            if not track.measured:
                continue
            track.x = features(track.segment, track.evidence, scale.spacing_mm)
            track.shape_probability = needle_probability(
                track.x, track.evidence.seen, self.weights, self.weights_first)
            track.worked = worked_factor(track.evidence)
            track.probability = track.shape_probability * (1.0 if single else track.worked)
            # two parallel lines side by side are the edges or walls of one wider object (a
            # metal hub, a rod, a screw): a needle is one line
            if any(_paired(track.segment, other.segment, scale)
                   for other in self._tracks if other is not track):
                track.probability = 0.0

    def _choose(self) -> _Track | None:
        needles = [tr for tr in self._tracks if tr.measured and tr.probability >= self.accept]
        if not needles:
            return None
        return max(needles, key=lambda tr: (tr.last_moved, tr.probability))

    def _result(self, spacing: Point, target_px: Point | None) -> NeedleResult:
        active = self._active
        if active is None:
            best = max((tr.probability for tr in self._tracks if tr.measured), default=0.0)
            return NeedleResult(False, round(best, 4), pixel_spacing_mm=spacing,
                                target_px=target_px, trajectory_mm=self.trajectory_mm)
        others = tuple(self._needle_result(tr, spacing, None) for tr in sorted(
            self._tracks, key=lambda tr: -tr.probability)
            if tr is not active and tr.measured and tr.probability >= self.accept)
        return self._needle_result(active, spacing, target_px, others)

    def _needle_result(self, track: _Track, spacing: Point, target_px: Point | None,
                       others: tuple[NeedleResult, ...] = ()) -> NeedleResult:
        seg = track.segment
        ux, uy = seg.direction
        step_mm = math.hypot(ux * spacing[1], uy * spacing[0])
        reach_px = self.trajectory_mm / step_mm
        end = (seg.tip[0] + reach_px * ux, seg.tip[1] + reach_px * uy)
        to_target = None
        if target_px is not None:
            to_target = distance_mm(seg.tip, target_px, spacing)
        return NeedleResult(
            detected=True,
            confidence=round(float(track.probability), 4),
            tip_px=(float(seg.tip[0]), float(seg.tip[1])),
            hub_px=(float(seg.hub[0]), float(seg.hub[1])),
            angle_deg=math.degrees(_angle(seg.direction)) % 360.0,
            trajectory_end_px=(float(end[0]), float(end[1])),
            trajectory_mm=self.trajectory_mm,
            pixel_spacing_mm=spacing,
            target_px=target_px,
            tip_to_target_mm=to_target,
            others=others,
        )


def _gated(seg: Segment, pred: np.ndarray, scale: NeedleScale, speed: float) -> bool:
    d_px = math.hypot(seg.tip[0] - pred[0], seg.tip[1] - pred[1])
    d_ang = abs(_wrap(_angle(seg.direction) - pred[2]))
    return (d_px <= GATE_MM / scale.spacing_mm + 2.0 * speed
            and d_ang <= math.radians(GATE_DEG))


def _same_line(a: Segment, b: Segment, scale: NeedleScale) -> bool:
    """One line measured twice: tips within ``SAME_TIP_MM``, directions within ``SAME_DEG``."""
    d_px = math.hypot(a.tip[0] - b.tip[0], a.tip[1] - b.tip[1])
    d_ang = abs(_wrap(_angle(a.direction) - _angle(b.direction)))
    return d_px * scale.spacing_mm <= SAME_TIP_MM and d_ang <= math.radians(SAME_DEG)


def _paired(a: Segment, b: Segment, scale: NeedleScale) -> bool:
    """Whether ``a`` and ``b`` run side by side: parallel within ``PAIR_DEG`` (either
    way), ``PAIR_MM`` apart, each covering ``PAIR_OVERLAP`` of the longer's length."""
    ux, uy = a.direction
    if abs(ux * b.direction[0] + uy * b.direction[1]) < math.cos(math.radians(PAIR_DEG)):
        return False
    mid = ((b.tip[0] + b.hub[0]) / 2.0, (b.tip[1] + b.hub[1]) / 2.0)
    apart_mm = abs(-(mid[0] - a.hub[0]) * uy + (mid[1] - a.hub[1]) * ux) * scale.spacing_mm
    if not PAIR_MM[0] <= apart_mm <= PAIR_MM[1]:
        return False
    ta = sorted((0.0, a.length_px))
    tb = sorted(((b.hub[0] - a.hub[0]) * ux + (b.hub[1] - a.hub[1]) * uy,
                 (b.tip[0] - a.hub[0]) * ux + (b.tip[1] - a.hub[1]) * uy))
    overlap = min(ta[1], tb[1]) - max(ta[0], tb[0])
    return overlap >= PAIR_OVERLAP * max(a.length_px, b.length_px)


def _collinear(a: Segment, b: Segment) -> bool:
    """``a`` lies on ``b``'s line, pointing the same way: its tip within 2 px of the line,
    its direction within ``SAME_DEG``."""
    ux, uy = b.direction
    dist = abs(-(a.tip[0] - b.tip[0]) * uy + (a.tip[1] - b.tip[1]) * ux)
    cos = a.direction[0] * ux + a.direction[1] * uy
    return dist < 2.0 and cos > math.cos(math.radians(SAME_DEG))


def _on_line(origin: tuple[float, float], direction: tuple[float, float],
             point: tuple[float, float], point_direction: tuple[float, float]) -> bool:
    """A line already seen: ``point`` (a tracked tip, another search line's origin) lies on
    the line ``origin`` + t ``direction`` and the directions agree (either sign)."""
    ux, uy = direction
    dist = abs(-(point[0] - origin[0]) * uy + (point[1] - origin[1]) * ux)
    cos = abs(ux * point_direction[0] + uy * point_direction[1])
    return dist < 3.0 and cos > math.cos(math.radians(3.0))
