"""Simulated pulsed mobile C-arm: an AP or oblique lumbar spine during transforaminal
injections with a 22 G spinal needle, with truth (noise-free image, needle tip/hub, dose).

Open it as ``sim://spine?size=1024&fps=15&quanta=50&seed=1&scenario=clean-spine&view=ap``.
Parameters (all optional): ``size`` (128..4096, square image), ``fps`` (pulse rate, (0, 60]),
``quanta`` (mean detected quanta per pixel behind average soft tissue at the ABC's target),
``seed``, ``scenario`` (``clean-spine`` | ``fusion-hardware`` | ``no-needle``), ``view``
(``ap`` | ``oblique``: 30° ipsilateral), ``realtime`` (1: ``read`` keeps the pulse clock;
0: as fast as possible), ``frames`` (end after N frames), ``lose`` (probability that a pulse's
frame is lost; its seq number is skipped), ``clean`` (1: attach the noise-free image),
``calib`` (true room factor applied to the modelled dose).

Modules: ``geometry`` (C-arm geometry), ``anatomy`` / ``hardware`` / ``needle`` (what is imaged),
``field`` (collimation, scatter), ``scene`` (the static maps), ``technique`` (ABC, pedal, dose
calibration), ``detector`` and ``_kernels`` (photons to 12-bit pixels), ``source`` (the
``FrameSource``), ``url`` / ``config`` (parameters).
"""

from __future__ import annotations

from drivers.sim.config import SimConfig
from drivers.sim.source import DoseTotals, SimulatedCArm
from drivers.sim.url import parse_sim_url
from fluoro.console import notice

__all__ = [
    "DoseTotals",
    "SimConfig",
    "SimulatedCArm",
    "open_sim",
    "parse_sim_url",
    "warm_up",
]

_warm = False


def warm_up() -> None:
    """Compile (or load from numba's cache) every kernel with the argument types the source
    uses, on a tiny source, so that the first real frame is not compile time."""
    global _warm
    if _warm:
        return
    with SimulatedCArm(SimConfig(size=128, realtime=False, frames=3, seed=0)) as sim:
        for _ in sim:
            pass
    _warm = True


def open_sim(url: str) -> SimulatedCArm:
    """Open ``sim://spine?...``; raises ``fluoro.errors.SourceError`` for a bad URL."""
    config = parse_sim_url(url)
    if not _warm:
        notice("compiling simulator kernels (loaded from cache after the first run) ...")
    warm_up()
    return SimulatedCArm(config, url=url)
