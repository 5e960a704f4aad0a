"""Simulated low-dose acquisition of a non-simulated source: Poisson quantum noise at a dose.

``fluoro bench --source dicom:PATH --quanta Q`` takes each source frame as the noise-free truth
and draws the quantum noise a detector would see at ``Q`` detected quanta per pixel (mean over
the collimated field), so the denoiser can be scored on real anatomy (DESIGN.md, "Command line").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from fluoro.bench.denoise_score import field_mask
from fluoro.frame import Frame, Truth

__all__ = ["add_poisson_noise"]

TARGET_DN = 1900.0  # the in-field mean lands here, as the simulator's ABC puts soft tissue
DN_MAX = 4095  # 12-bit output
HEADROOM = 0.85  # the first frame's 99.9th percentile stays below this fraction of DN_MAX


def add_poisson_noise(frames: Sequence[Frame], quanta: float, seed: int,
                      target_dn: float = TARGET_DN) -> list[Frame]:
    """Frames with Poisson noise at ``quanta`` detected quanta per pixel.

    One scale for the whole sequence (from the first frame, so brightness does not flicker):
    the first frame's mean inside its collimated field (``fluoro.bench.denoise_score.field_mask``)
    becomes ``quanta`` quanta per pixel. Each pixel's expected quanta λ = pixel · scale; the
    noisy frame is Poisson(λ) · gain with gain = ``target_dn`` / ``quanta`` DN per quantum
    (lowered if needed so that the first frame's 99.9th percentile stays below 85 % of 4095),
    rounded and clipped to 12 bits (uint16); the truth's ``clean`` is λ · gain (float32, DN).
    Variance is therefore gain · mean (DN²): pure Poisson, no electronic noise.

    Parameters
    ----------
    frames : the source frames (any integer or float pixels, ≥ 0).
    quanta : mean detected quanta per pixel in the field, > 0.
    seed : seed of the noise generator (the same seed gives the same noise).

    Returns
    -------
    New frames; other fields are kept, and an existing truth keeps its other fields; without one
    the truth is ``Truth(needle_visible=False, tip_px=None, hub_px=None, kar_mgy=0,
    dap_gycm2=0, clean=...)``.
    """
    if not quanta > 0:
        raise ValueError(f"add_poisson_noise: quanta must be > 0, got {quanta!r}")
    if not frames:
        return []
    first = frames[0].pixels.astype(np.float32)
    in_field = first[field_mask(first)]
    mean = float(in_field.mean()) if in_field.size else float(first.mean())
    if mean <= 0:
        raise ValueError("add_poisson_noise: the first frame is black, no dose scale")
    quanta_per_unit = quanta / mean
    gain = target_dn / quanta
    top = float(np.percentile(first, 99.9)) * quanta_per_unit * gain
    if top > HEADROOM * DN_MAX:  # keep the bright end inside 12 bits
        gain *= HEADROOM * DN_MAX / top
    rng = np.random.default_rng(seed)
    noisy_frames = []
    for frame in frames:
        lam = np.maximum(frame.pixels.astype(np.float64), 0.0) * quanta_per_unit
        noisy = np.clip(np.rint(rng.poisson(lam) * gain), 0, DN_MAX).astype(np.uint16)
        noisy.flags.writeable = False
        clean = (lam * gain).astype(np.float32)
        if frame.truth is not None:
            truth = replace(frame.truth, clean=clean)
        else:
            truth = Truth(needle_visible=False, tip_px=None, hub_px=None, kar_mgy=0.0,
                          dap_gycm2=0.0, clean=clean)
        noisy_frames.append(replace(frame, pixels=noisy, truth=truth))
    return noisy_frames
