"""Reference denoisers, scored with the same code as the ``denoise`` stage (``fluoro bench
--baselines``).

Every baseline sees the same frames in the same run and is scored by ``DenoiseScorer`` (PSNR with
the 12-bit peak and SSIM inside the collimated field, see ``fluoro.bench.denoise_score``); time per
frame is the median wall time of the method's call(s), conversions included, on this machine
(OpenCV with its default threads; the project's stage single-threaded). The fast methods run
twice with fresh state: a timed pass (outputs dropped, as in the pipeline) and a scored pass.

- ``recursive_a0.25``: y = 0.25·x + 0.75·y_prev, restarted on beam off/on and size change (as
  the pipeline resets stages); every frame; also ``needle_cnr_retained``.
- ``gaussian_5x5``: ``cv2.GaussianBlur`` 5×5, σ tuned once (best PSNR on the tuning frame).
- ``opencv_bilateral``: ``cv2.bilateralFilter`` on float32 DN, d = 5, sigmaSpace = 2 px,
  sigmaColor tuned once.
- ``opencv_nlm``: single-frame ``cv2.fastNlMeansDenoising`` (Buades, Coll & Morel 2005,
  "A non-local algorithm for image denoising", CVPR), 8-bit input, template 7, search 21.
- ``opencv_nlm_multi``: ``cv2.fastNlMeansDenoisingMulti``, temporalWindowSize = 5 (the frame,
  2 past and **2 future** frames: not causal, 2 pulses of extra latency), 8-bit input as OpenCV
  requires, template 7, search 21.

8-bit conversion: the DN window [p0.05, p99.95] of all beam-on frames, widened by 2 % each
side, maps linearly to 0..255 (rounded) and back to DN for scoring (its quantisation step is
given in the note).
NLM ``h`` and the other strengths are tuned once, on one frame of the subset (the middle one),
over a grid, for the best PSNR; the chosen value is reported in each entry.

The slow methods (``opencv_nlm``, ``opencv_nlm_multi``) run on ``max_frames`` evenly spaced
frames that have 2 past and 2 future frames of the same beam-on run ("subset"); the fast ones on
every frame and, for a like-for-like comparison, their subset scores are reported as well.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import cv2
import numpy as np

from fluoro.bench.denoise_score import DenoiseScorer
from fluoro.frame import Frame, Stage
from fluoro.stream.pipeline import StageRunner

__all__ = ["run_baselines", "subset_indices"]

PROGRESS = Callable[[int, int, str], None]
_NLM_H = (4.0, 6.0, 8.0, 10.0, 13.0, 16.0, 20.0, 25.0, 30.0)
_BILATERAL_SIGMA_DN = (50.0, 100.0, 200.0, 300.0, 400.0, 600.0, 1000.0, 2000.0)
_GAUSS_SIGMA_PX = (0.8, 1.0, 1.2, 1.5, 2.0, 3.0, 5.0)


def _runs(frames: Sequence[Frame]) -> list[int]:
    """Run index of each frame: a new run starts after a beam-off frame or a size change."""
    run, out, shape = 0, [], None
    for frame in frames:
        if not frame.beam_on or frame.shape != shape:
            run += 1
            shape = frame.shape
        out.append(run)
    return out


def _run_lookup(frames: Sequence[Frame]) -> Callable[[Frame], int]:
    """Frame (one of ``frames``, by identity) -> its run index (``_runs``)."""
    runs = _runs(frames)
    index = {id(f): k for k, f in enumerate(frames)}
    return lambda frame: runs[index[id(frame)]]


def subset_indices(frames: Sequence[Frame], max_frames: int) -> list[int]:
    """Up to ``max_frames`` evenly spaced beam-on frames with 2 past and 2 future beam-on
    frames of the same run (so the 5-frame NLM can run on each)."""
    runs = _runs(frames)
    ok = [i for i in range(2, len(frames) - 2)
          if all(frames[j].beam_on and runs[j] == runs[i] for j in range(i - 2, i + 3))]
    if not ok or max_frames <= 0:
        return []
    if len(ok) <= max_frames:
        return ok
    picks = np.linspace(0, len(ok) - 1, max_frames).round().astype(int)
    return [ok[k] for k in sorted(set(picks.tolist()))]


class _Window:
    """Linear map of a DN window to 8 bits and back."""

    def __init__(self, frames: Sequence[Frame]) -> None:
        sample = np.concatenate([f.pixels[::8, ::8].ravel() for f in frames if f.beam_on])
        lo, hi = np.percentile(sample, (0.05, 99.95))
        lo, hi = lo - 0.02 * (hi - lo), hi + 0.02 * (hi - lo)
        self.lo = float(lo)
        self.scale = 255.0 / max(float(hi - lo), 1.0)

    def to8(self, image: np.ndarray) -> np.ndarray:
        return np.clip((image.astype(np.float32) - self.lo) * self.scale + 0.5, 0, 255).astype(
            np.uint8)

    def to_dn(self, image8: np.ndarray) -> np.ndarray:
        return image8.astype(np.float32) / self.scale + self.lo


def _score(frames: Sequence[Frame], outputs: dict[int, np.ndarray]) -> dict[str, Any] | None:
    scorer = DenoiseScorer()
    for i in sorted(outputs):
        scorer.add_image(frames[i], outputs[i])
    return scorer.section()


def _entry(section: dict[str, Any] | None, ms: list[float], note: str,
           subset: dict[str, Any] | None = None) -> dict[str, Any]:
    entry: dict[str, Any] = {"ms_per_frame": round(float(np.median(ms)), 3) if ms else None,
                             "frames": len(ms), "note": note}
    if section is not None:
        entry["psnr_out_db"] = section["psnr_out_db"]
        entry["ssim_out"] = section["ssim_out"]
        entry["psnr_in_db"] = section["psnr_in_db"]
        if "needle_cnr_retained" in section:
            entry["needle_cnr_retained"] = section["needle_cnr_retained"]
    if subset is not None:
        entry["psnr_out_db_subset"] = subset["psnr_out_db"]
        entry["ssim_out_subset"] = subset["ssim_out"]
    return entry


def _tune(frame: Frame, values: Sequence[float],
          method: Callable[[float], np.ndarray]) -> float:
    scorer_best = None
    best = values[0]
    for value in values:
        scorer = DenoiseScorer()
        scorer.add_image(frame, method(value))
        section = scorer.section()
        if section is not None and (scorer_best is None or section["psnr_out_db"] > scorer_best):
            scorer_best, best = section["psnr_out_db"], value
    return best


def _timed(fn: Callable[[], np.ndarray], ms: list[float]) -> np.ndarray:
    t0 = time.perf_counter()
    out = fn()
    ms.append((time.perf_counter() - t0) * 1e3)
    return out


def run_baselines(frames: Sequence[Frame], max_frames: int, progress: PROGRESS | None = None,
                  stage_factory: Callable[[], Stage] | None = None) -> dict[str, dict[str, Any]]:
    """Run and score the reference denoisers (module docstring) on ``frames``.

    Returns ``{name: {"psnr_out_db", "ssim_out", "ms_per_frame", "frames", "note", ...}}``.
    With ``stage_factory`` (e.g. ``fluoro.imaging.denoise.Denoiser``), that stage is run over
    every frame too and reported under its ``name`` with its subset scores, for the same-run
    comparison.
    """
    beam = [i for i, f in enumerate(frames) if f.beam_on]
    if not beam:
        return {}
    subset = subset_indices(frames, max_frames)
    tune_frame = frames[subset[len(subset) // 2]] if subset else frames[beam[len(beam) // 2]]
    window = _Window(frames)
    step_dn = 1.0 / window.scale
    results: dict[str, dict[str, Any]] = {}
    total = 5 + (stage_factory is not None)
    done = 0

    def tick(label: str) -> None:
        nonlocal done
        done += 1
        if progress:
            progress(done, total, f"baselines: {label}")

    def fast(name: str, note: str, make: Callable[[], Callable[[Frame], np.ndarray]]) -> None:
        # two passes with fresh state: one timed (outputs dropped, as the pipeline lets them
        # go), one scored (scoring between timed calls would evict the caches and be timed)
        ms: list[float] = []
        step = make()
        for i in beam:
            _timed(lambda f=frames[i]: step(f), ms)
        step = make()
        scorer, scorer_subset, in_subset = DenoiseScorer(), DenoiseScorer(), set(subset)
        for i in beam:
            out = step(frames[i])
            scorer.add_image(frames[i], out)
            if i in in_subset:
                scorer_subset.add_image(frames[i], out)
        results[name] = _entry(scorer.section(), ms, note, scorer_subset.section())
        tick(name)

    if stage_factory is not None:
        def make_stage() -> Callable[[Frame], np.ndarray]:
            runner = StageRunner([stage_factory()])
            runner.warm_up(frames[beam[0]].shape)
            run_of = _run_lookup(frames)
            last_run: list[int] = []

            def step(frame: Frame) -> np.ndarray:
                # reset at each pedal release, as the pipeline does (beam-off frames are not
                # fed here) and as the recursive baseline does
                run = run_of(frame)
                if last_run != [run]:
                    for stage in runner.stages:
                        stage.reset()
                    last_run[:] = [run]
                return runner.run(frame)[0].image

            return step

        fast(stage_factory().name, "this project's stage, causal, single thread, every frame",
             make_stage)

    def recursive() -> Callable[[Frame], np.ndarray]:
        state: dict[str, Any] = {"y": None, "run": None}
        run_of = _run_lookup(frames)

        def step(frame: Frame) -> np.ndarray:
            run = run_of(frame)
            x = frame.pixels.astype(np.float32)
            if state["y"] is None or state["run"] != run:
                state["y"], state["run"] = x, run
            else:
                state["y"] = cv2.addWeighted(x, 0.25, state["y"], 0.75, 0.0)
            return state["y"]

        return step

    fast("recursive_a0.25", "y = 0.25 x + 0.75 y_prev, causal, every frame", recursive)

    sigma_g = _tune(tune_frame, _GAUSS_SIGMA_PX, lambda s: cv2.GaussianBlur(
        tune_frame.pixels.astype(np.float32), (5, 5), s))
    fast("gaussian_5x5", f"cv2.GaussianBlur 5x5, sigma {sigma_g} px (tuned), every frame",
         lambda: lambda f: cv2.GaussianBlur(f.pixels.astype(np.float32), (5, 5), sigma_g))

    sigma_c = _tune(tune_frame, _BILATERAL_SIGMA_DN, lambda s: cv2.bilateralFilter(
        tune_frame.pixels.astype(np.float32), 5, s, 2.0))
    fast("opencv_bilateral",
         f"cv2.bilateralFilter float32 DN, d 5, sigmaColor {sigma_c} DN (tuned), sigmaSpace 2",
         lambda: lambda f: cv2.bilateralFilter(f.pixels.astype(np.float32), 5, sigma_c, 2.0))

    if not subset:
        return results

    def nlm(frame: Frame, h: float) -> np.ndarray:
        return window.to_dn(cv2.fastNlMeansDenoising(window.to8(frame.pixels), None, h, 7, 21))

    def nlm_multi(i: int, h: float) -> np.ndarray:
        stack = [window.to8(frames[j].pixels) for j in range(i - 2, i + 3)]
        return window.to_dn(cv2.fastNlMeansDenoisingMulti(stack, 2, 5, None, h, 7, 21))

    mid = subset[len(subset) // 2]
    for name, method, note in (
        ("opencv_nlm", lambda i, h: nlm(frames[i], h),
         "cv2.fastNlMeansDenoising, 8-bit, template 7, search 21"),
        ("opencv_nlm_multi", nlm_multi,
         "cv2.fastNlMeansDenoisingMulti, 8-bit (OpenCV requires it), 5 frames: 2 past + "
         "2 FUTURE (not causal), template 7, search 21"),
    ):
        h = _tune(tune_frame, _NLM_H, lambda value, method=method: method(mid, value))
        ms: list[float] = []
        outputs = {i: _timed(lambda i=i, method=method, h=h: method(i, h), ms) for i in subset}
        results[name] = _entry(_score(frames, outputs), ms,
                               f"{note}, h {h} (tuned, 8-bit units; window step "
                               f"{step_dn:.1f} DN), {len(subset)} frames (subset)")
        tick(name)
    return results
