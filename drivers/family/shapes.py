"""Line integrals of attenuation through the family's shapes, added onto attenuation canvases.

Two renderers:

- ``Solid`` / ``add_solid``: a convex solid in patient coordinates — an ellipsoid, an elliptic
  cylinder or a box, optionally cut by slabs along its own axes — traced exactly along the
  beam (the ray's chord through the solid, solved per pixel). Each solid is drawn with the
  magnification of its centre (the paraxial approximation: the cone beam's spread within one
  bone or screw is ignored; between solids it is kept). Used for bones, soft tissue, screws,
  rods and cages.
- ``add_tube``: a thin round tube along a 2-D polyline already projected onto the detector,
  the chord ``2 sqrt(r² - d²)`` averaged exactly over the pixel's width across the tube, with
  round joints and optionally flat (cut) ends. Used for needles, K-wires, wires and ribs,
  whose width is a few pixels, where sampling at pixel centres would alias.

Canvas values are line integrals ``Σ μ L`` (dimensionless); ``μ`` per mm. Canvas pixel
``(col, row)`` is image pixel ``(col - pad, row - pad)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from drivers.family.geometry import Projection, frame_along

INF = math.inf


@dataclass(frozen=True, slots=True)
class Solid:
    """A convex solid: ``kind`` "ellipsoid" (|q / radii| <= 1), "cylinder" (elliptic, along the
    local z axis: (qx/rx)² + (qy/ry)² <= 1) or "box" (no quadric), cut to ``lo_mm <= q <=
    hi_mm`` per local axis. ``q`` = ``axes @ (p - centre_mm)``, ``axes`` rows are the local
    x, y, z axes in patient coordinates. ``mu_per_mm`` is its attenuation over the material it
    displaces (negative for gas or for the marrow inside a cortical shell)."""

    centre_mm: tuple[float, float, float]
    axes: tuple[tuple[float, float, float], ...]
    kind: str
    radii_mm: tuple[float, float, float]
    lo_mm: tuple[float, float, float]
    hi_mm: tuple[float, float, float]
    mu_per_mm: float

    def extent_mm(self) -> float:
        """Radius of a sphere about the centre that holds the solid."""
        box = [max(abs(a), abs(b)) for a, b in zip(self.lo_mm, self.hi_mm, strict=True)]
        if self.kind == "ellipsoid":
            lim = [min(r, b) for r, b in zip(self.radii_mm, box, strict=True)]
        elif self.kind == "cylinder":
            lim = [min(self.radii_mm[0], box[0]), min(self.radii_mm[1], box[1]), box[2]]
        else:
            lim = box
        return float(math.sqrt(sum(v * v for v in lim)))


def _axes(axes: np.ndarray) -> tuple[tuple[float, float, float], ...]:
    return tuple(tuple(float(v) for v in row) for row in np.asarray(axes, float))


def vec3(v) -> tuple[float, float, float]:
    """A 3-vector as a tuple of floats (for frozen records)."""
    a = np.asarray(v, float)
    return (float(a[0]), float(a[1]), float(a[2]))


def ellipsoid(centre, radii, axes=None, mu: float = 0.0) -> Solid:
    """An ellipsoid of semi-axes ``radii`` along ``axes`` (rows; default the patient's)."""
    axes = np.eye(3) if axes is None else axes
    return Solid(vec3(centre), _axes(axes), "ellipsoid", vec3(radii), (-INF,) * 3, (INF,) * 3,
                 mu)


def cylinder(centre, axis, radius: float | tuple[float, float], half_length: float,
             mu: float, hint=(1.0, 0.0, 0.0)) -> Solid:
    """A (possibly elliptic) cylinder along ``axis``; with two radii, the first lies along the
    local x axis (as close to ``hint`` as possible)."""
    rx, ry = (radius, radius) if np.isscalar(radius) else radius
    return Solid(vec3(centre), _axes(frame_along(axis, hint)), "cylinder",
                 (float(rx), float(ry), INF), (-INF, -INF, -half_length),
                 (INF, INF, half_length), mu)


def box(centre, half_sizes, axes=None, mu: float = 0.0) -> Solid:
    """A box of ``half_sizes`` along ``axes`` (rows; default the patient's)."""
    axes = np.eye(3) if axes is None else axes
    h = vec3(half_sizes)
    return Solid(vec3(centre), _axes(axes), "box", (INF,) * 3, (-h[0], -h[1], -h[2]), h, mu)


def cut(solid: Solid, lo=None, hi=None) -> Solid:
    """``solid`` further cut to ``lo <= q <= hi`` (local coordinates; None keeps a limit)."""
    new_lo = tuple(max(a, b) for a, b in zip(solid.lo_mm, lo or (-INF,) * 3, strict=True))
    new_hi = tuple(min(a, b) for a, b in zip(solid.hi_mm, hi or (INF,) * 3, strict=True))
    return Solid(solid.centre_mm, solid.axes, solid.kind, solid.radii_mm, new_lo, new_hi,
                 solid.mu_per_mm)


def shell(outer: Solid, thickness_mm: float, inner_mu_per_mm: float,
          cap_thickness_mm: float | None = None) -> list[Solid]:
    """A solid with a cortex: ``outer`` with its inside (``thickness_mm`` in from the curved
    surface, ``cap_thickness_mm`` in from the cuts, default the same) changed by
    ``inner_mu_per_mm - outer.mu_per_mm``."""
    t = thickness_mm
    tc = t if cap_thickness_mm is None else cap_thickness_mm
    radii = tuple(r - t for r in outer.radii_mm)
    lo = tuple(v + tc for v in outer.lo_mm)
    hi = tuple(v - tc for v in outer.hi_mm)
    inner = Solid(outer.centre_mm, outer.axes, outer.kind, radii, lo, hi,
                  inner_mu_per_mm - outer.mu_per_mm)
    return [outer, inner]


def add_solid(canvas: np.ndarray, proj: Projection, solid: Solid, pad_px: int = 0,
              supersample: int = 1) -> None:
    """Add the line integral of ``solid`` to ``canvas`` (float32, (N+2 pad)²)."""
    centre = np.asarray(solid.centre_mm)
    m = float(proj.magnification(float(proj.depth(centre))))
    cx, cy = proj.project(centre) + pad_px
    half = solid.extent_mm() * m / proj.spacing_mm + 2.0
    h, w = canvas.shape
    c0, c1 = max(0, math.floor(cx - half)), min(w, math.ceil(cx + half) + 1)
    r0, r1 = max(0, math.floor(cy - half)), min(h, math.ceil(cy + half) + 1)
    if c0 >= c1 or r0 >= r1:
        return
    axes = np.asarray(solid.axes)
    affine = proj.pixel_to_plane(m, pad_px)
    e_u, e_v = proj.basis
    iso = np.asarray(proj.isocentre_mm)
    # local point of the ray through canvas pixel (col, row): base + col*dcol + row*drow
    base = axes @ (iso - centre + affine[0, 2] * e_u + affine[1, 2] * e_v)
    dcol = axes @ (affine[0, 0] * e_u + affine[1, 0] * e_v)
    drow = axes @ (affine[0, 1] * e_u + affine[1, 1] * e_v)
    direction = axes @ proj.beam
    total = np.zeros((r1 - r0, c1 - c0), np.float64)
    offsets = (np.arange(supersample) + 0.5) / supersample - 0.5
    for oy in offsets:
        rows = np.arange(r0, r1, dtype=np.float64) + oy
        for ox in offsets:
            cols = np.arange(c0, c1, dtype=np.float64) + ox
            q = [base[k] + rows[:, None] * drow[k] + cols[None, :] * dcol[k] for k in range(3)]
            total += _chord(solid, q, direction)
    canvas[r0:r1, c0:c1] += (solid.mu_per_mm / supersample**2 * total).astype(canvas.dtype)


def _chord(solid: Solid, q: list[np.ndarray], d: np.ndarray) -> np.ndarray:
    """Length, mm, of the ray ``q + t d`` (|d| = 1) inside ``solid`` (local coordinates)."""
    t_min, t_max = _interval(solid, q, d)
    return np.maximum(t_max - t_min, 0.0)


def ray_interval(solid: Solid, point_mm, direction) -> tuple[float, float] | None:
    """Where the ray ``point + t direction`` (patient coordinates, unit direction) is inside
    ``solid``: (t_in, t_out) mm, or None if it misses."""
    axes = np.asarray(solid.axes)
    local = axes @ (np.asarray(point_mm, float) - np.asarray(solid.centre_mm))
    t_min, t_max = _interval(solid, [np.array(v) for v in local],
                             axes @ np.asarray(direction, float))
    lo, hi = float(t_min), float(t_max)
    return (lo, hi) if hi > lo else None


def _interval(solid: Solid, q: list[np.ndarray], d: np.ndarray,
              ) -> tuple[np.ndarray, np.ndarray]:
    shape = q[0].shape
    t_min = np.full(shape, -np.inf)
    t_max = np.full(shape, np.inf)
    comps = {"ellipsoid": (0, 1, 2), "cylinder": (0, 1), "box": ()}[solid.kind]
    if comps:
        r = solid.radii_mm
        a = sum((d[k] / r[k]) ** 2 for k in comps)
        b = sum(q[k] * (d[k] / r[k] ** 2) for k in comps)
        c = sum((q[k] / r[k]) ** 2 for k in comps) - 1.0
        if a < 1e-14:  # the ray runs along the cylinder's axis: inside or not at all
            t_max = np.where(c <= 0, t_max, -np.inf)
        else:
            disc = b * b - a * c
            root = np.sqrt(np.maximum(disc, 0.0))
            hit = disc > 0
            t_min = np.where(hit, (-b - root) / a, np.inf)
            t_max = np.where(hit, (-b + root) / a, -np.inf)
    for k in range(3):
        lo, hi = solid.lo_mm[k], solid.hi_mm[k]
        if lo == -INF and hi == INF:
            continue
        if abs(d[k]) > 1e-12:
            ta = (lo - q[k]) / d[k]
            tb = (hi - q[k]) / d[k]
            t_min = np.maximum(t_min, np.minimum(ta, tb))
            t_max = np.minimum(t_max, np.maximum(ta, tb))
        else:
            inside = (q[k] >= lo) & (q[k] <= hi)
            t_max = np.where(inside, t_max, -np.inf)
    return t_min, t_max


def _chord_integral(x: np.ndarray, r: float) -> np.ndarray:
    """Antiderivative of the chord ``2 sqrt(r² - x²)`` of a circle, odd in x, flat beyond r."""
    xc = np.clip(x, -r, r)
    return xc * np.sqrt(np.maximum(r * r - xc * xc, 0.0)) + r * r * np.arcsin(xc / r)


def add_tube(canvas: np.ndarray, points_px: np.ndarray, radius_px: float, mu_scale: float,
             flat_start: bool = False, flat_end: bool = False, piece_px: float = 24.0,
             ) -> None:
    """Add a round tube along the canvas polyline ``points_px`` (N×2, (x, y)) to ``canvas``.

    The value added at a pixel is ``mu_scale * chord_px``: ``chord_px`` is the tube's chord,
    in pixels, at the pixel's distance from the axis, averaged over the pixel's width across
    the tube. ``mu_scale`` = μ (per mm) × mm per pixel of chord (spacing / magnification /
    cos(elevation of the tube out of the detector plane)). Joints are round (the union of the
    pieces, never counted twice); ``flat_start`` / ``flat_end`` cut the tube square at its
    first / last point (a needle's tip), with the end's pixel partly covered.
    """
    pts = np.asarray(points_px, float)
    if len(pts) < 2 or radius_px <= 0:
        return
    r = float(radius_px)
    margin = r + 1.5
    h, w = canvas.shape
    x0 = max(0, math.floor(pts[:, 0].min() - margin))
    x1 = min(w, math.ceil(pts[:, 0].max() + margin) + 1)
    y0 = max(0, math.floor(pts[:, 1].min() - margin))
    y1 = min(h, math.ceil(pts[:, 1].max() + margin) + 1)
    if x0 >= x1 or y0 >= y1:
        return
    local = np.zeros((y1 - y0, x1 - x0), np.float32)
    n_seg = len(pts) - 1
    for i in range(n_seg):
        a, b = pts[i], pts[i + 1]
        seg = b - a
        length = float(math.hypot(*seg))
        if length < 1e-9:
            continue
        ux, uy = seg / length
        pieces = max(1, math.ceil(length / piece_px))
        for j in range(pieces):
            s0, s1 = length * j / pieces, length * (j + 1) / pieces
            p0 = a + s0 * seg / length
            p1 = a + s1 * seg / length
            bx0 = max(x0, math.floor(min(p0[0], p1[0]) - margin))
            bx1 = min(x1, math.ceil(max(p0[0], p1[0]) + margin) + 1)
            by0 = max(y0, math.floor(min(p0[1], p1[1]) - margin))
            by1 = min(y1, math.ceil(max(p0[1], p1[1]) + margin) + 1)
            if bx0 >= bx1 or by0 >= by1:
                continue
            xs = np.arange(bx0, bx1, dtype=np.float64)[None, :] - a[0]
            ys = np.arange(by0, by1, dtype=np.float64)[:, None] - a[1]
            s = xs * ux + ys * uy  # along the segment from a, px
            across = np.abs(-xs * uy + ys * ux)
            start_flat = flat_start and i == 0 and j == 0
            end_flat = flat_end and i == n_seg - 1 and j == pieces - 1
            # distance to the piece, a capsule (round ends) except at a flat end
            along = s - np.clip(s, -np.inf if start_flat else s0, np.inf if end_flat else s1)
            dist = np.hypot(across, along)
            value = _chord_integral(dist + 0.5, r) - _chord_integral(dist - 0.5, r)
            if start_flat:
                value = value * np.clip(s - s0 + 0.5, 0.0, 1.0)
            if end_flat:
                value = value * np.clip(s1 + 0.5 - s, 0.0, 1.0)
            sub = local[by0 - y0:by1 - y0, bx0 - x0:bx1 - x0]
            np.maximum(sub, value.astype(np.float32), out=sub)
    canvas[y0:y1, x0:x1] += np.float32(mu_scale) * local


def project_tube(canvas: np.ndarray, proj: Projection, points_mm: np.ndarray,
                 radius_mm: float, mu_per_mm: float, pad_px: int = 0, flat_start: bool = False,
                 flat_end: bool = False) -> np.ndarray:
    """Project the 3-D polyline ``points_mm`` and add a tube of ``radius_mm`` along it (the
    radius and chord scaled with the polyline's mean magnification and its mean elevation out
    of the detector plane). Returns the projected image points (N×2, without the pad)."""
    pts = np.asarray(points_mm, float)
    image = proj.project(pts)
    m = float(np.mean(proj.magnification(proj.depth(pts))))
    seg = np.diff(pts, axis=0)
    lengths = np.linalg.norm(seg, axis=1)
    along_beam = np.abs(seg @ proj.beam)
    cos_elev = float(np.sqrt(max(1e-4, 1 - (np.sum(along_beam) / max(lengths.sum(), 1e-9))
                                 ** 2)))
    cos_elev = max(cos_elev, 0.2)
    mm_per_px = proj.spacing_mm / m
    add_tube(canvas, image + pad_px, radius_mm / mm_per_px, mu_per_mm * mm_per_px / cos_elev,
             flat_start, flat_end)
    return image
