"""A lumbar spine phantom (L2–S2, prone patient) as attenuation line integrals.

Everything here is built once per source. Attenuation coefficients are effective values for
a ~50 keV post-patient spectrum (70–95 kVp, 0.1 mm Cu, ~23 cm of tissue): kVp changes the
technique and dose, not the contrast (not modelled). Bone is added as its excess over the soft
tissue it displaces.

Output buffers (float32, ``size + 2 * margin_rows`` rows × ``size`` columns):
``soft`` (body outline, psoas, soft-tissue texture), ``excess`` (cortical bone, dense
posterior elements, bowel gas) and ``trabecular`` (cancellous bone, which gets a vertically
striated texture). Their sum is the line integral ``L``; ``soft_only`` marks pixels that see
soft tissue only (the ABC's "average soft tissue" reference).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from drivers.sim import _raster as raster
from drivers.sim.geometry import Geometry
from drivers.sim.primitives import Point, Primitives

MU_SOFT_PER_MM = 0.020
MU_CORTICAL_PER_MM = 0.085
MU_TRABECULAR_PER_MM = 0.030
MU_MUSCLE_EXCESS_PER_MM = 0.004  # psoas over retroperitoneal fat
CORTEX = MU_CORTICAL_PER_MM - MU_SOFT_PER_MM
TRABECULAR = MU_TRABECULAR_PER_MM - MU_SOFT_PER_MM

BODY_HALF_WIDTH_MM = 170.0  # abdomen, superellipse |x/a|^3 + |z/b|^3 <= 1
BODY_HALF_DEPTH_MM = 115.0
BODY_CENTRE_Z_MM = -20.0  # vertebral bodies at z = 0, the back's skin at about z = +93
BODY_EXPONENT = 3.0


@dataclass(frozen=True, slots=True)
class Level:
    """One lumbar vertebra: body top/bottom y, body half-width/half-depth, pedicle centre x,
    pedicle half-width and height, transverse-process tip x (all mm)."""

    name: str
    top_mm: float
    bottom_mm: float
    half_width_mm: float
    half_depth_mm: float
    pedicle_x_mm: float
    pedicle_half_width_mm: float
    pedicle_height_mm: float
    tp_tip_x_mm: float

    @property
    def pedicle_y_mm(self) -> float:
        return self.top_mm + 0.36 * (self.bottom_mm - self.top_mm)


LEVELS: tuple[Level, ...] = (
    Level("L2", -107.0, -80.0, 23.0, 16.0, 15.5, 3.8, 15.0, 42.0),
    Level("L3", -70.0, -43.0, 23.5, 16.5, 16.5, 4.2, 15.0, 48.0),
    Level("L4", -33.0, -5.0, 24.5, 17.0, 17.5, 4.6, 14.5, 43.0),
    Level("L5", 5.0, 33.0, 26.0, 17.5, 20.5, 5.5, 13.5, 37.0),
)
S1_TOP_MM = 41.0


def level(name: str) -> Level:
    for lv in LEVELS:
        if lv.name == name:
            return lv
    raise KeyError(name)


def skin_z_mm(x_mm: float) -> float:
    """z of the back's skin above lateral position ``x_mm`` (the needle's entry)."""
    u = min(abs(x_mm) / BODY_HALF_WIDTH_MM, 0.999)
    return BODY_CENTRE_Z_MM + BODY_HALF_DEPTH_MM * (1.0 - u**BODY_EXPONENT) ** (1.0 / BODY_EXPONENT)


class _Bones:
    """Bone with a cortical shell: outer solid (cortex), inner solid (cancellous)."""

    def __init__(self, excess: Primitives, trabecular: Primitives) -> None:
        self.excess = excess
        self.trabecular = trabecular

    def bone(
        self,
        p0: Point,
        p1: Point,
        r0: float,
        r1: float | None = None,
        *,
        rz: float,
        shell: float,
        expo: float = 0.5,
        round_ends: bool = True,
        waist: float = 0.0,
        endplate: float = 0.0,
        density: float = 1.0,
    ) -> None:
        r1 = r0 if r1 is None else r1
        self.excess.solid(
            p0,
            p1,
            r0,
            r1,
            rz=rz,
            mu=CORTEX * density,
            expo=expo,
            round_ends=round_ends,
            waist=waist,
        )
        a = np.asarray(p0, float)
        b = np.asarray(p1, float)
        axis = (b - a) / max(float(np.linalg.norm(b - a)), 1e-9)
        inset = endplate if not round_ends else 0.0
        q0 = tuple(a + axis * inset)
        q1 = tuple(b - axis * inset)
        inner = dict(rz=rz - shell, expo=expo, round_ends=round_ends, waist=waist)
        self.excess.solid(q0, q1, r0 - shell, r1 - shell, mu=-CORTEX * density, **inner)
        self.trabecular.solid(q0, q1, r0 - shell, r1 - shell, mu=TRABECULAR * density, **inner)


def _endplate(b: _Bones, lv: Level, y_mm: float, dx: float, tilt_deg: float) -> None:
    """A (slightly tilted) endplate: a flattened elliptic plate whose rim (the ring apophysis)
    projects as a double contour; tangential to the beam it is one dense line."""
    tilt = math.radians(tilt_deg)
    half_height = max(lv.half_depth_mm * math.sin(tilt), 0.6)
    path = min(2.0 * lv.half_depth_mm, 0.9 / max(math.sin(tilt), 0.05))
    ax = 0.97 * lv.half_width_mm
    c = (dx, y_mm, 0.0)
    b.excess.blob(c, ax, half_height + 0.5, chord=path, mu=0.5 * CORTEX, expo=0.3)
    b.excess.blob(c, ax, half_height + 0.6, chord=7.0, mu=CORTEX, expo=0.5)
    b.excess.blob(c, ax - 1.2, max(half_height - 0.6, 0.2), chord=7.0, mu=-CORTEX, expo=0.5)


def _vertebra(b: _Bones, lv: Level, dx: float, tilts_deg: tuple[float, float]) -> None:
    h = lv.bottom_mm - lv.top_mm
    yp = lv.pedicle_y_mm
    b.bone(
        (dx, lv.top_mm, 0.0),
        (dx, lv.bottom_mm, 0.0),
        lv.half_width_mm,
        rz=lv.half_depth_mm,
        shell=1.0,
        round_ends=False,
        waist=0.09 * lv.half_width_mm,
        endplate=0.0,
    )
    _endplate(b, lv, lv.top_mm + 0.7, dx, tilts_deg[0])
    _endplate(b, lv, lv.bottom_mm - 0.7, dx, tilts_deg[1])
    for side in (-1.0, 1.0):
        xp = dx + side * lv.pedicle_x_mm
        pw = lv.pedicle_half_width_mm
        half_seg = max(lv.pedicle_height_mm / 2.0 - pw, 0.5)
        b.bone(
            (xp, yp - half_seg, 24.0), (xp, yp + half_seg, 24.0), pw, rz=7.5, shell=1.2, expo=0.15
        )
        stubby = lv.name == "L5"
        b.bone(
            (xp, yp + 1.0, 26.0),
            (dx + side * lv.tp_tip_x_mm, yp - (4.0 if stubby else 1.5), 28.0),
            5.5 if stubby else 3.8,
            4.0 if stubby else 2.4,
            rz=4.0,
            shell=0.7,
        )
        b.excess.solid(
            (xp - side * 1.0, yp + 4.0, 34.0),
            (dx + side * 4.0, lv.bottom_mm + 2.0, 42.0),
            6.5,
            5.0,
            rz=3.5,
            mu=0.35 * CORTEX,
            expo=0.3,
        )
        b.bone(
            (xp + side * 2.5, yp - 2.0, 30.0),
            (xp + side * 3.2, lv.top_mm - 6.0, 33.0),
            3.6,
            2.8,
            rz=4.0,
            shell=0.7,
            density=0.6,
        )
        b.bone(
            (xp - side * 3.0, lv.bottom_mm - 6.0, 36.0),
            (xp - side * 3.4, lv.bottom_mm + 7.0, 38.0),
            3.4,
            2.6,
            rz=4.0,
            shell=0.7,
            density=0.6,
        )
    b.bone(
        (dx, yp + 5.0, 50.0),
        (dx, lv.bottom_mm + 0.22 * h, 52.0),
        4.6,
        2.8,
        rz=9.0,
        shell=1.1,
        expo=0.35,
    )


def _sacrum_and_pelvis(b: _Bones) -> None:
    s1 = Level("S1", S1_TOP_MM, 64.0, 25.0, 15.0, 0.0, 0.0, 0.0, 0.0)
    b.bone(
        (0.0, S1_TOP_MM, -2.0), (0.0, 64.0, 4.0), 25.0, 21.0, rz=15.0, shell=1.0, round_ends=False
    )
    _endplate(b, s1, S1_TOP_MM + 0.7, 0.0, 14.0)  # lordosis: the S1 plate is seen obliquely
    b.bone((0.0, 66.0, 10.0), (0.0, 92.0, 16.0), 20.0, 15.0, rz=12.0, shell=1.0, round_ends=False)
    b.excess.solid((0.0, 48.0, 45.0), (0.0, 100.0, 40.0), 3.5, rz=6.0, mu=0.45 * CORTEX)
    for side in (-1.0, 1.0):
        # sacral ala: wings from the S1 body to the sacro-iliac joints
        c = (side * 36.0, 57.0, 6.0)
        b.excess.blob(c, 24.0, 14.0, angle_deg=-side * 12.0, chord=22.0, mu=0.3 * CORTEX)
        b.excess.blob(c, 23.0, 13.0, angle_deg=-side * 12.0, chord=22.0, mu=-0.3 * CORTEX)
        b.trabecular.blob(c, 23.0, 13.0, angle_deg=-side * 12.0, chord=22.0, mu=0.8 * TRABECULAR)
        # ilium seen en face: a thin plate with a cortical crest and the SI-joint margin
        c = (side * 102.0, 88.0, 5.0)
        a = side * 20.0
        b.excess.blob(c, 52.0, 76.0, angle_deg=a, chord=10.0, mu=0.45 * CORTEX, expo=0.35)
        b.excess.blob(c, 50.8, 74.8, angle_deg=a, chord=10.0, mu=-0.45 * CORTEX, expo=0.35)
        b.trabecular.blob(c, 50.8, 74.8, angle_deg=a, chord=12.0, mu=TRABECULAR, expo=0.35)
        for cx, cy, r in ((23.0, 63.0, 5.0), (21.0, 86.0, 4.2)):  # S1, S2 foramina
            c = (side * cx, cy, 10.0)
            b.excess.blob(c, r + 1.0, r + 0.8, chord=6.0, mu=CORTEX * 0.5, expo=0.5)
            b.excess.blob(c, r, r * 0.9, chord=6.0, mu=-CORTEX * 0.5, expo=0.5)
            b.trabecular.blob(c, r, r * 0.9, chord=22.0, mu=-TRABECULAR, expo=0.3)


def _gas(p: Primitives, rng: np.random.Generator) -> None:
    """Bowel gas: a few large loops and clusters of small bubbles in stool (negative excess)."""
    for _ in range(7):
        ax, ay = rng.uniform(10.0, 26.0), rng.uniform(6.0, 15.0)
        c = (rng.uniform(-85.0, 85.0), rng.uniform(-95.0, 70.0), -60.0)
        p.blob(
            c,
            ax,
            ay,
            angle_deg=rng.uniform(0, 180),
            chord=rng.uniform(0.5, 1.0) * min(ax, ay),
            mu=-0.9 * MU_SOFT_PER_MM,
        )
    for _ in range(4):
        cx, cy = rng.uniform(-80.0, 80.0), rng.uniform(-90.0, 60.0)
        for _ in range(15):
            r = rng.uniform(1.2, 3.5)
            c = (cx + rng.normal(0, 7.0), cy + rng.normal(0, 7.0), -60.0)
            p.blob(
                c,
                r,
                r * rng.uniform(0.7, 1.0),
                angle_deg=rng.uniform(0, 180),
                chord=1.8 * r,
                mu=-0.9 * MU_SOFT_PER_MM,
            )


def _body_outline(geometry: Geometry) -> np.ndarray:
    """Soft-tissue line integral per detector column through the superellipse abdomen."""
    c, s = geometry.cos_sin
    cols = np.arange(geometry.size)
    lateral = (cols - geometry.centre_px) / geometry.px_per_mm  # mm at the isocentre
    t = np.arange(-400.0, 400.0, 0.25)
    # ray points: lateral * (cos, sin) + t * (-sin, cos) in (x, z)
    x = lateral[:, None] * c - t[None, :] * s
    z = lateral[:, None] * s + t[None, :] * c - BODY_CENTRE_Z_MM
    inside = (
        np.abs(x / BODY_HALF_WIDTH_MM) ** BODY_EXPONENT
        + np.abs(z / BODY_HALF_DEPTH_MM) ** BODY_EXPONENT
    ) <= 1.0
    return (inside.sum(axis=1) * 0.25 * MU_SOFT_PER_MM).astype(np.float32)


def _texture(shape: tuple[int, int], sigma_px: tuple[float, float], rng: np.random.Generator):
    noise = rng.standard_normal(shape).astype(np.float32)
    sx, sy = sigma_px
    out = cv2.GaussianBlur(noise, (0, 0), sigmaX=max(sx, 0.3), sigmaY=max(sy, 0.3))
    return out / max(float(out.std()), 1e-6)


@dataclass(frozen=True, slots=True)
class AnatomyMaps:
    line_integral: np.ndarray  # float32 (size + 2 margin) × size
    soft_only: np.ndarray  # bool, same shape


def render_anatomy(geometry: Geometry, seed: int) -> AnatomyMaps:
    """Render the phantom for ``geometry`` (deterministic in ``seed``)."""
    rng = np.random.default_rng([seed, 7001])
    shape = (geometry.size + 2 * geometry.margin_rows, geometry.size)
    ss = 3 if geometry.size <= 512 else 2
    excess = Primitives(geometry)
    trabecular = Primitives(geometry)
    soft = Primitives(geometry)
    bones = _Bones(excess, trabecular)
    for lv, tilts in zip(LEVELS, ((4.0, 3.0), (3.0, 2.0), (1.0, 0.5), (3.0, 8.0)), strict=True):
        _vertebra(bones, lv, float(rng.normal(0.0, 0.8)), tilts)
    _sacrum_and_pelvis(bones)
    for side in (-1.0, 1.0):
        soft.solid(
            (side * 24.0, -115.0, -8.0),
            (side * 44.0, 90.0, -18.0),
            8.0,
            19.0,
            rz=22.0,
            mu=MU_MUSCLE_EXCESS_PER_MM,
        )
    _gas(excess, rng)

    buffers = {}
    for name, prims in (("excess", excess), ("trabecular", trabecular), ("soft", soft)):
        buf = np.zeros(shape, np.float32)
        raster.add_rods(buf, prims.rods(), ss)
        raster.add_blobs(buf, prims.blobs(), ss)
        buffers[name] = buf
    mm = 1.0 / geometry.px_per_mm  # mm per pixel at the isocentre
    trab_tex = _texture(shape, (0.2 / mm, 0.45 / mm), rng)
    soft_tex = _texture(shape, (12.0 / mm, 12.0 / mm), rng)
    trab = buffers["trabecular"]
    line = (
        _body_outline(geometry)[None, :]
        + buffers["soft"]
        + 0.04 * soft_tex
        + buffers["excess"]
        + np.maximum(trab * (1.0 + 0.15 * trab_tex), 0.0)
    )
    soft_only = (np.abs(buffers["excess"]) < 1e-3) & (np.abs(trab) < 1e-3)
    return AnatomyMaps(line_integral=line.astype(np.float32), soft_only=soft_only)
