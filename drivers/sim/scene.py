"""Everything static about one simulated source, computed once: anatomy (+ hardware)
transmission, the X-ray field, scatter, the ABC's measuring field and its reference.

Scale: all maps are relative signals normalised so that "average soft tissue" (the median of
pixels inside the field that see soft tissue only) is 1.0 including scatter; the detected
quanta per pixel are then ``Q * (field * anatomy * needle + scatter)`` with ``Q`` the pulse's
quanta behind average soft tissue.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from drivers.sim.anatomy import render_anatomy
from drivers.sim.field import collimated_field, scatter_field
from drivers.sim.geometry import Geometry
from drivers.sim.hardware import render_hardware

BREATHING_PEAK_TO_PEAK_MM = 2.5  # craniocaudal, at the isocentre (prone patient)
BREATHING_HZ = 0.25
ABC_ROI_HALF_FRAC = 0.15  # central square, ±15 % of the image
FOCAL_BLUR_MM = 0.2  # geometric unsharpness of a 0.6 mm focal spot, sigma at the detector


@dataclass(frozen=True, slots=True)
class Scene:
    geometry: Geometry
    anatomy: np.ndarray  # float32, (size + 2 margin) × size: relative transmission
    field: np.ndarray  # float32, size × size: primary fluence (collimation, heel, vignetting)
    scatter: np.ndarray  # float32, size × size
    inside: np.ndarray  # bool, size × size: within the collimated field
    area_rp_cm2: float
    roi: np.ndarray  # int64 [row0, row1, col0, col1]
    roi_reference: float  # ROI mean of field*anatomy+scatter for the patient without hardware


def breathing_margin_rows(size: int) -> int:
    k = Geometry(size).px_per_mm
    return math.ceil(BREATHING_PEAK_TO_PEAK_MM / 2.0 * k) + 2


def breathing_shift_mm(t_s: float, phase: float) -> float:
    """Craniocaudal displacement of the anatomy at time ``t_s`` (mm, + = caudal)."""
    return 0.5 * BREATHING_PEAK_TO_PEAK_MM * math.sin(2.0 * math.pi * BREATHING_HZ * t_s + phase)


def build_scene(size: int, view_deg: float, hardware: bool, seed: int) -> Scene:
    geometry = Geometry(size, view_deg, breathing_margin_rows(size))
    m = geometry.margin_rows
    maps = render_anatomy(geometry, seed)
    line = maps.line_integral
    soft_line = line[m : m + size][maps.soft_only[m : m + size]]
    l0 = float(np.median(soft_line)) if soft_line.size else float(np.median(line))
    plain = np.exp(-(line - l0)).astype(np.float32)
    focal_px = FOCAL_BLUR_MM / geometry.spacing_mm
    if focal_px > 0.25:
        plain = cv2.GaussianBlur(plain, (0, 0), focal_px)
    anatomy = plain * render_hardware(geometry) if hardware else plain
    fld = collimated_field(geometry)
    primary = fld.primary * anatomy[m : m + size]
    scatter = scatter_field(primary, geometry)
    soft = maps.soft_only[m : m + size] & fld.inside
    base = primary + scatter
    ref = float(np.median(base[soft])) if soft.any() else float(np.median(base[fld.inside]))
    anatomy = (anatomy / ref).astype(np.float32)
    scatter = (scatter / ref).astype(np.float32)
    half = max(1, round(ABC_ROI_HALF_FRAC * size))
    c = size // 2
    roi = np.array([c - half, c + half, c - half, c + half], dtype=np.int64)
    r0, r1, c0, c1 = roi
    roi_ref = float(
        np.mean(
            fld.primary[r0:r1, c0:c1] * plain[m + r0 : m + r1, c0:c1] / ref + scatter[r0:r1, c0:c1]
        )
    )
    return Scene(
        geometry=geometry,
        anatomy=np.ascontiguousarray(anatomy),
        field=np.ascontiguousarray(fld.primary),
        scatter=np.ascontiguousarray(scatter),
        inside=fld.inside,
        area_rp_cm2=fld.area_rp_cm2,
        roi=roi,
        roi_reference=roi_ref,
    )
