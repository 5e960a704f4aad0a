"""Posterior fusion hardware (scenario ``fusion-hardware``): titanium pedicle screws at L4, L5
and S1 on both sides, joined by contoured 5.5 mm rods.

In an AP view the screws run nearly along the beam (converging 15–25° medially), so they project
as short, very dark, foreshortened shapes over the pedicles with their tulip heads lateral; the
rods are long straight dark bars lateral to the spinous processes. None of this is the needle.
Rendered once as a transmission map (it moves with the patient, so it shares the anatomy's
breathing-margin buffer).
"""

from __future__ import annotations

import itertools
import math

import numpy as np

from drivers.sim import _raster as raster
from drivers.sim.anatomy import level
from drivers.sim.geometry import Geometry
from drivers.sim.primitives import Primitives

MU_TITANIUM_PER_MM = 0.6  # Ti-6Al-4V at ~50 keV effective
SCREW_RADIUS_MM = 3.25  # 6.5 mm shaft
SCREW_LENGTH_MM = 45.0
THREAD_PITCH_MM = 2.75
TULIP_RADIUS_MM = 6.0
TULIP_LENGTH_MM = 13.0
ROD_RADIUS_MM = 2.75  # 5.5 mm rod


def _screw_plan() -> list[tuple[np.ndarray, np.ndarray]]:
    """(entry point, unit direction) of each screw, mm; entry at the pedicle's back."""
    plan = []
    for name, convergence_deg, cranial_deg in (("L4", 15.0, 0.0), ("L5", 18.0, 0.0)):
        lv = level(name)
        for side in (-1.0, 1.0):
            entry = np.array([side * (lv.pedicle_x_mm + 3.0), lv.pedicle_y_mm, 34.0])
            plan.append((entry, _direction(side, convergence_deg, cranial_deg)))
    for side in (-1.0, 1.0):
        plan.append((np.array([side * 24.0, 50.0, 32.0]), _direction(side, 25.0, 12.0)))
    return plan


def _direction(side: float, convergence_deg: float, cranial_deg: float) -> np.ndarray:
    a = math.radians(convergence_deg)
    b = math.radians(cranial_deg)
    d = np.array([-side * math.sin(a), -math.sin(b), -math.cos(a) * math.cos(b)])
    return d / np.linalg.norm(d)


def hardware_primitives(geometry: Geometry) -> Primitives:
    prims = Primitives(geometry)
    heads: dict[float, list[np.ndarray]] = {-1.0: [], 1.0: []}
    for entry, direction in _screw_plan():
        tip = entry + SCREW_LENGTH_MM * direction
        prims.cylinder(
            tuple(entry),
            tuple(tip),
            SCREW_RADIUS_MM,
            r1=2.4,
            mu=MU_TITANIUM_PER_MM,
            thread_pitch_mm=THREAD_PITCH_MM,
            thread_depth=0.18,
        )
        head_end = entry - TULIP_LENGTH_MM * direction
        prims.cylinder(tuple(entry), tuple(head_end), TULIP_RADIUS_MM, mu=0.55 * MU_TITANIUM_PER_MM)
        heads[math.copysign(1.0, entry[0])].append(entry - 0.6 * TULIP_LENGTH_MM * direction)
    for points in heads.values():
        points.sort(key=lambda p: p[1])
        ends = [points[0] - np.array([0.0, 7.0, 0.0]), *points, points[-1] + [0.0, 6.0, 0.0]]
        for a, b in itertools.pairwise(ends):
            prims.cylinder(tuple(a), tuple(b), ROD_RADIUS_MM, mu=MU_TITANIUM_PER_MM)
    return prims


def render_hardware(geometry: Geometry) -> np.ndarray:
    """Transmission (0..1] of the hardware, float32, anatomy-buffer shape."""
    shape = (geometry.size + 2 * geometry.margin_rows, geometry.size)
    trans = np.ones(shape, np.float32)
    ss = 3 if geometry.size <= 512 else 2
    raster.multiply_rod_transmission(trans, hardware_primitives(geometry).rods(), ss, 0, 0)
    return trans
