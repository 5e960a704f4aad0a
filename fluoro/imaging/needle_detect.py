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
from fluoro.imaging.thumbnail import area_thumbnail, once_per_image

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
RANSAC_ITERATIONS = 64
MIN_CURVATURE = 0.05  # per coarse pixel², relative (the needle's is ~0.2)
BRIDGE_MM = 25.0  # longest dark stretch (rod, screw head) the shaft is followed through
HIDDEN_LEVEL = 0.3  # background below this fraction of the frame's: the shaft is unseen
TIP_HIDDEN_FACTOR = 0.45  # confidence factor when the tip may continue unseen
DARKENS = 0.6  # the background beyond a tip this much darker than before it: it may go on
MIN_LINE_CONTRAST = 0.1  # mean of a candidate line's points at the coarse scale
TIP_SPAN_MM = 15.0  # the tip is measured again on the shaft's last this-many mm
TIP_AGREE_MM = 4.0
ABSENT_MM = 1.5  # the shaft is not followed where, over this length, the axis is darkened
ABSENT_LEVEL = 0.2  # ... on average by less than this fraction of the shaft's contrast,
JOIN_MM = 8.0  # ... unless it goes on for this long on both sides (crossing an edge)
HUB_BODY_MM = 55.0  # the shaft may be seen this far beyond its ferrule, inside the hub
# (a hub holds up to ~30 mm of shaft, ~50 mm at the detector at 1.6 magnification)
SHORTER_SIDE = 0.9  # a ferrule inside a line is nearer its hub's end than this share
PAST_MIN_MM = 30.0  # a line this long past a ferrule (or as long as the part measured)
FERRULE_SKIP_MM = 16.0  # a ferrule is at most this long at the detector
FERRULE_MIN_MM = 3.0  # a ferrule inside the run is at least this long
TIP_AHEAD_MM = 12.0  # each step of the tip's refinement looks this far on
TIP_STEPS = 12  # at most this many steps (a bent shaft is traced on, step by step)
TIP_TURN_DEG = 3.0  # a bent needle turns ~2° per step (3 mm sag over 100 mm at the detector)
TIP_BEND_DEG = 12.0  # ... and ~8° from its straight part to its tip
EXIT_MM = 5.0  # an end this close to the edge of the field leaves it
FIELD_THUMB = 8  # the field's mask is found on a thumbnail this many times smaller
FIELD_DARK = 0.35  # collimator shadow: below this fraction of the field's median brightness


def _crossing(c: np.ndarray, i: int, step: int, level: float) -> float:
    """Sub-pixel index where ``c`` falls below ``level`` going from ``i`` by ``step``."""
    j = i + step
    if j < 0 or j >= c.size or not np.isfinite(c[j]) or c[i] <= c[j]:
        return float(i) + 0.5 * step
    return i + step * min(max(float((c[i] - level) / (c[i] - c[j])), 0.0), 1.0)


def _shaft_runs(present: np.ndarray, blocked: np.ndarray, gap: int, join: float
                ) -> list[tuple[int, int]]:
    """Runs of ``present`` rows joined across gaps of at most ``gap`` rows (``_runs``),
    less any piece shorter than ``join`` rows at either end of a run beyond a ``blocked``
    row: a short dash in line beyond a tip is something else, while a shaft that crosses
    edges of bone (where the rows may be blocked too) goes on, for longer, on both sides."""
    if not blocked.any():
        return _runs(present, gap)
    pieces = []
    for lo, hi in _runs(~blocked, 0):
        pieces += [(lo + a, lo + b) for a, b in _runs(present[lo:hi + 1], gap)]
    chains = [[pieces[0]]] if pieces else []
    for piece in pieces[1:]:
        if piece[0] - chains[-1][-1][1] - 1 <= gap:
            chains[-1].append(piece)
        else:
            chains.append([piece])
    out = []
    for chain in chains:
        while len(chain) > 1 and chain[0][1] - chain[0][0] + 1 < join:
            chain = chain[1:]
        while len(chain) > 1 and chain[-1][1] - chain[-1][0] + 1 < join:
            chain = chain[:-1]
        out.append((chain[0][0], chain[-1][1]))
    return out


def _filled(x: np.ndarray, value: float) -> np.ndarray:
    """``x`` with its NaN (samples outside the image) replaced by ``value``."""
    return np.where(np.isnan(x), value, x)


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
            extend_back: bool = True, refine_tip: bool = True, shaft_level: float = 0.0
            ) -> Segment | None:
    """Refine the line ``origin + t direction`` (``t_lo <= t <= t_hi``) within ``±search_px``
    of it; None when no thin dark straight segment is there. ``prior`` is the hub -> tip
    direction believed so far (decides the orientation when the image does not). When the
    shaft runs on to an end of the span, the span is extended (up to ``extend`` times; at the
    ``t_lo`` end only if ``extend_back``). With ``refine_tip`` the tip is measured again on a
    line fitted to the shaft's last ``TIP_SPAN_MM`` alone: a fit over the whole shaft (and
    its hub) is pulled by a slight bend or by the hub, and moves the tip along a wrong axis.
    ``shaft_level``: the contrast of the whole shaft when this measures a part of it (the
    tip's refinement): the part's ends are where the contrast falls to half of the larger of
    that and its own, so that a refinement does not run on along something fainter."""
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
    # RANSAC, then weighted least squares re-gated twice (fit_centres); the random pairs are
    # drawn here, seeded by the number of rows, so that a measurement is reproducible
    n_ok = int(np.count_nonzero(c_c >= MIN_CONTRAST))  # NaN compares False
    pick_a, pick_b = np.random.default_rng(n_ok).integers(0, max(n_ok, 1),
                                                          size=(2, RANSAC_ITERATIONS))
    inliers = np.empty(nt, np.bool_)
    a, b, resid, support = k.fit_centres(s_c, c_c, MIN_CONTRAST, pick_a, pick_b,
                                         0.5 * scale.min_length_px, inliers)
    if support == 0:
        return None
    t_inl = np.flatnonzero(inliers)
    # refined line: s = a + b t (strip row index t from t_lo)
    nx, ny = -uy, ux
    px = ox + t_lo * ux + a * nx
    py = oy + t_lo * uy + a * ny
    vx, vy = ux + b * nx, uy + b * ny
    vn = math.hypot(vx, vy)
    vx, vy = vx / vn, vy / vn
    # aligned strip along the refined axis, over the same span (row i at distance i from p)
    nt2 = int(nt * vn) + 1
    c, f, lvl, g = _axis_profiles(image, (px, py), (vx, vy), 0.0, nt2, scale)
    rows = np.clip((t_inl * vn).astype(int), 0, nt2 - 1)
    level = max(k.finite_median(c[rows]), shaft_level)
    if not np.isfinite(level) or level < MIN_CONTRAST:
        return None
    on = c >= 0.5 * level  # NaN compares False
    # where the background is very dark (a rod, a screw head) the shaft cannot be seen: such
    # rows neither break the shaft nor end it
    # "very dark" against the frame's typical level (a sparse median), not the shaft's own
    # background, which may itself lie over a rod
    bright = max(_typical_level(image), k.finite_median(lvl[rows]))
    hidden = ~(lvl >= HIDDEN_LEVEL * bright)  # NaN (outside the image) is hidden too
    # the shaft is followed across short interruptions (a crossing rod's edges, noise), but
    # not across a stretch where the axis is hardly darker than the background interpolated
    # across it (g, averaged over ABSENT_MM) and the background is not hidden, unless it
    # goes on for JOIN_MM on both sides: it may have ended there (what lies beyond, in line
    # with it, is something else), or it may cross an edge of bone, where g falls too
    width = max(round(ABSENT_MM / scale.spacing_mm), 1)
    g_mean = np.convolve(_filled(g, level), np.ones(width) / width, mode="same")
    absent = (g_mean < ABSENT_LEVEL * level) & ~hidden
    runs = _shaft_runs(on | hidden, absent, int(scale.gap_px), JOIN_MM / scale.spacing_mm)
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
    # (the line as it would be without the rule for absent stretches: whether those join
    # is known only when the span holds enough of what lies beyond them)
    bridge = BRIDGE_MM / scale.spacing_mm
    if absent.any():
        plain = next(r for r in _runs(on | hidden, int(scale.gap_px))
                     if r[0] <= run_first and run_last <= r[1])
        plain_seen = np.flatnonzero((on & ~hidden)[plain[0]:plain[1] + 1]) + plain[0]
        run_first, run_last = plain
        seen_first, seen_last = int(plain_seen[0]), int(plain_seen[-1])
    else:
        seen_first, seen_last = first, last
    open_lo = (extend_back and run_first <= 3 and np.isfinite(c[0]) and seen_first <= bridge)
    open_hi = (run_last >= nt2 - 4 and np.isfinite(c[-1])
               and nt2 - 1 - seen_last <= bridge)
    if (open_lo or open_hi) and extend > 0:
        more = 15.0 / scale.spacing_mm
        return measure(image, (px, py), (vx, vy), -more if open_lo else 0.0,
                       nt2 - 1 + (more if open_hi else 0.0), 3.0, scale, prior, extend - 1,
                       extend_back, refine_tip, shaft_level)
    shaft = c[first:last + 1]
    level = max(k.finite_median(shaft), shaft_level)
    cc = _filled(c, 0.0)
    fw = _filled(f, 0.0)
    shaft_f = k.finite_median(fw[first:last + 1])
    (t_a, fer_a), (t_b, fer_b) = (_end(cc, fw, first, -1, level, shaft_f, scale),
                                  _end(cc, fw, last, 1, level, shaft_f, scale))
    if not (fer_a or fer_b):  # the shaft may run on inside the hub, beyond its ferrule
        t_a, fer_a, t_b, fer_b = _inner_ferrule(fw, first, last, t_a, t_b, shaft_f, scale)
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
    # a line seen from its ferrule's wrong side (the shaft inside the hub, measured up to
    # the ferrule) goes on past the "hub" further than the part measured: no needle
    # (a line past the hub shorter than PAST_MIN_MM says nothing: the hub of a needle just
    # entering, with a short shaft in view, may show that much)
    past_mm = max(abs(t_tip - t_hub) * scale.spacing_mm, PAST_MIN_MM)
    if ferrule and past_mm <= HUB_BODY_MM and _line_past_hub_mm(
            image, hub, (-sign * vx, -sign * vy), level, past_mm, scale) >= past_mm:
        return None
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
    short where the shaft runs along a bone edge, or where a bent shaft leaves the straight
    line fitted to its hub end): then it is followed, step by step (``TIP_STEPS`` at most,
    each looking ``TIP_AHEAD_MM`` on along the local direction, so a gentle arc is traced
    to its tip); a local fit that turns away (over 5° at the first step, ``TIP_TURN_DEG``
    at a later one, ``TIP_BEND_DEG`` in all) or falls back by more than ``TIP_AGREE_MM`` is
    another structure, and the tip stays where it was."""
    ahead_px = TIP_AHEAD_MM / scale.spacing_mm
    first = seg.direction
    for step in range(TIP_STEPS):
        ux, uy = seg.direction
        start = (seg.tip[0] - span_px * ux, seg.tip[1] - span_px * uy)
        local = measure(image, start, (ux, uy), 0.0, span_px + ahead_px, 2.0,
                        scale, prior=(ux, uy), extend=0, refine_tip=False,
                        shaft_level=seg.contrast)
        if local is None:
            return seg
        vx, vy = local.direction
        # the first step may turn as far as a fit pulled by the hub is off; then a needle
        # bends gently: a line curving on further is something else (a lead, an endplate)
        if (vx * ux + vy * uy < math.cos(math.radians(5.0 if step == 0 else TIP_TURN_DEG))
                or vx * first[0] + vy * first[1] < math.cos(math.radians(TIP_BEND_DEG))):
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
    return float(np.min(beyond)) < DARKENS * k.finite_median(inside)


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
    return min(max((float(np.mean(inside)) - outside) / level, 0.0), 1.5)


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


def _axis_profiles(image: np.ndarray, origin: tuple[float, float],
                   direction: tuple[float, float], t0: float, rows: int, scale: NeedleScale
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The profiles ``(c, f, lvl, g)`` of ``k.axis_profiles`` along the line ``origin`` +
    t ``direction`` (unit), one row per pixel from ``t0``, ``rows`` of them: the image is
    straightened into a strip wide enough for the far background samples first."""
    half = math.ceil(scale.far_px) + 2
    strip = np.empty((rows, 2 * half + 1), np.float32)
    k.sample_strip(image, origin[0], origin[1], direction[0], direction[1], t0, strip)
    c, f, lvl, g = np.empty(rows), np.empty(rows), np.empty(rows), np.empty(rows)
    k.axis_profiles(strip, 1, scale.side_px, scale.collar_px, scale.far_px, c, f, lvl, g)
    return c, f, lvl, g


def _line_past_hub_mm(image: np.ndarray, hub: tuple[float, float],
                      away: tuple[float, float], level: float, upto_mm: float,
                      scale: NeedleScale) -> float:
    """How far (mm, up to ``upto_mm``) a line as dark as the shaft (``level``) goes on
    along ``away`` (unit, from the tip toward the hub) beyond the ferrule whose distal edge
    is at ``hub``: the ferrule itself (up to ``FERRULE_SKIP_MM``) may interrupt it, and
    the shaft inside a hub goes on for up to ``HUB_BODY_MM``."""
    skip = int(FERRULE_SKIP_MM / scale.spacing_mm)
    c = _axis_profiles(image, hub, away, 0.0, skip + int(upto_mm / scale.spacing_mm) + 1,
                       scale)[0]
    on = c >= 0.5 * level  # NaN compares False
    runs = [r for r in _runs(on, int(1.0 / scale.spacing_mm)) if r[0] <= skip]
    return max((r[1] for r in runs), default=0) * scale.spacing_mm


def _inner_ferrule(f: np.ndarray, first: int, last: int, t_a: float, t_b: float,
                   shaft_f: float, scale: NeedleScale) -> tuple[float, bool, float, bool]:
    """The ends ``(t_a, ferrule_a, t_b, ferrule_b)`` of the shaft run ``first..last`` when
    its ferrule lies inside the run: a needle's shaft runs on inside its hub to the luer, so
    the line seen may go ``HUB_BODY_MM`` beyond the ferrule. A ferrule is a stretch of at
    least ``FERRULE_MIN_MM`` where the collar darkening ``f`` stands out as at the ends
    (``_end``), within ``HUB_BODY_MM`` of one end and nearer it than ``SHORTER_SIDE`` of its
    distance to the other (a hub holds less shaft than is seen of a needle in use); that end
    is the hub's, and its position is the ferrule's distal edge (the shaft-hub junction).
    Otherwise (no such ferrule, or more than one) the ends are returned as they were,
    without a ferrule."""
    n = last - first + 1
    reach = HUB_BODY_MM / scale.spacing_mm
    smooth = np.convolve(f[first:last + 1], np.ones(3) / 3.0, mode="same")
    found = []
    for r0, r1 in _runs(smooth > max(0.3, shaft_f + 0.25), 1):
        to_a, to_b = r0, n - 1 - r1  # rows from the ferrule to each end
        if r1 - r0 + 1 >= FERRULE_MIN_MM / scale.spacing_mm and min(to_a, to_b) <= reach \
                and min(to_a, to_b) <= SHORTER_SIDE * max(to_a, to_b):
            found.append((r0, r1, to_a < to_b))
    if len(found) != 1:
        return t_a, False, t_b, False
    r0, r1, at_a = found[0]
    half = 0.5 * (float(np.max(smooth[r0:r1 + 1])) + shaft_f)
    if at_a:  # the junction is the ferrule's edge toward b
        return first + _crossing(smooth, r1, 1, half), True, t_b, False
    return t_a, False, first + _crossing(smooth, r0, -1, half), True


def field_mask(image: np.ndarray) -> np.ndarray:
    """The collimated field on a thumbnail (``FIELD_THUMB`` times smaller, area-averaged):
    True inside. Outside is what is dark (below ``FIELD_DARK`` of the thumbnail's median) and
    connected to the image border: the collimator's blades and iris, not a dark object within
    the field. Computed once per image."""
    return once_per_image("field", image, _field_mask)


def _field_mask(image: np.ndarray) -> np.ndarray:
    h, w = image.shape
    thumb = area_thumbnail(image, (max(w // FIELD_THUMB, 1), max(h // FIELD_THUMB, 1)))
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
    for i in range(6):
        step = reach_px * i / 5.0
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
    return once_per_image("typical", image, lambda im: float(np.median(im[::16, ::16])))


def _confidence(level: float, resid: float, length: float, support: int, thin: float,
                scale: NeedleScale) -> float:
    """0..1 from contrast, straightness, length, support and thinness (product of ramps)."""
    def ramp(x: float, lo: float, hi: float) -> float:
        return min(max((x - lo) / (hi - lo), 0.0), 1.0)

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
