"""The X-ray field on the detector: collimation, heel effect, vignetting, scatter.

All of these are fixed to the C-arm (they do not move with the patient), so they are computed
once per source as H×W float32 maps.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from drivers.sim.geometry import SID_MM, SIRP_MM, Geometry

IRIS_RADIUS_FRAC = 0.47  # circular iris, radius as a fraction of the image width
SHUTTER_HALF_WIDTH_FRAC = 0.42  # lateral parallel shutters
PENUMBRA_MM = 2.0  # width of the soft collimator edge at the detector plane
BLADE_TRANSMISSION = 0.012  # lead blades leak a little (plus scatter, added elsewhere)
HEEL_EFFECT = 0.05  # ±5 % along the anode–cathode axis (image rows)
VIGNETTING = 0.18  # relative loss at the iris edge, quadratic in radius
SCATTER_TO_PRIMARY = 0.25  # behind average soft tissue, with an anti-scatter grid
SCATTER_SIGMA_MM = 30.0  # spread of the scatter field at the detector plane


@dataclass(frozen=True, slots=True)
class Field:
    """``primary``: relative primary fluence per pixel (collimation × heel × vignetting);
    ``inside``: True where the pixel is within the collimated field; ``area_rp_cm2``: field
    area at the patient entrance reference point."""

    primary: np.ndarray
    inside: np.ndarray
    area_rp_cm2: float


def _smooth_step(distance_px: np.ndarray, width_px: float) -> np.ndarray:
    """0 outside, 1 inside, linear-erf-like ramp of ``width_px`` centred on the edge."""
    return np.clip(0.5 - distance_px / max(width_px, 1e-6), 0.0, 1.0)


def collimated_field(geometry: Geometry) -> Field:
    """Iris + shutters with a soft edge, heel effect and vignetting."""
    n = geometry.size
    c = geometry.centre_px
    yy, xx = np.mgrid[0:n, 0:n].astype(np.float32)
    x = xx - c
    y = yy - c
    radius = np.hypot(x, y)
    iris_px = IRIS_RADIUS_FRAC * n
    shutter_px = SHUTTER_HALF_WIDTH_FRAC * n
    width_px = PENUMBRA_MM / geometry.spacing_mm
    open_iris = _smooth_step(radius - iris_px, width_px)
    open_shutter = _smooth_step(np.abs(x) - shutter_px, width_px)
    opening = open_iris * open_shutter
    collimation = BLADE_TRANSMISSION + (1.0 - BLADE_TRANSMISSION) * opening
    heel = 1.0 + HEEL_EFFECT * (y / c)
    vignette = 1.0 - VIGNETTING * (radius / iris_px) ** 2
    primary = (collimation * heel * np.clip(vignette, 0.5, 1.0)).astype(np.float32)
    inside = opening > 0.5
    area_det_mm2 = float(opening.sum()) * geometry.spacing_mm**2
    area_rp_cm2 = area_det_mm2 * (SIRP_MM / SID_MM) ** 2 / 100.0
    return Field(primary=primary, inside=inside, area_rp_cm2=area_rp_cm2)


def scatter_field(primary_image: np.ndarray, geometry: Geometry) -> np.ndarray:
    """Scatter reaching the detector: a wide blur of the primary image, SPR-scaled.

    ``primary_image`` is the relative primary signal (field × anatomy); the result has the same
    scale, with ``SCATTER_TO_PRIMARY`` times the primary of the field's average where the field
    is open.
    """
    sigma_px = SCATTER_SIGMA_MM / geometry.spacing_mm
    small = max(16, geometry.size // 8)
    factor = geometry.size / small
    reduced = cv2.resize(primary_image, (small, small), interpolation=cv2.INTER_AREA)
    blurred = cv2.GaussianBlur(reduced, (0, 0), sigma_px / factor, borderType=cv2.BORDER_REFLECT)
    scatter = cv2.resize(blurred, (geometry.size, geometry.size), interpolation=cv2.INTER_LINEAR)
    return (SCATTER_TO_PRIMARY * scatter).astype(np.float32)
