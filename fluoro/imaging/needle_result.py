"""What needle tracking reports for one frame (the contract between tracker, display and bench).

Coordinates: pixel positions are ``(x, y) = (column, row)``, pixel centres at integers, origin
at the top-left pixel; angles in degrees in image coordinates, 0° pointing along +x (right) and
90° along +y (down), measured from hub to tip. Millimetres use the frame's pixel spacing
(row, col) at the detector plane.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

Point = tuple[float, float]

# A detection at or above this confidence is drawn whole: shaft, trajectory and the distance to
# the target; between the tracker's accept level and this, only a dashed, faded shaft.
CONFIDENT = 0.9


@dataclass(frozen=True, slots=True)
class NeedleResult:
    """One frame's needle: ``detected`` False means "not sure", and then every pose field is
    None — the display draws nothing rather than a wrong line. ``confidence`` (0..1) is how
    sure the tracker is; a detection is reported only at or above the tracker's accept level,
    and drawn whole only when ``confident``. A tracker that sees several needles reports the
    active one here (the one whose tip moved most recently) and the rest in ``others``."""

    detected: bool
    confidence: float  # 0..1
    tip_px: Point | None = None
    hub_px: Point | None = None  # proximal end of the visible shaft (hub or entry into the image)
    angle_deg: float | None = None  # hub -> tip direction
    trajectory_end_px: Point | None = None  # the projected path: tip + trajectory_mm along the axis
    trajectory_mm: float = 30.0
    pixel_spacing_mm: Point = (1.0, 1.0)  # (row, col)
    target_px: Point | None = None
    tip_to_target_mm: float | None = None
    # other needles in view besides this one (medial branch blocks leave several), the most
    # likely first; the display draws them faintly, without trajectory
    others: tuple[NeedleResult, ...] = ()

    @property
    def confident(self) -> bool:
        """Sure enough to draw the trajectory and the distance to the target."""
        return self.detected and self.confidence >= CONFIDENT

    @property
    def tip_mm(self) -> Point | None:
        """Tip position in mm from the image origin, (x, y)."""
        return to_mm(self.tip_px, self.pixel_spacing_mm)

    @property
    def hub_mm(self) -> Point | None:
        return to_mm(self.hub_px, self.pixel_spacing_mm)


NOT_DETECTED = NeedleResult(detected=False, confidence=0.0)


def to_mm(point_px: Point | None, pixel_spacing_mm: Point) -> Point | None:
    """(x, y) pixels to (x, y) mm from the image origin, with (row, col) spacing."""
    if point_px is None:
        return None
    return (point_px[0] * pixel_spacing_mm[1], point_px[1] * pixel_spacing_mm[0])


def distance_mm(a_px: Point, b_px: Point, pixel_spacing_mm: Point) -> float:
    """Distance between two pixel positions in mm, with (row, col) spacing."""
    dx_mm = (a_px[0] - b_px[0]) * pixel_spacing_mm[1]
    dy_mm = (a_px[1] - b_px[1]) * pixel_spacing_mm[0]
    return math.hypot(dx_mm, dy_mm)
