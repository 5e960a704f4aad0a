"""One stream's scene: a condition's knobs drawn with a seed, made concrete.

``build_scene(condition, seed)`` draws the view and C-arm geometry, the patient
(``anatomy``), the needles with their plans and the hardware and other distractors (placed by
``placement``, shaped by ``objects``, moved by ``motion``), the collimation, the detector and
the pedal, and renders what does not change during the stream once:

- the *patient layer* (anatomy, hardware, K-wires, clips, leads: everything that moves
  rigidly with breathing), on a canvas with a margin so that it can be shifted;
- the *fixed layer* (table edge, wedge filter: fixed to the C-arm or the table);
- the collimator's transmission.

Per frame, ``Scene.needle_poses`` gives each needle's tip and direction in patient
coordinates and ``Scene.shift_px`` the breathing shift of the patient layer; ``render``
turns them into quanta. Random draws come from separate streams per subsystem, so that turning
one knob (adding clips, mirroring) leaves everything else of the stream as it was.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass, replace

import cv2
import numpy as np

from drivers.family.anatomy import Anatomy, build_anatomy, rib_solids_mu
from drivers.family.conditions import VIEWS, Condition
from drivers.family.geometry import (
    Blade,
    Field,
    Projection,
    densify,
    polyline_length,
)
from drivers.family.motion import Breathing, beam_schedule, make_breathing
from drivers.family.objects import STEEL_EX, kwire_points, table_edge, wedge
from drivers.family.placement import (
    NeedleSetup,
    choose_targets,
    draw_distractors,
    kwire_direction,
    place_hardware,
    place_needles,
)
from drivers.family.shapes import add_solid, project_tube

MIN_VISIBLE_SHAFT_MM = 5.0  # at the detector: a needle with less shaft in the field is not seen


@dataclass(frozen=True, slots=True)
class DetectorSetup:
    """The detector and technique of a stream: ``quanta`` (expected quanta per pixel, primary
    and scatter, behind the field's median soft-tissue path), ``q0`` (primary quanta per
    pixel without any attenuation), ``blur_px`` (Gaussian sigma), ``lag`` (0..0.15),
    ``scatter_to_primary`` (behind the line integral ``scatter_ref_line_integral``, the
    median soft-tissue path), ``scatter_sigma_px``, ``gain_dn`` (grey values per quantum),
    ``offset_dn``, ``read_noise_dn`` (sigma), ``vignetting`` (relative fall-off at the
    field's edge), and the technique factors reported in ``Exposure``."""

    quanta: float
    q0: float
    blur_px: float
    lag: float
    scatter_to_primary: float
    scatter_ref_line_integral: float
    scatter_sigma_px: float
    gain_dn: float
    offset_dn: float
    read_noise_dn: float
    vignetting: float
    kvp: float
    ma: float
    pulse_ms: float
    filter_mm_cu: float


@dataclass(frozen=True)
class Scene:
    """Everything of one stream that is drawn once (see the module docstring). Arrays are
    float32 line integrals (``patient_layer`` with ``pad_px`` margins) and transmissions."""

    condition: Condition
    seed: int
    view: str
    proj: Projection
    field: Field
    pad_px: int
    patient_layer: np.ndarray
    fixed_layer: np.ndarray | None
    collimation: np.ndarray
    needles: tuple[NeedleSetup, ...]
    breathing: Breathing
    beam_on: np.ndarray
    detector: DetectorSetup
    mirror: bool
    kwires_mm: tuple[np.ndarray, ...]
    anatomy: Anatomy

    @property
    def size_px(self) -> int:
        return self.proj.size_px

    @property
    def spacing_mm(self) -> float:
        return self.proj.spacing_mm

    def t_s(self, frame: int) -> float:
        return frame / self.condition.fps

    def breathing_mm(self, frame: int) -> np.ndarray:
        return self.breathing.displacement_mm(self.t_s(frame))

    def shift_px(self, frame: int) -> np.ndarray:
        """The image shift (x, y) px of the patient layer at ``frame`` (before mirroring)."""
        iso = np.asarray(self.proj.isocentre_mm)
        return self.proj.project(iso + self.breathing_mm(frame)) - self.proj.project(iso)

    def needle_poses(self, frame: int) -> list[tuple[np.ndarray, np.ndarray] | None]:
        """Per needle, (tip, direction) at ``frame``, or None before it enters."""
        b = self.breathing_mm(frame)
        return [n.pose(frame, b) if n.plan.present(frame) else None for n in self.needles]

    def field_area_cm2_at_reference(self) -> float:
        sirp = self.proj.sod_mm - 150.0
        area_mm2 = self.field.area_px() * self.spacing_mm**2
        return area_mm2 * (sirp / self.proj.sid_mm) ** 2 / 100.0


def _rng_streams(condition: Condition, seed: int) -> dict[str, np.random.Generator]:
    names = ("view", "anatomy", "needles", "hardware", "distractors", "detector", "mirror",
             "field", "pedal", "fixed", "texture")
    root = np.random.SeedSequence([int(seed) & 0xFFFFFFFF, condition.seed_offset,
                                   zlib.crc32(condition.name.encode())])
    return dict(zip(names, (np.random.default_rng(s) for s in root.spawn(len(names))),
                    strict=True))


def noise_rng(condition: Condition, seed: int) -> np.random.Generator:
    """The quantum noise's own stream (drawn per frame, in order)."""
    return np.random.default_rng(np.random.SeedSequence(
        [int(seed) & 0xFFFFFFFF, condition.seed_offset, zlib.crc32(condition.name.encode()),
         7]))


def _texture(rng: np.random.Generator, shape: tuple[int, int], sigma_px: float) -> np.ndarray:
    """Band-limited Gaussian noise of unit standard deviation (float32), grain ``sigma_px``;
    drawn on a coarse grid and resized, so the cost does not grow with the grain."""
    step = max(1, int(sigma_px / 2))
    small = rng.standard_normal((shape[0] // step + 2, shape[1] // step + 2),
                                dtype=np.float32)
    small = cv2.GaussianBlur(small, (0, 0), max(sigma_px / step, 0.5))
    big = cv2.resize(small, (shape[1], shape[0]), interpolation=cv2.INTER_CUBIC)
    return big / max(float(big.std()), 1e-6)


def _draw(rng: np.random.Generator, r: tuple[float, float]) -> float:
    lo, hi = r
    return float(lo if hi <= lo else rng.uniform(lo, hi))


def _gantry(rng: np.random.Generator, view: str) -> float:
    if view == "ap":
        return float(rng.normal(0, 3.0))
    side = float(rng.choice([-1.0, 1.0]))
    if view == "oblique":
        return side * float(rng.uniform(25, 40))
    return side * 90.0 + float(rng.normal(0, 2.0))


def _field(rng: np.random.Generator, kind: str, size: int, spacing_mm: float) -> Field:
    if kind == "any":
        kind = str(rng.choice(["rect", "circle+blades", "circle", "none"],
                              p=[0.35, 0.35, 0.2, 0.1]))
    penumbra = rng.uniform(0.4, 1.0) / spacing_mm
    leakage = rng.uniform(0.0005, 0.003)  # lead shutters: what passes is mostly scatter
    c = (size - 1) / 2
    centre = radius = None
    blades: list[Blade] = []
    if kind in ("circle", "circle+blades"):
        centre = (c + rng.normal(0, 0.01) * size, c + rng.normal(0, 0.01) * size)
        radius = rng.uniform(0.44, 0.5) * size
    angle = math.radians(rng.uniform(-12, 12))
    if kind == "rect":
        for k in range(4):
            a = angle + k * math.pi / 2
            inset = rng.uniform(0.03, 0.16) * size
            blades.append(Blade(math.cos(a), math.sin(a),
                                math.cos(a) * c + math.sin(a) * c + (c - inset)))
    elif kind == "circle+blades":
        pair = rng.random() < 0.6
        ks = (0, 2) if pair else (int(rng.integers(0, 4)),)
        base = angle + (math.pi / 2 if rng.random() < 0.5 else 0.0)
        for k in ks:
            a = base + k * math.pi / 2
            inset = rng.uniform(0.14, 0.3) * size
            blades.append(Blade(math.cos(a), math.sin(a),
                                math.cos(a) * c + math.sin(a) * c + (c - inset)))
    return Field(size, centre, radius, tuple(blades), penumbra, leakage)


def build_scene(cond: Condition, seed: int) -> Scene:
    """Draw and pre-render the scene of ``cond`` for ``seed`` (see the module docstring)."""
    rngs = _rng_streams(cond, seed)
    g = rngs["view"]
    view = cond.view if cond.view != "any" else VIEWS[int(g.integers(0, 3))]
    spacing = _draw(g, cond.spacing_mm)
    size = cond.size_px
    sid = float(g.uniform(1000, 1200))
    magnification = _draw(g, cond.magnification)
    gantry = _gantry(g, view)
    roll = _draw(g, cond.roll_deg)
    anatomy = build_anatomy(rngs["anatomy"], cond.bowel_gas)
    field = _field(rngs["field"], cond.collimator, size, spacing)
    mirror = bool(rngs["mirror"].random() < 0.5) if cond.mirror is None else cond.mirror

    gn = rngs["needles"]
    targets = choose_targets(gn, anatomy, view, cond.needles) if cond.needles else []
    if targets:
        centre_point = np.asarray(targets[0].point_mm)
    else:
        level = ["L2", "L3", "L4", "L5"][int(gn.integers(0, 4))]
        centre_point = np.asarray(anatomy.vertebra(level).centre_mm)
    proj = Projection(size, spacing, sid, sid / magnification, gantry, roll,
                      tuple(float(v) for v in centre_point))
    needles: list[NeedleSetup] = []
    if cond.needles:
        proj, needles = place_needles(gn, cond, targets, proj, field, view, seed)
    else:
        shift = gn.uniform(-0.2, 0.2, 3) * size * spacing / magnification
        proj = replace(proj, isocentre_mm=tuple(centre_point + shift * np.array([1, 1, 0])))
    centre_level = min(anatomy.vertebrae, key=lambda v: float(np.linalg.norm(
        proj.project(np.asarray(v.centre_mm)) - proj.centre_px))).name

    breathing = make_breathing(rngs["pedal"], _draw(rngs["pedal"], cond.breathing_mm),
                               _draw(rngs["pedal"], cond.breathing_period_s))
    max_shift_mm = breathing.amplitude_mm
    pad = math.ceil(max_shift_mm * proj.magnification_iso / spacing * 1.2) + 2
    canvas = np.zeros((size + 2 * pad, size + 2 * pad), np.float32)
    body = np.zeros_like(canvas)
    for solid in anatomy.body:
        add_solid(body, proj, solid, pad)
    canvas += body
    bone = np.zeros_like(canvas)
    for solid in anatomy.solids:
        add_solid(bone, proj, solid, pad)
    outer_mu, inner_mu = rib_solids_mu()
    for rib in anatomy.ribs:
        project_tube(bone, proj, np.asarray(rib.points_mm), rib.radius_mm, outer_mu, pad)
        project_tube(bone, proj, np.asarray(rib.points_mm), rib.radius_mm - 1.2, inner_mu,
                     pad)
    mm_px = proj.magnification_iso / spacing
    gt = rngs["texture"]
    canvas += bone * (1 + 0.12 * _texture(gt, canvas.shape, 0.7 * mm_px))  # trabeculae
    canvas += 0.03 * _texture(gt, canvas.shape, 4.0 * mm_px)  # bowel content, fat, muscle
    hardware, kwire_tips = place_hardware(rngs["hardware"], cond, anatomy, centre_level)
    for solid in hardware:
        add_solid(canvas, proj, solid, pad, supersample=2)
    kwires = []
    gk = rngs["hardware"]
    for tip in kwire_tips:
        direction = kwire_direction(proj, gk)
        diameter = float(gk.choice([1.0, 1.25, 1.6, 2.0]))
        points = kwire_points(tip, direction, float(gk.uniform(220, 320)))
        project_tube(canvas, proj, points, diameter / 2, STEEL_EX, pad, flat_end=True)
        kwires.append(points)
    for solid in draw_distractors(rngs["distractors"], cond, anatomy, proj, field, canvas, pad):
        add_solid(canvas, proj, solid, pad, supersample=2)

    gf = rngs["fixed"]
    fixed = None
    if cond.table_edge:
        point = (gf.uniform(0.2, 0.8) * size, gf.uniform(0.2, 0.8) * size)
        angle = float(gf.choice([0.0, 90.0])) + float(gf.uniform(-20, 20))
        fixed = table_edge(size, point, angle, float(gf.uniform(0.15, 0.35)),
                           gf.uniform(3.0, 6.0) / spacing, float(gf.uniform(0.3, 0.8)),
                           gf.uniform(0.7, 1.6))
    if cond.wedge:
        w = wedge(size, float(gf.uniform(0, 360)), float(gf.uniform(-0.1, 0.3)) * size,
                  float(gf.uniform(0.15, 0.35)) * size, float(gf.uniform(0.6, 1.5)))
        fixed = w if fixed is None else fixed + w
    collimation = field.transmission()

    gd = rngs["detector"]
    quanta = _draw(gd, cond.quanta)
    body_image = body[pad:pad + size, pad:pad + size]
    coords = np.arange(size, dtype=np.float64)
    in_field = field.signed_distance(coords[None, :], coords[:, None]) > 0
    behind = in_field & (body_image > 1.0)
    if not behind.any():
        behind = in_field if in_field.any() else np.ones_like(in_field)
    blur_px, lag = _draw(gd, cond.blur_px), _draw(gd, cond.lag)
    spr = _draw(gd, cond.scatter_to_primary)
    # quanta (primary and scatter) behind the field's median soft-tissue path (an AEC's view
    # of "the patient"), so thin tissue at the skin or air in a lateral field does not darken
    # the anatomy
    median_path = float(np.median(body_image[behind]))
    q0 = quanta / (1 + spr) * math.exp(median_path)
    kvp = {"ap": 78.0, "oblique": 84.0, "lateral": 92.0}[view] + float(gd.uniform(-4, 4))
    detector = DetectorSetup(
        quanta=quanta, q0=q0, blur_px=blur_px, lag=lag, scatter_to_primary=spr,
        scatter_ref_line_integral=max(median_path, 0.5),
        scatter_sigma_px=float(gd.uniform(25, 45)) / spacing,
        gain_dn=16.0, offset_dn=64.0, read_noise_dn=2.0,
        vignetting=float(gd.uniform(0.0, 0.12)) if field.radius_px else 0.0,
        kvp=round(kvp, 1), ma=round(quanta / 50.0 * gd.uniform(5.0, 8.0), 2),
        pulse_ms=float(gd.choice([6.0, 8.0, 10.0])),
        filter_mm_cu=float(gd.choice([0.1, 0.2, 0.3])))
    beam_on = beam_schedule(rngs["pedal"], cond.frames, cond.pedal_release)
    return Scene(cond, seed, view, proj, field, pad, canvas, fixed, collimation,
                 tuple(needles), breathing, beam_on, detector, mirror, tuple(kwires), anatomy)


def visible_shaft(scene: Scene, shaft_px: np.ndarray,
                  ) -> tuple[bool, tuple[float, float] | None]:
    """Whether a needle's shaft (junction -> tip, image px, before mirroring) is seen: at
    least ``MIN_VISIBLE_SHAFT_MM`` of it lies in the field. Also where the visible part ends
    proximally, walking from the tip: the junction with the hub when that is in the field,
    else where the shaft leaves the field (None when no part of it is in the field). The tip
    itself is normally in the field (the plans keep it there)."""
    field = scene.field
    from_tip = densify(np.asarray(shaft_px, float)[::-1], 1.0)
    inside = field.signed_distance(from_tip[:, 0], from_tip[:, 1]) > 0
    if not inside.any():
        return False, None
    first = int(np.argmax(inside))  # where the shaft comes into the field, from the tip
    run = from_tip[first:]
    exit_point = field.exit_point(run)
    if exit_point is None:
        hub = (float(run[-1, 0]), float(run[-1, 1]))
        length_px = polyline_length(run)
    else:
        j = int(np.flatnonzero(~inside[first:])[0])
        hub = exit_point
        length_px = polyline_length(np.vstack([run[:j], np.asarray(exit_point)[None]]))
    return length_px * scene.spacing_mm >= MIN_VISIBLE_SHAFT_MM, hub
