"""The frame model: one pulse of fluoroscopy, its technique factors and (when known) its truth,
and the two contracts every wing shares about frames: where they come from (``FrameSource``)
and what a processing step does with one (``WorkItem``, ``Stage``).

Coordinates: pixel positions are ``(x, y) = (column, row)`` with pixel centres at integer
values and the origin at the top-left pixel's centre. ``pixel_spacing_mm`` is ``(row, col)``,
as DICOM's Pixel Spacing (0028,0030) orders it.

Dose quantities follow IEC 60601-2-43: ``kar_mgy`` is the air kerma at the patient entrance
reference point (Ka,r), ``dap_gycm2`` the dose-area product (air kerma times the field area,
both at the same plane).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

__all__ = [
    "EndOfStream",
    "Exposure",
    "Frame",
    "FrameSource",
    "NeedleTruth",
    "SourceInfo",
    "Stage",
    "Truth",
    "WorkItem",
    "now_ns",
]


def now_ns() -> int:
    """Host monotonic clock in nanoseconds (the clock of ``Frame.t_host_ns``)."""
    return time.monotonic_ns()


@dataclass(frozen=True, slots=True)
class Exposure:
    """Technique factors of one X-ray pulse.

    Attributes
    ----------
    beam_on : bool
        True for a pulse that irradiated the patient. A frame with ``beam_on=False`` marks the
        end of an irradiation event (pedal released); it carries the last image and no dose.
    kvp : float
        Tube potential, kV peak.
    ma : float
        Tube current during the pulse, mA.
    pulse_ms : float
        Pulse width, ms (the exposure time of this pulse).
    sid_mm : float
        Source to image-receptor distance, mm.
    sirp_mm : float
        Source to patient entrance reference point distance, mm (IEC 60601-2-43: 15 cm from the
        isocentre toward the source, unless the source defines it otherwise).
    field_area_cm2 : float
        Collimated field area at the reference point, cm².
    filter_mm_cu : float
        Added copper filtration, mm Cu.
    dap_gycm2, kar_mgy : float or None
        Measured values for this pulse when a meter or the source reports them.
    pulse_rate_hz : float or None
        Nominal pulse rate of the run the pulse belongs to, pulses per second.
    """

    beam_on: bool
    kvp: float
    ma: float
    pulse_ms: float
    sid_mm: float
    sirp_mm: float
    field_area_cm2: float
    filter_mm_cu: float
    dap_gycm2: float | None = None
    kar_mgy: float | None = None
    pulse_rate_hz: float | None = None

    @property
    def mas(self) -> float:
        """Tube current-time product of the pulse, mAs."""
        return self.ma * self.pulse_ms * 1e-3


@dataclass(frozen=True, slots=True)
class NeedleTruth:
    """Where one needle really is: its tip and the proximal end of its visible shaft (its hub,
    or where it enters the image; None when that is not known), (x, y) px."""

    tip_px: tuple[float, float]
    hub_px: tuple[float, float] | None


@dataclass(frozen=True, slots=True)
class Truth:
    """What really was in the frame; only simulated or annotated sources know it.

    ``clean`` is the noise-free image on the same grey scale as ``Frame.pixels`` (float32,
    H×W), ``tip_px`` / ``hub_px`` are (x, y) pixel positions of the needle tip and hub (None when
    the needle is not in the image), ``kar_mgy`` / ``dap_gycm2`` the true dose of this pulse.
    With several needles in view, ``tip_px`` / ``hub_px`` are the active one's (the one that
    moved most recently) and ``others`` the rest.
    """

    needle_visible: bool
    tip_px: tuple[float, float] | None
    hub_px: tuple[float, float] | None
    kar_mgy: float
    dap_gycm2: float
    clean: np.ndarray | None = None
    others: tuple[NeedleTruth, ...] = ()


@dataclass(frozen=True, slots=True)
class Frame:
    """One frame as delivered by a source.

    ``pixels`` is an H×W uint16 array that nobody may write to (sources hand out read-only
    arrays so a consumer can keep a view). ``seq`` is the source's pulse index: a jump larger
    than one means frames were lost on the way. ``t_s`` is the source's clock in seconds,
    ``t_host_ns`` the host monotonic clock when the frame was received.
    """

    pixels: np.ndarray
    seq: int
    t_s: float
    t_host_ns: int
    pixel_spacing_mm: tuple[float, float]
    exposure: Exposure | None = None
    truth: Truth | None = None

    @property
    def shape(self) -> tuple[int, int]:
        return self.pixels.shape  # type: ignore[return-value]

    @property
    def beam_on(self) -> bool:
        """True unless the source says explicitly that the beam was off for this frame."""
        return self.exposure is None or self.exposure.beam_on


@dataclass(frozen=True, slots=True)
class SourceInfo:
    """What a source says about itself once opened."""

    url: str
    description: str
    shape: tuple[int, int]
    nominal_fps: float | None
    pixel_spacing_mm: tuple[float, float]
    has_truth: bool = False


class EndOfStream(Exception):
    """Raised by ``FrameSource.read`` when the source has no more frames."""


@runtime_checkable
class FrameSource(Protocol):
    """Anything that hands out frames: a simulator, a frame grabber, a file, a recording.

    ``read`` blocks for at most ``timeout_s`` and returns ``None`` when no frame arrived in that
    time (the caller decides when silence becomes "no signal"); it raises ``EndOfStream`` when
    the source is exhausted. ``close`` releases the device and may be called more than once.
    """

    info: SourceInfo

    def read(self, timeout_s: float = 0.1) -> Frame | None: ...

    def close(self) -> None: ...


@dataclass(slots=True)
class WorkItem:
    """One frame on its way through the processing stages. ``image`` starts as the frame's
    pixels; an image stage (denoise) replaces it; an analysis stage (needle tracking) adds to
    ``results`` under its own name. ``target_px`` is the planned target (x, y) the operator set,
    or None; a stage that measures to it reads it here."""

    frame: Frame
    image: np.ndarray
    results: dict[str, Any] = field(default_factory=dict)
    target_px: tuple[float, float] | None = None


class Stage(Protocol):
    """A processing step. ``warm_up`` compiles its kernels for a frame shape before the first
    frame; ``reset`` forgets temporal state (beam off/on, new size, scene cut)."""

    name: str

    def warm_up(self, shape: tuple[int, int]) -> None: ...

    def reset(self) -> None: ...

    def __call__(self, item: WorkItem) -> None: ...
