import math

import pytest
from conftest import make_exposure

from fluoro.dose.model import copper_transmission, pulse_dap_gycm2, pulse_kar_mgy


def test_inverse_square_to_the_reference_point():
    near = pulse_kar_mgy(make_exposure(sirp_mm=400.0))
    far = pulse_kar_mgy(make_exposure(sirp_mm=800.0))
    assert near == pytest.approx(4 * far)


def test_output_rises_with_kvp_and_mas_and_falls_with_copper():
    base = pulse_kar_mgy(make_exposure())
    assert pulse_kar_mgy(make_exposure(kvp=100.0)) > base
    assert pulse_kar_mgy(make_exposure(ma=16.0)) == pytest.approx(2 * base)
    assert pulse_kar_mgy(make_exposure(filter_mm_cu=0.3)) < base
    assert copper_transmission(80.0, 0.0) == 1.0
    assert 0.55 < copper_transmission(80.0, 0.1) < 0.7


def test_plausible_lumbar_dose_rate():
    # 80 kVp, 8 mA x 8 ms, 0.1 mm Cu, 47 cm to the reference point, 15 pulses/s
    kar_mgy_min = pulse_kar_mgy(make_exposure()) * 15 * 60
    assert 2.0 < kar_mgy_min < 60.0


def test_dap_is_kerma_times_field_area_and_zero_without_beam():
    e = make_exposure(field_area_cm2=250.0)
    assert pulse_dap_gycm2(e) == pytest.approx(pulse_kar_mgy(e) * 1e-3 * 250.0)
    assert pulse_kar_mgy(make_exposure(beam_on=False)) == 0.0
    assert math.isclose(pulse_kar_mgy(make_exposure(), room_factor=1.2),
                        1.2 * pulse_kar_mgy(make_exposure()))
