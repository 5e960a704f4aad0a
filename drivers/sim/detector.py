"""The image receptor: scintillator blur, lag, gain, electronic noise, 12-bit output.

Order per frame: Poisson quanta -> scintillator blur (separable Gaussian, sigma 0.12 mm at the
detector; it spreads each detected quantum, so the noise becomes spatially correlated) -> lag
(``LAG_FRACTION`` of the previous frame's signal) -> gain and dark offset -> electronic noise
-> round and clip to 0..4095. The gain puts average soft tissue at the ABC's target on
``SOFT_TISSUE_DN`` whatever ``quanta`` is (as a real system's display gain would).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

SCINTILLATOR_SIGMA_MM = 0.12
LAG_FRACTION = 0.04
OFFSET_DN = 64.0
SOFT_TISSUE_DN = 1900.0
ELECTRONIC_NOISE_QUANTA = 0.6  # rms, in detected-quantum equivalents
DN_MAX = 4095


def blur_taps(spacing_mm: float) -> np.ndarray:
    """Three normalised taps of a pixel-integrated Gaussian (the PSF is at most ~1 pixel wide
    for sizes up to 1024; at larger sizes the 3 taps under-blur slightly)."""
    sigma = SCINTILLATOR_SIGMA_MM / spacing_mm
    radius = 1
    edges = np.arange(-radius - 0.5, radius + 1.0, 1.0) / (sigma * math.sqrt(2.0))
    cdf = np.array([0.5 * (1.0 + math.erf(e)) for e in edges])
    taps = np.diff(cdf)
    return (taps / taps.sum()).astype(np.float64)


@dataclass(frozen=True, slots=True)
class DetectorModel:
    taps: np.ndarray  # 1-D blur taps, applied along rows then columns
    lag: float
    gain_dn_per_quantum: float
    offset_dn: float
    electronic_noise_dn: float

    @classmethod
    def for_image(cls, spacing_mm: float, quanta: float) -> DetectorModel:
        gain = (SOFT_TISSUE_DN - OFFSET_DN) / quanta
        return cls(
            taps=blur_taps(spacing_mm),
            lag=LAG_FRACTION,
            gain_dn_per_quantum=gain,
            offset_dn=OFFSET_DN,
            electronic_noise_dn=ELECTRONIC_NOISE_QUANTA * gain,
        )

    @property
    def noise_power_factor(self) -> float:
        """Variance of blurred white noise over its input variance: (sum of taps²)²."""
        return float(np.sum(self.taps**2)) ** 2

    def noise_variance_dn(self, mean_quanta: float, with_lag: bool = True) -> float:
        """Expected variance (DN²) of ``pixels - clean`` in a flat region of ``mean_quanta``."""
        lag_factor = (1.0 - self.lag) ** 2 + self.lag**2 if with_lag else 1.0
        quantum = self.gain_dn_per_quantum**2 * mean_quanta * self.noise_power_factor * lag_factor
        return quantum + self.electronic_noise_dn**2 + 1.0 / 12.0

    def to_quanta(self, dn: np.ndarray | float) -> np.ndarray | float:
        """Expected quanta from a clean-image value (inverse of gain and offset)."""
        return (np.asarray(dn, dtype=np.float64) - self.offset_dn) / self.gain_dn_per_quantum
