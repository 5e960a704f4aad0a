"""How far the anatomy has moved since a key frame: breathing, the patient, the table.

Needle tracking needs it to tell an inserted needle from hardware: a pedicle screw, a rod or
a K-wire is fixed to bone and moves only with the anatomy, while the needle is advanced,
withdrawn and redirected through it. Positions "in anatomy coordinates" are image positions
minus the anatomy's offset, so hardware keeps still in them and a needle being worked moves.

Method: template matching by normalised cross-correlation (Lewis 1995, "Fast normalized
cross-correlation"; OpenCV's ``matchTemplate`` with ``TM_CCOEFF_NORMED``) of the central half
of the key frame's 128-pixel thumbnail within the current thumbnail, over a search range of
``SEARCH_PX`` thumbnail pixels, with a parabolic sub-pixel peak. The thumbnail averages the
frame's pixels (area resampling), so quantum noise and thin objects such as the needle barely
count, and the slow background is removed (a box high-pass), so the anatomy's edges
dominate. The central half keeps the collimator's edges, which are fixed to the detector and
not to the patient, out of the template. (Phase correlation of the whole thumbnail was tried
first: the collimator's edge and the wrap-around of the FFT made its peak jump by tens of
pixels on the independent validation family; matching measured 0.6-1.1 px RMS at 1024²
against that family's truth, about 1 ms a frame.) Offsets are measured against the key
frame rather than summed frame to frame, so errors do not accumulate; when the match becomes
weak (a different scene, a large change of brightness or collimation) or its peak lies at
the edge of the search range, the current frame becomes the key frame and the offset
restarts from the last good one.

Coordinates: offsets (dx, dy) in full-size pixels, x to the right (columns), y down (rows).
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from fluoro.imaging.thumbnail import area_thumbnail

__all__ = ["AnatomyMotion"]

THUMB_PX = 128
HIGHPASS_PX = 9  # box size of the background removed before matching, thumbnail pixels
SEARCH_PX = 16  # largest offset from the key frame looked for, thumbnail pixels
MIN_RESPONSE = 0.3  # normalised correlation below this: the key frame no longer matches
LINE_BAND_PX = 13  # width of the band left out about a tracked line, thumbnail pixels (the
# high-pass spreads a dark line's contrast over HIGHPASS_PX about it)
LINE_AHEAD = 0.25  # ... continued this fraction of the line's length beyond each end

Line = tuple[tuple[float, float], tuple[float, float]]


class AnatomyMotion:
    """Tracks the anatomy's offset (dx, dy), px, from the key frame set at ``reset``.

    ``update(image)`` returns the offset of ``image``'s anatomy from the key frame's; the first
    frame after ``reset`` (or a new size) is the key frame, offset (0, 0). ``response`` is the
    latest match's normalised correlation (-1..1).
    """

    def __init__(self, thumb_px: int = THUMB_PX, search_px: int = SEARCH_PX) -> None:
        self.thumb_px = thumb_px
        self.search_px = search_px
        self._template: np.ndarray | None = None
        self._key_offset = (0.0, 0.0)  # the key frame's own offset (after a re-key)
        self._shape: tuple[int, int] | None = None
        self._rng = np.random.default_rng(0)  # the fill of left-out bands (reproducible)
        self.offset_px = (0.0, 0.0)
        self.response = 1.0

    def reset(self) -> None:
        """Forget the key frame (beam off, new scene): the next frame starts over at (0, 0)."""
        self._template = None
        self._key_offset = (0.0, 0.0)
        self.offset_px = (0.0, 0.0)
        self.response = 1.0

    def update(self, image: np.ndarray, lines: Sequence[Line] = ()) -> tuple[float, float]:
        """The anatomy offset of ``image`` (H×W, any numeric type) from the key frame, px.
        ``lines`` (``((x0, y0), (x1, y1))`` px) are left out of the match: the needles being
        tracked, which move against the anatomy and must not be taken for it (they would be
        all there is to match where the anatomy shows little texture)."""
        shape = (int(image.shape[0]), int(image.shape[1]))
        thumb = self._thumbnail(image)
        mask = self._line_mask(lines, shape)
        if self._template is None or shape != self._shape:  # the first frame: the key frame
            self._shape = shape
            self._key_offset = self.offset_px = (0.0, 0.0)
            self._rekey(thumb)
            return self.offset_px
        lo, hi = self._window()
        # the lines are left out of both: the key frame was taken before some were tracked,
        # and a line moved along itself stays inside its band
        keep = None
        if mask is not None:
            # in the template the band is masked out of the correlation; in the frame it is
            # filled with noise of the frame's own spread, which correlates with nothing (a
            # constant band would be a feature of its own, moving with the needle)
            fill = self._rng.normal(0.0, float(thumb.std()) + 1e-6, int(mask.sum()))
            thumb = thumb.copy()
            thumb[mask] = fill.astype(np.float32)
            keep = (~mask[lo:hi, lo:hi]).astype(np.float32)
        area = thumb[lo - self.search_px:hi + self.search_px,
                     lo - self.search_px:hi + self.search_px]
        if keep is None:
            score = cv2.matchTemplate(area, self._template, cv2.TM_CCOEFF_NORMED)
        else:
            score = cv2.matchTemplate(area, self._template, cv2.TM_CCOEFF_NORMED, mask=keep)
        score = np.nan_to_num(score, nan=-1.0, posinf=-1.0, neginf=-1.0)
        _, peak, _, (x, y) = cv2.minMaxLoc(score)
        edge = score.shape[0] - 1
        if peak < MIN_RESPONSE or x in (0, edge) or y in (0, edge):
            self._key_offset = self.offset_px  # the scene changed: re-key here, keep the offset
            self._rekey(thumb)
            self.response = float(peak)
            return self.offset_px
        self.response = float(peak)
        dx = x + _vertex(score[y, x - 1], score[y, x], score[y, x + 1]) - self.search_px
        dy = y + _vertex(score[y - 1, x], score[y, x], score[y + 1, x]) - self.search_px
        sx, sy = shape[1] / self.thumb_px, shape[0] / self.thumb_px
        self.offset_px = (self._key_offset[0] + dx * sx, self._key_offset[1] + dy * sy)
        return self.offset_px

    def _window(self) -> tuple[int, int]:
        """The template's first and last+1 thumbnail index (the same on both axes)."""
        n = self.thumb_px
        return n // 4 + self.search_px // 2, 3 * n // 4 - self.search_px // 2

    def _rekey(self, thumb: np.ndarray) -> None:
        lo, hi = self._window()
        self._template = thumb[lo:hi, lo:hi].copy()
        self.response = 1.0

    def _line_mask(self, lines: Sequence[Line], shape: tuple[int, int]) -> np.ndarray | None:
        """True on a band of ``LINE_BAND_PX`` thumbnail pixels about each line, continued
        ``LINE_AHEAD`` of its length beyond both ends (it may have moved); None without
        lines."""
        if not lines:
            return None
        mask = np.zeros((self.thumb_px, self.thumb_px), np.uint8)
        sx, sy = self.thumb_px / shape[1], self.thumb_px / shape[0]
        for (x0, y0), (x1, y1) in lines:
            dx, dy = (x1 - x0) * LINE_AHEAD, (y1 - y0) * LINE_AHEAD
            a = (round((x0 - dx) * sx), round((y0 - dy) * sy))
            b = (round((x1 + dx) * sx), round((y1 + dy) * sy))
            cv2.line(mask, a, b, 1, LINE_BAND_PX)
        return mask > 0

    def _thumbnail(self, image: np.ndarray) -> np.ndarray:
        n = self.thumb_px
        small = area_thumbnail(image, (n, n))  # shared with the field's mask: not modified
        return small - cv2.blur(small, (HIGHPASS_PX, HIGHPASS_PX))


def _vertex(left: float, centre: float, right: float) -> float:
    """Sub-pixel offset (-0.5..0.5) of a parabola's vertex through three samples."""
    curvature = left - 2.0 * centre + right
    if curvature >= 0.0:
        return 0.0
    return float(np.clip(0.5 * (left - right) / curvature, -0.5, 0.5))
