"""Numba kernels of the spatio-temporal denoiser (``fluoro.imaging.denoise``).

All kernels are ``@njit(cache=True, nogil=True)``, single-threaded, read no mutable globals,
and also run as plain Python under ``NUMBA_DISABLE_JIT=1`` (slowly; tests do so on tiny frames).
(Splitting the frame over numba's threads halved the back-to-back time on this 2-core machine
but made the paced time worse: waking the idle second core each frame cost more than it saved.)

Domains: ``pixels`` are detector values in DN (uint16, 12-bit); the temporal state lives in the
variance-stabilised domain of the generalised Anscombe transform (Mäkitalo & Foi 2013), where the
noise standard deviation is 1 whatever the signal, so every threshold below is in units of the
noise and no fixed DN threshold appears anywhere.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

DN_LEVELS = 4096  # 12-bit detector
MEAN_BINS = 64  # noise estimation: signal-mean bins over 0..4095 DN
ABS_BINS = 1024  # noise estimation: |residual| bins of 1 DN
MOTION_BINS = 256  # histogram of the noise-relative motion statistic over 0..MOTION_RANGE
MOTION_RANGE = 4.0


@njit(cache=True, nogil=True, error_model="numpy")
def noise_histograms(previous: np.ndarray, current: np.ndarray, temporal: bool,
                     stride: int, hist: np.ndarray) -> None:
    """Fill ``hist[MEAN_BINS, ABS_BINS]`` with |residual| (DN) per local-mean bin (DN/64).

    ``temporal``: the residual is ``current - previous`` (variance 2σ² where nothing moves);
    otherwise ``current`` minus the mean of its 4 neighbours (variance 1.25σ² for white noise).
    The local mean is the 3×3 mean of ``current``. Pixels on a ``stride`` grid are used.
    """
    h, w = current.shape
    for r in range(1, h - 1, stride):
        for c in range(1, w - 1, stride):
            s = 0.0
            for dr in range(-1, 2):
                for dc in range(-1, 2):
                    s += current[r + dr, c + dc]
            mean = s / 9.0
            if temporal:
                res = float(current[r, c]) - float(previous[r, c])
            else:
                res = float(current[r, c]) - 0.25 * (
                    float(current[r - 1, c]) + float(current[r + 1, c])
                    + float(current[r, c - 1]) + float(current[r, c + 1]))
            mb = min(int(mean) >> 6, MEAN_BINS - 1)
            ab = min(int(abs(res)), ABS_BINS - 1)
            hist[mb, ab] += 1


@njit(cache=True, nogil=True, fastmath=True, error_model="numpy", inline="always")
def vst(dn: np.uint16, inv_a: np.float32, offset: np.float32) -> np.float32:
    """The generalised Anscombe transform of one value (DN), noise σ ≈ 1 after it (Mäkitalo &
    Foi 2013): ``2·sqrt(dn/a + b/a² + 3/8)``, with ``inv_a`` = 1/a and ``offset`` = b/a² + 3/8
    (0 where the argument would be negative); float32 throughout, so loops over it
    vectorise."""
    return np.float32(2.0) * np.sqrt(max(np.float32(dn) * inv_a + offset, np.float32(0.0)))


@njit(cache=True, nogil=True, fastmath=True, error_model="numpy")
def vst_into(pixels: np.ndarray, inv_a: float, offset: float, y: np.ndarray) -> None:
    """``y = vst(pixels)`` element-wise, (H, W) uint16 DN into float32."""
    ia = np.float32(inv_a)
    off = np.float32(offset)
    for r in range(pixels.shape[0]):
        prow = pixels[r]
        yrow = y[r]
        for c in range(pixels.shape[1]):
            yrow[c] = vst(prow[c], ia, off)


@njit(cache=True, nogil=True, fastmath=True, error_model="numpy")
def _diff_row(prow: np.ndarray, yrow: np.ndarray, inv_a: np.float32, offset: np.float32,
              d: np.ndarray, hs: np.ndarray) -> None:
    """``d = vst(prow) - yrow`` (one row: uint16 DN, float32 estimate) and its horizontal
    3-sum (edge-replicated) ``hs``."""
    w = prow.shape[0]
    for c in range(w):
        d[c] = vst(prow[c], inv_a, offset) - yrow[c]
    if w == 1:
        hs[0] = np.float32(3.0) * d[0]
        return
    for c in range(1, w - 1):
        hs[c] = d[c - 1] + d[c] + d[c + 1]
    hs[0] = np.float32(2.0) * d[0] + d[1]
    hs[w - 1] = d[w - 2] + np.float32(2.0) * d[w - 1]


N_SCALE = 16  # frame counts are held as uint8 in 1/16 frame: 1 frame = 16, at most 255/16


@njit(cache=True, nogil=True, fastmath=True, error_model="numpy")
def _temporal_row(y: np.ndarray, n: np.ndarray, r: int, d: np.ndarray, hs_a: np.ndarray,
                  hs_b: np.ndarray, hs_c: np.ndarray, inv_sigma_box: float, k_low: float,
                  k_high: float, n_max: float) -> None:
    """Motion-gated recursive average of row ``r`` (``d`` = frame − estimate on that row).
    ``n`` is uint8 in 1/``N_SCALE`` frame. (No counter in this loop: a reduction would halve
    its vector width; restarts are counted on the sampled rows, ``_motion_histogram``.)"""
    w = y.shape[1]
    one = np.float32(1.0)
    zero = np.float32(0.0)
    half = np.float32(0.5)
    scale = np.float32(inv_sigma_box / 9.0)
    kh = np.float32(k_high)
    inv_span = np.float32(1.0 / (k_high - k_low))
    nmax = np.float32(n_max)
    inv_q = np.float32(1.0 / N_SCALE)
    q = np.float32(N_SCALE)
    yrow = y[r]
    nrow = n[r]
    for c in range(w):
        n_old = np.float32(nrow[c]) * inv_q
        # noise-relative size of the 3x3 mean difference, whose var is σ_box² (1 + 1/n_old)
        m = abs(hs_a[c] + hs_b[c] + hs_c[c]) * scale * np.sqrt(n_old / (n_old + one))
        keep = min(max((kh - m) * inv_span, zero), one)
        n_new = min(one + keep * n_old, nmax)
        yrow[c] += d[c] / n_new
        nrow[c] = np.uint8(n_new * q + half)


@njit(cache=True, nogil=True, error_model="numpy")
def _motion_histogram(n: np.ndarray, r: int, hs_a: np.ndarray, hs_b: np.ndarray,
                      hs_c: np.ndarray, inv_sigma_box: float, k_low: float, k_high: float,
                      hist: np.ndarray) -> int:
    """Histogram of the motion statistic on every 2nd pixel of row ``r`` (before its update),
    for calibration; returns how many of those pixels restart (the statistic above the middle
    of ``k_low .. k_high``, where ``_temporal_row`` keeps less than half of the past)."""
    w = n.shape[1]
    scale = inv_sigma_box / 9.0
    to_bin = MOTION_BINS / MOTION_RANGE
    middle = 0.5 * (k_low + k_high)
    restarted = 0
    for c in range(0, w, 2):
        n_old = n[r, c] / N_SCALE
        m = abs(hs_a[c] + hs_b[c] + hs_c[c]) * scale * math.sqrt(n_old / (n_old + 1.0))
        hist[min(int(m * to_bin), MOTION_BINS - 1)] += 1
        if m > middle:
            restarted += 1
    return restarted


SAMPLE_ROWS = 8  # the motion statistic is sampled on every 8th row (rows 4, 12, ...)


@njit(cache=True, nogil=True, fastmath=True, error_model="numpy")
def _pad2(col: np.ndarray) -> None:
    """Replicate the edge cells of ``col[2:W+2]`` into its 2 spare cells each side."""
    w = col.shape[0] - 4
    col[0] = col[2]
    col[1] = col[2]
    col[w + 2] = col[w + 1]
    col[w + 3] = col[w + 1]


@njit(cache=True, nogil=True, fastmath=True, error_model="numpy")
def _guided_step(y: np.ndarray, n: np.ndarray, out: np.ndarray, i: int, eps: float,
                 ring_a: np.ndarray, ring_b: np.ndarray, col: np.ndarray, col2: np.ndarray,
                 a: float, b_over_a: float, two_stage: bool) -> None:
    """Step ``i`` of the row-streaming self-guided filter: the coefficients of row ``i`` (when
    ``i < H``; they need the final estimate on rows i−2..i+2) and then output row ``i − 2``
    (two-stage; it needs coefficient rows i−4..i, held in a ring of 5) or row ``i`` (one
    stage, a local Wiener filter). Steps are taken for i = 0 .. H+1 in order. Windows are
    5×5, edges replicated; ``col`` and ``col2`` are scratch of length W + 4.

    Output: the asymptotically unbiased inverse of the Anscombe transform (Mäkitalo & Foi
    2011), ``u = f²/4 − 1/8``, with the affine normalisation undone, ``DN = a·u − b/a``.
    """
    h, w = y.shape
    one = np.float32(1.0)
    zero = np.float32(0.0)
    tiny = np.float32(1e-6)
    inv25 = np.float32(1.0 / 25.0)
    eps_q = np.float32(eps * N_SCALE)  # ε·N_SCALE / n_q = ε / n
    af = np.float32(a)
    boa = np.float32(b_over_a)
    quarter = np.float32(0.25)
    eighth = np.float32(0.125)
    if i < h:
        a0 = y[max(i - 2, 0)]
        a1 = y[max(i - 1, 0)]
        a2 = y[i]
        a3 = y[min(i + 1, h - 1)]
        a4 = y[min(i + 2, h - 1)]
        for c in range(w):
            v0, v1, v2, v3, v4 = a0[c], a1[c], a2[c], a3[c], a4[c]
            col[c + 2] = v0 + v1 + v2 + v3 + v4
            col2[c + 2] = v0 * v0 + v1 * v1 + v2 * v2 + v3 * v3 + v4 * v4
        _pad2(col)
        _pad2(col2)
        ra = ring_a[i % 5]
        rb = ring_b[i % 5]
        nrow = n[i]
        for c in range(w):
            mu = (col[c] + col[c + 1] + col[c + 2] + col[c + 3] + col[c + 4]) * inv25
            ex2 = (col2[c] + col2[c + 1] + col2[c + 2] + col2[c + 3] + col2[c + 4]) * inv25
            var = max(ex2 - mu * mu, zero)
            nf = np.float32(nrow[c])
            coef = max(var * nf - eps_q, zero) / ((var + tiny) * nf)  # max(var − ε/n, 0) / var
            ra[c] = coef
            rb[c] = mu * (one - coef)
        if not two_stage:
            yrow = y[i]
            orow = out[i]
            for c in range(w):
                f = ra[c] * yrow[c] + rb[c]
                orow[c] = af * max(quarter * f * f - eighth, zero) - boa
            return
    o = i - 2  # output row o needs coefficient rows o-2..o+2 (clamped), all computed
    if o >= 0 and two_stage:
        k0 = max(o - 2, 0) % 5
        k1 = max(o - 1, 0) % 5
        k2 = o % 5
        k3 = min(o + 1, h - 1) % 5
        k4 = min(o + 2, h - 1) % 5
        p0, p1, p2, p3, p4 = ring_a[k0], ring_a[k1], ring_a[k2], ring_a[k3], ring_a[k4]
        q0, q1, q2, q3, q4 = ring_b[k0], ring_b[k1], ring_b[k2], ring_b[k3], ring_b[k4]
        for c in range(w):
            col[c + 2] = p0[c] + p1[c] + p2[c] + p3[c] + p4[c]
            col2[c + 2] = q0[c] + q1[c] + q2[c] + q3[c] + q4[c]
        _pad2(col)
        _pad2(col2)
        yrow = y[o]
        orow = out[o]
        for c in range(w):
            sa = col[c] + col[c + 1] + col[c + 2] + col[c + 3] + col[c + 4]
            sb = col2[c] + col2[c + 1] + col2[c + 2] + col2[c + 3] + col2[c + 4]
            f = (sa * yrow[c] + sb) * inv25
            orow[c] = af * max(quarter * f * f - eighth, zero) - boa


@njit(cache=True, nogil=True, error_model="numpy")
def denoise_frame(pixels: np.ndarray, inv_a: float, offset: float, y: np.ndarray,
                  n: np.ndarray, out: np.ndarray, first: bool, inv_sigma_box: float,
                  k_low: float, k_high: float, n_max: float, noise_scale: float, a: float,
                  b_over_a: float, hist: np.ndarray, two_stage: bool = True) -> float:
    """One frame in a single streaming pass over the rows: the difference of row r+1, the
    motion test and recursive update of row r, then the guided-filter coefficients of row r−2
    and the inverse-transformed output of row r−4, so the state is read and written once per
    frame and each row is revisited only while it is still in the core's cache.

    The spatial filter is a self-guided filter of the estimate (He, Sun & Tang 2013, "Guided
    image filtering", IEEE TPAMI 35(6)) on 5×5 windows: in each window the estimate is modelled
    as ``A·y + B`` with ``A = max(var − ε, 0) / var`` and ε = ``noise_scale`` / n, the noise
    variance of an estimate averaged over n frames (σ = 1 per frame after stabilisation;
    ``noise_scale`` absorbs the detector's spatial correlation), so flat regions are averaged
    over the window and edges (the needle) are kept; where fewer frames were averaged (motion,
    first frames) ε is larger and the smoothing stronger.

    Parameters
    ----------
    pixels : (H, W) uint16, DN.
    inv_a, offset : the forward variance-stabilising transform, ``vst`` (1/a, b/a² + 3/8).
    y : (H, W) float32 state, the temporal estimate (stabilised domain); updated in place.
    n : (H, W) uint8 state, the effective number of frames averaged into ``y``, in
        1/``N_SCALE`` frame; updated in place.
    out : (H, W) float32, the denoised frame in DN.
    first : the first frame after a reset (the state is (re)initialised from it).
    inv_sigma_box : 1 / standard deviation of the 3×3 mean of one frame's noise (stabilised).
    k_low, k_high : motion test bounds in units of that deviation: below ``k_low`` keep
        averaging, above ``k_high`` restart the pixel from the current frame, linear between.
    n_max : cap on the frames averaged (at most 255/``N_SCALE``).
    noise_scale : noise variance of one frame as the 5×5 guided filter sees it (stabilised).
    a, b_over_a : noise model (variance = a·DN + b): the inverse transform is a·u − b/a.
    hist : (MOTION_BINS,) int64, accumulates the motion statistic on every 2nd pixel of every
        ``SAMPLE_ROWS``-th row.
    two_stage : the full guided filter (True) or its first stage only, a local Wiener filter.

    Returns the fraction of the sampled pixels that restarted (for scene-cut detection): 1 on
    a first frame, 0 when the frame is too short to sample (under ``SAMPLE_ROWS // 2 + 1``
    rows).
    """
    h, w = pixels.shape
    ia = np.float32(inv_a)
    off = np.float32(offset)
    ring_a = np.empty((5, w), np.float32)
    ring_b = np.empty((5, w), np.float32)
    col = np.empty(w + 4, np.float32)
    col2 = np.empty(w + 4, np.float32)
    d_cur = np.empty(w, np.float32)
    d_next = np.empty(w, np.float32)
    hs_a = np.empty(w, np.float32)
    hs_b = np.empty(w, np.float32)
    hs_c = np.empty(w, np.float32)
    restarted = 0
    if first:
        zeros = np.zeros(w, np.float32)
        one_frame = np.uint8(N_SCALE)
        for r in range(h):
            _diff_row(pixels[r], zeros, ia, off, y[r], hs_a)  # y = vst(pixels)
            n[r, :] = one_frame
            if r >= 2:
                _guided_step(y, n, out, r - 2, noise_scale, ring_a, ring_b, col, col2, a,
                             b_over_a, two_stage)
    else:
        _diff_row(pixels[0], y[0], ia, off, d_cur, hs_b)
        hs_a[:] = hs_b
        for r in range(h):
            if r + 1 < h:
                _diff_row(pixels[r + 1], y[r + 1], ia, off, d_next, hs_c)
            else:
                hs_c[:] = hs_b
            if r % SAMPLE_ROWS == SAMPLE_ROWS // 2:
                restarted += _motion_histogram(n, r, hs_a, hs_b, hs_c, inv_sigma_box, k_low,
                                               k_high, hist)
            _temporal_row(y, n, r, d_cur, hs_a, hs_b, hs_c, inv_sigma_box, k_low, k_high,
                          n_max)
            hs_a, hs_b, hs_c = hs_b, hs_c, hs_a
            d_cur, d_next = d_next, d_cur
            if r >= 2:
                _guided_step(y, n, out, r - 2, noise_scale, ring_a, ring_b, col, col2, a,
                             b_over_a, two_stage)
    for i in range(max(h - 2, 0), h + 2):  # the last coefficient rows and outputs
        _guided_step(y, n, out, i, noise_scale, ring_a, ring_b, col, col2, a, b_over_a,
                     two_stage)
    if first:
        return 1.0
    sampled = ((h + SAMPLE_ROWS // 2 - 1) // SAMPLE_ROWS) * ((w + 1) // 2)
    return restarted / sampled if sampled > 0 else 0.0


@njit(cache=True, nogil=True)
def histogram_quantile(hist: np.ndarray, numerator: int, denominator: int) -> int:
    """The first bin where the cumulative count reaches ``numerator/denominator`` of the total
    (1, 2: the median); -1 if ``hist`` is empty."""
    total = 0
    for k in range(hist.shape[0]):
        total += hist[k]
    if total == 0:
        return -1
    cum = 0
    for k in range(hist.shape[0]):
        cum += hist[k]
        if denominator * cum >= numerator * total:
            return k
    return hist.shape[0] - 1


RATIO_BINS = 2048  # gain tracking: median of frame ratios over 0.5..1.5 in steps of 1/2048


@njit(cache=True, nogil=True, error_model="numpy")
def grid_gain(pixels: np.ndarray, grid: np.ndarray, zero_dn: float, floor: float,
              step: int) -> tuple[float, float]:
    """Median of ``(pixels - zero_dn) / (grid - zero_dn)`` over the sparse grid
    ``pixels[step//2::step, step//2::step]`` (``grid`` holds the previous frame's values there)
    and the standard error of that median; then ``grid`` is overwritten with this frame's
    values.

    A point counts where both values, above ``zero_dn``, are positive and average above
    ``floor``: a test symmetric in the two frames, so that, the scene being still, the ratio's
    distribution is symmetric about 1 (selecting on the previous value alone keeps the points
    where it happened to be high and biases the ratio low, which applied frame after frame
    dims the image). The median comes from a histogram over 0.5..1.5 (ratios outside are
    counted at the ends); its standard error is 1.2533·σ/√N with σ = IQR/1.349 (normal
    approximation). Returns (1.0, inf) when fewer than 100 grid points count."""
    gh, gw = grid.shape
    hist = np.zeros(RATIO_BINS, np.int64)
    total = 0
    half = step // 2
    for i in range(gh):
        for j in range(gw):
            raw = float(pixels[half + i * step, half + j * step])
            now = raw - zero_dn
            before = grid[i, j] - zero_dn
            if now > 0.0 and before > 0.0 and now + before > 2.0 * floor:
                k = int((now / before - 0.5) * RATIO_BINS)
                hist[min(max(k, 0), RATIO_BINS - 1)] += 1
                total += 1
            grid[i, j] = raw
    if total < 100:
        return 1.0, math.inf
    median = 0.5 + (histogram_quantile(hist, 1, 2) + 0.5) / RATIO_BINS
    iqr = (histogram_quantile(hist, 3, 4) - histogram_quantile(hist, 1, 4)) / RATIO_BINS
    return median, 1.2533 * (iqr / 1.349) / math.sqrt(total)
