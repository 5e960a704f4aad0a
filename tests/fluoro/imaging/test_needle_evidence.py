"""The worked factor: a line is reported as the needle only once it has moved like one.

Tracks are fed tip (and hub) positions in anatomy coordinates, mm, as the tracker would after
measuring them, at 15 frames/s: hardware that keeps still but whose measured end jitters, a
needle pushed at a hand's speed, a catheter the heart swings to and fro, a line carried
sideways, a measurement that jumps along a fixed line, a beam-off gap.
"""

import math

import numpy as np
import pytest

from fluoro.imaging.needle_detect import Segment
from fluoro.imaging.needle_evidence import (
    WORKED_HI_MM,
    TrackEvidence,
    worked_factor,
)

FPS = 15.0
AXIS = (math.cos(math.radians(30.0)), math.sin(math.radians(30.0)))  # hub -> tip


def _segment(hub_exits=False):
    return Segment((0.0, 0.0), (-50.0, 0.0), AXIS, 0.4, 0.2, 100, 0.1, not hub_exits, 0.9,
                   hub_exits=hub_exits)


def _feed(evidence, along_mm, across_mm=None, hub_along_mm=None, hub_exits=False, t0=0.0,
          image_along_mm=None):
    """Frames with the tip ``along_mm[i]`` along the shaft (and ``across_mm[i]`` across it)
    from a fixed origin, the hub 50 mm behind it (or at ``hub_along_mm[i]``), in anatomy
    coordinates; in the image the tip is at ``image_along_mm[i]`` along the shaft (default:
    where it is in the anatomy, which keeps still); the worked factor after each frame."""
    across_mm = np.zeros(len(along_mm)) if across_mm is None else across_mm
    hub_along_mm = np.asarray(along_mm) - 50.0 if hub_along_mm is None else hub_along_mm
    image_along_mm = along_mm if image_along_mm is None else image_along_mm
    nx, ny = -AXIS[1], AXIS[0]
    out = []
    for i, (a, c, h, m) in enumerate(zip(along_mm, across_mm, hub_along_mm, image_along_mm,
                                         strict=True)):
        tip = (a * AXIS[0] + c * nx, a * AXIS[1] + c * ny)
        hub = (h * AXIS[0] + c * nx, h * AXIS[1] + c * ny)
        image_tip = (m * AXIS[0] + c * nx, m * AXIS[1] + c * ny)
        evidence.add(_segment(hub_exits), tip, i, t0 + i / FPS, hub, image_tip)
        out.append(worked_factor(evidence))
    return np.array(out)


def test_hardware_whose_measured_end_jitters_is_never_worked():
    rng = np.random.default_rng(1)
    for seed in range(5):
        jitter = np.random.default_rng(seed).normal(0.0, 0.5, 150)  # mm, along the line
        factor = _feed(TrackEvidence(), jitter, rng.normal(0.0, 0.1, 150))
        assert factor.max() == 0.0


@pytest.mark.parametrize("speed_mm_s", [2.0, 6.0, 30.0])
def test_a_needle_pushed_at_a_hands_speed_is_worked_once_it_has_travelled(speed_mm_s):
    t = np.arange(60) / FPS
    noise = np.random.default_rng(2).normal(0.0, 0.1, t.size)
    factor = _feed(TrackEvidence(), speed_mm_s * t + noise)
    first = int(np.argmax(factor >= 1.0))
    assert factor[first] == 1.0
    # the travel is counted from the median of the first three tips to that of the last three
    expected = math.ceil(WORKED_HI_MM / (speed_mm_s / FPS)) + 4
    assert first <= expected, (first, expected)
    assert factor[first:].min() == 1.0  # it stays worked while it rests or is withdrawn


def test_a_needle_that_is_advanced_then_withdrawn_once_stays_worked():
    along = np.concatenate([np.linspace(0, 10, 30), np.full(15, 10.0), np.linspace(10, 4, 20)])
    factor = _feed(TrackEvidence(), along)
    assert factor[-1] == 1.0


def test_a_catheter_swung_to_and_fro_by_the_heart_is_not_worked():
    t = np.arange(90) / FPS
    along = 4.0 * np.sin(2.0 * math.pi * 1.2 * t)  # 8 mm peak to peak, 72 beats a minute
    factor = _feed(TrackEvidence(), along)
    assert factor[FPS.__int__() * 2:].max() == 0.0  # once it has swung twice


def test_a_line_carried_sideways_is_not_worked():
    t = np.arange(60) / FPS
    factor = _feed(TrackEvidence(), 4.0 * t, across_mm=3.0 * t)  # as far across as along
    assert factor[10:].max() == 0.0


def test_a_measurement_that_jumps_along_a_fixed_line_does_not_count_as_travel():
    # the end of a K-wire, then found 6 mm further on, in a screw head, and again
    along = np.concatenate([np.zeros(30), np.full(20, 6.0), np.full(20, 12.0)])
    factor = _feed(TrackEvidence(), along, hub_exits=True)
    assert factor.max() == 0.0


def test_an_end_found_at_one_place_then_another_is_not_vouched_for():
    # the end of a rail in the noise, or of a line at a dark object: found 3.5 mm on, then
    # back (each a jump no hand makes), then on again by a step just short of a jump, where
    # it stays: between the jumps it keeps still, as hardware does
    along = np.concatenate([np.zeros(5), np.full(5, 3.5), np.zeros(2), np.full(40, 2.6)])
    factor = _feed(TrackEvidence(), along, hub_exits=True)
    assert factor.max() == 0.0


def test_a_line_that_keeps_still_in_the_image_while_the_anatomy_moves_is_not_worked():
    # a table's rail or a collimator's edge: fixed to the detector, so against the anatomy
    # it travels as far as the breath carries the patient (here 6 mm, along its length)
    breath = 3.0 - 3.0 * np.cos(np.arange(90) / FPS * 2.0 * math.pi / 4.0)
    fixed = _feed(TrackEvidence(), -breath, hub_exits=True, image_along_mm=np.zeros(90))
    assert fixed.max() == 0.0
    # a needle advanced while the patient breathes: it moves in the image too
    t = np.arange(90) / FPS
    pushed = _feed(TrackEvidence(), 3.0 * t, hub_exits=True, image_along_mm=3.0 * t + breath)
    assert pushed[-1] == 1.0


def test_with_the_hub_in_the_field_the_hub_must_move_with_the_tip():
    along = np.linspace(0.0, 15.0, 60)
    still_hub = _feed(TrackEvidence(), along, hub_along_mm=np.full(60, -50.0))
    assert still_hub.max() == 0.0  # a tip wandering along a line whose other end keeps still
    pushed = _feed(TrackEvidence(), along)
    assert pushed[-1] == 1.0  # the whole needle pushed
    hub_outside = _feed(TrackEvidence(), along, hub_along_mm=np.full(60, -50.0), hub_exits=True)
    assert hub_outside[-1] == 1.0  # the shaft runs out of the field: only its tip is seen


def test_after_a_beam_off_gap_what_was_shown_is_kept_and_no_motion_is_read_across_it():
    evidence = TrackEvidence()
    assert _feed(evidence, np.linspace(0.0, 10.0, 30))[-1] == 1.0
    evidence.gap()
    after = _feed(evidence, np.full(10, 14.0), t0=10.0)  # moved 4 mm while the beam was off
    assert after.min() == 1.0 and evidence.jitter_mm < 0.01
