"""The processing stages ``fluoro run`` and ``fluoro bench`` use, and the scorers that judge them.

Denoise first (``fluoro.denoise``: causal, motion-adaptive, numba), then needle tracking on the
denoised image (``fluoro.needle``). Each call makes fresh, stateful stages.
"""

from __future__ import annotations

from fluoro.bench import Scorer
from fluoro.pipeline import Stage


def default_stages() -> list[Stage]:
    from fluoro.denoise import Denoiser
    from fluoro.needle import NeedleTracker

    return [Denoiser(), NeedleTracker()]


def default_scorers() -> list[Scorer]:
    from fluoro.denoise_score import DenoiseScorer
    from fluoro.needle_score import TrackingScorer

    return [DenoiseScorer(), TrackingScorer()]
