"""Numba kernels of the needle tracker (``fluoro.imaging.needle``): pure functions over arrays.

Conventions: images are H×W arrays indexed ``[row, col]``; points are ``(x, y) = (col, row)``
with pixel centres at integers. Every kernel is ``@njit(cache=True, nogil=True)`` (no
``parallel``: the tracker runs single-threaded next to the denoiser) and also runs as plain
Python under ``NUMBA_DISABLE_JIT=1``. Kernels accept uint16 or float32 images.

Methods: the thin dark line is found where the Hessian of the smoothed image has a large
positive eigenvalue across the line (Frangi et al. 1998, "Multiscale vessel enhancement
filtering", MICCAI) *and* both sides of the line, a few pixels away along the eigenvector, are
brighter than its centre (which rejects the dark side of step edges); line candidates are voted
into a Hough accumulator restricted to each point's own orientation (Duda & Hart 1972).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

_jit = njit(cache=True, nogil=True, error_model="numpy")

BOTH_SIDES = 0.03  # each side of a dark line is at least this much brighter than its axis


@_jit
def downsample_mean(img, k, out):
    """``out[r, c]`` = mean of the ``k``×``k`` block of ``img`` (float32 out, any dtype in)."""
    rows, cols = out.shape
    scale = 1.0 / (k * k)
    if k == 2:  # the usual case, written out so that it vectorises
        for r in range(rows):
            for c in range(cols):
                out[r, c] = 0.25 * (np.float32(img[2 * r, 2 * c]) + img[2 * r, 2 * c + 1]
                                    + img[2 * r + 1, 2 * c] + img[2 * r + 1, 2 * c + 1])
        return
    for r in range(rows):
        for c in range(cols):
            acc = 0.0
            for dr in range(k):
                for dc in range(k):
                    acc += img[r * k + dr, c * k + dc]
            out[r, c] = acc * scale


@_jit
def gaussian_blur(src, taps, tmp, out):
    """Separable blur of float32 ``src`` with odd-length ``taps`` (edges clamped)."""
    rows, cols = src.shape
    rad = taps.shape[0] // 2
    for r in range(rows):
        for c in range(cols):
            if rad <= c < cols - rad:
                acc = 0.0
                for k in range(-rad, rad + 1):
                    acc += taps[k + rad] * src[r, c + k]
            else:
                acc = 0.0
                for k in range(-rad, rad + 1):
                    acc += taps[k + rad] * src[r, min(max(c + k, 0), cols - 1)]
            tmp[r, c] = acc
    for r in range(rows):
        if rad <= r < rows - rad:
            for c in range(cols):
                out[r, c] = 0.0
            for k in range(-rad, rad + 1):
                w = taps[k + rad]
                for c in range(cols):
                    out[r, c] += w * tmp[r + k, c]
        else:
            for c in range(cols):
                acc = 0.0
                for k in range(-rad, rad + 1):
                    acc += taps[k + rad] * tmp[min(max(r + k, 0), rows - 1), c]
                out[r, c] = acc


@_jit
def bilinear(img, x, y):
    """Bilinear sample of ``img`` at (x, y); NaN outside the image."""
    rows, cols = img.shape
    if not (0.0 <= x <= cols - 1.0 and 0.0 <= y <= rows - 1.0):
        return np.nan
    x0 = min(int(x), cols - 2) if cols > 1 else 0
    y0 = min(int(y), rows - 2) if rows > 1 else 0
    fx = x - x0
    fy = y - y0
    a = img[y0, x0] * (1.0 - fx) + img[y0, x0 + 1] * fx
    b = img[y0 + 1, x0] * (1.0 - fx) + img[y0 + 1, x0 + 1] * fx
    return a * (1.0 - fy) + b * fy


@_jit
def _inner(img, x, y):
    """Bilinear sample at (x, y) known to be at least one pixel inside the image."""
    x0 = int(x)
    y0 = int(y)
    fx = x - x0
    fy = y - y0
    a = img[y0, x0] * (1.0 - fx) + img[y0, x0 + 1] * fx
    b = img[y0 + 1, x0] * (1.0 - fx) + img[y0 + 1, x0 + 1] * fx
    return a * (1.0 - fy) + b * fy


@_jit
def ridge_points(sm, side_px, min_contrast, min_curvature, min_level, xs, ys, angles, weights):
    """Dark-line centre pixels of the smoothed image ``sm``; returns how many were written.

    A pixel qualifies when the Hessian's largest eigenvalue is positive (dark line), it is the
    minimum along that eigenvector (non-maximum suppression), the eigenvalue is at least
    ``min_curvature`` times the pixel's value (per pixel²), both samples ``side_px`` away
    along it are at least ``min_level`` and brighter than the centre by ``min_contrast`` (a
    fraction of the darker side). ``angles`` receives the line direction in radians (0..pi),
    ``weights`` the relative contrast. Output arrays bound the count.
    """
    rows, cols = sm.shape
    cap = xs.shape[0]
    n = 0
    m = int(side_px) + 2
    for r in range(m, rows - m):
        for c in range(m, cols - m):
            v = sm[r, c]
            ixx = sm[r, c + 1] - 2.0 * v + sm[r, c - 1]
            iyy = sm[r + 1, c] - 2.0 * v + sm[r - 1, c]
            if ixx + iyy <= min_curvature * v:  # a line's Laplacian ~ its eigenvalue
                continue
            ixy = 0.25 * (sm[r + 1, c + 1] - sm[r + 1, c - 1] - sm[r - 1, c + 1]
                          + sm[r - 1, c - 1])
            half = 0.5 * (ixx - iyy)
            lam = 0.5 * (ixx + iyy) + math.sqrt(half * half + ixy * ixy)
            if lam <= min_curvature * v:
                continue
            nx = lam - iyy
            ny = ixy
            norm = math.hypot(nx, ny)
            if norm < 1e-12:
                nx, ny = 1.0, 0.0
            else:
                nx /= norm
                ny /= norm
            if _inner(sm, c + nx, r + ny) < v or _inner(sm, c - nx, r - ny) < v:
                continue
            a = _inner(sm, c + side_px * nx, r + side_px * ny)
            b = _inner(sm, c - side_px * nx, r - side_px * ny)
            side = min(a, b)
            if side < min_level:
                continue
            contrast = (side - v) / side
            if contrast < min_contrast:
                continue
            if n < cap:
                xs[n] = c
                ys[n] = r
                ang = math.atan2(nx, -ny)  # direction along the line = normal rotated 90°
                if ang < 0.0:
                    ang += math.pi
                if ang >= math.pi:
                    ang -= math.pi
                angles[n] = ang
                weights[n] = contrast
                n += 1
    return n


@_jit
def hough_vote(xs, ys, angles, weights, n, spread, acc):
    """Vote points into ``acc[theta_bin, rho_bin]`` (1 bin = 180/n_theta degrees by 1 pixel).

    A line of direction ``theta`` is ``rho = -x sin(theta) + y cos(theta)``, offset by half
    the rho bins so rho may be negative. Each point votes only for the ``2 spread + 1``
    direction bins around its own line direction.
    """
    n_theta, n_rho = acc.shape
    off = n_rho // 2
    step = math.pi / n_theta
    for i in range(n):
        centre = int(angles[i] / step + 0.5)
        for k in range(centre - spread, centre + spread + 1):
            kk = k % n_theta
            th = kk * step
            rho = -xs[i] * math.sin(th) + ys[i] * math.cos(th)
            j = math.floor(rho + 0.5) + off
            if 0 <= j < n_rho:
                acc[kk, j] += weights[i]


@_jit
def sample_strip(img, ox, oy, ux, uy, t0, out):
    """Straighten the image along a line: ``out[i, j] = img(o + (t0 + i) u + s_j n)`` with
    ``s_j = j - (ns - 1) / 2`` and ``n = (-uy, ux)``; bilinear, NaN outside the image."""
    nt, ns = out.shape
    rows, cols = img.shape
    half = (ns - 1) * 0.5
    nx = -uy
    ny = ux
    for i in range(nt):
        t = t0 + i
        bx = ox + t * ux - half * nx
        by = oy + t * uy - half * ny
        for j in range(ns):
            x = bx + j * nx
            y = by + j * ny
            if 0.0 <= x < cols - 1.0 and 0.0 <= y < rows - 1.0:  # the common case
                out[i, j] = _inner(img, x, y)
            else:  # on the last row or column, or outside: NaN
                out[i, j] = bilinear(img, x, y)


@_jit
def strip_centres(strip, half_rows, search, side_px, s_out, c_out):
    """Per strip row: sub-pixel offset of the dark line's centre from the strip axis and its
    relative contrast (NaN where undefined). Rows are averaged over ``±half_rows`` (along the
    line, where the needle does not change), smoothed [1 2 1] across; the minimum within
    ``±search`` of the axis is refined by a parabola; the background is the darker of the two
    samples ``side_px`` either side of it."""
    nt, ns = strip.shape
    mid = (ns - 1) // 2
    prof = np.empty(ns)
    sm = np.empty(ns)
    # column sums over the window of rows lo..hi, kept as the window slides (NaN-aware: a
    # count of NaN samples per column, so one NaN does not poison the sums for good)
    total = np.zeros(ns)
    nans = np.zeros(ns, np.int64)
    lo_in = 0  # rows lo_in..hi_in are in the sums
    hi_in = -1
    for i in range(nt):
        s_out[i] = np.nan
        c_out[i] = np.nan
        lo = max(i - half_rows, 0)
        hi = min(i + half_rows, nt - 1)
        while hi_in < hi:
            hi_in += 1
            for j in range(ns):
                v = strip[hi_in, j]
                if math.isnan(v):
                    nans[j] += 1
                else:
                    total[j] += v
        while lo_in < lo:
            for j in range(ns):
                v = strip[lo_in, j]
                if math.isnan(v):
                    nans[j] -= 1
                else:
                    total[j] -= v
            lo_in += 1
        bad = False
        for j in range(ns):
            if nans[j] > 0:
                bad = True
                break
            prof[j] = total[j] / (hi - lo + 1)
        if bad:
            continue
        sm[0] = prof[0]
        sm[ns - 1] = prof[ns - 1]
        for j in range(1, ns - 1):
            sm[j] = 0.25 * prof[j - 1] + 0.5 * prof[j] + 0.25 * prof[j + 1]
        best = mid
        for j in range(max(mid - search, 1), min(mid + search, ns - 2) + 1):
            if sm[j] < sm[best]:
                best = j
        if best <= 0 or best >= ns - 1:
            continue
        a, b, c = sm[best - 1], sm[best], sm[best + 1]
        den = a - 2.0 * b + c
        frac = 0.5 * (a - c) / den if den > 0.0 else 0.0
        frac = min(max(frac, -0.5), 0.5)
        centre = best + frac
        left = centre - side_px
        right = centre + side_px
        if left < 0.0 or right > ns - 1.0:
            continue
        il = int(left)
        vl = sm[il] + (left - il) * (sm[min(il + 1, ns - 1)] - sm[il])
        ir = int(right)
        vr = sm[ir] + (right - ir) * (sm[min(ir + 1, ns - 1)] - sm[ir])
        side = min(vl, vr)
        if side <= 0.0:
            continue
        s_out[i] = centre - mid
        c_out[i] = (side - b + 0.25 * (a - c) * frac) / side


@_jit
def axis_profiles(strip, half_rows, side_px, collar_px, far_px, c_out, f_out, lvl_out, g_out):
    """Along an aligned strip (the needle on its axis column): per row, the shaft's
    attenuation ``c_out = ln(side / axis)`` (in the log domain the shaft's line integral is
    additive, so at the end of its axis it is exactly half of the shaft's, whatever the
    needle's tilt). The background under the needle is interpolated across it, the geometric
    mean of the two sides, so a needle running along the edge of a bone (dark on one side)
    keeps its contrast; each side is the brighter of two samples, at ``side_px`` and at
    1.6 ``side_px``, so a thin dark structure beside the needle does not hide it. Both sides
    must be brighter than the axis by ``BOTH_SIDES`` (relative), else the row has only the
    contrast of its darker side: an edge (bright on one side only) is no line. Also the
    relative
    darkening ``f_out`` at ±``collar_px`` against ±``far_px`` (large on the hub's wider
    ferrule, small on the thin shaft), and the background level ``lvl_out``. Rows are averaged
    over ``±half_rows``; NaN where a sample falls outside the image. ``g_out`` is the
    attenuation against the interpolated background alone, without the both-sides test
    (about 0 where there is no line on the axis, also across an edge, where ``c_out`` is
    negative; positive where a line crosses an edge)."""
    nt, ns = strip.shape
    mid = (ns - 1) * 0.5
    for i in range(nt):
        lo = max(i - half_rows, 0)
        hi = min(i + half_rows, nt - 1)
        cnt = hi - lo + 1
        centre = 0.0
        sl = 0.0
        sr = 0.0
        ol = 0.0
        orr = 0.0
        cl = 0.0
        cr = 0.0
        fl = 0.0
        fr = 0.0
        for k in range(lo, hi + 1):
            centre += _lerp_row(strip, k, mid)
            sl += _lerp_row(strip, k, mid - side_px)
            sr += _lerp_row(strip, k, mid + side_px)
            ol += _lerp_row(strip, k, mid - 1.6 * side_px)
            orr += _lerp_row(strip, k, mid + 1.6 * side_px)
            cl += _lerp_row(strip, k, mid - collar_px)
            cr += _lerp_row(strip, k, mid + collar_px)
            fl += _lerp_row(strip, k, mid - far_px)
            fr += _lerp_row(strip, k, mid + far_px)
        left = max(sl, ol) / cnt
        right = max(sr, orr) / cnt
        side = math.sqrt(left * right) if min(left, right) > 0.0 else 0.0
        far = min(fl, fr) / cnt
        collar = max(cl, cr) / cnt
        centre /= cnt
        lvl_out[i] = far
        if (math.isnan(side + far + collar + centre) or side <= 0.0 or far <= 0.0
                or centre <= 0.0):
            c_out[i] = np.nan
            f_out[i] = np.nan
            g_out[i] = np.nan
            continue
        g_out[i] = math.log(side / centre)
        if min(left, right) >= centre * (1.0 + BOTH_SIDES):
            c_out[i] = math.log(side / centre)
        else:
            c_out[i] = math.log(min(left, right) / centre)
        f_out[i] = (far - collar) / far


@_jit
def _lerp_row(strip, row, s):
    j = int(s)
    if j >= strip.shape[1] - 1:
        return strip[row, strip.shape[1] - 1]
    f = s - j
    return strip[row, j] * (1.0 - f) + strip[row, j + 1] * f


@_jit
def fit_centres(s_c, c_c, min_contrast, pick_a, pick_b, min_ransac, inliers):
    """Fit the line ``s = a + b t`` to the strip rows' centres ``s_c`` (t: the row index),
    each weighted by its contrast ``c_c``, over the rows with a contrast of at least
    ``min_contrast``: RANSAC (Fischler & Bolles 1981) over the pairs of those rows' ranks
    ``pick_a[k], pick_b[k]`` (rows at least 5 apart; a line's score is the summed contrast of
    the rows within 1 px; ranks outside ``0..n-1`` for the n rows are skipped), at least
    ``min_ransac`` inliers; then weighted least squares
    (weights contrast², as a variance would be) on the inliers, twice re-gated at 1.0 and
    0.6 px (at least 8 inliers each time), and once more. Returns ``(a, b, rms_px, count)``,
    ``count`` 0 when there is no line; ``inliers[t]`` is True on the final inlier rows."""
    nt = s_c.size
    rows = np.empty(nt, np.int64)
    n = 0
    for t in range(nt):
        inliers[t] = False
        if not math.isnan(c_c[t]) and c_c[t] >= min_contrast:
            rows[n] = t
            n += 1
    if n < 8:
        return 0.0, 0.0, 0.0, 0
    best_score = -1.0
    best_a = 0.0
    best_b = 0.0
    for k in range(pick_a.size):
        if not (0 <= pick_a[k] < n and 0 <= pick_b[k] < n):
            continue
        ri = rows[pick_a[k]]
        rj = rows[pick_b[k]]
        dt = float(rj - ri)
        if abs(dt) < 5.0:
            continue
        b = (s_c[rj] - s_c[ri]) / dt
        a = s_c[ri] - b * ri
        score = 0.0
        for m in range(n):
            r = rows[m]
            if abs(s_c[r] - (a + b * r)) <= 1.0:
                score += c_c[r]
        if score > best_score:
            best_score = score
            best_a = a
            best_b = b
    if best_score < 0.0:
        return 0.0, 0.0, 0.0, 0
    a, b = best_a, best_b
    tol = 1.0
    count = 0
    for m in range(n):
        r = rows[m]
        inliers[r] = abs(s_c[r] - (a + b * r)) <= tol
        count += inliers[r]
    if count < min_ransac:
        return 0.0, 0.0, 0.0, 0
    for step in range(3):
        # weighted least squares on the current inliers
        sw = 0.0
        st = 0.0
        ss = 0.0
        for m in range(n):
            r = rows[m]
            if inliers[r]:
                w = c_c[r] * c_c[r]
                sw += w
                st += w * r
                ss += w * s_c[r]
        tm = st / sw
        sm = ss / sw
        stt = 0.0
        sts = 0.0
        for m in range(n):
            r = rows[m]
            if inliers[r]:
                w = c_c[r] * c_c[r]
                stt += w * (r - tm) * (r - tm)
                sts += w * (r - tm) * (s_c[r] - sm)
        b = sts / stt if stt > 0.0 else 0.0
        a = sm - b * tm
        if step == 2:
            break
        tol = 1.0 if step == 0 else 0.6
        count = 0
        for m in range(n):
            r = rows[m]
            inliers[r] = abs(s_c[r] - (a + b * r)) <= tol
            count += inliers[r]
        if count < 8:
            for m in range(n):
                inliers[rows[m]] = False
            return 0.0, 0.0, 0.0, 0
    sq = 0.0
    for m in range(n):
        r = rows[m]
        if inliers[r]:
            d = s_c[r] - (a + b * r)
            sq += d * d
    return a, b, math.sqrt(sq / count), count


@_jit
def finite_median(x):
    """Median of the finite values of the 1-D array ``x``; NaN when it has none."""
    keep = np.empty(x.size)
    n = 0
    for i in range(x.size):
        if np.isfinite(x[i]):
            keep[n] = x[i]
            n += 1
    if n == 0:
        return np.nan
    return np.median(keep[:n])
