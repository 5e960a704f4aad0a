"""Per-frame results shared by the tracker's parts: a value computed once for the latest
image (``once_per_image``) and the area-averaged thumbnail (``area_thumbnail``) that the
collimated field's mask and the anatomy's motion are both found on.

Images are H×W arrays; a thumbnail's size is given as OpenCV's ``(width, height)``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import cv2
import numpy as np

__all__ = ["area_thumbnail", "once_per_image"]

T = TypeVar("T")

_PER_IMAGE: dict[object, tuple[np.ndarray, object]] = {}


def once_per_image(name: object, image: np.ndarray, compute: Callable[[np.ndarray], T]) -> T:
    """``compute(image)``, kept for the latest image under ``name``: every measurement of a
    frame asks again, the frame's answer does not change (keyed by identity, so a new frame,
    even at the address of a freed one, is computed afresh: the entry holds its image). Not
    shared between threads: the tracker runs on one."""
    hit = _PER_IMAGE.get(name)
    if hit is not None and hit[0] is image:
        return hit[1]  # type: ignore[return-value]
    value = compute(image)
    _PER_IMAGE[name] = (image, value)
    return value


def area_thumbnail(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``image`` shrunk to ``size`` (width, height) by area averaging (OpenCV's
    ``INTER_AREA``), float32, computed once per image and size. Read-only by contract: the
    callers share it."""
    return once_per_image(("thumbnail", size), image, lambda im: cv2.resize(
        np.asarray(im), size, interpolation=cv2.INTER_AREA).astype(np.float32, copy=False))
