"""Per-pulse dose accounting: the synchronous path every frame passes before image processing.

``DoseAccumulator.add(frame)`` turns one frame into the records to write and adds them to the
running totals: each beam-on pulse becomes one ``PulseDose``, and a jump in the source's
sequence number becomes a ``DoseGap`` (the missing pulses are counted and their dose is
estimated from the neighbouring pulses: never ignored, never silently zero). It does no I/O:
its caller (``fluoro.session.engine.DoseEngine``) commits the records to the dose log before
the frame goes on to image processing.

Quantities: Ka,r (air kerma at the reference point, mGy), DAP (Gy·cm²), fluoroscopy time (the
time the beam is on, s; for pulsed fluoroscopy one pulse interval per pulse, as the pedal
time of 21 CFR 1020.32(h)), irradiation events (pedal presses, DICOM PS3.16 TID 10003).
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, replace

from fluoro.dose.model import pulse_dap_gycm2, pulse_kar_mgy
from fluoro.frame import Exposure, Frame

# A beam-on pulse more than this long after the previous one starts a new irradiation event even
# when the source sent no beam-off frame (sources such as a DICOM cine or a frame grabber).
EVENT_GAP_S = 1.0
AKR_WINDOW_S = 1.0


@dataclass(frozen=True, slots=True)
class PulseDose:
    """The dose of one pulse as logged. ``measured`` tells whether ``kar_mgy``/``dap_gycm2`` came
    from the source or a meter (True) or from the model (False); the model's values are always
    kept beside them."""

    seq: int
    t_s: float
    event: int
    kar_mgy: float
    dap_gycm2: float
    kar_model_mgy: float
    dap_model_gycm2: float
    measured: bool
    beam_time_s: float
    exposure: Exposure


@dataclass(frozen=True, slots=True)
class DoseGap:
    """``count`` pulses the source numbered but never delivered, starting at ``first_seq``.
    Their dose is estimated as ``count`` times the mean of the pulses either side."""

    first_seq: int
    count: int
    t_s: float
    event: int
    kar_est_mgy: float
    dap_est_gycm2: float
    beam_time_est_s: float


@dataclass(frozen=True, slots=True)
class DoseTotals:
    """A consistent snapshot of the running totals of one procedure."""

    kar_mgy: float = 0.0
    dap_gycm2: float = 0.0
    fluoro_time_s: float = 0.0
    akr_mgy_min: float = 0.0
    pulses: int = 0
    missing_pulses: int = 0
    events: int = 0
    beam_on: bool = False
    measured_pulses: int = 0
    log_error: str | None = None  # the dose log failed: why, and where the records went
    # With a DAP meter attached, ``dap_gycm2`` is the meter's and the model's is kept here.
    dap_model_gycm2: float | None = None
    meter_state: str | None = None  # None (no meter), "ok", "DISCONNECTED"


@dataclass(frozen=True, slots=True)
class FrameDose:
    """What one frame added to the procedure: the gap before it (pulses the source numbered but
    never delivered) and its pulse, either of them None (a beam-off frame has no pulse)."""

    gap: DoseGap | None = None
    pulse: PulseDose | None = None

    @property
    def records(self) -> tuple[PulseDose | DoseGap, ...]:
        """The records to write, in order: the gap, then the pulse."""
        return tuple(r for r in (self.gap, self.pulse) if r is not None)


class DoseAccumulator:
    """Running dose totals of one procedure, fed one frame at a time from the acquisition thread.

    ``add`` returns the frame's records for the caller to write; ``totals()`` may be called from
    any thread. ``room_factor`` is the room's calibration (measured Ka,r over modelled).
    """

    def __init__(self, room_factor: float = 1.0) -> None:
        self.room_factor = room_factor
        self._lock = threading.Lock()
        self._totals = DoseTotals()
        self._recent: deque[tuple[float, float]] = deque()  # (t_s, kar_mgy) within AKR window
        self._last_seq: int | None = None
        self._last_pulse: PulseDose | None = None
        self._event_open = False

    def add(self, frame: Frame) -> FrameDose:
        """Account for one frame; returns its records (a gap, a pulse) for the log."""
        gap = self._check_sequence(frame)
        if gap is not None:
            self._bump(gap.kar_est_mgy, gap.dap_est_gycm2, gap.beam_time_est_s, gap.t_s,
                       missing=gap.count)
        if not frame.beam_on:
            self._event_open = False
            with self._lock:
                self._totals = replace(self._totals, beam_on=False)
            return FrameDose(gap, None)
        pulse = self._pulse(frame)
        self._bump(pulse.kar_mgy, pulse.dap_gycm2, pulse.beam_time_s, pulse.t_s,
                   pulses=1, measured=int(pulse.measured), new_event=pulse.event)
        self._last_pulse = pulse
        return FrameDose(gap, pulse)

    def totals(self) -> DoseTotals:
        with self._lock:
            return self._totals

    # -- internals ---------------------------------------------------------------------------

    def _check_sequence(self, frame: Frame) -> DoseGap | None:
        last, self._last_seq = self._last_seq, frame.seq
        if last is None or frame.seq <= last + 1:
            return None
        count = frame.seq - last - 1
        ref = self._last_pulse
        if ref is None:
            return DoseGap(last + 1, count, frame.t_s, self._totals.events, 0.0, 0.0, 0.0)
        mean_kar = ref.kar_mgy
        mean_dap = ref.dap_gycm2
        if frame.beam_on and frame.exposure is not None:
            kar_now, dap_now, _, _ = self._dose_of(frame.exposure)
            mean_kar, mean_dap = (mean_kar + kar_now) / 2, (mean_dap + dap_now) / 2
        return DoseGap(last + 1, count, frame.t_s, ref.event, mean_kar * count,
                       mean_dap * count, ref.beam_time_s * count)

    def _dose_of(self, exposure: Exposure) -> tuple[float, float, float, float]:
        kar_model = pulse_kar_mgy(exposure, self.room_factor)
        dap_model = pulse_dap_gycm2(exposure, self.room_factor)
        kar = exposure.kar_mgy if exposure.kar_mgy is not None else kar_model
        dap = exposure.dap_gycm2 if exposure.dap_gycm2 is not None else dap_model
        return kar, dap, kar_model, dap_model

    def _pulse(self, frame: Frame) -> PulseDose:
        exposure = frame.exposure
        if exposure is None:  # a source that knows nothing of the beam: no dose to model
            exposure = Exposure(True, 0.0, 0.0, 0.0, 1.0, 1.0, 0.0, 0.0)
        kar, dap, kar_model, dap_model = self._dose_of(exposure)
        previous = self._last_pulse
        new_event = (
            not self._event_open
            or previous is None
            or frame.t_s - previous.t_s > EVENT_GAP_S
        )
        event = self._totals.events + 1 if new_event else self._totals.events
        self._event_open = True
        if exposure.pulse_rate_hz:
            beam_time_s = 1.0 / exposure.pulse_rate_hz
        elif previous is not None and not new_event:
            beam_time_s = max(0.0, frame.t_s - previous.t_s)
        else:
            beam_time_s = 0.0
        measured = exposure.kar_mgy is not None or exposure.dap_gycm2 is not None
        return PulseDose(frame.seq, frame.t_s, event, kar, dap, kar_model, dap_model, measured,
                         beam_time_s, exposure)

    def _bump(self, kar_mgy: float, dap_gycm2: float, beam_time_s: float, t_s: float, *,
              pulses: int = 0, missing: int = 0, measured: int = 0, new_event: int = 0) -> None:
        self._recent.append((t_s, kar_mgy))
        while self._recent and self._recent[0][0] <= t_s - AKR_WINDOW_S:
            self._recent.popleft()
        window_kar_mgy = sum(k for _, k in self._recent)
        with self._lock:
            t = self._totals
            self._totals = DoseTotals(
                kar_mgy=t.kar_mgy + kar_mgy,
                dap_gycm2=t.dap_gycm2 + dap_gycm2,
                fluoro_time_s=t.fluoro_time_s + beam_time_s,
                akr_mgy_min=window_kar_mgy * 60.0 / AKR_WINDOW_S,
                pulses=t.pulses + pulses,
                missing_pulses=t.missing_pulses + missing,
                events=max(t.events, new_event),
                beam_on=bool(pulses) or t.beam_on,
                measured_pulses=t.measured_pulses + measured,
            )
