"""Geometry of the validation family: patient coordinates, the C-arm's projection onto the
detector, and the collimated field.

Patient coordinates, mm, right-handed: ``x`` toward the patient's left, ``y`` caudal (toward
the feet), ``z`` posterior (toward the back). The patient lies prone on the table.

The C-arm: a point source and a flat detector ``sid_mm`` apart; the isocentre (a patient
point, ``isocentre_mm``) lies on the central ray ``sod_mm`` from the source. ``gantry_deg``
turns the beam about the patient's long axis: 0° is a PA beam (source under the table, beam
along +z, seen as an AP image), ±90° lateral (beam along ±x), in between oblique. The beam is
cone-shaped: a point at depth ``δ`` beyond the isocentre (along the beam) is magnified
``M = sid / (sod + δ)``. ``roll_deg`` turns the detector about the central ray.

Detector pixels follow ``fluoro.frame``: ``(x, y) = (column, row)``, pixel centres at
integers, origin at the top-left pixel's centre; the central ray meets the detector at the
image centre ``((W-1)/2, (H-1)/2)``. Pixel spacing is at the detector plane (square pixels).
Canvases may carry a margin of ``pad_px`` on every side (used for the parts of the scene that
move rigidly with breathing): canvas pixel = image pixel + pad.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np

Vector = tuple[float, float, float]


def unit(v: np.ndarray) -> np.ndarray:
    n = float(np.linalg.norm(v))
    return v / n if n > 0 else v


def rotation(axis: np.ndarray | Vector, angle_deg: float) -> np.ndarray:
    """3×3 rotation by ``angle_deg`` about ``axis`` (Rodrigues), acting on column vectors."""
    k = unit(np.asarray(axis, float))
    a = math.radians(angle_deg)
    kx = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + math.sin(a) * kx + (1 - math.cos(a)) * (kx @ kx)


def frame_along(axis: np.ndarray | Vector, hint: np.ndarray | Vector = (1.0, 0.0, 0.0),
                ) -> np.ndarray:
    """Orthonormal local axes as rows (x, y, z) whose z is ``axis`` and whose x is as close to
    ``hint`` as possible."""
    z = unit(np.asarray(axis, float))
    h = np.asarray(hint, float)
    x = h - (h @ z) * z
    if np.linalg.norm(x) < 1e-6:
        h = np.array([0.0, 1.0, 0.0]) if abs(z[1]) < 0.9 else np.array([1.0, 0.0, 0.0])
        x = h - (h @ z) * z
    x = unit(x)
    return np.stack([x, np.cross(z, x), z])


@dataclass(frozen=True, slots=True)
class Projection:
    """The C-arm geometry of one stream; see the module docstring for the conventions."""

    size_px: int
    spacing_mm: float
    sid_mm: float
    sod_mm: float
    gantry_deg: float
    roll_deg: float
    isocentre_mm: Vector

    @property
    def beam(self) -> np.ndarray:
        """Unit beam direction (source -> detector), patient coordinates."""
        g = math.radians(self.gantry_deg)
        return np.array([math.sin(g), 0.0, math.cos(g)])

    @property
    def basis(self) -> tuple[np.ndarray, np.ndarray]:
        """Unit patient vectors along the image's +x and +y before the detector roll."""
        g = math.radians(self.gantry_deg)
        return np.array([math.cos(g), 0.0, -math.sin(g)]), np.array([0.0, 1.0, 0.0])

    @property
    def magnification_iso(self) -> float:
        return self.sid_mm / self.sod_mm

    @property
    def centre_px(self) -> float:
        return (self.size_px - 1) / 2.0

    def magnification(self, depth_mm: float | np.ndarray) -> float | np.ndarray:
        """Magnification of a point ``depth_mm`` beyond the isocentre along the beam."""
        return self.sid_mm / (self.sod_mm + depth_mm)

    def depth(self, points_mm: np.ndarray) -> np.ndarray:
        """Depth beyond the isocentre along the beam, mm, of patient points (..., 3)."""
        return (np.asarray(points_mm, float) - np.asarray(self.isocentre_mm)) @ self.beam

    def project(self, points_mm: np.ndarray) -> np.ndarray:
        """Image pixel positions (..., 2) as (x, y) of patient points (..., 3)."""
        q = np.asarray(points_mm, float) - np.asarray(self.isocentre_mm)
        e_u, e_v = self.basis
        m = self.magnification(q @ self.beam)
        xd, yd = m * (q @ e_u), m * (q @ e_v)
        r = math.radians(self.roll_deg)
        xr = math.cos(r) * xd - math.sin(r) * yd
        yr = math.sin(r) * xd + math.cos(r) * yd
        c = self.centre_px
        return np.stack([c + xr / self.spacing_mm, c + yr / self.spacing_mm], axis=-1)

    def image_direction(self, vector_mm: np.ndarray) -> np.ndarray:
        """The (x, y) image direction (not normalised, px per mm at the isocentre) of a patient
        direction, ignoring the cone (for choosing directions)."""
        e_u, e_v = self.basis
        u, v = float(vector_mm @ e_u), float(vector_mm @ e_v)
        r = math.radians(self.roll_deg)
        return np.array([math.cos(r) * u - math.sin(r) * v, math.sin(r) * u + math.cos(r) * v])

    def patient_direction(self, image_dir: np.ndarray) -> np.ndarray:
        """The unit patient vector in the detector plane that images along ``image_dir``."""
        r = math.radians(self.roll_deg)
        x, y = float(image_dir[0]), float(image_dir[1])
        u = math.cos(r) * x + math.sin(r) * y
        v = -math.sin(r) * x + math.cos(r) * y
        e_u, e_v = self.basis
        return unit(u * e_u + v * e_v)

    def unproject(self, point_px: tuple[float, float], depth_mm: float) -> np.ndarray:
        """The patient point at ``depth_mm`` beyond the isocentre (along the beam) that
        projects onto image pixel ``point_px`` (x, y)."""
        c = self.centre_px
        xr, yr = (point_px[0] - c) * self.spacing_mm, (point_px[1] - c) * self.spacing_mm
        r = math.radians(self.roll_deg)
        xd = math.cos(r) * xr + math.sin(r) * yr
        yd = -math.sin(r) * xr + math.cos(r) * yr
        m = float(self.magnification(depth_mm))
        e_u, e_v = self.basis
        return (np.asarray(self.isocentre_mm) + (xd / m) * e_u + (yd / m) * e_v
                + depth_mm * self.beam)

    def pixel_to_plane(self, magnification: float, pad_px: int = 0) -> np.ndarray:
        """2×3 affine ``[[a, b, c], [d, e, f]]`` from canvas pixel ``(col, row, 1)`` to the
        iso-plane coordinates ``(u, v)`` mm of the ray through it, for an object magnified
        ``magnification`` (the paraxial approximation the solid renderer uses)."""
        s = self.spacing_mm / magnification
        c = self.centre_px + pad_px
        r = math.radians(self.roll_deg)
        cr, sr = math.cos(r), math.sin(r)
        # (xd, yd) = s * (col - c, row - c); (u, v) = R(-roll) (xd, yd)
        return np.array([[cr * s, sr * s, -(cr + sr) * s * c],
                         [-sr * s, cr * s, -(cr - sr) * s * c]])


@dataclass(frozen=True, slots=True)
class Blade:
    """One straight collimator blade edge: the field is where ``nx*x + ny*y <= offset_px``."""

    nx: float
    ny: float
    offset_px: float


@dataclass(frozen=True, slots=True)
class Field:
    """The collimated field on the image, px: the inside of an iris circle (when
    ``radius_px`` is set) and of every blade, within the image. ``penumbra_px`` is the
    Gaussian sigma of the edges, ``leakage`` the primary transmission outside."""

    size_px: int
    centre_px: tuple[float, float] | None = None
    radius_px: float | None = None
    blades: tuple[Blade, ...] = ()
    penumbra_px: float = 1.5
    leakage: float = 0.02

    def signed_distance(self, x: np.ndarray | float, y: np.ndarray | float) -> np.ndarray:
        """Distance to the nearest field edge, px: positive inside, negative outside (exact
        inside a convex field, a lower bound outside). The image border is an edge too."""
        x = np.asarray(x, float)
        y = np.asarray(y, float)
        last = self.size_px - 0.5
        border = np.minimum(np.minimum(x + 0.5, last - x), np.minimum(y + 0.5, last - y))
        return np.minimum(border, self.collimator_distance(x, y))

    def collimator_distance(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Like ``signed_distance`` without the image border: the collimator alone."""
        d = np.full(np.broadcast(x, y).shape, np.inf)
        if self.radius_px is not None and self.centre_px is not None:
            cx, cy = self.centre_px
            d = np.minimum(d, self.radius_px - np.hypot(x - cx, y - cy))
        for b in self.blades:
            d = np.minimum(d, b.offset_px - (b.nx * x + b.ny * y))
        return d

    def transmission(self) -> np.ndarray:
        """Primary transmission of the collimator per pixel (1 inside, ``leakage`` outside,
        with an error-function penumbra), float32 H×W."""
        from math import erf

        n = self.size_px
        coords = np.arange(n, dtype=np.float64)
        d = self.collimator_distance(coords[None, :], coords[:, None])
        if not np.isfinite(d).any():
            return np.ones((n, n), np.float32)
        d = np.clip(np.nan_to_num(d, posinf=1e3), -1e3, 1e3)
        sigma = max(self.penumbra_px, 1e-3)
        verf = np.vectorize(erf, otypes=[float])
        # erf over a small table, interpolated (np.vectorize over a frame is slow)
        table_x = np.linspace(-8 * sigma, 8 * sigma, 257)
        table = 0.5 * (1 + verf(table_x / (sigma * math.sqrt(2))))
        inside = np.interp(d, table_x, table)
        return (self.leakage + (1 - self.leakage) * inside).astype(np.float32)

    def area_px(self) -> float:
        """Area of the field, px² (counted on the pixel grid)."""
        n = self.size_px
        coords = np.arange(n, dtype=np.float64)
        return float((self.signed_distance(coords[None, :], coords[:, None]) > 0).sum())

    def exit_point(self, points_px: np.ndarray) -> tuple[float, float] | None:
        """Walking the polyline ``points_px`` (N×2, (x, y)) from its first point, where it
        first leaves the field (found to 0.01 px); None if it never does. The first point must
        be inside."""
        pts = np.asarray(points_px, float)
        inside = self.signed_distance(pts[:, 0], pts[:, 1]) > 0
        if not inside[0]:
            return None
        out = np.flatnonzero(~inside)
        if out.size == 0:
            return None
        j = int(out[0])
        a, b = pts[j - 1], pts[j]
        lo, hi = 0.0, 1.0
        for _ in range(30):
            mid = 0.5 * (lo + hi)
            p = a + mid * (b - a)
            if self.signed_distance(p[0], p[1]) > 0:
                lo = mid
            else:
                hi = mid
        p = a + lo * (b - a)
        return (float(p[0]), float(p[1]))


def densify(points_px: np.ndarray, step_px: float = 1.0) -> np.ndarray:
    """The polyline with extra points so that no piece is longer than ``step_px``."""
    pts = np.asarray(points_px, float)
    out = [pts[:1]]
    for a, b in itertools.pairwise(pts):
        n = max(1, math.ceil(float(np.hypot(*(b - a))) / step_px))
        t = np.arange(1, n + 1)[:, None] / n
        out.append(a + t * (b - a))
    return np.concatenate(out)


def polyline_length(points_px: np.ndarray) -> float:
    pts = np.asarray(points_px, float)
    return float(np.hypot(*np.diff(pts, axis=0).T).sum()) if len(pts) > 1 else 0.0
