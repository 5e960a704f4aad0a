"""From line integrals to a detector frame: the family's image formation.

Per pixel, the expected primary quanta are ``P = q0 · T_coll · V · exp(-A)``, ``A = Σ μ L``
(``T_coll`` the collimator's transmission, ``V`` a slight vignetting in circular fields).
Scatter is made where the primary crosses the patient: a first-order model takes its source as
``P · A`` (the scatter-to-primary ratio grows with the path; none comes from air), spread by a
Gaussian of 25–45 mm at the detector (on a coarse grid) and scaled so that behind the field's
median soft-tissue path it is ``scatter_to_primary`` of the primary; so the field outside the
blades is dark but not black, and air beside the patient does not light up the anatomy;
the detector's blur (a Gaussian of 0.5–1 px: focal spot and scintillator, the presampling
MTF) acts on the expected image. The counted quanta are Poisson-distributed about it (white
noise: ``quanta`` is the per-pixel SNR², not inflated by the blur). Detector lag carries
``lag`` of the previous frame's signal over: ``S_t = (1 - lag) · N_t + lag · S_{t-1}``, which
keeps the mean brightness. Grey values: ``offset_dn + gain_dn · S`` plus a little read-out
noise, rounded, clipped to 12 bits (0..4095) as uint16. The truth's ``clean`` image is the same
chain without the Poisson and read-out noise (float32, same grey scale, same lag).
"""

from __future__ import annotations

import cv2
import numpy as np

from drivers.family.scene import Scene

MAX_DN = 4095.0


class Detector:
    """Image formation for one stream (stateful: the lag carries the last frame)."""

    def __init__(self, scene: Scene, rng: np.random.Generator) -> None:
        self.setup = scene.detector
        self.rng = rng
        n = scene.size_px
        gain = scene.collimation.astype(np.float32) * np.float32(self.setup.q0)
        field = scene.field
        if self.setup.vignetting and field.radius_px:
            coords = np.arange(n, dtype=np.float32)
            cx, cy = field.centre_px
            r2 = ((coords[None, :] - cx) ** 2 + (coords[:, None] - cy) ** 2) / field.radius_px**2
            gain *= (1.0 - self.setup.vignetting * np.clip(r2, 0, 1.5)).astype(np.float32)
        self._gain = gain
        self._scatter_factor = max(1, int(self.setup.scatter_sigma_px / 4))
        self._noisy: np.ndarray | None = None
        self._clean: np.ndarray | None = None

    def reset_lag(self) -> None:
        """Forget the previous frame (after the beam was off: the lag has decayed)."""
        self._noisy = self._clean = None

    def _scatter(self, primary: np.ndarray) -> np.ndarray:
        n = primary.shape[0]
        k = self._scatter_factor
        small = cv2.resize(primary, (max(1, n // k), max(1, n // k)),
                           interpolation=cv2.INTER_AREA)
        sigma = self.setup.scatter_sigma_px / k
        small = cv2.GaussianBlur(small, (0, 0), sigma, borderType=cv2.BORDER_REFLECT)
        return cv2.resize(small, (n, n), interpolation=cv2.INTER_LINEAR)

    def expected(self, attenuation: np.ndarray) -> np.ndarray:
        """Expected detected quanta per pixel (float32) for a line-integral map."""
        primary = self._gain * np.exp(-attenuation, dtype=np.float32)
        source = primary * np.maximum(attenuation, 0.0)
        scale = np.float32(self.setup.scatter_to_primary / self.setup.scatter_ref_line_integral)
        signal = primary + scale * self._scatter(source)
        return cv2.GaussianBlur(signal, (0, 0), self.setup.blur_px,
                                borderType=cv2.BORDER_REFLECT)

    def expose(self, attenuation: np.ndarray, want_clean: bool = True,
               ) -> tuple[np.ndarray, np.ndarray | None]:
        """One pulse: (uint16 grey frame, float32 noise-free grey image or None)."""
        s = self.setup
        expected = self.expected(attenuation)
        counted = self.rng.poisson(expected).astype(np.float32)
        lag = np.float32(s.lag)
        if self._noisy is not None and lag > 0:
            counted = (1 - lag) * counted + lag * self._noisy
            clean = (1 - lag) * expected + lag * self._clean
        else:
            clean = expected
        self._noisy, self._clean = counted, clean
        grey = (np.float32(s.offset_dn) + np.float32(s.gain_dn) * counted
                + np.float32(s.read_noise_dn)
                * self.rng.standard_normal(counted.shape, dtype=np.float32))
        pixels = np.clip(np.rint(grey), 0, MAX_DN).astype(np.uint16)
        clean_grey = None
        if want_clean:
            clean_grey = np.clip(np.float32(s.offset_dn) + np.float32(s.gain_dn) * clean, 0,
                                 MAX_DN).astype(np.float32)
        return pixels, clean_grey


def shift_layer(layer: np.ndarray, pad_px: int, size_px: int,
                shift_px: np.ndarray) -> np.ndarray:
    """The image-sized window of a padded canvas moved by ``shift_px`` (x, y), bilinear."""
    matrix = np.array([[1.0, 0.0, pad_px - shift_px[0]], [0.0, 1.0, pad_px - shift_px[1]]],
                      np.float64)
    return cv2.warpAffine(layer, matrix, (size_px, size_px),
                          flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                          borderMode=cv2.BORDER_REPLICATE)
