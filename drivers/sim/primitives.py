"""Solids described in patient millimetres, projected to the rows the raster kernels take.

Two kinds of rod:

- ``solid``: an anatomical solid with a lateral half-width ``r`` (mm) and a depth half-width
  ``rz`` (mm, along the AP beam); its central chord is ``2 rz``. For a rod whose axis runs
  craniocaudally (a vertebral body, a spinous process) the oblique view sees the elliptic
  cross-section rotated: half-width ``sqrt((r cos θ)^2 + (rz sin θ)^2)`` and central chord
  ``2 r rz / half-width`` (exact for elliptic cylinders). Other rods keep their widths; only
  their end points move (the documented approximation of the oblique view).
- ``cylinder``: a physical round cylinder (metal, the needle) of radius ``r``; tilted by
  ``beta`` to the beam its central chord is ``2 r / sin(beta)``, capped at its length.
"""

from __future__ import annotations

import math

import numpy as np

from drivers.sim import _raster as raster
from drivers.sim.geometry import Geometry

Point = tuple[float, float, float]


class Primitives:
    """Collects rods and blobs for one buffer; ``margin=True`` for the breathing-margin buffer."""

    def __init__(self, geometry: Geometry, *, margin: bool = True) -> None:
        self.geometry = geometry
        self.margin = margin
        self._rods: list[list[float]] = []
        self._blobs: list[list[float]] = []

    def _project(self, p: Point) -> tuple[float, float]:
        return self.geometry.project(p, margin=self.margin)

    def solid(
        self,
        p0: Point,
        p1: Point,
        r0: float,
        r1: float | None = None,
        *,
        rz: float,
        mu: float,
        expo: float = 0.5,
        round_ends: bool = True,
        waist: float = 0.0,
    ) -> None:
        """An anatomical rod (see the module docstring); sizes in mm, ``mu`` per mm."""
        r1 = r0 if r1 is None else r1
        k = self.geometry.px_per_mm
        c, s = self.geometry.cos_sin
        d = np.subtract(p1, p0)
        vertical = abs(d[1]) >= abs(d[0]) and abs(d[1]) >= abs(d[2])
        chord = 2.0 * rz
        if vertical and s != 0.0:
            e0 = math.hypot(r0 * c, rz * s)
            e1 = math.hypot(r1 * c, rz * s)
            chord = 2.0 * r0 * rz / e0
            waist = waist * e0 / r0
            r0, r1 = e0, e1
        x0, y0 = self._project(p0)
        x1, y1 = self._project(p1)
        self._rods.append(
            [
                x0,
                y0,
                x1,
                y1,
                r0 * k,
                r1 * k,
                waist * k,
                chord,
                expo,
                mu,
                1.0 if round_ends else 0.0,
                1e9,
                1.0,
                0.0,
            ]
        )

    def cylinder(
        self,
        p0: Point,
        p1: Point,
        r: float,
        *,
        mu: float,
        r1: float | None = None,
        thread_pitch_mm: float = 0.0,
        thread_depth: float = 0.0,
    ) -> None:
        """A physical cylinder from ``p0`` to ``p1`` (mm), radius ``r`` (to ``r1``) mm."""
        r1 = r if r1 is None else r1
        axis = np.subtract(p1, p0).astype(float)
        length = float(np.linalg.norm(axis))
        unit = axis / max(length, 1e-9)
        cos_beta = abs(float(unit @ self.geometry.beam_dir()))
        sin_beta = math.sqrt(max(1.0 - cos_beta * cos_beta, 0.0))
        chord = 2.0 * max(r, r1) / max(sin_beta, 1e-3)
        k = self.geometry.px_per_mm
        x0, y0 = self._project(p0)
        x1, y1 = self._project(p1)
        pitch_t = thread_pitch_mm / length if thread_pitch_mm > 0 else 1.0
        self._rods.append(
            [
                x0,
                y0,
                x1,
                y1,
                r * k,
                r1 * k,
                0.0,
                chord,
                0.5,
                mu,
                cos_beta,
                max(length, 2.0 * r),
                pitch_t,
                thread_depth,
            ]
        )

    def blob(
        self,
        centre: Point,
        ax: float,
        ay: float,
        *,
        angle_deg: float = 0.0,
        chord: float,
        mu: float,
        expo: float = 0.5,
    ) -> None:
        """A rotated ellipse of semi-axes (ax, ay) mm in the image plane with central chord
        ``chord`` mm; oblique view: centre moves, shape stays (approximation)."""
        k = self.geometry.px_per_mm
        x, y = self._project(centre)
        self._blobs.append([x, y, ax * k, ay * k, math.radians(angle_deg), chord, expo, mu])

    def rods(self) -> np.ndarray:
        if not self._rods:
            return np.zeros((0, raster.ROD_FIELDS))
        return np.ascontiguousarray(self._rods, dtype=np.float64)

    def blobs(self) -> np.ndarray:
        if not self._blobs:
            return np.zeros((0, raster.BLOB_FIELDS))
        return np.ascontiguousarray(self._blobs, dtype=np.float64)
