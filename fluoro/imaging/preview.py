"""8-bit previews of 12/16-bit frames, for pictures saved by tests, the bench and snapshots."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np


def display_window(pixels: np.ndarray, low_pct: float = 0.5,
                   high_pct: float = 99.5) -> tuple[float, float]:
    """A fixed (low, high) grey window from percentiles of the exposed area of one frame.

    Pixels below 30 % of the median of the non-zero pixels (collimator blades, dark offset) are
    left out, so the window follows the anatomy, not the shutters.
    """
    values = np.asarray(pixels, dtype=np.float32)
    positive = values[values > 0]
    if positive.size == 0:
        return 0.0, 1.0
    in_field = positive[positive > 0.3 * float(np.median(positive))]
    low, high = np.percentile(in_field if in_field.size else positive, (low_pct, high_pct))
    return float(low), float(max(high, low + 1.0))


def to_u8(pixels: np.ndarray, window: tuple[float, float]) -> np.ndarray:
    """Map ``window`` (low, high) linearly to 0..255, clipping outside."""
    low, high = window
    scaled = (pixels.astype(np.float32) - low) * (255.0 / (high - low))
    return np.clip(scaled, 0, 255).astype(np.uint8)


def save_png(pixels: np.ndarray, path: str | Path,
             window: tuple[float, float] | None = None) -> Path:
    """Write ``pixels`` (H×W, any numeric type) as an 8-bit grey PNG; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    image = to_u8(pixels, window if window is not None else display_window(pixels))
    if not cv2.imwrite(str(path), image):
        raise OSError(f"{path}: could not write PNG")
    return path
