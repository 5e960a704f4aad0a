"""``add_poisson_noise``: dose scale, Poisson statistics, truth kept, a real cine."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import SHARED_DATA

from fluoro.bench.add_noise import TARGET_DN, add_poisson_noise
from fluoro.bench.denoise_score import field_mask
from fluoro.frame import Frame, Truth
from fluoro.imaging.denoise import estimate_noise

CINE = SHARED_DATA / "xray" / "xa_coronary_cine_512.dcm"


def source_frames(count: int = 3) -> list[Frame]:
    _, xx = np.mgrid[0:256, 0:256]
    frames = []
    for k in range(count):
        image = (60 + 120 * (xx + k) / 256).astype(np.uint16)  # 8-bit-like source
        image[:20] = 0  # outside the field
        image.flags.writeable = False
        frames.append(Frame(image, k, k / 15, 0, (0.3, 0.3)))
    return frames


def test_dose_scale_and_poisson_variance() -> None:
    noisy = add_poisson_noise(source_frames(), quanta=50.0, seed=3)
    gain = TARGET_DN / 50.0
    for f in noisy:
        assert f.pixels.dtype == np.uint16 and not f.pixels.flags.writeable
        clean = f.truth.clean
        assert clean.dtype == np.float32 and clean.shape == f.pixels.shape
        mask = field_mask(clean)
        assert abs(float(clean[mask].mean()) - TARGET_DN) < 0.05 * TARGET_DN
        residual = f.pixels.astype(np.float64) - clean
        expected = gain * float(clean[mask].mean())
        assert abs(float(residual[mask].var()) - expected) < 0.1 * expected
        assert f.truth.tip_px is None and not f.truth.needle_visible


def test_seed_repeats_and_truth_fields_kept() -> None:
    frames = source_frames(2)
    frames[1] = Frame(frames[1].pixels, 1, 0.1, 0, (0.3, 0.3),
                      truth=Truth(True, (5.0, 6.0), None, 0.2, 0.01))
    a = add_poisson_noise(frames, 20.0, seed=1)
    b = add_poisson_noise(frames, 20.0, seed=1)
    np.testing.assert_array_equal(a[0].pixels, b[0].pixels)
    assert a[1].truth.tip_px == (5.0, 6.0) and a[1].truth.kar_mgy == 0.2
    assert a[1].truth.clean is not None


def test_bad_quanta() -> None:
    with pytest.raises(ValueError, match="quanta"):
        add_poisson_noise(source_frames(1), 0.0, seed=1)


@pytest.mark.skipif(not CINE.exists(), reason=f"shared data not present: {CINE}")
def test_real_coronary_cine() -> None:
    pydicom = pytest.importorskip("pydicom")
    image = pydicom.dcmread(CINE).pixel_array[10]
    pixels = image.astype(np.uint16)
    pixels.flags.writeable = False
    still = Frame(pixels, 0, 0.0, 0, (0.3, 0.3))
    noisy = add_poisson_noise([still, still], 50.0, seed=1)  # two noise draws, one image
    assert noisy[0].truth.clean.max() > 4 * noisy[0].truth.clean.min() + 1
    model = estimate_noise(noisy[1].pixels, noisy[0].pixels)
    clean = noisy[0].truth.clean
    assert np.percentile(clean, 99.9) < 0.9 * 4095  # kept inside 12 bits
    quanta = image.astype(np.float64) * 50.0 / float(image[field_mask(image)].mean())
    bright = quanta > 10
    gain = float(np.median(clean[bright] / quanta[bright]))  # DN per quantum
    assert gain <= TARGET_DN / 50.0 + 1e-3  # lowered only for headroom
    for level in (800.0, 1900.0):
        assert abs(model.variance_dn2(level) - gain * level) < 0.1 * gain * level
