"""A needle scene drawn by code of its own (not the simulator in ``drivers/sim``): a smooth
bright background, a 22 G steel needle with its ferrule, titanium rods and screw heads, detector
blur and Gaussian noise. The needle tests and the ``fluoro track`` tests use it, so tracking is
checked on frames its own simulator did not draw.

Coordinates: (x, y) = (column, row) px, pixel centres at integers, origin top-left.
"""

import itertools
import math

import cv2
import numpy as np


def _segment_distance(xs, ys, a, b):
    """Distance of points to segment a-b (px) and the clipped position along it (0..1)."""
    ax, ay = a
    dx, dy = b[0] - ax, b[1] - ay
    length2 = dx * dx + dy * dy
    u = ((xs - ax) * dx + (ys - ay) * dy) / length2
    inside = (u >= 0.0) & (u <= 1.0)
    d = np.abs(-(xs - ax) * dy + (ys - ay) * dx) / math.sqrt(length2)
    return np.where(inside, d, np.inf)


def _rod(xs, ys, a, b, radius, line_integral):
    """Attenuation (line integral) of a solid cylinder seen side-on, flat ends."""
    d = _segment_distance(xs, ys, a, b)
    chord = np.sqrt(np.clip(1.0 - (d / radius) ** 2, 0.0, None))
    return line_integral * np.where(d < radius, chord, 0.0)


def _shaft(hub, tip, sag_px, pieces=16):
    """The shaft as chords (a, b) of a parabolic arc ``sag_px`` off the chord at mid-length
    (one straight piece without a sag)."""
    if not sag_px:
        return [(hub, tip)]
    ux, uy = tip[0] - hub[0], tip[1] - hub[1]
    n = math.hypot(ux, uy)
    nx, ny = uy / n, -ux / n  # left of hub -> tip
    pts = []
    for i in range(pieces + 1):
        t = i / pieces
        off = 4.0 * sag_px * t * (1.0 - t)
        pts.append((hub[0] + t * ux + off * nx, hub[1] + t * uy + off * ny))
    return list(itertools.pairwise(pts))


def render(shape=(512, 512), tip=(300.3, 200.7), hub=(120.2, 390.5), rods=(), discs=(),
           noise=0.03, seed=0, needle=True, background=2000.0, inner_px=0.0, sag_px=0.0):
    """A float32 frame: bright soft-tissue background with a gentle gradient, a 22 G needle
    (4.6 px, 0.34 central transmission) from ``hub`` to ``tip`` with its ferrule behind the
    hub, optional rods ``(a, b, radius)`` and discs ``(centre, radius)`` of titanium, detector
    blur and Gaussian noise (relative sd ``noise``). ``inner_px``: the shaft goes on this far
    behind the hub, inside the (invisible, plastic) hub, through and beyond the ferrule;
    ``sag_px``: the shaft is bent into an arc that far from the hub-tip chord at mid-length
    (to the left of hub -> tip)."""
    rows, cols = shape
    ss = 3
    off = (np.arange(ss) + 0.5) / ss - 0.5
    yy, xx = np.mgrid[0:rows, 0:cols].astype(np.float64)
    total = np.zeros(shape)
    for oy in off:
        for ox in off:
            xs, ys = xx + ox, yy + oy
            att = np.zeros(shape)
            if needle:
                ux, uy = tip[0] - hub[0], tip[1] - hub[1]
                n = math.hypot(ux, uy)
                for a, b in _shaft(hub, tip, sag_px):
                    att += _rod(xs, ys, a, b, 2.3, 1.08)
                back = (hub[0] - 28.0 * ux / n, hub[1] - 28.0 * uy / n)
                att += _rod(xs, ys, back, hub, 5.8, 2.7)
                if inner_px:
                    luer = (hub[0] - inner_px * ux / n, hub[1] - inner_px * uy / n)
                    att += _rod(xs, ys, luer, hub, 2.3, 1.08)
            for a, b, radius in rods:
                att += _rod(xs, ys, a, b, radius, 0.6 * 2 * radius * 0.25 / 1.6 * 1.6)
            for (cx, cy), radius in discs:
                r = np.hypot(xs - cx, ys - cy)
                att += np.where(r < radius, 2.5 * np.sqrt(np.clip(1 - (r / radius) ** 2, 0, 1)),
                                0.0)
            total += np.exp(-att)
    trans = total / ss**2
    level = background * (1.0 + 0.2 * (xx / cols) - 0.1 * (yy / rows))
    image = level * trans + 0.03 * background  # a little scatter
    image = cv2.GaussianBlur(image.astype(np.float32), (0, 0), 0.8)
    rng = np.random.default_rng(seed)
    image += rng.normal(0.0, noise * background, shape).astype(np.float32)
    return image.astype(np.float32)
