"""Air kerma and DAP of one pulse from its technique factors (a modelled, not measured, dose).

Model
-----
``Ka,r = Y(kVp) * T_Cu(kVp, t_Cu) * mAs * (1000 mm / d_RP)^2 * k_room``

- ``Y(kVp)``: tube output free in air at 1 m per mAs for a tungsten anode with about 3 mm Al
  total inherent filtration. We use ``Y = 50 µGy/mAs * (kVp / 80)^2``: the output of general
  radiography and C-arm tubes at 80 kVp lies near 40–80 µGy/mAs at 1 m and rises roughly with
  the square of the tube potential (IPEM Report 78 spectra; AAPM Report 74 reports measured
  outputs in this range).
- ``T_Cu``: air-kerma transmission of the added copper filter, ``exp(-mu * t / (1 + 2.5 t))``
  with ``mu = 6.0 / mm * (80 / kVp)^1.5``; the ``1 + 2.5 t`` term stands for beam hardening, so
  0.1 / 0.2 / 0.3 mm Cu pass about 62 / 45 / 36 % at 80 kVp.
- Inverse square from 1 m to the reference point (``sirp_mm``).
- ``k_room``: the room's calibration factor (measured Ka,r over modelled), 1.0 until calibrated.

DAP is ``Ka,r * field area``, both at the reference point (IEC 60601-2-43), so it does not
depend on where the field area is taken as long as both are taken at the same plane.

This is the plain model the pipeline needs to account for every pulse; the dose engine
refines and calibrates it. All functions are pure.
"""

from __future__ import annotations

import math

from fluoro.frame import Exposure

OUTPUT_AT_80KVP_UGY_PER_MAS = 50.0
OUTPUT_KVP_EXPONENT = 2.0
CU_MU_AT_80KVP_PER_MM = 6.0
CU_HARDENING_PER_MM = 2.5


def tube_output_ugy_per_mas(kvp: float) -> float:
    """Air kerma free in air at 1 m per mAs without added filtration, µGy/mAs."""
    return OUTPUT_AT_80KVP_UGY_PER_MAS * (kvp / 80.0) ** OUTPUT_KVP_EXPONENT


def copper_transmission(kvp: float, filter_mm_cu: float) -> float:
    """Fraction of air kerma passed by ``filter_mm_cu`` mm of added copper (0..1]."""
    if filter_mm_cu <= 0.0:
        return 1.0
    mu_per_mm = CU_MU_AT_80KVP_PER_MM * (80.0 / kvp) ** 1.5
    return math.exp(-mu_per_mm * filter_mm_cu / (1.0 + CU_HARDENING_PER_MM * filter_mm_cu))


def pulse_kar_mgy(exposure: Exposure, room_factor: float = 1.0) -> float:
    """Modelled air kerma at the reference point for one pulse, mGy (0 when the beam is off)."""
    if not exposure.beam_on or exposure.mas <= 0.0:
        return 0.0
    at_1m_ugy = (
        tube_output_ugy_per_mas(exposure.kvp)
        * copper_transmission(exposure.kvp, exposure.filter_mm_cu)
        * exposure.mas
    )
    inverse_square = (1000.0 / exposure.sirp_mm) ** 2
    return at_1m_ugy * inverse_square * room_factor * 1e-3


def pulse_dap_gycm2(exposure: Exposure, room_factor: float = 1.0) -> float:
    """Modelled dose-area product of one pulse, Gy·cm² (Ka,r in Gy times the field area in cm²)."""
    return pulse_kar_mgy(exposure, room_factor) * 1e-3 * exposure.field_area_cm2
