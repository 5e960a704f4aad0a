"""Technique factors of the simulated mobile C-arm: automatic brightness control and pedal.

Dose calibration
----------------
Detected quanta behind average soft tissue per pulse: ``Q = QUANTA_PER_MAS_80KVP * mAs *
(kVp / 80)^KVP_EXPONENT``. ``QUANTA_PER_MAS_80KVP`` is set so that the ABC's target of 50
quanta at 80 kVp, 0.1 mm Cu needs 0.1215 mAs per pulse (10.1 mA × 12 ms), which
``fluoro.dose.model`` turns into Ka,r = 0.0167 mGy per pulse: 15 mGy/min at 15 pulses/s, and
with the ~98 cm² field at the reference point 1.6 mGy·cm² per pulse, 1.4 Gy·cm²/min — so a
lumbar transforaminal injection with 30–45 s of fluoroscopy totals 0.7–1.1 Gy·cm², the range
reported for these procedures. ``KVP_EXPONENT`` (3.5) lumps the tube output (~kVp²) and the
patient's transmission (~kVp^1.5 through ~23 cm of tissue). The dose per quantum does not
depend on the image size (the detector is taken as binned to the output size).

ABC
---
Each pulse's technique follows from the previous pulse's mean expected signal in the central
measuring field (``measure``): the effective exposure ``mAs * (kVp/80)^3.5`` is scaled by
``(target / measured)^ABC_GAIN``, then split into mA at the current kVp; kVp rises (≤ 4 kV a
pulse) when mA would exceed ``MA_MAX``, falls when mA would drop below ``MA_MIN``, and drifts
back to ``KVP_PREFERRED``. Pulse width is fixed by the pulse rate (``pulse_ms_for``) and
lengthens to ``PULSE_MS_MAX`` only when kVp and mA are both at their limits.
"""

from __future__ import annotations

import math

import numpy as np

from drivers.sim.geometry import SID_MM, SIRP_MM
from fluoro.frame import Exposure

KVP_EXPONENT = 3.5
MAS_FOR_50_QUANTA_80KVP = 0.1215
QUANTA_PER_MAS_80KVP = 50.0 / MAS_FOR_50_QUANTA_80KVP
FILTER_MM_CU = 0.1
KVP_MIN, KVP_MAX, KVP_PREFERRED = 70.0, 95.0, 80.0
MA_MIN, MA_MAX = 0.5, 20.0
PULSE_MS_MIN, PULSE_MS_MAX = 3.0, 15.0
ABC_GAIN = 0.6
ABC_START_FRACTION = 0.65  # the first pulse of a session is under-exposed; the ABC catches up
KV_STEP_MAX = 4.0

SCOUT_ON_S = (2.0, 3.0)
EVENT_ON_S = (2.0, 8.0)
EVENT_OFF_S = (1.0, 3.0)


def pulse_ms_for(fps: float) -> float:
    """Nominal pulse width for a pulse rate: 18 % of the period within 3..15 ms."""
    return float(min(max(0.18 * 1000.0 / fps, PULSE_MS_MIN), PULSE_MS_MAX))


def quanta_per_pulse(kvp: float, ma: float, pulse_ms: float) -> float:
    """Detected quanta per pixel behind average soft tissue for one pulse."""
    return QUANTA_PER_MAS_80KVP * ma * pulse_ms * 1e-3 * (kvp / KVP_PREFERRED) ** KVP_EXPONENT


class AutomaticBrightnessControl:
    """Closed-loop technique of one source; see the module docstring.

    ``target_quanta``: quanta behind average soft tissue the ABC aims for; ``reference``: the
    relative signal of the measuring field when that is met (from the scene).
    """

    def __init__(self, target_quanta: float, fps: float, reference: float, area_rp_cm2: float):
        self.target_quanta = target_quanta
        self.fps = fps
        self.reference = reference
        self.area_rp_cm2 = area_rp_cm2
        self.kvp = KVP_PREFERRED
        self.pulse_ms = pulse_ms_for(fps)
        self.ma = 1.0
        self._set_effective(ABC_START_FRACTION * target_quanta / QUANTA_PER_MAS_80KVP)

    @property
    def quanta(self) -> float:
        """Quanta behind average soft tissue that the current technique delivers."""
        return quanta_per_pulse(self.kvp, self.ma, self.pulse_ms)

    def exposure(self, beam_on: bool = True) -> Exposure:
        return Exposure(
            beam_on=beam_on,
            kvp=round(self.kvp, 1),
            ma=round(self.ma, 3) if beam_on else 0.0,
            pulse_ms=round(self.pulse_ms, 2) if beam_on else 0.0,
            sid_mm=SID_MM,
            sirp_mm=SIRP_MM,
            field_area_cm2=round(self.area_rp_cm2, 2),
            filter_mm_cu=FILTER_MM_CU,
            pulse_rate_hz=self.fps,
        )

    def measure(self, roi_mean_quanta: float) -> None:
        """Feed back the mean expected quanta in the measuring field of the last pulse."""
        target = self.target_quanta * self.reference
        ratio = target / max(roi_mean_quanta, 1e-6)
        effective = self.ma * self.pulse_ms * 1e-3 * (self.kvp / KVP_PREFERRED) ** KVP_EXPONENT
        self._set_effective(effective * ratio**ABC_GAIN)

    def _set_effective(self, effective_mas: float) -> None:
        """Split an effective exposure (mAs at 80 kVp) into kVp, mA and pulse width."""
        pulse_ms = pulse_ms_for(self.fps)
        kvp = self.kvp

        def ma_at(kv: float, ms: float) -> float:
            return effective_mas / (ms * 1e-3) / (kv / KVP_PREFERRED) ** KVP_EXPONENT

        ma = ma_at(kvp, pulse_ms)
        if ma > MA_MAX:
            needed = kvp * (ma / MA_MAX) ** (1.0 / KVP_EXPONENT)
            kvp = min(needed, kvp + KV_STEP_MAX, KVP_MAX)
        elif ma < MA_MIN:
            needed = kvp * (ma / MA_MIN) ** (1.0 / KVP_EXPONENT)
            kvp = max(needed, kvp - KV_STEP_MAX, KVP_MIN)
        elif kvp > KVP_PREFERRED and ma < 0.7 * MA_MAX:
            kvp = max(KVP_PREFERRED, kvp - 1.0)
        elif kvp < KVP_PREFERRED and ma > 2.0 * MA_MIN:
            kvp = min(KVP_PREFERRED, kvp + 1.0)
        ma = ma_at(kvp, pulse_ms)
        if ma > MA_MAX and kvp >= KVP_MAX:
            pulse_ms = min(PULSE_MS_MAX, pulse_ms * ma / MA_MAX)
            ma = ma_at(kvp, pulse_ms)
        self.kvp = kvp
        self.pulse_ms = pulse_ms
        self.ma = float(min(max(ma, MA_MIN), MA_MAX))


def draw_event_s(rng: np.random.Generator, scout: bool) -> tuple[float, float]:
    """(beam-on, beam-off) durations of one pedal press, s."""
    on = rng.uniform(*(SCOUT_ON_S if scout else EVENT_ON_S))
    return float(on), float(rng.uniform(*EVENT_OFF_S))


def pulse_times_s(t_on_s: float, t_off_s: float, fps: float) -> np.ndarray:
    """Pulse times of one irradiation event: every 1/fps from ``t_on_s`` while before release."""
    n = max(1, math.ceil((t_off_s - t_on_s) * fps - 1e-9))
    return t_on_s + np.arange(n) / fps
