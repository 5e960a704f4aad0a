"""Numba kernels of the spatio-temporal denoiser (``fluoro.denoise``).

All kernels are ``@njit(cache=True, nogil=True)``, single-threaded (no ``parallel=True``: the
pipeline calls them from a worker thread), read no mutable globals, and also run as plain Python
under ``NUMBA_DISABLE_JIT=1`` (slowly; tests do so on tiny frames).

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


@njit(cache=True, nogil=True, fastmath=True, error_model="numpy")
def _diff_row(pixels: np.ndarray, lut: np.ndarray, y: np.ndarray, row: int,
              d: np.ndarray, hs: np.ndarray) -> None:
    """``d = vst(pixels[row]) - y[row]`` and its horizontal 3-sum (edge-replicated) ``hs``."""
    w = pixels.shape[1]
    prow = pixels[row]
    yrow = y[row]
    for c in range(w):
        d[c] = lut[prow[c]] - yrow[c]
    if w == 1:
        hs[0] = np.float32(3.0) * d[0]
        return
    for c in range(1, w - 1):
        hs[c] = d[c - 1] + d[c] + d[c + 1]
    hs[0] = np.float32(2.0) * d[0] + d[1]
    hs[w - 1] = d[w - 2] + np.float32(2.0) * d[w - 1]


@njit(cache=True, nogil=True, fastmath=True, error_model="numpy")
def _temporal_row(y: np.ndarray, n: np.ndarray, r: int, d: np.ndarray, hs_a: np.ndarray,
                  hs_b: np.ndarray, hs_c: np.ndarray, inv_sigma_box: float, k_low: float,
                  k_high: float, n_max: float) -> int:
    """Motion-gated recursive average of row ``r`` (``d`` = frame − estimate on that row);
    returns how many pixels restarted."""
    w = y.shape[1]
    one = np.float32(1.0)
    zero = np.float32(0.0)
    scale = np.float32(inv_sigma_box / 9.0)
    kh = np.float32(k_high)
    inv_span = np.float32(1.0 / (k_high - k_low))
    nmax = np.float32(n_max)
    yrow = y[r]
    nrow = n[r]
    moving = 0
    for c in range(w):
        n_old = nrow[c]
        # noise-relative size of the 3x3 mean difference, whose var is σ_box² (1 + 1/n_old)
        m = abs(hs_a[c] + hs_b[c] + hs_c[c]) * scale * np.sqrt(n_old / (n_old + one))
        keep = min(max((kh - m) * inv_span, zero), one)
        n_new = min(one + keep * n_old, nmax)
        yrow[c] += d[c] / n_new
        nrow[c] = n_new
        if keep < np.float32(0.5):
            moving += 1
    return moving


@njit(cache=True, nogil=True, error_model="numpy")
def _motion_histogram(n: np.ndarray, r: int, hs_a: np.ndarray, hs_b: np.ndarray,
                      hs_c: np.ndarray, inv_sigma_box: float, hist: np.ndarray) -> None:
    """Histogram of the motion statistic on row ``r`` (before its update), for calibration."""
    w = n.shape[1]
    scale = inv_sigma_box / 9.0 * MOTION_BINS / MOTION_RANGE
    for c in range(0, w, 2):
        n_old = n[r, c]
        m = abs(hs_a[c] + hs_b[c] + hs_c[c]) * scale * math.sqrt(n_old / (n_old + 1.0))
        hist[min(int(m), MOTION_BINS - 1)] += 1


GUIDED_RADIUS = 2  # 5×5 windows


@njit(cache=True, nogil=True, fastmath=True, error_model="numpy")
def _box_rows(rows: np.ndarray, idx: np.ndarray, out: np.ndarray, col: np.ndarray,
              rows2: np.ndarray, out2: np.ndarray, col2: np.ndarray, squares: bool) -> None:
    """5×5 window sums, columns edge-replicated, of rows ``rows[idx[0..4]]`` into ``out`` and,
    into ``out2``, of their squares (``squares``) or of ``rows2[idx[...]]``. ``idx`` holds the
    5 row indices, already clamped; ``col`` and ``col2`` are scratch of length W + 4."""
    w = rows.shape[1]
    a0, a1, a2, a3, a4 = rows[idx[0]], rows[idx[1]], rows[idx[2]], rows[idx[3]], rows[idx[4]]
    for c in range(w):
        col[c + 2] = a0[c] + a1[c] + a2[c] + a3[c] + a4[c]
    if squares:
        for c in range(w):
            col2[c + 2] = (a0[c] * a0[c] + a1[c] * a1[c] + a2[c] * a2[c] + a3[c] * a3[c]
                           + a4[c] * a4[c])
    else:
        b0, b1, b2, b3 = rows2[idx[0]], rows2[idx[1]], rows2[idx[2]], rows2[idx[3]]
        b4 = rows2[idx[4]]
        for c in range(w):
            col2[c + 2] = b0[c] + b1[c] + b2[c] + b3[c] + b4[c]
    _hsum5(col, out)
    _hsum5(col2, out2)


@njit(cache=True, nogil=True, fastmath=True, error_model="numpy")
def _hsum5(col: np.ndarray, out: np.ndarray) -> None:
    """Horizontal 5-sums of ``col[2:W+2]``, edge-replicated (``col`` has 2 spare cells each
    side)."""
    w = out.shape[0]
    col[0] = col[2]
    col[1] = col[2]
    col[w + 2] = col[w + 1]
    col[w + 3] = col[w + 1]
    for c in range(w):
        out[c] = col[c] + col[c + 1] + col[c + 2] + col[c + 3] + col[c + 4]


@njit(cache=True, nogil=True, fastmath=True, error_model="numpy")
def guided_filter(y: np.ndarray, n: np.ndarray, out: np.ndarray, noise_scale: float,
                  a: float, b_over_a: float, two_stage: bool) -> None:
    """Self-guided filter of the estimate (He, Sun & Tang 2013, "Guided image filtering",
    IEEE TPAMI 35(6)), 5×5 windows, then the inverse transform to DN into ``out``.

    In each window the estimate is modelled as ``A·y + B``; ``A = max(var − ε, 0) / var`` with
    ε = ``noise_scale`` / n, the noise variance of an estimate averaged over n frames (σ = 1 per
    frame after stabilisation; ``noise_scale`` absorbs the detector's spatial correlation), so
    flat regions are averaged over the window and edges (the needle) are kept; where fewer frames
    were averaged (motion, first frames) ε is larger and the smoothing stronger. The inverse is
    the asymptotically unbiased inverse of the Anscombe transform (Mäkitalo & Foi 2011) with the
    affine normalisation ``z -> z/a + b/a²`` undone.
    """
    h, w = y.shape
    ring_a = np.empty((5, w), np.float32)
    ring_b = np.empty((5, w), np.float32)
    s1 = np.empty(w, np.float32)
    s2 = np.empty(w, np.float32)
    idx = np.empty(5, np.int64)
    col = np.empty(w + 4, np.float32)
    col2 = np.empty(w + 4, np.float32)
    inv25 = np.float32(1.0 / 25.0)
    eps = np.float32(noise_scale)
    one = np.float32(1.0)
    zero = np.float32(0.0)
    tiny = np.float32(1e-6)
    af = np.float32(a)
    boa = np.float32(b_over_a)
    quarter = np.float32(0.25)
    eighth = np.float32(0.125)
    for i in range(h + 2):
        if i < h:  # coefficients of row i
            for k in range(5):
                idx[k] = min(max(i + k - 2, 0), h - 1)
            _box_rows(y, idx, s1, col, y, s2, col2, True)
            ra = ring_a[i % 5]
            rb = ring_b[i % 5]
            nrow = n[i]
            for c in range(w):
                mu = s1[c] * inv25
                var = s2[c] * inv25 - mu * mu
                coef = max(var - eps / nrow[c], zero) / (max(var, zero) + tiny)
                ra[c] = coef
                rb[c] = mu * (one - coef)
            if not two_stage:  # local Wiener (Lee) filter: the coefficients of its own window
                yrow = y[i]
                orow = out[i]
                for c in range(w):
                    f = ra[c] * yrow[c] + rb[c]
                    orow[c] = af * max(quarter * f * f - eighth, zero) - boa
                continue
        o = i - 2  # output row o needs coefficient rows o-2..o+2 (clamped), all computed
        if o >= 0 and two_stage:
            for k in range(5):
                idx[k] = min(max(o + k - 2, 0), h - 1) % 5
            _box_rows(ring_a, idx, s1, col, ring_b, s2, col2, False)
            yrow = y[o]
            orow = out[o]
            for c in range(w):
                f = (s1[c] * yrow[c] + s2[c]) * inv25
                orow[c] = af * max(quarter * f * f - eighth, zero) - boa


@njit(cache=True, nogil=True, error_model="numpy")
def denoise_frame(pixels: np.ndarray, lut: np.ndarray, y: np.ndarray, n: np.ndarray,
                  out: np.ndarray, first: bool, inv_sigma_box: float, k_low: float,
                  k_high: float, n_max: float, noise_scale: float, a: float, b_over_a: float,
                  hist: np.ndarray, two_stage: bool = True) -> int:
    """One frame: the temporal pass, fused row by row (difference of row r+1, motion test and
    recursive update of row r), then the guided filter and inverse transform (two row-ring
    passes), so the frame is read and written about twice.

    Parameters
    ----------
    pixels : (H, W) uint16, DN.
    lut : (65536,) float32, the forward variance-stabilising transform of each DN value.
    y, n : (H, W) float32 state: the temporal estimate (stabilised domain) and the effective
        number of frames averaged into it; updated in place.
    out : (H, W) float32, the denoised frame in DN.
    first : the first frame after a reset (the state is (re)initialised from it).
    inv_sigma_box : 1 / standard deviation of the 3×3 mean of one frame's noise (stabilised).
    k_low, k_high : motion test bounds in units of that deviation: below ``k_low`` keep
        averaging, above ``k_high`` restart the pixel from the current frame, linear between.
    n_max : cap on the frames averaged (sets the time constant of what is left of lag).
    noise_scale : noise variance of one frame as the 5×5 guided filter sees it (stabilised).
    a, b_over_a : noise model (variance = a·DN + b): the inverse transform is a·u − b/a.
    hist : (MOTION_BINS,) int64, accumulates the motion statistic on every 8th row.

    Returns the number of pixels that restarted (for scene-cut detection).
    """
    h, w = pixels.shape
    if first:
        for r in range(h):
            for c in range(w):
                y[r, c] = lut[pixels[r, c]]
                n[r, c] = 1.0
        guided_filter(y, n, out, noise_scale, a, b_over_a, two_stage)
        return h * w
    moving = 0
    d_cur = np.empty(w, np.float32)
    d_next = np.empty(w, np.float32)
    hs_a = np.empty(w, np.float32)
    hs_b = np.empty(w, np.float32)
    hs_c = np.empty(w, np.float32)
    _diff_row(pixels, lut, y, 0, d_cur, hs_b)
    hs_a[:] = hs_b
    for r in range(h):
        if r + 1 < h:
            _diff_row(pixels, lut, y, r + 1, d_next, hs_c)
        else:
            hs_c[:] = hs_b
        if r % 8 == 4:
            _motion_histogram(n, r, hs_a, hs_b, hs_c, inv_sigma_box, hist)
        moving += _temporal_row(y, n, r, d_cur, hs_a, hs_b, hs_c, inv_sigma_box, k_low,
                                k_high, n_max)
        hs_a, hs_b, hs_c = hs_b, hs_c, hs_a
        d_cur, d_next = d_next, d_cur
    guided_filter(y, n, out, noise_scale, a, b_over_a, two_stage)
    return moving


RATIO_BINS = 2048  # gain tracking: median of frame ratios over 0.5..1.5 in steps of 1/2048


@njit(cache=True, nogil=True, error_model="numpy")
def grid_gain(pixels: np.ndarray, grid: np.ndarray, zero_dn: float, floor: float,
              step: int) -> float:
    """Median of ``(pixels - zero_dn) / (grid - zero_dn)`` over the sparse grid
    ``pixels[step//2::step, step//2::step]`` where the previous value ``grid`` is above
    ``floor``, by histogram (ratios outside 0.5..1.5 are counted at the ends); then ``grid`` is
    overwritten with this frame's values. Returns 1.0 when fewer than 100 grid points count."""
    gh, gw = grid.shape
    hist = np.zeros(RATIO_BINS, np.int64)
    total = 0
    half = step // 2
    for i in range(gh):
        for j in range(gw):
            now = float(pixels[half + i * step, half + j * step])
            before = grid[i, j] - zero_dn
            if before > floor:
                k = int(((now - zero_dn) / before - 0.5) * RATIO_BINS)
                hist[min(max(k, 0), RATIO_BINS - 1)] += 1
                total += 1
            grid[i, j] = now
    if total < 100:
        return 1.0
    cum = 0
    for k in range(RATIO_BINS):
        cum += hist[k]
        if 2 * cum >= total:
            return 0.5 + (k + 0.5) / RATIO_BINS
    return 1.0
