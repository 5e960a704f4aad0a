import dataclasses

import pytest
from conftest import log_frames, make_exposure, make_frames

from fluoro.dose.accumulator import DoseAccumulator, DoseGap, FrameDose, PulseDose
from fluoro.dose.model import pulse_dap_gycm2, pulse_kar_mgy


class Records(list):
    """The records the accumulator handed out, in order."""

    @property
    def pulses(self) -> list[PulseDose]:
        return [r for r in self if isinstance(r, PulseDose)]

    @property
    def gaps(self) -> list[DoseGap]:
        return [r for r in self if isinstance(r, DoseGap)]


def _feed(pattern: str, **kwargs) -> tuple[DoseAccumulator, Records]:
    log = Records()
    return log_frames(log, make_frames(pattern), DoseAccumulator(**kwargs)), log


def test_every_pulse_is_logged_with_the_modelled_dose():
    acc, log = _feed("11111")
    per_pulse = pulse_kar_mgy(make_exposure())
    assert [p.seq for p in log.pulses] == [0, 1, 2, 3, 4]
    t = acc.totals()
    assert t.pulses == 5 and t.events == 1
    assert t.kar_mgy == pytest.approx(5 * per_pulse)
    assert t.dap_gycm2 == pytest.approx(5 * pulse_dap_gycm2(make_exposure()))
    assert t.fluoro_time_s == pytest.approx(5 / 15)
    assert not any(p.measured for p in log.pulses)


def test_beam_off_frames_close_irradiation_events_and_carry_no_dose():
    acc, log = _feed("1110111011")
    t = acc.totals()
    assert t.events == 3
    assert t.pulses == 8
    assert [p.event for p in log.pulses] == [1, 1, 1, 2, 2, 2, 3, 3]
    assert len(log) == 8


def test_a_long_silence_starts_a_new_event_without_a_beam_off_frame():
    frames = make_frames("1111")
    frames[2] = dataclasses.replace(frames[2], t_s=frames[1].t_s + 5.0)
    frames[3] = dataclasses.replace(frames[3], t_s=frames[2].t_s + 1 / 15)
    acc = DoseAccumulator()
    for f in frames:
        acc.add(f)
    assert acc.totals().events == 2


def test_sequence_gap_is_logged_as_missing_pulses_with_estimated_dose():
    acc, log = _feed("11xxx11")
    per_pulse = pulse_kar_mgy(make_exposure())
    (gap,) = log.gaps
    assert isinstance(gap, DoseGap)
    assert (gap.first_seq, gap.count) == (2, 3)
    assert gap.kar_est_mgy == pytest.approx(3 * per_pulse)
    t = acc.totals()
    assert t.pulses == 4 and t.missing_pulses == 3
    assert t.kar_mgy == pytest.approx(7 * per_pulse)  # the lost pulses' dose is not lost


def test_measured_values_win_and_the_model_is_kept_beside_them():
    frames = make_frames("11")
    measured = dataclasses.replace(frames[1].exposure, kar_mgy=0.5, dap_gycm2=0.01)
    frames[1] = dataclasses.replace(frames[1], exposure=measured)
    log = Records()
    acc = log_frames(log, frames)
    second: PulseDose = log.pulses[1]
    assert second.measured and second.kar_mgy == 0.5 and second.dap_gycm2 == 0.01
    assert second.kar_model_mgy == pytest.approx(pulse_kar_mgy(make_exposure()))
    assert acc.totals().measured_pulses == 1


def test_each_frame_hands_out_its_records_in_order():
    acc = DoseAccumulator()
    frames = make_frames("11xx10")
    done = [acc.add(f) for f in frames]
    assert [type(r).__name__ for d in done for r in d.records] == [
        "PulseDose", "PulseDose", "DoseGap", "PulseDose"]
    gap_then_pulse = done[2]
    assert isinstance(gap_then_pulse, FrameDose)
    assert gap_then_pulse.gap.first_seq == 2 and gap_then_pulse.pulse.seq == 4
    assert done[3] == FrameDose(None, None)  # beam off: nothing to write
    assert acc.totals().log_error is None  # the accumulator writes nothing, so it cannot fail


def test_air_kerma_rate_is_over_the_last_second():
    acc, _ = _feed("1" * 45)  # three seconds at 15 pulses/s
    per_pulse = pulse_kar_mgy(make_exposure())
    assert acc.totals().akr_mgy_min == pytest.approx(15 * per_pulse * 60, rel=0.08)
