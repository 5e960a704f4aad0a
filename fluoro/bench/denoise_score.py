"""Scoring denoised frames against the noise-free truth: the ``denoise`` section of the bench.

Conventions (the same for the denoiser and every baseline, see ``fluoro.bench.denoise_baselines``):

- **Field**: scores are taken inside the collimated field only, found on the truth image:
  pixels above 15 % of the way from its 1st to its 99th percentile, closed with a 31×31 square
  (so dark objects inside the field, such as the needle or screws, belong to it).
- **PSNR** (dB) = 10·log10(4095² / MSE) with the 12-bit peak, 4095 DN: a fixed peak keeps numbers
  comparable between frames, methods and sources (differences in dB do not depend on the peak).
- **SSIM**: Wang et al. 2004 ("Image quality assessment: from error visibility to structural
  similarity", IEEE TIP 13(4)): Gaussian window σ = 1.5 px (11×11), K1 = 0.01, K2 = 0.03,
  L = 4095, computed in float32 with ``cv2.GaussianBlur``, averaged over the field.
- **needle_cnr_retained**: on frames where the true needle tip moved more than 0.5 px since the
  previous frame, the needle contrast C = mean(background band) − mean(needle core) is measured
  on the output and on the truth with the same masks: core = pixels within 1 px of the shaft
  (segment tip→hub; where the hub is outside the image, the shaft direction is found on the
  truth), band = pixels 4–7 px from the shaft alongside it. Using one common noise term (the
  noisy input's), the CNR ratio reduces to ΣC_out / ΣC_truth: ≈ 1 for a lag-free denoiser (and
  for the noisy input itself), lower when the moving needle is smeared, lagged or ghosted.
  ``needle_cnr_gain`` is the real CNR ratio output/input, with each noise σ measured as the std
  of (image − truth) in the band.

Per-frame scores are averaged (mean); ``psnr_out_db_p05`` is the 5th percentile (worst frames).
"""

from __future__ import annotations

import math
from typing import Any

import cv2
import numpy as np

from fluoro.frame import Frame, WorkItem

__all__ = ["DenoiseScorer", "field_mask", "needle_contrast", "psnr_db", "ssim"]

PEAK_DN = 4095.0
_MOVED_PX = 0.5
_CORE_PX = 1.0
_BAND_PX = (4.0, 7.0)
_SHAFT_MAX_PX = 150.0


def field_mask(clean: np.ndarray) -> np.ndarray:
    """Boolean mask of the collimated field on a noise-free image (see the module docstring)."""
    lo, hi = np.percentile(clean[::4, ::4], (1.0, 99.0))
    mask = (clean > lo + 0.15 * (hi - lo)).astype(np.uint8)
    mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, np.ones((31, 31), np.uint8))
    return mask.astype(bool)


def psnr_db(image: np.ndarray, clean: np.ndarray, mask: np.ndarray) -> float:
    """PSNR (dB) of ``image`` against ``clean`` inside ``mask``, 12-bit peak."""
    diff = image.astype(np.float32)[mask] - clean[mask]
    mse = float(np.mean(diff.astype(np.float64) ** 2))
    return float("inf") if mse == 0 else 10.0 * math.log10(PEAK_DN**2 / mse)


def ssim(image: np.ndarray, clean: np.ndarray, mask: np.ndarray) -> float:
    """Mean SSIM (Wang et al. 2004, Gaussian window σ 1.5, L = 4095) inside ``mask``."""
    x = image.astype(np.float32)
    y = clean.astype(np.float32)
    c1 = (0.01 * PEAK_DN) ** 2
    c2 = (0.03 * PEAK_DN) ** 2

    def blur(a: np.ndarray) -> np.ndarray:
        return cv2.GaussianBlur(a, (11, 11), 1.5, borderType=cv2.BORDER_REFLECT)

    mx, my = blur(x), blur(y)
    sxx = blur(x * x) - mx * mx
    syy = blur(y * y) - my * my
    sxy = blur(x * y) - mx * my
    num = (2 * mx * my + c1) * (2 * sxy + c2)
    den = (mx * mx + my * my + c1) * (sxx + syy + c2)
    return float(np.mean((num / den)[mask]))


def _shaft_direction(clean: np.ndarray, tip: np.ndarray) -> np.ndarray:
    """Unit vector from the tip along the shaft: the ray from the tip that is darkest relative
    to rays 5 px to either side of it, on the noise-free image (1° steps)."""
    angles = np.radians(np.arange(0.0, 360.0, 1.0))
    v = np.stack([np.cos(angles), np.sin(angles)], axis=1)
    nrm = np.stack([-v[:, 1], v[:, 0]], axis=1)
    t = np.arange(5.0, 60.0)

    def sample(offset: float) -> np.ndarray:
        xs = tip[0] + np.outer(v[:, 0], t) + offset * nrm[:, 0:1]
        ys = tip[1] + np.outer(v[:, 1], t) + offset * nrm[:, 1:2]
        vals = cv2.remap(clean, xs.astype(np.float32), ys.astype(np.float32),
                         cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        return vals.mean(axis=1)

    score = sample(0.0) - 0.5 * (sample(-5.0) + sample(5.0))
    return v[int(np.argmin(score))]


def _needle_masks(shape: tuple[int, int], tip: np.ndarray, end: np.ndarray
                  ) -> tuple[tuple[slice, slice], np.ndarray, np.ndarray] | None:
    h, w = shape
    margin = _BAND_PX[1] + 1
    x0 = int(max(0, math.floor(min(tip[0], end[0]) - margin)))
    x1 = int(min(w, math.ceil(max(tip[0], end[0]) + margin) + 1))
    y0 = int(max(0, math.floor(min(tip[1], end[1]) - margin)))
    y1 = int(min(h, math.ceil(max(tip[1], end[1]) + margin) + 1))
    if x1 <= x0 or y1 <= y0:
        return None
    yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float64)
    seg = end - tip
    length2 = float(seg @ seg)
    if length2 < 1.0:
        return None
    t = ((xx - tip[0]) * seg[0] + (yy - tip[1]) * seg[1]) / length2
    inside = (t >= 0.0) & (t <= 1.0)
    tc = np.clip(t, 0.0, 1.0)
    dist = np.hypot(xx - (tip[0] + tc * seg[0]), yy - (tip[1] + tc * seg[1]))
    core = dist <= _CORE_PX
    band = inside & (dist >= _BAND_PX[0]) & (dist <= _BAND_PX[1])
    if core.sum() < 5 or band.sum() < 10:
        return None
    return (slice(y0, y1), slice(x0, x1)), core, band


def needle_contrast(image: np.ndarray, roi: tuple[slice, slice], core: np.ndarray,
                    band: np.ndarray) -> float:
    """Background-band mean minus needle-core mean (DN) of ``image`` (positive: dark needle)."""
    patch = image[roi].astype(np.float64)
    return float(patch[band].mean() - patch[core].mean())


class DenoiseScorer:
    """Bench scorer of the ``denoise`` section (see the module docstring for the definitions).

    Parameters
    ----------
    every : score every ``every``-th frame with clean truth (the needle term uses every frame
        where the needle moved, whatever ``every``).
    """

    section_name = "denoise"

    def __init__(self, every: int = 1) -> None:
        self.every = max(1, int(every))
        self._seen = 0
        self._psnr_in: list[float] = []
        self._psnr_out: list[float] = []
        self._ssim_in: list[float] = []
        self._ssim_out: list[float] = []
        self._c_out: list[float] = []
        self._c_in: list[float] = []
        self._c_truth: list[float] = []
        self._cnr_gain: list[float] = []
        self._last_tip: np.ndarray | None = None
        self._mask: tuple[np.ndarray, np.ndarray] | None = None  # (clean it came from, mask)

    def add(self, frame: Frame, item: WorkItem) -> None:
        self.add_image(frame, item.image)

    def add_image(self, frame: Frame, image: np.ndarray) -> None:
        """Score ``image`` (the processed version of ``frame``) against ``frame.truth``."""
        truth = frame.truth
        if truth is None or truth.clean is None or image.shape != frame.shape:
            self._last_tip = None
            return
        clean = truth.clean
        if self._seen % self.every == 0:
            mask = self._field(clean)
            self._psnr_in.append(psnr_db(frame.pixels, clean, mask))
            self._psnr_out.append(psnr_db(image, clean, mask))
            self._ssim_in.append(ssim(frame.pixels, clean, mask))
            self._ssim_out.append(ssim(image, clean, mask))
        self._seen += 1
        tip = None if truth.tip_px is None else np.asarray(truth.tip_px, dtype=np.float64)
        moved = (tip is not None and self._last_tip is not None
                 and float(np.hypot(*(tip - self._last_tip))) > _MOVED_PX)
        self._last_tip = tip
        if moved and truth.needle_visible and tip is not None:
            self._add_needle(frame, image, clean, tip)

    def _field(self, clean: np.ndarray) -> np.ndarray:
        if self._mask is None or self._mask[0] is not clean:
            self._mask = (clean, field_mask(clean))
        return self._mask[1]

    def _add_needle(self, frame: Frame, image: np.ndarray, clean: np.ndarray,
                    tip: np.ndarray) -> None:
        truth = frame.truth
        assert truth is not None
        if truth.hub_px is not None:
            end = np.asarray(truth.hub_px, dtype=np.float64)
            seg = end - tip
            length = float(np.hypot(*seg))
            if length > _SHAFT_MAX_PX:
                end = tip + seg * (_SHAFT_MAX_PX / length)
        else:
            end = tip + _SHAFT_MAX_PX * _shaft_direction(clean, tip)
        h, w = frame.shape
        end = np.array([min(max(end[0], 0.0), w - 1.0), min(max(end[1], 0.0), h - 1.0)])
        masks = _needle_masks(frame.shape, tip, end)
        if masks is None:
            return
        roi, core, band = masks
        c_truth = needle_contrast(clean, roi, core, band)
        if abs(c_truth) < 1.0:
            return
        c_out = needle_contrast(image, roi, core, band)
        c_in = needle_contrast(frame.pixels, roi, core, band)
        self._c_truth.append(c_truth)
        self._c_out.append(c_out)
        self._c_in.append(c_in)
        noise_out = float(np.std(image[roi][band].astype(np.float64) - clean[roi][band]))
        noise_in = float(np.std(frame.pixels[roi][band].astype(np.float64) - clean[roi][band]))
        if noise_out > 0 and noise_in > 0 and c_in != 0:
            self._cnr_gain.append((c_out / noise_out) / (c_in / noise_in))

    def section(self) -> dict[str, Any] | None:
        if not self._psnr_out:
            return None
        section: dict[str, Any] = {
            "psnr_in_db": round(float(np.mean(self._psnr_in)), 3),
            "psnr_out_db": round(float(np.mean(self._psnr_out)), 3),
            "psnr_out_db_p05": round(float(np.percentile(self._psnr_out, 5)), 3),
            "ssim_in": round(float(np.mean(self._ssim_in)), 4),
            "ssim_out": round(float(np.mean(self._ssim_out)), 4),
            "frames_scored": len(self._psnr_out),
            "psnr_peak_dn": PEAK_DN,
        }
        if self._c_truth:
            section["needle_cnr_retained"] = round(sum(self._c_out) / sum(self._c_truth), 4)
            section["needle_contrast_in_over_truth"] = round(
                sum(self._c_in) / sum(self._c_truth), 4)
            section["needle_frames_scored"] = len(self._c_truth)
            if self._cnr_gain:
                section["needle_cnr_gain"] = round(float(np.median(self._cnr_gain)), 3)
        return section
