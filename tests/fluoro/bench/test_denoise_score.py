"""``DenoiseScorer`` and the baselines: None without truth, sane numbers with it."""

from __future__ import annotations

import numpy as np

from fluoro.bench.denoise_baselines import run_baselines, subset_indices
from fluoro.bench.denoise_score import DenoiseScorer, field_mask
from fluoro.frame import Exposure, Frame, Truth, WorkItem


def scene(size: int = 128, tip_x: float = 60.0) -> np.ndarray:
    """Collimated field (a bright disc on a dark surround) with a dark vertical needle."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float64)
    clean = np.where(np.hypot(xx - size / 2, yy - size / 2) < size * 0.45, 1900.0, 150.0)
    clean += 100.0 * np.sin(xx / 9.0)
    needle = (np.abs(xx - tip_x) <= 1.0) & (yy >= 30) & (yy <= 100)
    clean[needle] -= 1000.0
    return clean.astype(np.float32)


def frame(clean: np.ndarray, rng: np.random.Generator, seq: int, tip_x: float | None,
          with_clean: bool = True, beam_on: bool = True) -> Frame:
    pixels = np.clip(np.rint(clean + rng.normal(0, 60.0, clean.shape)), 0, 4095).astype(np.uint16)
    truth = Truth(tip_x is not None, None if tip_x is None else (tip_x, 30.0),
                  None if tip_x is None else (tip_x, 100.0), 0.0, 0.0,
                  clean if with_clean else None)
    exposure = None if beam_on else Exposure(False, 70, 1, 10, 1000, 600, 100, 0)
    return Frame(pixels, seq, seq / 15, 0, (0.25, 0.25), exposure, truth)


def test_none_without_truth() -> None:
    rng = np.random.default_rng(0)
    scorer = DenoiseScorer()
    f = frame(scene(), rng, 0, None, with_clean=False)
    scorer.add(f, WorkItem(f, f.pixels))
    assert scorer.section() is None
    f = Frame(f.pixels, 1, 0.0, 0, (0.25, 0.25))
    scorer.add(f, WorkItem(f, f.pixels))
    assert scorer.section() is None


def test_field_mask_covers_the_field_and_the_needle() -> None:
    mask = field_mask(scene())
    assert mask[64, 64] and mask[64, 60] and not mask[2, 2]


def test_sane_numbers_and_needle_retained() -> None:
    rng = np.random.default_rng(1)
    perfect, lagged = DenoiseScorer(), DenoiseScorer()
    previous = None
    for k in range(6):
        clean = scene(tip_x=50.0 + 3 * k)
        f = frame(clean, rng, k, 50.0 + 3 * k)
        perfect.add(f, WorkItem(f, clean + rng.normal(0, 10.0, clean.shape).astype(np.float32)))
        ghost = clean if previous is None else 0.5 * (clean + previous)  # a half-lagged needle
        lagged.add(f, WorkItem(f, ghost))
        previous = clean
    good = perfect.section()
    bad = lagged.section()
    assert good is not None and bad is not None
    assert good["psnr_out_db"] > good["psnr_in_db"] + 10
    assert 0.0 < good["ssim_in"] < good["ssim_out"] <= 1.0
    assert good["frames_scored"] == 6 and good["needle_frames_scored"] == 5
    assert 0.95 < good["needle_cnr_retained"] < 1.05
    assert 0.95 < good["needle_contrast_in_over_truth"] < 1.05
    assert bad["needle_cnr_retained"] < 0.8


def test_baselines_run_and_are_scored_alike() -> None:
    rng = np.random.default_rng(2)
    clean = scene(96, tip_x=40.0)
    frames = [frame(clean, rng, k, None) for k in range(9)]
    frames[4] = frame(clean, rng, 4, None, beam_on=False)
    # beam off at 4: no frame of 0..8 has 2 beam-on frames of its own run on each side
    assert subset_indices(frames, 10) == []
    longer = [*frames, *(frame(clean, rng, k, None) for k in range(9, 12))]
    assert subset_indices(longer, 10) == [7, 8, 9]  # 5..11 is the one run long enough
    frames[4] = frame(clean, rng, 4, None)
    assert subset_indices(frames, 2) == [2, 6]
    results = run_baselines(frames, 2)
    assert set(results) == {"recursive_a0.25", "gaussian_5x5", "opencv_bilateral",
                            "opencv_nlm", "opencv_nlm_multi"}
    for name, entry in results.items():
        assert 10.0 < entry["psnr_out_db"] < 80.0, name
        assert 0 < entry["ssim_out"] <= 1 and entry["ms_per_frame"] > 0, name
    assert results["recursive_a0.25"]["psnr_out_db"] > results["recursive_a0.25"]["psnr_in_db"]
    assert results["opencv_nlm_multi"]["frames"] == 2
    assert "FUTURE" in results["opencv_nlm_multi"]["note"]
