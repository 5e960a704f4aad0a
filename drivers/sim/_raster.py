"""Numba kernels that rasterise analytic projections (line integrals) of simple solids.

Two primitives, both given in image pixels, values are line integrals ``mu * chord``
(dimensionless; ``mu`` per mm, chord in mm):

- rod (``ROD_FIELDS`` columns): a (tapered, optionally waisted or threaded) segment with
  radius ``r(t)``; value ``mu * chord * (1 - (d / r)^2)^expo`` at distance ``d`` from the axis,
  capped at ``cap_mm * mu``. ``expo = 0.5`` is the exact chord profile of a round rod,
  ``expo -> 0`` a flat-topped one (a solid seen along its length). Ends: ``round = 0`` flat,
  else an elliptic cap reaching ``round * r`` beyond the end point (1 = hemispherical; a
  cylinder tilted by beta to the beam shows caps of ``cos(beta)``).
- blob (``BLOB_FIELDS``): a rotated ellipse, value ``mu * chord * (1 - q)^expo``.

Anti-aliasing: every pixel averages ``ss × ss`` sub-samples, of the line integral for soft
anatomy (``add_*``) and of the transmission ``exp(-L)`` for metal (``multiply_*``), which is
what a detector pixel integrates.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

# rod row layout
X0, Y0, X1, Y1, R0, R1, WAIST, CHORD, EXPO, MU, ROUND, CAP, THREAD_PITCH, THREAD_DEPTH = range(14)
ROD_FIELDS = 14
# blob row layout
CX, CY, AX, AY, ANGLE, BCHORD, BEXPO, BMU = range(8)
BLOB_FIELDS = 8


@njit(cache=True, nogil=True)
def _profile(q: float, expo: float) -> float:
    if expo == 0.5:
        return math.sqrt(q)
    if expo <= 0.0:
        return 1.0
    return q**expo


@njit(cache=True, nogil=True)
def rod_value(px: float, py: float, rod: np.ndarray) -> float:
    """Line integral of one rod at image point (px, py)."""
    x0 = rod[X0]
    y0 = rod[Y0]
    ax = rod[X1] - x0
    ay = rod[Y1] - y0
    dx = px - x0
    dy = py - y0
    l2 = ax * ax + ay * ay
    cap_scale = rod[ROUND]
    if l2 < 1e-9:
        t = 0.0
        d2 = dx * dx + dy * dy
    else:
        t = (dx * ax + dy * ay) / l2
        cr = dx * ay - dy * ax
        d2 = cr * cr / l2
        if t < 0.0 or t > 1.0:
            if cap_scale <= 0.0:
                return 0.0
            beyond = (-t if t < 0.0 else t - 1.0) * math.sqrt(l2) / cap_scale
            d2 += beyond * beyond
    tc = min(max(t, 0.0), 1.0)
    r = rod[R0] + (rod[R1] - rod[R0]) * tc - rod[WAIST] * 4.0 * tc * (1.0 - tc)
    scale = 1.0
    if rod[THREAD_DEPTH] > 0.0:
        scale = 1.0 - rod[THREAD_DEPTH] * (
            0.5 + 0.5 * math.cos(2.0 * math.pi * tc / rod[THREAD_PITCH])
        )
        r *= scale
    if r <= 0.0:
        return 0.0
    q = 1.0 - d2 / (r * r)
    if q <= 0.0:
        return 0.0
    v = rod[CHORD] * scale * _profile(q, rod[EXPO])
    if v > rod[CAP]:
        v = rod[CAP]
    return rod[MU] * v


@njit(cache=True, nogil=True)
def blob_value(px: float, py: float, blob: np.ndarray) -> float:
    """Line integral of one blob (rotated ellipse) at image point (px, py)."""
    dx = px - blob[CX]
    dy = py - blob[CY]
    c = math.cos(blob[ANGLE])
    s = math.sin(blob[ANGLE])
    u = (dx * c + dy * s) / blob[AX]
    v = (-dx * s + dy * c) / blob[AY]
    q = 1.0 - u * u - v * v
    if q <= 0.0:
        return 0.0
    return blob[BMU] * blob[BCHORD] * _profile(q, blob[BEXPO])


@njit(cache=True, nogil=True)
def _rod_bbox(rod: np.ndarray, pad: float) -> tuple[float, float, float, float]:
    r = max(rod[R0], rod[R1]) * (1.0 + max(rod[THREAD_DEPTH], 0.0)) + pad
    return (
        min(rod[X0], rod[X1]) - r,
        max(rod[X0], rod[X1]) + r,
        min(rod[Y0], rod[Y1]) - r,
        max(rod[Y0], rod[Y1]) + r,
    )


@njit(cache=True, nogil=True)
def add_rods(buf: np.ndarray, rods: np.ndarray, ss: int) -> None:
    """buf[row, col] += pixel-averaged line integral of every rod (buf float32, H×W)."""
    h, w = buf.shape
    inv = 1.0 / (ss * ss)
    for i in range(rods.shape[0]):
        rod = rods[i]
        xa, xb, ya, yb = _rod_bbox(rod, 1.0)
        c0 = max(math.floor(xa), 0)
        c1 = min(math.ceil(xb) + 1, w)
        r0 = max(math.floor(ya), 0)
        r1 = min(math.ceil(yb) + 1, h)
        for r in range(r0, r1):
            for c in range(c0, c1):
                acc = 0.0
                for sy in range(ss):
                    py = r + (sy + 0.5) / ss - 0.5
                    for sx in range(ss):
                        acc += rod_value(c + (sx + 0.5) / ss - 0.5, py, rod)
                if acc != 0.0:
                    buf[r, c] += acc * inv


@njit(cache=True, nogil=True)
def add_blobs(buf: np.ndarray, blobs: np.ndarray, ss: int) -> None:
    """buf[row, col] += pixel-averaged line integral of every blob (buf float32, H×W)."""
    h, w = buf.shape
    inv = 1.0 / (ss * ss)
    for i in range(blobs.shape[0]):
        b = blobs[i]
        r_max = max(b[AX], b[AY]) + 1.0
        c0 = max(math.floor(b[CX] - r_max), 0)
        c1 = min(math.ceil(b[CX] + r_max) + 1, w)
        r0 = max(math.floor(b[CY] - r_max), 0)
        r1 = min(math.ceil(b[CY] + r_max) + 1, h)
        for r in range(r0, r1):
            for c in range(c0, c1):
                acc = 0.0
                for sy in range(ss):
                    py = r + (sy + 0.5) / ss - 0.5
                    for sx in range(ss):
                        acc += blob_value(c + (sx + 0.5) / ss - 0.5, py, b)
                if acc != 0.0:
                    buf[r, c] += acc * inv


@njit(cache=True, nogil=True)
def multiply_rod_transmission(
    trans: np.ndarray, rods: np.ndarray, ss: int, row0: int, col0: int
) -> None:
    """trans[r, c] *= pixel-averaged exp(-L) of each rod; ``trans`` starts at (row0, col0).

    Pixels farther than one pixel from a rod's outline are skipped cheaply, so a thin needle
    costs only its own area.
    """
    h, w = trans.shape
    inv = 1.0 / (ss * ss)
    for i in range(rods.shape[0]):
        rod = rods[i]
        xa, xb, ya, yb = _rod_bbox(rod, 1.5)
        c0 = max(math.floor(xa) - col0, 0)
        c1 = min(math.ceil(xb) + 1 - col0, w)
        r0 = max(math.floor(ya) - row0, 0)
        r1 = min(math.ceil(yb) + 1 - row0, h)
        # quick reject: distance to the segment beyond the largest radius + 1.5 px
        reach = max(rod[R0], rod[R1]) * (1.0 + max(rod[THREAD_DEPTH], 0.0)) + 1.5
        ax = rod[X1] - rod[X0]
        ay = rod[Y1] - rod[Y0]
        l2 = ax * ax + ay * ay
        for r in range(r0, r1):
            py0 = r + row0
            for c in range(c0, c1):
                px0 = c + col0
                dx = px0 - rod[X0]
                dy = py0 - rod[Y0]
                t = 0.0
                if l2 > 1e-9:
                    t = min(max((dx * ax + dy * ay) / l2, 0.0), 1.0)
                ex = dx - t * ax
                ey = dy - t * ay
                if ex * ex + ey * ey > reach * reach:
                    continue
                acc = 0.0
                for sy in range(ss):
                    py = py0 + (sy + 0.5) / ss - 0.5
                    for sx in range(ss):
                        acc += math.exp(-rod_value(px0 + (sx + 0.5) / ss - 0.5, py, rod))
                trans[r, c] *= acc * inv
