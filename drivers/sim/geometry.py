"""Imaging geometry of the simulated mobile C-arm: patient millimetres to detector pixels.

Patient coordinates (mm, origin at the isocentre, in the L4–L5 disc): ``x`` lateral (towards
image right), ``y`` craniocaudal (towards image bottom, i.e. caudal), ``z`` antero-posterior
(positive = posterior, towards the patient's back; the patient lies prone).

Projection: parallel rays at a fixed magnification ``SID / source–isocentre`` (1.6). Beam
divergence (depth-dependent magnification) is not modelled. ``view_deg`` rotates the C-arm about
the craniocaudal axis: 0 is AP (beam along z); the oblique view uses -30° (ipsilateral oblique
towards image right, the side the needle comes from), where a detector column sees
``x' = x cos θ + z sin θ``.

Image coordinates follow ``fluoro.frame``: (x, y) = (column, row), pixel centres at integers,
origin at the top-left pixel centre. ``pixel_spacing_mm`` is at the detector plane (DICOM
Imager Pixel Spacing); divide by ``MAGNIFICATION`` for millimetres at the isocentre.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

SID_MM = 1000.0  # source to image receptor, mobile C-arm
SOURCE_ISO_MM = 625.0  # source to isocentre
SIRP_MM = SOURCE_ISO_MM - 150.0  # IEC 60601-2-43 reference point, 15 cm towards the source
DETECTOR_FOV_MM = 256.0  # square field of a ~10" receptor at the detector plane
MAGNIFICATION = SID_MM / SOURCE_ISO_MM
OBLIQUE_VIEW_DEG = -30.0


@dataclass(frozen=True, slots=True)
class Geometry:
    """Maps patient millimetres to pixels of a ``size`` × ``size`` image.

    ``margin_rows`` extra rows above and below the image let the pre-rendered anatomy shift
    with breathing; ``project(..., margin=True)`` returns rows in that taller buffer.
    """

    size: int
    view_deg: float = 0.0
    margin_rows: int = 0

    @property
    def spacing_mm(self) -> float:
        """Pixel spacing at the detector plane, mm."""
        return DETECTOR_FOV_MM / self.size

    @property
    def px_per_mm(self) -> float:
        """Pixels per millimetre at the isocentre (includes the magnification)."""
        return MAGNIFICATION / self.spacing_mm

    @property
    def centre_px(self) -> float:
        return (self.size - 1) / 2.0

    @property
    def cos_sin(self) -> tuple[float, float]:
        theta = math.radians(self.view_deg)
        return math.cos(theta), math.sin(theta)

    def beam_dir(self) -> np.ndarray:
        """Unit vector of the rays (x, y, z); a column is constant along it."""
        c, s = self.cos_sin
        return np.array([-s, 0.0, c])

    def lateral_mm(self, x_mm: float, z_mm: float) -> float:
        """Detector-column coordinate of a point, in mm at the isocentre."""
        c, s = self.cos_sin
        return x_mm * c + z_mm * s

    def project(self, p_mm: np.ndarray | tuple, *, margin: bool = False) -> tuple[float, float]:
        """(column, row) of a patient point ``(x, y, z)`` mm."""
        x, y, z = (float(v) for v in p_mm)
        k = self.px_per_mm
        col = self.centre_px + self.lateral_mm(x, z) * k
        row = self.centre_px + y * k + (self.margin_rows if margin else 0)
        return col, row
