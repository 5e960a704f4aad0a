"""Where things go in a scene: the needles' targets, approaches and lengths (so that their tips
stay in the field and their hubs are in or out of it as the condition asks), the hardware in
the anatomy (pedicle screws through the pedicles, rods through their heads, cages in a disc,
K-wires in the bone) and the clips and ECG leads over the patient.

Coordinates follow ``drivers.family.geometry``: patient mm, image px (x, y).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from drivers.family import materials as mat
from drivers.family.anatomy import Anatomy, Landmark
from drivers.family.conditions import Condition
from drivers.family.geometry import Field, Projection, rotation, unit
from drivers.family.motion import NeedlePlan, needle_plans
from drivers.family.objects import (
    STEEL_EX,
    NeedleSpec,
    cage,
    clip_points,
    ecg_lead_path,
    electrode,
    needle_shaft_mm,
    pedicle_screw,
    rod,
)
from drivers.family.shapes import Solid, project_tube, ray_interval

NEEDLE_LENGTHS_MM = (38.0, 50.0, 64.0, 89.0, 89.0, 89.0, 127.0)  # 1.5" to 5", 3.5" most often
SIDES = ("left", "top", "right", "bottom")
SIDE_DEG = {"left": 0.0, "top": 90.0, "right": 180.0, "bottom": 270.0}  # hub -> tip direction


@dataclass(frozen=True, slots=True)
class NeedleSetup:
    """A needle in the scene: its ``spec`` and ``plan``; the skin entry point it pivots about
    (``entry_mm``), its initial direction (``direction``, unit hub -> tip), the insertion depth
    at the plan's start (``depth_mm``, entry -> tip) and the axis redirects turn about."""

    spec: NeedleSpec
    plan: NeedlePlan
    entry_mm: tuple[float, float, float]
    direction: tuple[float, float, float]
    depth_mm: float
    turn_axis: tuple[float, float, float]

    def pose(self, frame: float, breathing_mm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(tip, unit hub -> tip direction) in patient coordinates, mm, at ``frame``."""
        advance, turn = self.plan.state(frame)
        u = rotation(self.turn_axis, turn) @ np.asarray(self.direction)
        tip = (np.asarray(self.entry_mm) + (self.depth_mm + advance) * u
               + self.spec.breathing_share * breathing_mm)
        return tip, u


def _draw(rng: np.random.Generator, r: tuple[float, float]) -> float:
    lo, hi = r
    return float(lo if hi <= lo else rng.uniform(lo, hi))


def _entry_deg(rng: np.random.Generator, entry: str, seed: int) -> float:
    """The image direction (deg, hub -> tip; 0 = +x) of a needle entering per ``entry``."""
    if entry == "any":
        return float(rng.uniform(0, 360))
    if entry == "corner":
        return 45.0 + 90.0 * int(rng.integers(0, 4)) + float(rng.uniform(-12, 12))
    side = SIDES[seed % 4] if entry == "each-side" else SIDES[int(rng.integers(0, 4))]
    return SIDE_DEG[side] + float(rng.uniform(-40, 40))


def choose_targets(rng: np.random.Generator, anatomy: Anatomy, view: str,
                   count: int) -> list[Landmark]:
    """Needle targets: for several needles, the same kind on one side at adjacent levels
    (medial branch blocks)."""
    kinds = {"ap": ["mbb", "foramen", "facet", "interlaminar"],
             "oblique": ["mbb", "facet", "foramen"],
             "lateral": ["foramen", "interlaminar", "mbb", "facet"]}[view]
    kind = "mbb" if count > 1 else kinds[int(rng.integers(0, len(kinds)))]
    levels = ["L1", "L2", "L3", "L4", "L5"]
    first = int(rng.integers(0, len(levels) - count + 1))
    side = int(rng.choice([-1, 1])) if kind != "interlaminar" else 0
    out = []
    for level in levels[first:first + count]:
        match = [m for m in anatomy.landmarks if m.level == level and m.kind == kind
                 and m.side == side]
        out.append(match[0])
    return out


def _needle_direction(proj: Projection, image_deg: float, elevation_deg: float,
                      view: str, rng: np.random.Generator) -> np.ndarray:
    a = math.radians(image_deg)
    in_plane = proj.patient_direction(np.array([math.cos(a), math.sin(a)]))
    sign = -1.0 if view != "lateral" else float(rng.choice([-1.0, 1.0]))
    e = math.radians(elevation_deg)
    return unit(math.cos(e) * in_plane + sign * math.sin(e) * proj.beam)


def _sampled_frames(plan: NeedlePlan, frames: int) -> list[int]:
    marks = {plan.appear_frame, frames - 1}
    for m in plan.moves:
        marks |= {m.start_frame, m.end_frame - 1}
    return sorted(f for f in marks if plan.appear_frame <= f < frames)


def _needle_geometry(setup: NeedleSetup, proj: Projection, frame: int,
                     ) -> tuple[np.ndarray, np.ndarray]:
    tip, u = setup.pose(frame, np.zeros(3))
    shaft = needle_shaft_mm(tip, u, setup.spec, proj, samples=9)
    return proj.project(shaft[-1]), proj.project(shaft[0])


def _fits(setup: NeedleSetup, proj: Projection, field: Field, hub: str, frames: int,
          margin_px: float) -> bool:
    """The tip stays in the field (with a margin) over the plan, and the hub where asked."""
    for f in _sampled_frames(setup.plan, frames):
        tip, junction = _needle_geometry(setup, proj, f)
        if field.signed_distance(tip[0], tip[1]) < margin_px:
            return False
        d_junction = float(field.signed_distance(junction[0], junction[1]))
        if hub == "inside" and d_junction < 4.0:
            return False
        if hub == "outside" and d_junction > -4.0:
            return False
    return True


def place_needles(rng: np.random.Generator, cond: Condition, targets: list[Landmark],
                  proj: Projection, field: Field, view: str, seed: int,
                  ) -> tuple[Projection, list[NeedleSetup]]:
    """Specs, plans and approaches of the needles toward ``targets``, and the isocentre
    (moved in the detector plane) that keeps their tips in the field and their hubs in or out
    of it as the condition asks; after 80 tries the best placement found is taken."""
    count = cond.needles
    enters = int(cond.enters_at_frame[0] if cond.enters_at_frame[1] <= cond.enters_at_frame[0]
                 else rng.integers(cond.enters_at_frame[0], cond.enters_at_frame[1] + 1))
    plans = needle_plans(rng, count, cond.motion, cond.frames, cond.fps, min(enters,
                                                                             cond.frames - 10))
    image_deg = _entry_deg(rng, cond.entry, seed)
    specs_base = []
    for _ in range(count):
        gauge = int(rng.choice(cond.gauges))
        metal = rng.random() < 0.15
        specs_base.append(dict(
            gauge=gauge, bend_sag_mm=_draw(rng, cond.bend_mm),
            bend_side=int(rng.choice([-1, 1])), hub_kind="metal" if metal else "plastic",
            ferrule_mm=float(rng.uniform(5, 10)), hub_length_mm=float(rng.uniform(14, 22)),
            hub_diameter_mm=float(rng.uniform(6.5, 9.5)),
            breathing_share=float(rng.uniform(0.75, 1.0))))
    radius_px = field.radius_px or field.size_px / 2
    best: tuple[Projection, list[NeedleSetup]] | None = None
    for attempt in range(80):
        setups = []
        for i in range(count):
            deg = image_deg + (rng.normal(0, 6.0) if i else 0.0)
            elevation = rng.uniform(5, 45) + (attempt // 40) * 15
            u = _needle_direction(proj, deg, elevation, view, rng)
            length = float(rng.choice(NEEDLE_LENGTHS_MM))
            spec = NeedleSpec(length_mm=length, **specs_base[i])
            plan = plans[i]
            _lo, hi = plan.extremes()
            depth_target = min(length - 6.0, float(rng.uniform(35, 80)))
            target = np.asarray(targets[i].point_mm)
            entry = target - depth_target * u
            axis = unit(proj.beam - (proj.beam @ u) * u)
            setups.append(NeedleSetup(spec, plan, tuple(entry), tuple(u), depth_target - hi,
                                      tuple(axis)))
        # shift the isocentre so the needles' tip paths sit in the field (one needle: anywhere
        # in the middle of it; several: centred on the group)
        paths = [np.array([_needle_geometry(n, proj, f)[0]
                           for f in _sampled_frames(n.plan, cond.frames)]) for n in setups]
        centre = np.array(field.centre_px or ((field.size_px - 1) / 2,) * 2)
        spread = 0.35 if count == 1 else 0.12
        want = centre + rng.uniform(-spread, spread, 2) * radius_px
        shift_px = want - np.concatenate(paths).mean(axis=0)
        m = proj.magnification_iso
        du = proj.patient_direction(np.array([1.0, 0.0])) * shift_px[0] * proj.spacing_mm / m
        dv = proj.patient_direction(np.array([0.0, 1.0])) * shift_px[1] * proj.spacing_mm / m
        moved = replace(proj, isocentre_mm=tuple(np.asarray(proj.isocentre_mm) - du - dv))
        margin = 0.04 * field.size_px
        others_fit = all(_fits(n, moved, field, "any", cond.frames, margin) for n in setups[1:])
        if _fits(setups[0], moved, field, cond.hub, cond.frames, margin) and (
                others_fit or attempt >= 40):
            return moved, setups
        if best is None and _fits(setups[0], moved, field, "any", cond.frames, margin):
            best = (moved, setups)
    if best is not None:
        return best
    return moved, setups


def place_hardware(rng: np.random.Generator, cond: Condition, anatomy: Anatomy,
                   centre_level: str) -> tuple[list[Solid], list[np.ndarray]]:
    """Screws, rods, cage (solids) and K-wires (polylines) near ``centre_level``."""
    solids: list[Solid] = []
    kwires: list[np.ndarray] = []
    order = ["L1", "L2", "L3", "L4", "L5", "S1"]
    i = min(4, order.index(centre_level)) if centre_level in order else 3
    levels = order[max(0, min(i - cond.screw_levels // 2, len(order) - cond.screw_levels)):]
    levels = levels[:cond.screw_levels]
    seats: dict[int, list[np.ndarray]] = {-1: [], 1: []}
    for name in levels:
        v = anatomy.vertebra(name)
        for side in (-1, 1):
            if rng.random() < 0.08:
                continue  # a missing screw
            conv = math.radians(15 if name in ("L5", "S1") else 10)
            axis = v.direction((side * math.sin(conv), 0.0, math.cos(conv)))
            ped = v.to_patient((side * v.pedicle_x_mm, -0.2 * v.height_mm,
                                v.depth_mm / 2 + 5.0))
            entry = ped + axis * 11.0
            direction = unit(-axis + rng.normal(0, 0.07, 3))
            diameter = float(rng.choice([5.0, 5.5, 6.0, 6.5, 7.0]))
            length = float(rng.choice([35.0, 40.0, 45.0, 50.0]))
            screw, seat = pedicle_screw(entry, direction, diameter, length,
                                        v.direction((0, 1, 0)), rng)
            solids += screw
            seats[side].append(seat)
    if cond.rods:
        cocr = rng.random() < 0.3
        mu = mat.excess(mat.COBALT_CHROME if cocr else mat.TITANIUM)
        diameter = float(rng.choice([5.5, 6.0]))
        for side in (-1, 1):
            solids += rod(seats[side], diameter, mu, float(rng.uniform(5, 10)))
    if cond.cage:
        pair = levels[:2] if len(levels) >= 2 else [order[i], order[min(i + 1, 5)]]
        upper, lower = anatomy.vertebra(pair[0]), anatomy.vertebra(pair[1])
        mid = (upper.to_patient((0, upper.height_mm / 2, 0))
               + lower.to_patient((0, -lower.height_mm / 2, 0))) / 2
        along = unit(np.asarray(lower.centre_mm) - np.asarray(upper.centre_mm))
        kind = "titanium" if rng.random() < 0.4 else "peek"
        height = max(9.0, upper.disc_below_mm * 1.05)
        if rng.random() < 0.6:  # TLIF: one cage, oblique across the disc
            turn = rotation(along, float(rng.uniform(25, 50)) * float(rng.choice([-1, 1])))
            long_axis = turn @ upper.direction((1, 0, 0))
            centres = [mid + upper.direction((0, 0, 3.0))]
        else:  # PLIF: two cages, front to back
            long_axis = upper.direction((0, 0, 1))
            centres = [mid + upper.direction((s * 11.0, 0, 0)) for s in (-1, 1)]
        third = unit(np.cross(long_axis, along))
        axes = np.stack([long_axis, unit(np.cross(third, long_axis)), third])
        for c in centres:
            solids += cage(c, axes, height, kind, rng)
    for _ in range(cond.kwires):
        name = order[min(len(order) - 1, max(0, i + int(rng.integers(-1, 2))))]
        v = anatomy.vertebra(name)
        side = int(rng.choice([-1, 1]))
        tip = v.to_patient((side * v.pedicle_x_mm * 0.8, -0.1 * v.height_mm,
                            rng.uniform(-5, 5)))
        kwires.append(tip)  # direction chosen with the projection, see build_scene
    return solids, kwires


def kwire_direction(proj: Projection, rng: np.random.Generator) -> np.ndarray:
    a = rng.uniform(0, 2 * math.pi)
    in_plane = proj.patient_direction(np.array([math.cos(a), math.sin(a)]))
    e = math.radians(rng.uniform(5, 40))
    return unit(math.cos(e) * in_plane - math.sin(e) * proj.beam)


def _skin_depths(anatomy: Anatomy, proj: Projection) -> tuple[float, float]:
    """Depths (mm beyond the isocentre, along the beam) where the central ray enters and
    leaves the trunk."""
    hit = ray_interval(anatomy.body[0], proj.isocentre_mm, proj.beam)
    return hit if hit is not None else (-100.0, 100.0)


def draw_distractors(rng: np.random.Generator, cond: Condition, anatomy: Anatomy,
                     proj: Projection, field: Field, canvas: np.ndarray, pad: int,
                     ) -> list[Solid]:
    """Clips and ECG leads, drawn onto the patient canvas (tubes) or returned (solids)."""
    solids: list[Solid] = []
    enter, leave = _skin_depths(anatomy, proj)
    n = field.size_px
    for _ in range(cond.clips):
        px = (rng.uniform(0.1, 0.9) * n, rng.uniform(0.1, 0.9) * n)
        apex = proj.unproject(px, rng.uniform(enter + 20, leave - 20))
        points = clip_points(apex, rng)
        mu = STEEL_EX if rng.random() < 0.4 else mat.excess(mat.TITANIUM)
        project_tube(canvas, proj, points, rng.uniform(0.4, 0.7), mu, pad, True, True)
    fov_mm = n * proj.spacing_mm / proj.magnification_iso
    for _ in range(cond.ecg_leads):
        depth = (leave - 1.5) if rng.random() < 0.6 else (enter + 1.5)
        start_angle = rng.uniform(0, 2 * math.pi)
        start = 0.75 * fov_mm * np.array([math.cos(start_angle), math.sin(start_angle)])
        heading = math.degrees(start_angle + math.pi) + rng.uniform(-35, 35)
        path = ecg_lead_path(start, heading, rng.uniform(1.2, 2.0) * fov_mm, rng)
        e_u, e_v = proj.basis
        iso = np.asarray(proj.isocentre_mm)
        points = iso + path[:, :1] * e_u + path[:, 1:] * e_v + depth * proj.beam
        cable = rng.random() < 0.3  # a thicker monitoring cable with several conductors
        insulation = rng.uniform(1.8, 2.6) if cable else rng.uniform(0.9, 1.5)
        project_tube(canvas, proj, points, insulation, mat.excess(mat.PLASTIC) + 0.01, pad)
        core_r = rng.uniform(0.18, 0.32)
        tangent = np.gradient(points, axis=0)
        normal = np.cross(tangent, proj.beam)
        normal /= np.maximum(np.linalg.norm(normal, axis=1, keepdims=True), 1e-9)
        for offset_mm in ((-0.7, 0.0, 0.7) if cable else (0.0,)):  # conductors side by side
            project_tube(canvas, proj, points + offset_mm * normal, core_r,
                         mat.excess(mat.COPPER), pad)
        if rng.random() < 0.7:
            solids += electrode(points[-1], proj.beam, rng)
    return solids
