"""A 22-gauge spinal needle: its planned path to a transforaminal target, and its rendering.

Plan (``NeedlePlan``, all times in simulated seconds): the needle pivots about its skin entry
point, 35 mm lateral and 20 mm caudal of the target, on the back's skin. It is inserted to
12 mm in the pedal-off gap after the scout shot, then advanced in steps with pauses, first
aimed 8 mm too cranially so that it meets the pedicle/transverse process ("bone contact"),
withdrawn to about half depth, redirected onto the target (the change of aim is a few degrees)
and advanced to the target: the subpedicular "safe triangle" of the chosen level, where it
stays. A hand tremor of a few tenths of a millimetre (larger at the hub) is superimposed.

Rendering (``needle_patch``): steel cannula with stylet as a solid rod (0.72 mm, mu 1.5/mm:
0.34 transmission through the centre when perpendicular to the beam, less when tilted, by
``1/sin(beta)``), a polycarbonate hub (7 mm, 15 mm long) with its metal ferrule and the
stylet's cap. ``tip`` is the distal end of the needle's axis, ``hub`` the junction of shaft and
hub.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from drivers.sim import _raster as raster
from drivers.sim.anatomy import Level, skin_z_mm
from drivers.sim.geometry import Geometry
from drivers.sim.primitives import Primitives

NEEDLE_LENGTH_MM = 89.0  # 3.5" 22 G spinal needle
NEEDLE_RADIUS_MM = 0.36
MU_STEEL_PER_MM = 1.5
HUB_LENGTH_MM = 15.0
HUB_RADIUS_MM = 3.5
MU_PLASTIC_PER_MM = 0.025
INSERT_DEPTH_MM = 12.0
TREMOR_TIP_MM = 0.15
TREMOR_HUB_MM = 0.4


def target_point(lv: Level, side: float) -> np.ndarray:
    """Subpedicular target below the pedicle of ``lv`` on ``side`` (+1 = image right), mm."""
    return np.array(
        [
            side * (lv.pedicle_x_mm + 4.5),
            lv.pedicle_y_mm + lv.pedicle_height_mm / 2.0 + 3.5,
            18.0,
        ]
    )


@dataclass(frozen=True, slots=True)
class NeedleState:
    tip_mm: np.ndarray  # (x, y, z) patient mm
    hub_mm: np.ndarray  # shaft–hub junction
    direction: np.ndarray  # unit vector hub -> tip


class NeedlePlan:
    """Keyframed depth and aim of one needle pass starting at ``start_s``."""

    def __init__(
        self, start_s: float, target_mm: np.ndarray, side: float, rng: np.random.Generator
    ):
        self.start_s = start_s
        self.target = np.asarray(target_mm, float)
        x_entry = self.target[0] + side * 35.0
        self.entry = np.array([x_entry, self.target[1] + 20.0, skin_z_mm(x_entry)])
        self.wrong_aim = self.target + np.array([side * 3.0, -8.0, 0.0])
        full = float(np.linalg.norm(self.target - self.entry))
        keys: list[tuple[float, float, float]] = [(0.0, INSERT_DEPTH_MM, 0.0)]  # (t, depth, aim)
        t = 0.0

        def go(depth: float, aim: float, move: tuple[float, float], pause: tuple[float, float]):
            nonlocal t
            t += rng.uniform(*move)
            keys.append((t, depth, aim))
            t += rng.uniform(*pause)
            keys.append((t, depth, aim))

        go(INSERT_DEPTH_MM, 0.0, (0.0, 0.0), (0.5, 1.5))
        go(25.0, 0.0, (0.6, 1.2), (1.5, 3.5))
        go(40.0, 0.0, (0.6, 1.2), (1.5, 3.5))
        go(0.88 * full, 0.0, (0.8, 1.5), (2.0, 3.5))  # bone contact
        go(0.55 * full, 0.0, (0.6, 1.0), (0.3, 0.8))  # withdraw
        go(0.55 * full, 1.0, (0.8, 1.2), (0.8, 1.5))  # redirect
        go(0.80 * full, 1.0, (0.8, 1.5), (1.5, 3.0))
        go(full, 1.0, (1.0, 2.0), (0.0, 0.0))
        self._t = np.array([k[0] for k in keys]) + start_s
        self._depth = np.array([k[1] for k in keys])
        self._aim = np.array([k[2] for k in keys])
        self.end_s = float(self._t[-1])
        self._tremor_hz = rng.uniform(4.0, 9.0, size=(2, 3, 3))
        self._tremor_phase = rng.uniform(0.0, 2.0 * math.pi, size=(2, 3, 3))

    def _interp(self, t_s: float) -> tuple[float, float]:
        i = int(np.searchsorted(self._t, t_s, side="right")) - 1
        if i < 0:
            return float(self._depth[0]), float(self._aim[0])
        if i >= len(self._t) - 1:
            return float(self._depth[-1]), float(self._aim[-1])
        span = self._t[i + 1] - self._t[i]
        u = 0.0 if span <= 0 else (t_s - self._t[i]) / span
        u = u * u * (3.0 - 2.0 * u)  # ease in and out
        depth = self._depth[i] + u * (self._depth[i + 1] - self._depth[i])
        aim = self._aim[i] + u * (self._aim[i + 1] - self._aim[i])
        return float(depth), float(aim)

    def _tremor(self, t_s: float, which: int) -> np.ndarray:
        waves = np.sin(2.0 * math.pi * self._tremor_hz[which] * t_s + self._tremor_phase[which])
        return waves.sum(axis=1) / 3.0

    def state(self, t_s: float) -> NeedleState | None:
        """Where the needle is at ``t_s`` (None before it is inserted)."""
        if t_s < self.start_s:
            return None
        depth, aim = self._interp(t_s)
        aim_point = (1.0 - aim) * self.wrong_aim + aim * self.target
        direction = aim_point - self.entry
        direction /= np.linalg.norm(direction)
        tip = self.entry + depth * direction + TREMOR_TIP_MM * self._tremor(t_s, 0)
        hub = (
            self.entry
            + (depth - NEEDLE_LENGTH_MM) * direction
            + TREMOR_HUB_MM * self._tremor(t_s, 1)
        )
        d = tip - hub
        return NeedleState(tip_mm=tip, hub_mm=hub, direction=d / np.linalg.norm(d))


def needle_primitives(state: NeedleState, geometry: Geometry) -> Primitives:
    prims = Primitives(geometry, margin=False)
    tip, hub, d = state.tip_mm, state.hub_mm, state.direction
    prims.cylinder(tuple(hub), tuple(tip), NEEDLE_RADIUS_MM, mu=MU_STEEL_PER_MM)
    prims.cylinder(tuple(hub), tuple(hub - 7.0 * d), 0.9, mu=MU_STEEL_PER_MM)  # ferrule
    back = hub - HUB_LENGTH_MM * d
    prims.cylinder(
        tuple(hub), tuple(back), HUB_RADIUS_MM, r1=HUB_RADIUS_MM * 0.8, mu=MU_PLASTIC_PER_MM
    )
    prims.cylinder(tuple(back), tuple(back - 6.0 * d), 4.2, mu=MU_PLASTIC_PER_MM)  # stylet cap
    return prims


EMPTY_PATCH = np.ones((1, 1), np.float32)


def needle_patch(
    state: NeedleState, geometry: Geometry, shift_mm: float
) -> tuple[np.ndarray, int, int]:
    """Transmission patch of the needle, and its top-left (row, col) in the image.

    ``shift_mm`` is the breathing displacement (craniocaudal, mm at the isocentre) applied to
    the whole needle. Returns a 1×1 patch outside the image when nothing is visible.
    """
    shift = np.array([0.0, shift_mm, 0.0])
    moved = NeedleState(state.tip_mm + shift, state.hub_mm + shift, state.direction)
    rods = needle_primitives(moved, geometry).rods()
    reach = np.maximum(rods[:, raster.R0], rods[:, raster.R1]) + 2.0
    xs = np.concatenate(
        [
            rods[:, raster.X0] - reach,
            rods[:, raster.X1] - reach,
            rods[:, raster.X0] + reach,
            rods[:, raster.X1] + reach,
        ]
    )
    ys = np.concatenate(
        [
            rods[:, raster.Y0] - reach,
            rods[:, raster.Y1] - reach,
            rods[:, raster.Y0] + reach,
            rods[:, raster.Y1] + reach,
        ]
    )
    n = geometry.size
    c0, c1 = max(math.floor(xs.min()), 0), min(math.ceil(xs.max()) + 1, n)
    r0, r1 = max(math.floor(ys.min()), 0), min(math.ceil(ys.max()) + 1, n)
    if c1 <= c0 or r1 <= r0:
        return EMPTY_PATCH, -10, -10
    patch = np.ones((r1 - r0, c1 - c0), np.float32)
    thin = np.maximum(rods[:, raster.R0], rods[:, raster.R1]) < 4.0  # px: shaft, ferrule
    ss_thin = 6 if geometry.size <= 512 else 4
    raster.multiply_rod_transmission(patch, np.ascontiguousarray(rods[thin]), ss_thin, r0, c0)
    raster.multiply_rod_transmission(patch, np.ascontiguousarray(rods[~thin]), 2, r0, c0)
    return patch, r0, c0
