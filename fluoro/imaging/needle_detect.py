"""Single-frame needle measurement: refine a line hypothesis to a sub-pixel segment, and find
hypotheses in a whole frame (the tracker's cold start). Used by ``fluoro.imaging.needle``.

Coordinates: points ``(x, y) = (col, row)`` in pixels, pixel centres at integers; a line is an
origin ``o`` and a unit direction ``u`` pointing from hub to tip, its normal ``n = (-uy, ux)``,
``t`` the distance along ``u`` from ``o`` and ``s`` the offset along ``n``, both in pixels.

Method: the image is resampled into a strip straightened along the hypothesis; in each strip
row the dark line's centre is found to sub-pixel and the centres are fitted by RANSAC
(Fischler & Bolles 1981) followed by least squares on the inliers. The tip and the hub are
where the shaft's contrast profile along the refined axis falls to half of its median (the
half-maximum of a blurred step, unbiased for a symmetric blur); the hub is moved to where the
wider ferrule begins when one is seen. Contrast is relative (darkening over the local
background), so it is the same over bone, soft tissue or a rod: attenuations multiply.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from fluoro.imaging import _needle_kernels as k

NOMINAL_SPACING_MM = 0.25  # used when the pixel spacing is unknown or implausible


@dataclass(frozen=True, slots=True)
class NeedleScale:
    """Lengths of a 22 G needle's image in pixels, derived from the pixel spacing (mm at the
    detector: the 0.72 mm shaft is ~1.2 mm wide there at the usual ~1.6 magnification)."""

    spacing_mm: float
    side_px: float  # shaft centre to background sample
    collar_px: float  # where the ferrule (hub end, ~2.9 mm wide) is dark and the shaft is not
    far_px: float  # background beyond the ferrule
    min_length_px: float  # shortest acceptable visible shaft
    gap_px: float  # longest tolerated interruption (crossing a very dark rod, obliquely)

    @classmethod
    def for_spacing(cls, spacing_mm: float) -> NeedleScale:
        sp = spacing_mm if 0.05 <= spacing_mm <= 1.0 else NOMINAL_SPACING_MM
        px = 1.0 / sp
        return cls(sp, max(1.25 * px, 2.0), max(0.95 * px, 1.6), max(2.6 * px, 4.0),
                   8.0 * px, 15.0 * px)


@dataclass(frozen=True, slots=True)
class Segment:
    """A measured needle: tip and hub (x, y) px, unit direction hub -> tip, shaft contrast
    (relative darkening, 0..1), RMS residual of the centre fit (px), how many strip rows
    supported it, whether the hub's ferrule was seen, a 0..1 confidence of its shape, and
    whether the line leaves the image or the collimated field at its hub end and at its tip
    end (an inserted needle's shaft runs to a hub or out of the field; its tip is inside)."""

    tip: tuple[float, float]
    hub: tuple[float, float]
    direction: tuple[float, float]
    contrast: float
    residual_px: float
    support: int
    thinness: float  # collar darkening over shaft contrast: ~0 for a needle, ~1 for a bar
    ferrule: bool
    confidence: float
    hub_exits: bool = False
    tip_exits: bool = False
    tip_sharpness: float = 0.0  # how abruptly the shaft ends at the tip (0..1.5, see measure)
    tip_hidden: bool = False  # the tip ends where the background turns very dark: it may go on

    @property
    def length_px(self) -> float:
        return math.hypot(self.tip[0] - self.hub[0], self.tip[1] - self.hub[1])


MIN_CONTRAST = 0.12
MIN_CURVATURE = 0.05  # per coarse pixel², relative (the needle's is ~0.2)
BRIDGE_MM = 25.0  # longest dark stretch (rod, screw head) the shaft is followed through
HIDDEN_LEVEL = 0.3  # background below this fraction of the frame's: the shaft is unseen
TIP_HIDDEN_FACTOR = 0.45  # confidence factor when the tip may continue unseen
DARKENS = 0.6  # the background beyond a tip this much darker than before it: it may go on
MIN_LINE_CONTRAST = 0.1  # mean of a candidate line's points at the coarse scale
TIP_SPAN_MM = 15.0  # the tip is measured again on the shaft's last this-many mm
TIP_AGREE_MM = 4.0
EXIT_MM = 5.0  # an end this close to the edge of the field leaves it
FIELD_THUMB = 8  # the field's mask is found on a thumbnail this many times smaller
FIELD_DARK = 0.35  # collimator shadow: below this fraction of the field's median brightness


def _ransac_line(t: np.ndarray, s: np.ndarray, w: np.ndarray, tol: float,
                 iterations: int = 64) -> np.ndarray | None:
    """Inlier mask of the best line ``s = a + b t`` (RANSAC, Fischler & Bolles 1981): lines
    through random pairs of points, scored by the summed weight of points within ``tol``."""
    n = t.size
    if n < 8:
        return None
    i, j = np.random.default_rng(n).integers(0, n, size=(2, iterations))  # reproducible
    dt = t[j] - t[i]
    keep = np.abs(dt) >= 5.0
    if not keep.any():
        return None
    i, j, dt = i[keep], j[keep], dt[keep]
    b = (s[j] - s[i]) / dt
    a = s[i] - b * t[i]
    inl = np.abs(s[None, :] - (a[:, None] + b[:, None] * t[None, :])) <= tol
    best = int(np.argmax(inl.astype(np.float64) @ w))
    return inl[best]


def _wfit(t: np.ndarray, s: np.ndarray, w: np.ndarray) -> tuple[float, float]:
    """Weighted least-squares line ``s = a + b t``: (b, a) (``numpy.polyfit``'s order, whose
    weights multiply the residuals; here ``w`` weighs their squares, as a variance would)."""
    sw = float(w.sum())
    tm, sm = float(w @ t) / sw, float(w @ s) / sw
    dt = t - tm
    denom = float(w @ (dt * dt))
    b = float(w @ (dt * (s - sm))) / denom if denom > 0.0 else 0.0
    return b, sm - b * tm


def _finite_median(x: np.ndarray) -> float:
    """Median of the finite values of ``x`` (NaN when none)."""
    x = x[np.isfinite(x)]
    return float(np.median(x)) if x.size else math.nan


def _crossing(c: np.ndarray, i: int, step: int, level: float) -> float:
    """Sub-pixel index where ``c`` falls below ``level`` going from ``i`` by ``step``."""
    j = i + step
    if j < 0 or j >= c.size or not np.isfinite(c[j]) or c[i] <= c[j]:
        return float(i) + 0.5 * step
    return i + step * float(np.clip((c[i] - level) / (c[i] - c[j]), 0.0, 1.0))


def _runs(on: np.ndarray, gap: int) -> list[tuple[int, int]]:
    """(first, last) index of runs of True, joining runs separated by at most ``gap``."""
    idx = np.flatnonzero(on)
    if idx.size == 0:
        return []
    breaks = np.flatnonzero(np.diff(idx) > gap + 1)
    starts = np.concatenate(([idx[0]], idx[breaks + 1]))
    ends = np.concatenate((idx[breaks], [idx[-1]]))
    return list(zip(starts.tolist(), ends.tolist(), strict=True))


def measure(image: np.ndarray, origin: tuple[float, float], direction: tuple[float, float],
            t_lo: float, t_hi: float, search_px: float, scale: NeedleScale,
            prior: tuple[float, float] | None = None, extend: int = 4,
            extend_back: bool = True, refine_tip: bool = True) -> Segment | None:
    """Refine the line ``origin + t direction`` (``t_lo <= t <= t_hi``) within ``±search_px``
    of it; None when no thin dark straight segment is there. ``prior`` is the hub -> tip
    direction believed so far (decides the orientation when the image does not). When the
    shaft runs on to an end of the span, the span is extended (up to ``extend`` times; at the
    ``t_lo`` end only if ``extend_back``). With ``refine_tip`` the tip is measured again on a
    line fitted to the shaft's last ``TIP_SPAN_MM`` alone: a fit over the whole shaft (and
    its hub) is pulled by a slight bend or by the hub, and moves the tip along a wrong axis."""
    ox, oy = origin
    ux, uy = direction
    norm = math.hypot(ux, uy)
    ux, uy = ux / norm, uy / norm
    nt = int(t_hi - t_lo) + 1
    if nt < scale.min_length_px:
        return None
    search = math.ceil(search_px)
    half = search + math.ceil(scale.side_px) + 2
    strip = np.empty((nt, 2 * half + 1), np.float32)
    k.sample_strip(image, ox, oy, ux, uy, float(t_lo), strip)
    s_c = np.empty(nt)
    c_c = np.empty(nt)
    k.strip_centres(strip, 3, search, scale.side_px, s_c, c_c)
    ok = np.isfinite(c_c) & (c_c >= MIN_CONTRAST)
    t = np.flatnonzero(ok).astype(float)
    s, w = s_c[ok], c_c[ok]
    inl = _ransac_line(t, s, w, tol=1.0)
    if inl is None or inl.sum() < scale.min_length_px * 0.5:
        return None
    # weighted least squares on the inliers, then once more with a tighter gate
    for tol in (1.0, 0.6):
        b, a = _wfit(t[inl], s[inl], w[inl] ** 2)
        inl = np.abs(s - (a + b * t)) <= max(tol, 1e-3)
        if inl.sum() < 8:
            return None
    b, a = _wfit(t[inl], s[inl], w[inl] ** 2)
    resid = float(np.sqrt(np.mean((s[inl] - (a + b * t[inl])) ** 2)))
    # refined line: s = a + b t (strip row index t from t_lo)
    nx, ny = -uy, ux
    px = ox + t_lo * ux + a * nx
    py = oy + t_lo * uy + a * ny
    vx, vy = ux + b * nx, uy + b * ny
    vn = math.hypot(vx, vy)
    vx, vy = vx / vn, vy / vn
    # aligned strip along the refined axis, over the same span (row i at distance i from p)
    nt2 = int(nt * vn) + 1
    half2 = math.ceil(scale.far_px) + 2
    aligned = np.empty((nt2, 2 * half2 + 1), np.float32)
    k.sample_strip(image, px, py, vx, vy, 0.0, aligned)
    c = np.empty(nt2)
    f = np.empty(nt2)
    lvl = np.empty(nt2)
    k.axis_profiles(aligned, 1, scale.side_px, scale.collar_px, scale.far_px, c, f, lvl)
    rows = np.clip((t[inl] * vn).astype(int), 0, nt2 - 1)
    level = _finite_median(c[rows])
    if not np.isfinite(level) or level < MIN_CONTRAST:
        return None
    on = np.nan_to_num(c, nan=-1.0) >= 0.5 * level
    # where the background is very dark (a rod, a screw head) the shaft cannot be seen: such
    # rows neither break the shaft nor end it
    # "very dark" against the frame's typical level (a sparse median), not the shaft's own
    # background, which may itself lie over a rod
    bright = max(_typical_level(image), _finite_median(lvl[rows]))
    hidden = ~np.isfinite(lvl) | (np.nan_to_num(lvl, nan=0.0) < HIDDEN_LEVEL * bright)
    runs = _runs(on | hidden, int(scale.gap_px))
    if not runs:
        return None
    votes = np.bincount(rows, minlength=nt2)
    first, last = max(runs, key=lambda r: votes[r[0]:r[1] + 1].sum())
    # the shaft's ends are where it is last seen: not inside a very dark stretch, where the
    # relative contrast of the noise alone can pass for the shaft's
    seen = np.flatnonzero((on & ~hidden)[first:last + 1])
    if seen.size == 0:
        return None
    run_first, run_last = first, last
    first, last = first + int(seen[0]), first + int(seen[-1])
    if last - first < scale.min_length_px:
        return None
    # the shaft runs on to an end of the span (perhaps through a dark stretch no longer than
    # a screw head seen obliquely): look further
    bridge = BRIDGE_MM / scale.spacing_mm
    open_lo = (extend_back and run_first <= 3 and np.isfinite(c[0]) and first <= bridge)
    open_hi = run_last >= nt2 - 4 and np.isfinite(c[-1]) and nt2 - 1 - last <= bridge
    if (open_lo or open_hi) and extend > 0:
        more = 15.0 / scale.spacing_mm
        return measure(image, (px, py), (vx, vy), -more if open_lo else 0.0,
                       nt2 - 1 + (more if open_hi else 0.0), 3.0, scale, prior, extend - 1,
                       extend_back, refine_tip)
    shaft = c[first:last + 1]
    level = float(np.median(shaft[np.isfinite(shaft)]))
    cc = np.nan_to_num(c, nan=0.0)
    fw = np.nan_to_num(f, nan=0.0)
    shaft_f = float(np.median(fw[first:last + 1]))
    (t_a, fer_a), (t_b, fer_b) = (_end(cc, fw, first, -1, level, shaft_f, scale),
                                  _end(cc, fw, last, 1, level, shaft_f, scale))
    # which end is the hub: the one with the ferrule; else the one leaving the image or the
    # field; else the one the caller's prior direction says
    # an end leaves the field where the line runs on into the collimator's shadow or off the
    # image (field_mask); an end at a dark object inside the field (a screw head, a cage) does
    # not: there the needle may go on unseen (tip_hidden below), it does not come from outside
    reach = EXIT_MM / scale.spacing_mm
    exit_a = _leaves_field(image, px + t_a * vx, py + t_a * vy, -vx, -vy, reach)
    exit_b = _leaves_field(image, px + t_b * vx, py + t_b * vy, vx, vy, reach)
    if fer_a != fer_b:
        forward = fer_a
    elif exit_a != exit_b:
        forward = exit_a
    elif prior is not None:
        forward = vx * prior[0] + vy * prior[1] >= 0.0
    else:
        mid_x, mid_y = image.shape[1] / 2.0, image.shape[0] / 2.0
        d_a = math.hypot(px + t_a * vx - mid_x, py + t_a * vy - mid_y)
        d_b = math.hypot(px + t_b * vx - mid_x, py + t_b * vy - mid_y)
        forward = d_b <= d_a
    t_hub, t_tip, ferrule = (t_a, t_b, fer_a) if forward else (t_b, t_a, fer_b)
    hub_exits, tip_exits = (exit_a, exit_b) if forward else (exit_b, exit_a)
    thin = shaft_f / level
    tip = (px + t_tip * vx, py + t_tip * vy)
    hub = (px + t_hub * vx, py + t_hub * vy)
    sign = 1.0 if forward else -1.0
    support = int(inl.sum())
    conf = _confidence(level, resid, abs(t_tip - t_hub), support, thin, scale)
    sharp = _sharpness(cc, t_tip, 1.0 if forward else -1.0, level, scale)
    # a tip that ends where the background turns very dark (behind a screw head, at the edge
    # of the field) may go on unseen: its position is not known, so it is not vouched for
    reach = int(2.0 / scale.spacing_mm) + 2
    tip_row = last if forward else first
    beyond = hidden[tip_row + 1:tip_row + 1 + reach] if forward else \
        hidden[max(tip_row - reach, 0):tip_row]
    tip_hidden = bool(beyond.any()) or _darkens(lvl, tip_row, 1 if forward else -1, scale)
    if tip_hidden:
        conf *= TIP_HIDDEN_FACTOR
    seg = Segment(tip, hub, (sign * vx, sign * vy), level, resid, support, thin, ferrule, conf,
                  hub_exits, tip_exits, sharp, tip_hidden)
    span_px = TIP_SPAN_MM / scale.spacing_mm
    if refine_tip and seg.length_px > 1.5 * span_px:
        return _refined_tip(image, seg, span_px, scale)
    return seg


def _refined_tip(image: np.ndarray, seg: Segment, span_px: float, scale: NeedleScale
                 ) -> Segment:
    """``seg`` with its tip (and the direction at the tip) from a fit of its last ``span_px``
    alone. The local fit may find the shaft going on beyond the first estimate (it was cut
    short where the shaft runs along a bone edge): then it is followed, up to three steps;
    a local fit that turns away (over 5°) or falls back by more than ``TIP_AGREE_MM`` is
    another structure, and the tip stays where it was."""
    for _ in range(3):
        ux, uy = seg.direction
        start = (seg.tip[0] - span_px * ux, seg.tip[1] - span_px * uy)
        local = measure(image, start, (ux, uy), 0.0, span_px + 4.0 / scale.spacing_mm, 2.0,
                        scale, prior=(ux, uy), extend=0, refine_tip=False)
        if local is None or local.direction[0] * ux + local.direction[1] * uy < math.cos(
                math.radians(5.0)):
            return seg
        ahead_mm = ((local.tip[0] - seg.tip[0]) * ux + (local.tip[1] - seg.tip[1]) * uy
                    ) * scale.spacing_mm
        if ahead_mm < -TIP_AGREE_MM:
            return seg
        seg = Segment(local.tip, seg.hub, local.direction, seg.contrast, seg.residual_px,
                      seg.support, seg.thinness, seg.ferrule, seg.confidence, seg.hub_exits,
                      local.tip_exits, local.tip_sharpness, local.tip_hidden)
        if ahead_mm < 3.0:  # it did not run on: the tip is here
            return seg
    return seg


def _darkens(lvl: np.ndarray, row: int, step: int, scale: NeedleScale) -> bool:
    """Whether the background falls below ``DARKENS`` of what it was just inside the tip,
    within 3 mm beyond it (the tip ends where something dark, a cage or a screw, begins: the
    shaft may go on unseen)."""
    n = max(2, int(3.0 / scale.spacing_mm))
    inside = lvl[max(row - n, 0):row + 1] if step > 0 else lvl[row:row + n + 1]
    beyond = lvl[row + 1:row + 1 + n] if step > 0 else lvl[max(row - n, 0):row]
    inside, beyond = inside[np.isfinite(inside)], beyond[np.isfinite(beyond)]
    if inside.size == 0 or beyond.size == 0:
        return False
    return float(np.min(beyond)) < DARKENS * float(np.median(inside))


def _sharpness(c: np.ndarray, t_tip: float, step: float, level: float,
               scale: NeedleScale) -> float:
    """How abruptly the shaft's contrast ``c`` (per row) ends at ``t_tip``, going outward by
    ``step``: the mean over 0.5–2 mm inside the tip minus the mean over 0.5–2 mm beyond it,
    over the shaft's level. About 1 for a needle's cut end; an edge of bone that fades out, or
    a line that goes on beyond the supposed tip, scores lower. 0..1.5."""
    near, far = 0.5 / scale.spacing_mm, 2.0 / scale.spacing_mm
    ahead = (np.arange(c.size) - t_tip) * step  # rows beyond the tip are positive
    inside = c[(ahead >= -far) & (ahead <= -near)]
    beyond = c[(ahead >= near) & (ahead <= far)]
    if inside.size == 0 or level <= 0.0:
        return 0.0
    outside = float(np.mean(beyond)) if beyond.size else 0.0
    return float(np.clip((float(np.mean(inside)) - outside) / level, 0.0, 1.5))


def _end(c: np.ndarray, f: np.ndarray, i: int, step: int, level: float, shaft_f: float,
         scale: NeedleScale) -> tuple[float, bool]:
    """One end of the shaft run ending at row ``i`` (going outward by ``step``): its
    sub-pixel position and whether a ferrule is there (then the position is the ferrule's
    distal edge: the shaft-hub junction). Whether the line leaves the field there is
    ``_leaves_field``'s to say."""
    n = c.size
    t_end = _crossing(c, i, step, 0.5 * level)
    reach = int(3.5 * scale.far_px)
    lo, hi = (i - reach, i) if step > 0 else (i, i + reach)
    lo, hi = max(lo, 0), min(hi, n - 1)
    window = np.convolve(f[lo:hi + 1], np.ones(3) / 3.0, mode="same")
    ferrule = False
    if window.size > 4:
        j = int(np.argmax(window))
        peak = float(window[j])
        if peak > max(0.3, shaft_f + 0.25):
            ferrule = True
            half = 0.5 * (peak + shaft_f)
            inward = -step
            while 0 <= j + inward < window.size and window[j + inward] >= half:
                j += inward
            t_end = lo + _crossing(window, j, inward, half)
    return t_end, ferrule


_PER_IMAGE: dict[str, tuple[np.ndarray, object]] = {}


def _once_per_image(name: str, image: np.ndarray, compute):
    """``compute(image)``, kept for the latest image under ``name``: every ``measure`` of a
    frame asks again, the frame's answer does not change (keyed by identity, so a new frame,
    even at the address of a freed one, is computed afresh: the entry holds its image)."""
    hit = _PER_IMAGE.get(name)
    if hit is not None and hit[0] is image:
        return hit[1]
    value = compute(image)
    _PER_IMAGE[name] = (image, value)
    return value


def field_mask(image: np.ndarray) -> np.ndarray:
    """The collimated field on a thumbnail (``FIELD_THUMB`` times smaller, area-averaged):
    True inside. Outside is what is dark (below ``FIELD_DARK`` of the thumbnail's median) and
    connected to the image border: the collimator's blades and iris, not a dark object within
    the field. Computed once per image."""
    return _once_per_image("field", image, _field_mask)


def _field_mask(image: np.ndarray) -> np.ndarray:
    h, w = image.shape
    thumb = cv2.resize(np.asarray(image, np.float32), (max(w // FIELD_THUMB, 1),
                       max(h // FIELD_THUMB, 1)), interpolation=cv2.INTER_AREA)
    dark = (thumb < FIELD_DARK * float(np.median(thumb))).astype(np.uint8)
    count, labels = cv2.connectedComponents(dark, connectivity=4)
    border = np.unique(np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]]))
    border = border[border > 0]
    return ~np.isin(labels, border) if count > 1 and border.size else np.ones_like(dark, bool)


def _leaves_field(image: np.ndarray, x: float, y: float, ux: float, uy: float,
                  reach_px: float) -> bool:
    """Whether the line from (x, y) going on along (ux, uy) leaves the image or the
    collimated field within ``reach_px``."""
    inside = field_mask(image)
    h, w = image.shape
    for step in np.linspace(0.0, reach_px, 6):
        xi, yi = x + step * ux, y + step * uy
        if not (0.0 <= xi <= w - 1 and 0.0 <= yi <= h - 1):
            return True
        r = min(int(yi) // FIELD_THUMB, inside.shape[0] - 1)
        c = min(int(xi) // FIELD_THUMB, inside.shape[1] - 1)
        if not inside[r, c]:
            return True
    return False


def _typical_level(image: np.ndarray) -> float:
    """The frame's typical brightness (a sparse median), computed once per image."""
    return _once_per_image("typical", image, lambda im: float(np.median(im[::16, ::16])))


def _confidence(level: float, resid: float, length: float, support: int, thin: float,
                scale: NeedleScale) -> float:
    """0..1 from contrast, straightness, length, support and thinness (product of ramps)."""
    def ramp(x: float, lo: float, hi: float) -> float:
        return float(np.clip((x - lo) / (hi - lo), 0.0, 1.0))

    return (ramp(level, 0.10, 0.25) * ramp(-resid, -1.0, -0.4)
            * ramp(length, 0.7 * scale.min_length_px, 2.0 * scale.min_length_px)
            * ramp(support / max(length, 1.0), 0.3, 0.6) * ramp(-thin, -0.6, -0.3))


def coarse_factor(scale: NeedleScale) -> int:
    """Downsampling of the cold-start search: coarse pixels of ~0.5 mm at the detector."""
    return max(1, round(0.5 / scale.spacing_mm))


def hypotheses(image: np.ndarray, scale: NeedleScale, buffers: dict, max_lines: int = 6
               ) -> list[tuple[tuple[float, float], tuple[float, float], float, float]]:
    """Candidate lines in the whole frame: ``(origin, direction, t_lo, t_hi)`` in full-size
    pixels, strongest first (direction sign arbitrary). ``buffers`` caches work arrays."""
    f = coarse_factor(scale)
    rows, cols = image.shape[0] // f, image.shape[1] // f
    key = (rows, cols)
    if buffers.get("key") != key:
        diag = int(math.hypot(rows, cols)) + 2
        buffers.update(key=key, coarse=np.empty((rows, cols), np.float32),
                       tmp=np.empty((rows, cols), np.float32),
                       smooth=np.empty((rows, cols), np.float32),
                       xs=np.empty(60000), ys=np.empty(60000), ang=np.empty(60000),
                       w=np.empty(60000), acc=np.zeros((180, 2 * diag + 1), np.float32))
    coarse, smooth, acc = buffers["coarse"], buffers["smooth"], buffers["acc"]
    k.downsample_mean(image, f, coarse)
    k.gaussian_blur(coarse, _TAPS, buffers["tmp"], smooth)
    level = float(np.median(smooth[::8, ::8]))
    side = scale.side_px / f + 0.5
    xs, ys, ang, w = buffers["xs"], buffers["ys"], buffers["ang"], buffers["w"]
    n = k.ridge_points(smooth, side, MIN_CONTRAST, MIN_CURVATURE, 0.2 * level, xs, ys, ang, w)
    if n < 10:
        return []
    acc[:] = 0.0
    k.hough_vote(xs, ys, ang, w, n, 2, acc)
    off = acc.shape[1] // 2
    xs, ys, ang, w = xs[:n], ys[:n], ang[:n], w[:n]
    min_len = scale.min_length_px / f
    out = []
    for _ in range(max_lines * 2):
        ti, ri = np.unravel_index(int(np.argmax(acc)), acc.shape)
        if acc[ti, ri] < 0.15 * min_len:
            break
        th = ti * math.pi / 180.0
        ux, uy = math.cos(th), math.sin(th)
        rho = ri - off
        d_ang = np.abs((ang - th + math.pi / 2) % math.pi - math.pi / 2)
        aligned = d_ang <= math.radians(6.0)
        near = (np.abs(-xs * uy + ys * ux - rho) <= 2.0) & aligned
        acc[ti, ri] = 0.0  # withdraw this line's votes so its neighbours do not come back
        idx = np.flatnonzero(near)
        k.hough_vote(xs[idx], ys[idx], ang[idx], -w[idx], idx.size, 2, acc)
        if near.sum() < 0.3 * min_len or float(np.mean(w[near])) < MIN_LINE_CONTRAST:
            continue
        # the principal axis of the points refines the accumulator's 1° x 1 px line
        cx, cy = float(np.mean(xs[near])), float(np.mean(ys[near]))
        _, evecs = np.linalg.eigh(np.cov(np.stack([xs[near] - cx, ys[near] - cy])))
        ux, uy = float(evecs[0, 1]), float(evecs[1, 1])
        rho = -cx * uy + cy * ux
        near = (np.abs(-xs * uy + ys * ux - rho) <= 1.5) & aligned
        tt = np.sort(xs[near] * ux + ys[near] * uy)
        runs = _runs_sorted(tt, scale.gap_px / f)
        best = max(runs, key=lambda r: r[2])
        if best[1] - best[0] < 0.5 * min_len:
            continue
        ox, oy = -rho * uy * f + (f - 1) / 2.0, rho * ux * f + (f - 1) / 2.0
        margin = 4.0 / scale.spacing_mm
        out.append(((ox, oy), (ux, uy), best[0] * f - margin, best[1] * f + margin))
        if len(out) >= max_lines:
            break
    return out


def _runs_sorted(tt: np.ndarray, gap: float) -> list[tuple[float, float, int]]:
    breaks = np.flatnonzero(np.diff(tt) > gap)
    starts = np.concatenate(([0], breaks + 1))
    ends = np.concatenate((breaks, [tt.size - 1]))
    return [(float(tt[a]), float(tt[b]), int(b - a + 1)) for a, b in zip(starts, ends, strict=True)]


_TAPS = np.array([0.054, 0.242, 0.399, 0.242, 0.054])  # Gaussian, sigma 1 coarse pixel
_TAPS = _TAPS / _TAPS.sum()
