"""Needles and the things that are not the needle, as attenuation (line integrals).

Needles (``NeedleSpec``, ``draw_needle``): a solid steel shaft (stylet in) of the gauge's outer
diameter, cut square at the tip, bent into a gentle arc when ``bend_sag_mm`` is set; at the
proximal end a steel ferrule wider than the shaft and a plastic (or thin-walled metal) hub
with its stylet cap. Distractors, each in patient coordinates unless said otherwise:

- ``pedicle_screw``: a titanium screw (core and thread rings, tapering to the tip) with a
  polyaxial tulip head (U-channel, set screw);
- ``rod``: rods through the tulip heads; ``cage``: an interbody cage, PEEK with tantalum
  markers or a titanium frame;
- ``kwire_points``: a long straight steel guide pin; ``clip_points``: V- and U-shaped
  surgical clips; ``ecg_lead``: a lead wire (copper core in plastic insulation) wandering over
  the skin, ending in an electrode with a metal snap;
- detector-fixed (image pixels, not moving with the patient): ``table_edge`` (the edge of a
  carbon-fibre table top and its rail: a long straight step) and ``wedge`` (a copper wedge
  filter: a brightness ramp from one side).

Lengths in mm at the patient unless named ``_px``; attenuation per mm (``materials``).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np

from drivers.family import materials as mat
from drivers.family.geometry import Projection, frame_along, unit
from drivers.family.shapes import Solid, box, cut, cylinder, ellipsoid, project_tube, vec3

GAUGE_OD_MM = {18: 1.27, 20: 0.91, 22: 0.72, 25: 0.51}
FERRULE_OD_MM = {18: 2.5, 20: 2.2, 22: 1.9, 25: 1.6}
STEEL_EX = mat.excess(mat.STEEL)
TITANIUM_EX = mat.excess(mat.TITANIUM)


@dataclass(frozen=True, slots=True)
class NeedleSpec:
    """One needle: ``gauge`` (18–25 G), shaft ``length_mm`` (tip to ferrule), the arc's
    ``bend_sag_mm`` at mid-length (sideways in the detector plane, toward ``bend_side`` ±1),
    the hub (``hub_kind`` "plastic" or "metal", ``ferrule_mm`` long, ``hub_length_mm`` long,
    ``hub_diameter_mm`` wide) and ``breathing_share`` (0..1, how much of the anatomy's
    breathing motion it follows)."""

    gauge: int
    length_mm: float
    bend_sag_mm: float = 0.0
    bend_side: int = 1
    hub_kind: str = "plastic"
    ferrule_mm: float = 8.0
    hub_length_mm: float = 18.0
    hub_diameter_mm: float = 8.0
    breathing_share: float = 0.9

    @property
    def diameter_mm(self) -> float:
        return GAUGE_OD_MM[self.gauge]


@dataclass(frozen=True, slots=True)
class NeedleImage:
    """Where a drawn needle is on the image, px (x, y): ``tip_px`` (the distal end),
    ``junction_px`` (where the shaft meets the ferrule) and ``shaft_px`` (the shaft's centre
    line from the junction to the tip)."""

    tip_px: tuple[float, float]
    junction_px: tuple[float, float]
    shaft_px: np.ndarray


def needle_shaft_mm(tip_mm: np.ndarray, direction: np.ndarray, spec: NeedleSpec,
                    proj: Projection, samples: int = 17) -> np.ndarray:
    """The shaft's centre line (samples×3, junction -> tip); ``direction`` is the unit vector
    from hub to tip."""
    junction = tip_mm - spec.length_mm * direction
    t = np.linspace(0.0, 1.0, samples)[:, None]
    line = junction + t * (tip_mm - junction)
    if spec.bend_sag_mm:
        side = unit(np.cross(direction, proj.beam))
        line = line + spec.bend_side * spec.bend_sag_mm * 4 * t * (1 - t) * side
    return line


def draw_needle(canvas: np.ndarray, proj: Projection, tip_mm: np.ndarray,
                direction: np.ndarray, spec: NeedleSpec) -> NeedleImage:
    """Add a needle to ``canvas`` (image-sized); ``direction`` is the unit hub -> tip vector."""
    shaft = needle_shaft_mm(tip_mm, direction, spec, proj)
    shaft_px = project_tube(canvas, proj, shaft, spec.diameter_mm / 2, STEEL_EX,
                            flat_start=True, flat_end=True)
    junction = shaft[0]
    proximal = unit(shaft[0] - shaft[1])  # from the shaft toward the hub
    ferrule_end = junction + proximal * spec.ferrule_mm
    project_tube(canvas, proj, np.stack([junction, ferrule_end]),
                 FERRULE_OD_MM[spec.gauge] / 2, STEEL_EX, flat_start=True, flat_end=True)
    hub_end = ferrule_end + proximal * spec.hub_length_mm
    cap_end = hub_end + proximal * 7.0
    # the shaft runs on inside the hub to the luer
    project_tube(canvas, proj, np.stack([ferrule_end, hub_end]), spec.diameter_mm / 2,
                 STEEL_EX, flat_start=True, flat_end=True)
    r_hub = spec.hub_diameter_mm / 2
    if spec.hub_kind == "metal":  # a thin-walled steel hub: dark along its two walls
        r_wall = r_hub * 0.75
        project_tube(canvas, proj, np.stack([ferrule_end, hub_end]), r_wall, STEEL_EX,
                     flat_start=True, flat_end=True)
        project_tube(canvas, proj, np.stack([ferrule_end, hub_end]), r_wall - 0.35,
                     -STEEL_EX, flat_start=True, flat_end=True)
    else:
        project_tube(canvas, proj, np.stack([ferrule_end, hub_end]), r_hub, mat.PLASTIC,
                     flat_start=True, flat_end=True)
    project_tube(canvas, proj, np.stack([hub_end, cap_end]), r_hub + 1.2, mat.PLASTIC,
                 flat_start=True, flat_end=True)
    return NeedleImage(tuple(float(v) for v in shaft_px[-1]),
                       tuple(float(v) for v in shaft_px[0]), shaft_px)


def pedicle_screw(entry_mm: np.ndarray, direction: np.ndarray, diameter_mm: float,
                  length_mm: float, rod_direction: np.ndarray, rng: np.random.Generator,
                  ) -> tuple[list[Solid], np.ndarray]:
    """A titanium pedicle screw from ``entry_mm`` along ``direction`` (unit, into the bone)
    with its tulip head behind the entry, the U-channel along ``rod_direction``; returns the
    solids and the point where a rod seats in the head."""
    solids: list[Solid] = []
    r_out = diameter_mm / 2
    r_core = r_out * rng.uniform(0.66, 0.75)
    pitch = rng.uniform(2.5, 3.0)
    core_len = length_mm - 1.5
    solids.append(cylinder(entry_mm + direction * core_len / 2, direction, r_core,
                           core_len / 2, TITANIUM_EX))
    solids.append(ellipsoid(entry_mm + direction * core_len, (r_core,) * 3, mu=TITANIUM_EX))
    s = 3.0
    while s < length_mm - 1.0:
        taper = min(1.0, (length_mm - s) / 8.0)
        r = r_core + (r_out - r_core) * taper
        centre = entry_mm + direction * s
        ring = cylinder(centre, direction, r, pitch * 0.2, TITANIUM_EX)
        solids += [ring, cylinder(centre, direction, r_core, pitch * 0.2, -TITANIUM_EX)]
        s += pitch
    # the tulip: polyaxial, a few degrees off the screw's axis
    axis = unit(-direction + rng.normal(0, 0.12, 3))
    head = entry_mm - direction * 1.0
    solids.append(ellipsoid(head, (r_core + 0.8,) * 3, mu=TITANIUM_EX))
    r_t = rng.uniform(6.0, 7.0)
    height = rng.uniform(13.0, 16.0)
    centre = head + axis * (height / 2 - 3.0)
    rod_dir = unit(rod_direction - (rod_direction @ axis) * axis)
    axes = np.stack([np.cross(rod_dir, axis), rod_dir, axis])
    outer = Solid(vec3(centre), tuple(vec3(r) for r in axes), "cylinder", (r_t, r_t, math.inf),
                  (-math.inf, -math.inf, -height / 2), (math.inf, math.inf, height / 2),
                  TITANIUM_EX)
    r_in = r_t - rng.uniform(1.6, 2.2)
    inner = Solid(outer.centre_mm, outer.axes, "cylinder", (r_in, r_in, math.inf),
                  (-math.inf, -math.inf, -height / 2 + 3.0), outer.hi_mm, -TITANIUM_EX)
    slot_w = 3.2
    slot_lo = -height / 2 + 4.0
    slot = ((-slot_w, -math.inf, slot_lo), (slot_w, math.inf, math.inf))
    solids += [outer, inner,  # the U-channel for the rod cut through both walls
               _with_mu(cut(outer, *slot), -TITANIUM_EX),
               _with_mu(cut(inner, *slot), TITANIUM_EX)]
    # set screw closing the top of the channel
    top = centre + axis * (height / 2 - 2.5)
    solids.append(cylinder(top, axis, r_in, 2.5, TITANIUM_EX))
    seat = centre + axis * (slot_lo + 3.2)
    return solids, seat


def _with_mu(solid: Solid, mu: float) -> Solid:
    return Solid(solid.centre_mm, solid.axes, solid.kind, solid.radii_mm, solid.lo_mm,
                 solid.hi_mm, mu)


def rod(points_mm: list[np.ndarray], diameter_mm: float, mu_excess: float,
        overhang_mm: float) -> list[Solid]:
    """A rod through the seat points (in order), running ``overhang_mm`` past the ends."""
    pts = [np.asarray(p, float) for p in points_mm]
    if len(pts) < 2:
        return []
    first = pts[0] - overhang_mm * unit(pts[1] - pts[0])
    last = pts[-1] + overhang_mm * unit(pts[-1] - pts[-2])
    pts = [first, *pts[1:-1], last]
    out = []
    for a, b in itertools.pairwise(pts):
        out.append(cylinder((a + b) / 2, b - a, diameter_mm / 2,
                            float(np.linalg.norm(b - a)) / 2, mu_excess))
    for p in pts[1:-1]:  # round the bends
        out.append(ellipsoid(p, (diameter_mm / 2 * 0.98,) * 3, mu=mu_excess * 0.5))
    return out


def cage(centre_mm: np.ndarray, axes: np.ndarray, height_mm: float, kind: str,
         rng: np.random.Generator) -> list[Solid]:
    """An interbody cage in a disc space: ``axes`` rows are its long axis, the spine's axis
    and the third; ``kind`` "peek" (radiolucent, three tantalum marker pins) or "titanium"
    (a frame with a graft window)."""
    half = np.array([rng.uniform(12, 16), height_mm / 2, rng.uniform(4.5, 6.0)])
    if kind == "titanium":
        wall = rng.uniform(1.2, 2.0)
        return [box(centre_mm, half, axes, TITANIUM_EX),
                box(centre_mm, half - np.array([wall, -1.0, wall]), axes, -TITANIUM_EX)]
    solids = [box(centre_mm, half, axes, mat.excess(mat.PEEK))]
    ta_ex = mat.excess(mat.TANTALUM)
    for frac in (-0.85, 0.0, 0.85):
        p = centre_mm + axes[0] * half[0] * frac
        solids.append(cylinder(p, axes[1], 0.5, half[1] * 0.45, ta_ex))
    return solids


def kwire_points(tip_mm: np.ndarray, direction: np.ndarray, length_mm: float) -> np.ndarray:
    """A straight guide pin from its tip back along ``-direction``: (2, 3) points, back end
    first (draw with a flat tip at the last point)."""
    return np.stack([tip_mm - length_mm * direction, tip_mm])


def clip_points(apex_mm: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A surgical clip: a V (open) or U (closed) of two 4–8 mm arms, as a 3-D polyline."""
    u1, u2, _ = frame_along(rng.normal(size=3), rng.normal(size=3))
    arm = rng.uniform(4.0, 8.0)
    if rng.random() < 0.5:  # V
        half = math.radians(rng.uniform(12, 30))
        a = apex_mm + arm * (math.cos(half) * u1 + math.sin(half) * u2)
        b = apex_mm + arm * (math.cos(half) * u1 - math.sin(half) * u2)
        return np.stack([a, apex_mm, b])
    gap = rng.uniform(0.8, 2.0)  # U: two parallel arms and the bend
    a0 = apex_mm + gap / 2 * u2
    b0 = apex_mm - gap / 2 * u2
    return np.stack([a0 + arm * u1, a0, apex_mm - 0.6 * u1, b0, b0 + arm * u1])


def ecg_lead_path(start_mm: np.ndarray, heading_deg: float, length_mm: float,
                  rng: np.random.Generator) -> np.ndarray:
    """A lead wire's path over the skin: a smooth random curve (its curvature wanders) in a
    plane, as (N, 2) plane coordinates, mm, from ``start_mm``."""
    step = 3.0
    heading = math.radians(heading_deg)
    curvature = rng.normal(0, 0.004)
    p = np.asarray(start_mm, float).copy()
    points = [p.copy()]
    for _ in range(int(length_mm / step)):
        curvature = 0.96 * curvature + rng.normal(0, 0.0025)
        heading += curvature * step
        p = p + step * np.array([math.cos(heading), math.sin(heading)])
        points.append(p.copy())
    return np.stack(points)


def electrode(centre_mm: np.ndarray, normal: np.ndarray, rng: np.random.Generator,
              ) -> list[Solid]:
    """An ECG electrode on the skin: a foam pad and the Ag/AgCl snap stud."""
    pad = cylinder(centre_mm, normal, rng.uniform(14, 19), 0.6, 0.012)
    stud = cylinder(centre_mm + normal * 1.5, normal, rng.uniform(2.0, 3.0), 1.6,
                    mat.SILVER_CHLORIDE)
    ring = cylinder(centre_mm + normal * 0.5, normal, rng.uniform(5, 6), 0.3, 0.25)
    return [pad, ring, stud]


def table_edge(size_px: int, point_px: tuple[float, float], angle_deg: float,
               step: float, rail_px: float, rail_step: float, blur_px: float) -> np.ndarray:
    """Detector-fixed attenuation of a table top whose edge runs through ``point_px`` at
    ``angle_deg``: ``step`` (line integral) on one side, a ``rail_px`` wide band of
    ``rail_step`` more along the edge, edges blurred ``blur_px``. float32 H×W."""
    a = math.radians(angle_deg)
    nx, ny = -math.sin(a), math.cos(a)
    coords = np.arange(size_px, dtype=np.float32)
    d = (coords[None, :] - point_px[0]) * nx + (coords[:, None] - point_px[1]) * ny
    b = max(blur_px, 0.3)
    def smooth_step(x: np.ndarray) -> np.ndarray:
        return 0.5 * (1 + np.tanh(x / (2 * b)))

    top = step * smooth_step(d)
    rail = rail_step * (smooth_step(d) - smooth_step(d - rail_px))
    return (top + rail).astype(np.float32)


def wedge(size_px: int, direction_deg: float, start_px: float, width_px: float,
          max_line_integral: float) -> np.ndarray:
    """Detector-fixed attenuation of a wedge filter: 0 up to ``start_px`` along
    ``direction_deg`` (measured from the image centre), rising to ``max_line_integral`` over
    ``width_px`` and flat beyond. float32 H×W."""
    a = math.radians(direction_deg)
    c = (size_px - 1) / 2
    coords = np.arange(size_px, dtype=np.float32) - c
    s = coords[None, :] * math.cos(a) + coords[:, None] * math.sin(a)
    return (max_line_integral * np.clip((s - start_px) / width_px, 0, 1)).astype(np.float32)
