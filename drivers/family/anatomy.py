"""A lumbar spine and its surroundings in 3-D, built from solids (``drivers.family.shapes``).

T11 to the sacrum: vertebral bodies (cancellous bone in a cortical shell whose caps are the
endplates), discs, pedicles (cortical rings), laminae, spinous and transverse processes,
pars interarticularis, superior and inferior articular processes meeting at facet joints (a
joint space between them, turned from sagittal toward coronal going down the lumbar spine),
osteophytes now and then; the sacrum with its ala and foramina, the iliac wings, the 11th and
12th ribs; the trunk's soft tissue (subcutaneous fat, muscle, psoas, kidneys in perirenal fat)
and bowel gas. Lordosis, a little scoliosis and rotation and the patient's size vary with the
seed. Projected along an AP, oblique or lateral beam (``drivers.family.geometry``) the same
model gives the AP view, the oblique "Scotty dog" (pedicle = eye, transverse process = nose,
superior articular process = ear, pars = neck, inferior articular process = front leg) and
the lateral view.

Coordinates are the patient's (``drivers.family.geometry``): mm, x to the left, y caudal, z
posterior, origin at the centre of L3's body.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import pairwise, takewhile

import numpy as np

from drivers.family import materials as mat
from drivers.family.geometry import frame_along, rotation, unit
from drivers.family.shapes import Solid, box, cut, cylinder, ellipsoid, shell

CORTEX_EX = mat.excess(mat.CORTICAL_BONE)
CANCELLOUS_EX = mat.excess(mat.CANCELLOUS_BONE)
ARCH_CORTEX_EX = 0.030
ARCH_CANCELLOUS_EX = 0.014

# level: body width, depth, height; disc below; pedicle width, height; pedicle convergence;
# transverse process length; facet angle from sagittal; spinous process length (all mm / deg)
LEVELS: dict[str, tuple[float, ...]] = {
    "T11": (36, 27, 22, 5, 7.0, 15, 5, 10, 25, 24),
    "T12": (38, 28, 23, 6, 7.5, 15, 5, 8, 25, 25),
    "L1": (42, 30, 25, 8, 8.0, 15, 8, 14, 25, 27),
    "L2": (44, 31, 26, 9, 8.5, 15, 10, 18, 30, 28),
    "L3": (47, 32, 27, 10, 10.0, 14, 12, 24, 35, 28),
    "L4": (49, 33, 27, 11, 12.0, 13, 15, 20, 45, 27),
    "L5": (51, 34, 25, 11, 15.0, 12, 25, 16, 50, 22),
}
LUMBAR = ("L1", "L2", "L3", "L4", "L5")
TRUNK_ROUNDING = (1.25, 1.45)  # the trunk's ellipse over its box: rounder flanks, flat back


@dataclass(frozen=True, slots=True)
class Vertebra:
    """One vertebra's pose and size: ``centre_mm`` (its body's centre), ``axes`` (rows: its
    own x lateral, y caudal, z posterior, in patient coordinates) and its dimensions, mm."""

    name: str
    centre_mm: tuple[float, float, float]
    axes: tuple[tuple[float, float, float], ...]
    width_mm: float
    depth_mm: float
    height_mm: float
    disc_below_mm: float
    pedicle_x_mm: float

    def to_patient(self, local_mm) -> np.ndarray:
        return np.asarray(self.centre_mm) + np.asarray(self.axes).T @ np.asarray(local_mm, float)

    def direction(self, local_dir) -> np.ndarray:
        return np.asarray(self.axes).T @ np.asarray(local_dir, float)


@dataclass(frozen=True, slots=True)
class Landmark:
    """A needle target: ``kind`` "mbb" (medial branch: the root of the transverse process at
    the superior articular process), "facet" (a facet joint), "foramen" (the safe triangle
    below the pedicle) or "interlaminar" (midline, between the laminae); ``side`` +1 left,
    -1 right, 0 midline."""

    level: str
    kind: str
    side: int
    point_mm: tuple[float, float, float]


@dataclass(frozen=True, slots=True)
class RibSpec:
    """A rib: a cortical tube along a 3-D polyline (mm)."""

    points_mm: tuple[tuple[float, float, float], ...]
    radius_mm: float


@dataclass(frozen=True, slots=True)
class Anatomy:
    """The patient: ``solids`` (bone and soft tissue, excess attenuation), ``body`` (the soft
    tissue of the trunk alone, absolute attenuation: the quanta are normalised behind it),
    ``ribs``, the ``vertebrae`` and needle ``landmarks``; ``skin_back_z_mm`` /
    ``skin_front_z_mm`` where the skin of the back / belly is in the midline."""

    body: tuple[Solid, ...]
    solids: tuple[Solid, ...]
    ribs: tuple[RibSpec, ...]
    vertebrae: tuple[Vertebra, ...]
    landmarks: tuple[Landmark, ...]
    skin_back_z_mm: float
    skin_front_z_mm: float
    half_width_mm: float

    def vertebra(self, name: str) -> Vertebra:
        return next(v for v in self.vertebrae if v.name == name)


def _v(a) -> tuple[float, float, float]:
    a = np.asarray(a, float)
    return (float(a[0]), float(a[1]), float(a[2]))


def _local_solid(v: Vertebra, solid: Solid) -> Solid:
    """A solid given in the vertebra's frame, moved into patient coordinates."""
    axes = np.asarray(solid.axes) @ np.asarray(v.axes)
    return Solid(_v(v.to_patient(solid.centre_mm)), tuple(_v(r) for r in axes), solid.kind,
                 solid.radii_mm, solid.lo_mm, solid.hi_mm, solid.mu_per_mm)


def _oriented(centre, axis_a, axis_b, radii, mu, kind="ellipsoid") -> Solid:
    """An ellipsoid / box with its first axis along ``axis_a`` and second near ``axis_b``."""
    a = unit(np.asarray(axis_a, float))
    b = np.asarray(axis_b, float)
    b = unit(b - (b @ a) * a)
    axes = np.stack([a, b, np.cross(a, b)])
    return ellipsoid(centre, radii, axes, mu) if kind == "ellipsoid" else box(centre, radii,
                                                                               axes, mu)


def _spine_poses(rng: np.random.Generator, scale: float) -> list[Vertebra]:
    """Vertebral poses along a lordotic, slightly scoliotic curve."""
    names = list(LEVELS)
    heights = [LEVELS[n][2] * scale for n in names]
    discs = [LEVELS[n][3] * scale * rng.uniform(0.8, 1.15) for n in names]
    ys = [0.0]
    for i in range(1, len(names)):
        ys.append(ys[-1] + heights[i - 1] / 2 + discs[i - 1] + heights[i] / 2)
    y_l3 = ys[names.index("L3")]
    ys = [y - y_l3 for y in ys]
    lordosis_mm = rng.uniform(8.0, 22.0)
    half_span = 105.0 * scale
    scoliosis_mm = rng.uniform(-6.0, 6.0)
    scoliosis_phase = rng.uniform(0, 2 * math.pi)
    out = []
    for i, name in enumerate(names):
        w, d, h, _, _ped_w, *_ = (x * scale for x in LEVELS[name])
        y = ys[i]
        z = -lordosis_mm * (1 - (y / half_span) ** 2)
        dz_dy = 2 * lordosis_mm * y / half_span**2
        x = scoliosis_mm * math.sin(y / (1.6 * half_span) * math.pi + scoliosis_phase)
        dx_dy = (scoliosis_mm * math.pi / (1.6 * half_span)
                 * math.cos(y / (1.6 * half_span) * math.pi + scoliosis_phase))
        tangent = unit(np.array([dx_dy, 1.0, dz_dy]))
        frame = frame_along(tangent, (1.0, 0.0, 0.0))  # rows x', y'', z'=tangent
        # reorder: local x lateral, y along the spine (caudal), z posterior
        lx = frame[0]
        ly = tangent
        lz = np.cross(lx, ly)
        axial = rotation(ly, rng.normal(0, 2.0))  # small axial rotation
        axes = np.stack([axial @ lx, ly, axial @ lz])
        wobble = rotation(axes[0], rng.normal(0, 2.5)) @ rotation(axes[2], rng.normal(0, 1.5))
        axes = (wobble @ axes.T).T  # no spine is a smooth curve
        out.append(Vertebra(name, (x, y, z), tuple(_v(r) for r in axes), w, d, h, discs[i],
                            0.30 * w + 1.5))
    return out


def _bone(solid: Solid, cortex_mm: float = 0.6) -> list[Solid]:
    """``solid`` as a posterior element: a thin cortical shell of ``cortex_mm`` around dense
    cancellous bone (the cortex seen edge-on draws a soft outline; arch bone is denser than
    the body's marrow-rich bone, so the outline is fainter than the body's)."""
    return shell(Solid(solid.centre_mm, solid.axes, solid.kind, solid.radii_mm, solid.lo_mm,
                       solid.hi_mm, ARCH_CORTEX_EX), cortex_mm, ARCH_CANCELLOUS_EX)


def _vertebra_solids(v: Vertebra, rng: np.random.Generator) -> list[Solid]:
    w, d, h = v.width_mm, v.depth_mm, v.height_mm
    scale = w / LEVELS[v.name][0]
    _, _, _, _, ped_w, ped_h, conv, tp_len, _, sp_len = (
        x * (scale if i not in (6, 8) else 1.0) for i, x in enumerate(LEVELS[v.name]))
    xp = v.pedicle_x_mm
    cortex = rng.uniform(0.8, 1.2)
    local: list[Solid] = []
    body = cylinder((0, 0, 0), (0, 1, 0), (w / 2, d / 2), h / 2, CORTEX_EX)
    local += shell(body, cortex, CANCELLOUS_EX, cap_thickness_mm=rng.uniform(0.5, 0.8))
    # the posterior half of the body is flattened: its back wall is straight, not round
    for side in (-1, 1):
        c = math.radians(conv)
        axis = np.array([side * math.sin(c), 0.0, math.cos(c)])
        centre = np.array([side * xp, -0.2 * h, d / 2 + 5.0])
        local += shell(cylinder(centre, axis, (ped_w / 2, ped_h / 2), 9.0, CORTEX_EX), 1.3,
                       CANCELLOUS_EX)
        # lamina: a plate from the pedicle's back end to the midline, shingled caudally
        a = np.array([side * (xp + 1.0), 0.05 * h, d / 2 + 15.0])
        b = np.array([0.0, 0.25 * h, d / 2 + 25.0])
        half_len = float(np.linalg.norm(b - a)) / 2 + 3.0
        local += _bone(_oriented((a + b) / 2, b - a, (0, 1, -0.35),
                                 (half_len, 0.45 * h, 3.4), 0.0))
        # transverse process: a tapering bar pointing laterally, a little back and up
        tp_axis = unit(np.array([side * 1.0, -0.08, 0.22]))
        tp_root = np.array([side * (xp + 1.0), -0.12 * h, d / 2 + 9.0])
        local += _bone(_oriented(tp_root + tp_axis * tp_len / 2, tp_axis, (0, 1, 0),
                                 (tp_len / 2 + 3.0, 4.6, 3.0), 0.0), 0.35)
        # pars interarticularis: the neck between the articular processes
        local += _bone(ellipsoid((side * (xp - 1.5), 0.16 * h, d / 2 + 17.0),
                                 (3.4, 0.33 * h, 4.2)))
        if v.name in ("L3", "L4", "L5") and rng.random() < 0.3:  # osteophyte at a corner
            y_corner = rng.choice([-1, 1]) * (h / 2 - 1.0)
            local.append(ellipsoid((side * (w / 2 + 1.0), y_corner, -2.0), (3.0, 2.2, 7.0),
                                   mu=CORTEX_EX * 0.8))
    # spinous process: a plate in the midline pointing back and down
    sp_dir = np.array([0.0, math.sin(math.radians(15)), math.cos(math.radians(15))])
    centre = np.array([0.0, 0.22 * h, d / 2 + 22.0]) + sp_dir * sp_len / 2
    local += _bone(_oriented(centre, sp_dir, (0, 1, 0), (sp_len / 2 + 4.0, 0.33 * h + 1.0,
                                                          3.3), 0.0), 0.7)
    return [_local_solid(v, s) for s in local]


def _facet_solids(upper: Vertebra, lower: Vertebra, facet_deg: float,
                  rng: np.random.Generator) -> tuple[list[Solid], list[np.ndarray]]:
    """Inferior articular processes of ``upper`` and superior of ``lower``, a joint space
    between them; returns the solids and the joints' centres (left, right)."""
    solids, joints = [], []
    theta = math.radians(facet_deg + rng.normal(0, 4.0))
    gap = rng.uniform(1.2, 2.6)
    for side in (-1, 1):
        iap = upper.to_patient((side * (upper.pedicle_x_mm - 3.0), upper.height_mm / 2 + 4.0,
                                upper.depth_mm / 2 + 19.0))
        sap = lower.to_patient((side * (lower.pedicle_x_mm + 1.5), -lower.height_mm / 2 - 3.0,
                                lower.depth_mm / 2 + 15.0))
        joint = (iap + sap) / 2
        normal = lower.direction((side * math.cos(theta), 0.0, -math.sin(theta)))
        along = lower.direction((0.0, 1.0, 0.0))
        solids += _bone(_oriented(joint + normal * (gap / 2 + 3.3), normal, along,
                                  (3.3, 8.0, 6.5), 0.0), 0.8)
        solids += _bone(_oriented(joint - normal * (gap / 2 + 3.3), normal, along,
                                  (3.3, 8.0, 6.0), 0.0), 0.8)
        joints.append(joint)
    return solids, joints


def _sacrum(l5: Vertebra, rng: np.random.Generator, scale: float,
            ) -> tuple[list[Solid], Vertebra]:
    """S1 (a body, its ala and superior articular processes) and the sacrum below it."""
    tilt = math.radians(rng.uniform(15.0, 28.0))
    l5_axes = np.asarray(l5.axes)
    turn = rotation(l5_axes[0], math.degrees(tilt))  # about the lateral axis, top forward
    axes = (turn @ l5_axes.T).T
    h1, d1, w1 = 28.0 * scale, 35.0 * scale, 50.0 * scale
    centre = (np.asarray(l5.centre_mm) + l5_axes[1] * (l5.height_mm / 2 + l5.disc_below_mm)
              + axes[1] * h1 / 2)
    s1 = Vertebra("S1", _v(centre), tuple(_v(r) for r in axes), w1, d1, h1, 0.0,
                  0.30 * w1 + 1.5)
    local: list[Solid] = []
    local += shell(cylinder((0, 0, 0), (0, 1, 0), (w1 / 2, d1 / 2), h1 / 2, CORTEX_EX), 1.1,
                   CANCELLOUS_EX)
    for side in (-1, 1):  # the ala, with foramina through the sacral plate below
        local += shell(ellipsoid((side * 30 * scale, 1.0, 5.0),
                                 (24 * scale, 12 * scale, 17 * scale), mu=CORTEX_EX),
                       0.8, CANCELLOUS_EX * 0.6)
    # the fused segments below S1: flat plates narrowing toward the coccyx, curving back,
    # each with a pair of anterior foramina (round lucencies in AP)
    sacral = [(40, 12, 15, 30), (31, 11, 12, 53), (22, 10, 9, 74), (13, 9, 6, 92)]
    for k, (rx, ry, rz, dy) in enumerate(sacral):
        c = np.array([0.0, dy * scale, (6 + 6 * k * (k + 1) / 2) * scale])
        back = unit(np.array([0.0, 1.0, 0.12 + 0.1 * k]))
        local += shell(cylinder(c, back, (rx * scale, rz * scale), ry * scale, CORTEX_EX),
                       0.8, CANCELLOUS_EX * 0.6, cap_thickness_mm=0.4)
        if k < 3:
            for side in (-1, 1):
                hole = c + np.array([side * rx * 0.5 * scale, -ry * 0.9 * scale, 0.0])
                local.append(cylinder(hole, (0, 0.3, 1.0), (4.5 - k, 4.0 - k * 0.8), rz * scale,
                                      -CANCELLOUS_EX * 0.6))
    return [_local_solid(s1, s) for s in local], s1


def _ilia(s1: Vertebra, rng: np.random.Generator, scale: float) -> list[Solid]:
    out = []
    for side in (-1, 1):
        beta = math.radians(rng.uniform(30, 45))
        normal = np.array([side * math.cos(beta), 0.0, -math.sin(beta)])
        centre = (np.asarray(s1.centre_mm)
                  + np.array([side * rng.uniform(72, 86) * scale, -8.0 * scale, 18.0 * scale]))
        wing = _oriented(centre, normal, (0, 1, 0), (6.5 * scale, 58 * scale, 62 * scale),
                         CORTEX_EX)
        out += shell(wing, 1.8, CANCELLOUS_EX)
    return out


def _ribs(vertebrae: list[Vertebra], rng: np.random.Generator) -> list[RibSpec]:
    ribs = []
    for name, length_mm in (("T11", rng.uniform(110, 150)), ("T12", rng.uniform(60, 100))):
        v = next(x for x in vertebrae if x.name == name)
        tp_len = LEVELS[name][7]
        for side in (-1, 1):
            p = v.to_patient((side * (v.pedicle_x_mm + 3 + tp_len), -0.1 * v.height_mm,
                              v.depth_mm / 2 + 9.0))
            heading = math.radians(rng.uniform(10, 25))  # from lateral toward posterior
            turn = math.radians(rng.uniform(95, 130)) / length_mm
            descent = rng.uniform(0.25, 0.45)
            points = [p.copy()]
            step = 6.0
            for _ in range(int(length_mm / step)):
                heading -= turn * step
                p = p + step * np.array([side * math.cos(heading), descent, math.sin(heading)])
                points.append(p.copy())
            ribs.append(RibSpec(tuple(_v(q) for q in points), 4.5 if name == "T11" else 4.0))
    return ribs


def _soft_tissue(vertebrae: list[Vertebra], rng: np.random.Generator, scale: float,
                 bowel_gas: float) -> tuple[list[Solid], list[Solid], float, float, float]:
    """The trunk (absolute attenuation) and its inner structures (excess)."""
    l3 = next(v for v in vertebrae if v.name == "L3")
    rx = rng.uniform(140, 185) * scale
    rz = rng.uniform(110, 150) * scale
    skin_back = l3.depth_mm / 2 + 52.0 + rng.uniform(20, 60)
    cz = skin_back - rz
    def rounded_box(half_x: float, half_z: float, mu: float) -> Solid:
        # a trunk's cross-section: flat back and belly, rounded flanks (an elliptic cylinder
        # cut by slabs); local x is the patient's x, local y the patient's -z
        tube = cylinder((0, 0, cz), (0, 1, 0), (half_x * TRUNK_ROUNDING[0],
                                                half_z * TRUNK_ROUNDING[1]), 3000.0, mu)
        return cut(tube, (-half_x, -half_z, -math.inf), (half_x, half_z, math.inf))

    fat_mm = rng.uniform(8, 28)
    trunk = [rounded_box(rx, rz, mat.FAT),
             rounded_box(rx - fat_mm, rz - fat_mm, mat.SOFT_TISSUE - mat.FAT + 0.0015)]
    inner: list[Solid] = []
    y_top = vertebrae[0].centre_mm[1]
    for side in (-1, 1):
        for y0, y1, r0, r1 in ((-60, 10, 9, 16), (10, 80, 16, 22)):
            y0s, y1s = y0 * scale, y1 * scale
            x0 = side * (l3.width_mm / 2 + 4 + (y0s + 60) * 0.18)
            x1 = side * (l3.width_mm / 2 + 4 + (y1s + 60) * 0.18)
            centre = ((x0 + x1) / 2, (y0s + y1s) / 2, -6.0)
            axis = np.array([x1 - x0, y1s - y0s, -8.0])
            inner.append(_oriented(centre, axis, (1, 0, 0), (float(np.linalg.norm(axis)) / 2
                                                             + 12, (r0 + r1) / 2, r1 * 0.9),
                                   0.0035))
        kidney_y = rng.uniform(-75, -40) * scale + (8 if side < 0 else 0)
        kidney = (side * rng.uniform(70, 88) * scale, kidney_y, rng.uniform(-5, 15))
        inner.append(_oriented(kidney, (side * 0.25, 1, 0.2), (1, 0, 0), (58, 34, 28),
                               -0.0025))
        inner.append(_oriented(kidney, (side * 0.25, 1, 0.2), (1, 0, 0), (52, 27, 22), 0.0060))
    # bowel gas: clusters of pockets (loops of bowel), mostly in front of the spine
    for _ in range(round(bowel_gas * 8)):
        centre = np.array([rng.uniform(-0.75, 0.75) * rx, rng.uniform(y_top - 20, 230),
                           rng.uniform(cz - rz + 30, min(-30.0, cz + 10))])
        for _ in range(int(rng.integers(3, 9))):
            c = centre + rng.normal(0, [18.0, 18.0, 12.0])
            r = rng.uniform(4, 15) * np.array([1.0, rng.uniform(0.5, 1.3), rng.uniform(0.5, 1.0)])
            axes = frame_along(rng.normal(size=3), rng.normal(size=3))
            inner.append(ellipsoid(c, r, axes, -mat.SOFT_TISSUE * rng.uniform(0.5, 0.95)))
    return trunk, inner, skin_back, cz - rz, rx


def build_anatomy(rng: np.random.Generator, bowel_gas: float = 0.3) -> Anatomy:
    """A patient's spine and trunk; ``bowel_gas`` 0..1 is how much gas the bowel holds."""
    scale = rng.uniform(0.9, 1.1)
    vertebrae = _spine_poses(rng, scale)
    solids: list[Solid] = []
    landmarks: list[Landmark] = []
    for v in vertebrae:
        solids += _vertebra_solids(v, rng)
    sacrum, s1 = _sacrum(vertebrae[-1], rng, scale)
    solids += sacrum
    chain = [*vertebrae, s1]
    for upper, lower in pairwise(chain):
        facet_deg = LEVELS[upper.name][8]
        facets, joints = _facet_solids(upper, lower, facet_deg, rng)
        solids += facets
        for side, joint in zip((-1, 1), joints, strict=True):
            landmarks.append(Landmark(upper.name, "facet", side, _v(joint)))
        if lower.name != "S1":  # the disc between the bodies
            mid = (upper.to_patient((0, upper.height_mm / 2, 0))
                   + lower.to_patient((0, -lower.height_mm / 2, 0))) / 2
            axis = unit(np.asarray(lower.centre_mm) - np.asarray(upper.centre_mm))
            solids.append(cylinder(mid, axis, (upper.width_mm / 2, upper.depth_mm / 2),
                                   upper.disc_below_mm / 2 * 0.95, 0.002))
    solids += _ilia(s1, rng, scale)
    for v in vertebrae:
        for side in (-1, 1):
            xp, h, d = v.pedicle_x_mm, v.height_mm, v.depth_mm
            landmarks.append(Landmark(v.name, "mbb", side,
                                      _v(v.to_patient((side * (xp + 4.5), -0.17 * h, d / 2
                                                       + 11.0)))))
            landmarks.append(Landmark(v.name, "foramen", side,
                                      _v(v.to_patient((side * xp * 0.95, 0.33 * h, d / 2
                                                       - 1.0)))))
        landmarks.append(Landmark(v.name, "interlaminar", 0,
                                  _v(v.to_patient((0.0, h / 2 + v.disc_below_mm / 2,
                                                   d / 2 + 21.0)))))
    trunk, inner, skin_back, skin_front, half_width = _soft_tissue(vertebrae, rng, scale,
                                                                   bowel_gas)
    cz = (skin_back + skin_front) / 2
    rz = (skin_back - skin_front) / 2
    ribs = []
    for rib in _ribs(vertebrae, rng):  # a rib ends inside the trunk
        inside = list(takewhile(
            lambda p: (p[0] / half_width) ** 2 + ((p[2] - cz) / rz) ** 2 < 0.85, rib.points_mm))
        if len(inside) > 2:
            ribs.append(RibSpec(tuple(inside), rib.radius_mm))
    return Anatomy(tuple(trunk), tuple(inner + solids), tuple(ribs),
                   (*vertebrae, s1), tuple(landmarks), skin_back, skin_front, half_width)


def rib_solids_mu() -> tuple[float, float]:
    """(outer, inner) excess attenuation of a rib's cortex and marrow, per mm."""
    return CORTEX_EX, CANCELLOUS_EX - CORTEX_EX

