"""Real-time spatio-temporal denoising of pulsed fluoroscopy: the ``denoise`` pipeline stage.

Method (per frame, causal: only the current and past frames are used):

1. **Noise model.** Quantum (Poisson) plus electronic (Gaussian) noise gives a variance affine in
   the signal, ``var = a·DN + b`` (Foi et al. 2008, "Practical Poissonian-Gaussian noise
   modeling and fitting for single-image raw-data", IEEE TIP 17(10)). ``estimate_noise`` fits
   ``a`` and ``b`` from robust (3σ-trimmed) residual variances binned by local mean: temporal
   residuals of two consecutive frames when there are two (they also carry the detector's
   spatial noise correlation), spatial ones otherwise. It is re-fitted on the second frame
   after every reset.
2. **Variance stabilisation.** The generalised Anscombe transform (Mäkitalo & Foi 2013,
   "Optimal inversion of the generalized Anscombe transformation for Poisson-Gaussian noise",
   IEEE TIP 22(1)), computed on the fly in the kernel, makes the noise σ = 1 everywhere, so
   all tests below are in units of the noise, not DN.
3. **Motion-gated recursive averaging.** Per pixel, the 3×3 mean of (frame − running estimate)
   is compared with its own noise level; where it is small the pixel keeps averaging (a
   Kalman-like running mean over ``n`` frames, capped at ``n_max``), where it is large the pixel
   restarts from the current frame (no ghost of a moving needle or of breathing anatomy), with a
   linear transition. The noise level of that 3×3 mean is self-calibrated from the median of the
   statistic over each frame (it depends on the detector's spatial noise correlation).
4. **Edge-preserving spatial filtering** of the estimate: a self-guided filter (He, Sun & Tang
   2013) on 5×5 windows whose regularisation is the estimate's own noise variance, ~1/n: strong
   where few frames were averaged (moving pixels, the first frames, after a scene cut), light
   where many were, and everywhere it keeps edges whose contrast stands above the noise (the
   needle). Then the asymptotically unbiased inverse transform back to DN.
5. **Global brightness** changes (the ABC settling after beam-on) are followed by rescaling the
   estimate with the median frame-to-frame ratio on a sparse grid, so they do not lag.
6. **Resets**: ``reset()`` (beam off/on), a new frame size, and a scene cut (more than half of
   the pixels fail the motion test, sampled on every 8th row) restart the average; the noise
   is re-fitted after each.

All of it runs as one streaming pass over the rows (``_denoise_kernels.denoise_frame``): the
state is read and written once per frame, and every row is revisited only while it is still in
the core's cache.

State: the running estimate (float32) and frame counts (uint8, in 1/16 frame), a reference to
the previous frame's (read-only) pixels and a sparse grid (float32, ~16,000 points): 7.06
bytes per pixel, 7.4 MB at 1024² (``Denoiser.state_bytes``). Output frames come from a small
pool that reuses an array only once nothing else refers to it.

Example
-------
>>> den = Denoiser()
>>> den.warm_up((512, 512))          # compiles the kernels (or loads them from numba's cache)
>>> # in the pipeline: den(item) replaces item.image with a float32 DN image
"""

from __future__ import annotations

import contextlib
import math
import sys
from dataclasses import dataclass

import numpy as np

from fluoro.frame import WorkItem
from fluoro.imaging import _denoise_kernels as kernels

__all__ = ["Denoiser", "NoiseModel", "estimate_noise", "vst_lut"]

_MIN_BIN_COUNT = 200
_SCENE_CUT_FRACTION = 0.5  # more than this fraction of pixels restarted: a new scene
_GAIN_STEP = 0.003  # relative brightness change of the whole image that is followed
_GAIN_SIGNIFICANCE = 5.0  # ... if it is also this many standard errors of its estimate
_GRID_POINTS = 16384  # points of the sparse grid used to follow the gain (at most every 8th
_GRID_MAX_STEP = 8  # pixel of every 8th row: 16,384 at 1024², all pixels at 128²)
_N_MAX_LIMIT = 255 / kernels.N_SCALE  # frame counts are uint8 in 1/N_SCALE frame
_POOL_SIZE = 6  # output arrays kept for reuse
_POOL_FREE_REFCOUNT = 3  # sys.getrefcount of a pooled array nothing else holds (list, loop, call)


@dataclass(frozen=True, slots=True)
class NoiseModel:
    """Poisson-Gaussian noise of the detector: variance (DN²) = ``a``·mean (DN) + ``b``.

    ``a`` is the gain in DN per detected quantum (times the detector's noise-power factor),
    ``b`` the signal-independent part (electronic noise and offset; may be negative).
    """

    a: float
    b: float

    def variance_dn2(self, mean_dn: np.ndarray | float) -> np.ndarray | float:
        return self.a * np.asarray(mean_dn, dtype=np.float64) + self.b


def estimate_noise(current: np.ndarray, previous: np.ndarray | None = None,
                   stride: int = 2) -> NoiseModel:
    """Fit the Poisson-Gaussian model from one frame (spatial residuals) or two consecutive
    frames of the same scene (temporal residuals, preferred).

    Residuals are binned by 3×3 local mean (64-DN bins); in each bin with enough pixels the
    variance is the mean squared residual within 3 robust σ (σ from the median absolute
    residual: robust to edges and motion, exact on quantised data), then ``var = a·mean + b``
    is fitted by weighted least squares (Foi et al. 2008). Bins that touch 0 or 4095 are left
    out (clipping).

    Parameters
    ----------
    current, previous : (H, W) uint16 DN arrays.
    stride : use every ``stride``-th row and column.
    """
    current = np.ascontiguousarray(current, dtype=np.uint16)
    if current.size < 256 * 256:
        stride = 1  # small frames: every pixel counts
    temporal = previous is not None and previous.shape == current.shape
    prev = np.ascontiguousarray(previous, dtype=np.uint16) if temporal else current
    hist = np.zeros((kernels.MEAN_BINS, kernels.ABS_BINS), np.int64)
    kernels.noise_histograms(prev, current, temporal, stride, hist)
    factor = 2.0 if temporal else 1.25  # variance of the residual over the pixel variance
    min_count = min(_MIN_BIN_COUNT, max(16, int(hist.sum()) // 64))
    means, variances, weights = [], [], []
    for mb in range(1, kernels.MEAN_BINS - 1):  # skip the bins touching 0 and 4095 (clipping)
        counts = hist[mb]
        total = int(counts.sum())
        if total < min_count:
            continue
        cum = np.cumsum(counts)
        median = float(np.searchsorted(cum, total / 2.0)) + 0.5
        # second moment of the residuals within 3 robust sigmas (exact on integer lattices,
        # where a median is not), corrected for the Gaussian truncation (0.9733 at 3σ)
        cut = min(int(3.0 * median / 0.6745) + 1, kernels.ABS_BINS)
        k = np.arange(cut) + (0.0 if temporal else 0.5)
        kept = counts[:cut]
        var = float(kept @ (k * k)) / max(float(kept.sum()), 1.0) / 0.9733 / factor
        if (mb + 0.5) * 64.0 + 3.0 * math.sqrt(var) > kernels.DN_LEVELS - 1:
            continue  # clipped at the 12-bit top
        means.append((mb + 0.5) * 64.0)
        variances.append(var)
        weights.append(math.sqrt(total) / max(var, 1e-6))
    if not means:
        raise ValueError("estimate_noise: the frame has too few unclipped pixels to fit noise")
    m = np.array(means)
    v = np.array(variances)
    wts = np.array(weights)
    if len(m) >= 2 and np.ptp(m) > 0:
        a, b = np.polyfit(m, v, 1, w=wts)
    else:
        a, b = 0.0, float(v[0])
    if a <= 1e-6:  # signal-independent noise: keep a small gain so the transform stays defined
        a = max(float(np.average(v, weights=wts)) * 1e-3, 1e-6)
        b = float(np.average(v, weights=wts)) - a * float(np.average(m, weights=wts))
    return NoiseModel(float(a), float(b))


def vst_lut(model: NoiseModel) -> np.ndarray:
    """Generalised Anscombe transform of every uint16 DN value (float32, 65536 entries):
    ``f(z) = 2·sqrt(z/a + b/a² + 3/8)``, noise σ ≈ 1 after it (Mäkitalo & Foi 2013); the
    kernels compute the same ``_denoise_kernels.vst`` on the fly (in float32)."""
    values = np.arange(65536, dtype=np.uint16)[np.newaxis, :]
    lut = np.empty(values.shape, np.float32)
    kernels.vst_into(values, *_vst_params(model), lut)
    return lut[0]


def _vst_params(model: NoiseModel) -> tuple[float, float]:
    """(1/a, b/a² + 3/8): the arguments of ``_denoise_kernels.vst``."""
    return 1.0 / model.a, model.b / model.a**2 + 0.375


def _grid_step(shape: tuple[int, ...]) -> int:
    """Spacing (pixels) of the gain-tracking grid: about ``_GRID_POINTS`` points, at most every
    ``_GRID_MAX_STEP``-th pixel."""
    pixels = shape[0] * shape[1]
    return max(1, min(_GRID_MAX_STEP, int(math.sqrt(pixels / _GRID_POINTS))))


class Denoiser:
    """The ``denoise`` stage: causal motion-adaptive spatio-temporal filter (module docstring).

    Parameters
    ----------
    n_max : cap on the number of frames averaged per pixel (1 to 255/16 ≈ 15.9).
    k_low, k_high : motion test bounds, in noise standard deviations of the 3×3 mean
        difference (below: static; above: moving; linear between).
    spatial_noise : noise variance of one stabilised frame as the 5×5 guided filter sees it
        (1 for white noise; larger smooths more), divided by the frames averaged per pixel.
    guided : True: the two-stage guided filter; False: its first stage only (a local Wiener /
        Lee filter: ~0.6 ms less per 1024² frame, ~0.3 dB less, slightly more needle
        contrast).
    noise : a known noise model (e.g. from the exposure); None to estimate it from the stream.

    Attributes
    ----------
    noise : the noise model in use (None before the first frame).
    scene_cuts : scene cuts detected since construction.
    """

    name = "denoise"

    def __init__(self, n_max: float = 12.0, k_low: float = 1.0, k_high: float = 3.0,
                 spatial_noise: float = 2.0, guided: bool = True,
                 noise: NoiseModel | None = None) -> None:
        if not (1 <= n_max <= _N_MAX_LIMIT and 0 <= k_low < k_high and spatial_noise >= 0):
            raise ValueError(f"Denoiser: need 1 <= n_max <= {_N_MAX_LIMIT:g}, "
                             "0 <= k_low < k_high, spatial_noise >= 0")
        self.n_max = float(n_max)
        self.k_low = float(k_low)
        self.k_high = float(k_high)
        self.spatial_noise = float(spatial_noise)
        self.guided = bool(guided)
        self._fixed_noise = noise
        self.noise: NoiseModel | None = noise
        self._vst = _vst_params(noise) if noise is not None else None
        self.sigma_box = 0.55  # σ of the 3×3 mean of one frame's stabilised noise; self-calibrated
        self.scene_cuts = 0
        self._shape: tuple[int, int] | None = None
        self._y: np.ndarray | None = None
        self._n: np.ndarray | None = None
        self._previous: np.ndarray | None = None
        self._grid = np.zeros((0, 0), np.float32)
        self._grid_step = _GRID_MAX_STEP
        self._since_reset = 0
        self._hist = np.zeros(kernels.MOTION_BINS, np.int64)
        self._pool: list[np.ndarray] = []

    # -- Stage protocol ----------------------------------------------------------------------

    def warm_up(self, shape: tuple[int, int]) -> None:
        """Compile the kernels (numba caches them on disk) and allocate the state for ``shape``."""
        rng = np.random.default_rng(0)
        writable = rng.poisson(400.0, (64, 64)).astype(np.uint16)
        read_only = writable.copy()
        read_only.flags.writeable = False  # numba types read-only arrays (frames) apart
        for tiny in (writable, read_only):
            estimate_noise(tiny, tiny)
            estimate_noise(tiny)
            probe = Denoiser(n_max=self.n_max)
            for _ in range(3):
                probe.process(tiny)
        self._allocate(tuple(shape))  # type: ignore[arg-type]
        self.reset()

    def reset(self) -> None:
        """Forget the temporal state (beam off/on, new size, scene cut)."""
        self._since_reset = 0
        self._previous = None

    def __call__(self, item: WorkItem) -> None:
        image = item.image
        if image.dtype != np.uint16:
            image = np.clip(np.rint(image), 0, 65535).astype(np.uint16)
        item.image = self.process(image)

    # -- processing --------------------------------------------------------------------------

    def process(self, pixels: np.ndarray) -> np.ndarray:
        """Denoise one frame (H×W uint16 DN); returns a new C-contiguous float32 DN array."""
        pixels = np.ascontiguousarray(pixels)
        shape = pixels.shape
        if shape != self._shape:
            self._allocate(shape)
            self.reset()
        first = self._since_reset == 0
        if self._fixed_noise is None:
            if self.noise is None:
                try:
                    self._set_noise(estimate_noise(pixels))
                except ValueError:  # nothing to fit on (a black frame): Poisson, unit gain
                    self._set_noise(NoiseModel(1.0, 0.0))
            elif self._since_reset == 1 and self._previous is not None:
                # two frames of the same scene: the temporal fit, then restart from frame 1
                with contextlib.suppress(ValueError):  # nothing to fit: keep the model
                    self._set_noise(estimate_noise(pixels, self._previous))
                self._restart_from(self._previous)
        assert self.noise is not None and self._vst is not None
        assert self._y is not None and self._n is not None
        if first:
            step = self._grid_step = _grid_step(shape)
            self._grid = pixels[step // 2::step, step // 2::step].astype(np.float32)
        else:
            self._follow_gain(pixels)
        out = self._output_buffer(shape)
        self._hist[:] = 0
        restarted = kernels.denoise_frame(
            pixels, *self._vst, self._y, self._n, out, first, 1.0 / self.sigma_box,
            self.k_low, self.k_high, self.n_max, self.spatial_noise, self.noise.a,
            self.noise.b / self.noise.a, self._hist, self.guided)
        if not first:
            self._calibrate_motion_noise()
            if restarted > _SCENE_CUT_FRACTION:
                self.scene_cuts += 1
                self._n.fill(kernels.N_SCALE)
                self._since_reset = 0 if self._fixed_noise is None else 1
        self._previous = pixels
        self._since_reset += 1
        return out

    @property
    def state_bytes(self) -> int:
        """Bytes held between frames: estimate, frame counts, the previous frame's pixels (a
        reference to the frame's own read-only array, counted all the same) and the
        gain-tracking grid: 7 bytes per pixel and at most 64 KiB. Not counted: the output pool
        (``pool_bytes``), which holds frames already handed on."""
        held = 0
        for array in (self._y, self._n, self._previous, self._grid):
            if array is not None:
                held += array.nbytes
        if self._previous is None and self._shape is not None:
            held += self._shape[0] * self._shape[1] * 2
        return held

    @property
    def pool_bytes(self) -> int:
        """Bytes of the output arrays the pool keeps for reuse (at most ``_POOL_SIZE`` frames;
        those still held downstream are counted here too)."""
        return sum(array.nbytes for array in self._pool)

    # -- internals ---------------------------------------------------------------------------

    def _allocate(self, shape: tuple[int, int]) -> None:
        self._shape = shape
        self._y = np.zeros(shape, np.float32)
        self._n = np.full(shape, kernels.N_SCALE, np.uint8)
        self._pool = []

    def _output_buffer(self, shape: tuple[int, ...]) -> np.ndarray:
        """A float32 array for the next output: a pooled one that nobody else refers to any more
        (the display, the recorder or a later stage may still hold earlier outputs, and views
        hold their base), or a new one, kept in the pool while it has room. Reusing arrays
        avoids the page faults of a fresh 4 MB allocation per frame."""
        for array in self._pool:
            if sys.getrefcount(array) <= _POOL_FREE_REFCOUNT:
                return array
        array = np.empty(shape, np.float32)
        if len(self._pool) < _POOL_SIZE:
            self._pool.append(array)
        return array

    def _set_noise(self, model: NoiseModel) -> None:
        self.noise = model
        self._vst = _vst_params(model)

    def _restart_from(self, pixels: np.ndarray) -> None:
        assert self._y is not None and self._n is not None and self._vst is not None
        kernels.vst_into(pixels, *self._vst, self._y)
        self._n.fill(kernels.N_SCALE)

    def _follow_gain(self, pixels: np.ndarray) -> None:
        """Rescale the estimate when the whole image brightens or darkens (the ABC settling
        after beam-on, a kV/mA step), which per-pixel tests would miss as sub-threshold and
        averaging would lag: the median ratio of this frame to the last on a sparse grid
        (robust to local motion) is applied as a gain, √ratio in the stabilised domain, when it
        differs from 1 by more than ``_GAIN_STEP`` and by more than ``_GAIN_SIGNIFICANCE``
        standard errors of the median (at low dose a few thousand noisy ratios do not pin the
        gain to 0.3 %; applying their noise each frame would make the brightness wander)."""
        assert self._y is not None and self.noise is not None
        zero_dn = -self.noise.b / self.noise.a  # where the noise model puts zero signal
        floor = 4.0 * math.sqrt(max(self.noise.a * 64.0 + self.noise.b, 1.0))
        ratio, standard_error = kernels.grid_gain(pixels, self._grid, zero_dn, floor,
                                                  self._grid_step)
        if abs(ratio - 1.0) > max(_GAIN_STEP, _GAIN_SIGNIFICANCE * standard_error):
            self._y *= np.float32(math.sqrt(ratio))

    def _calibrate_motion_noise(self) -> None:
        """Move ``sigma_box`` toward the value that puts the statistic's median at 0.6745
        (half-normal median): most pixels are static, so the median measures the noise."""
        k = kernels.histogram_quantile(self._hist, 1, 2)
        if k < 0:
            return
        median = (k + 0.5) * kernels.MOTION_RANGE / kernels.MOTION_BINS
        ratio = min(max(median / 0.6745, 0.5), 2.0)
        self.sigma_box *= ratio ** 0.3
