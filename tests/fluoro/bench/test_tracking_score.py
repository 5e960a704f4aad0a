"""The tracking scorer's judgement of what a detection is on: the active needle, another
needle, or something else; and how many frames a newly visible needle takes to be found."""

import numpy as np
import pytest

from fluoro.bench.tracking_score import TrackingScorer
from fluoro.frame import Frame, NeedleTruth, Truth, WorkItem
from fluoro.imaging.needle_result import NeedleResult

SPACING = (0.25, 0.25)  # mm/px: 5 mm is 20 px
PIXELS = np.zeros((8, 8), np.uint16)
ACTIVE = NeedleTruth((100.0, 100.0), (20.0, 100.0))  # along +x
OTHER = NeedleTruth((300.0, 200.0), (300.0, 40.0))  # along +y


def _score(steps, skip_frames=0):
    """``steps``: (truth, result) per frame, with consecutive seq numbers; ("gap", None) makes
    the next frame start a new run."""
    scorer = TrackingScorer(skip_frames=skip_frames)
    seq = 0
    for truth, result in steps:
        if isinstance(truth, str):  # "gap": the seq numbers jump (a new run)
            seq += 5
            continue
        frame = Frame(PIXELS, seq, seq / 15, 0, SPACING, None, truth)
        scorer.add(frame, WorkItem(frame, PIXELS, {"track": result}))
        seq += 1
    return scorer.section()


def _truth(*needles, visible=True):
    if not needles:
        return Truth(False, None, None, 0.0, 0.0)
    first, *rest = needles
    return Truth(visible, first.tip_px, first.hub_px, 0.0, 0.0, None, tuple(rest))


def _found(tip, angle_deg):
    return NeedleResult(True, 0.9, tip, None, angle_deg, pixel_spacing_mm=SPACING)


MISSED = NeedleResult(False, 0.0)


def test_a_detection_on_a_screw_is_a_wrong_object_and_its_error_still_counts():
    s = _score([
        (_truth(ACTIVE), _found((101.0, 100.0), 0.0)),  # on the needle
        (_truth(ACTIVE), _found((400.0, 400.0), 45.0)),  # on a screw, far away
        (_truth(ACTIVE), _found((100.0, 100.0), 30.0)),  # at the tip but along something else
        (_truth(), _found((50.0, 50.0), 0.0)),  # no needle in the field: on no needle
    ])
    assert s["reported_frames"] == 4
    assert s["wrong_object_rate"] == pytest.approx(3 / 4)
    assert s["false_positive_rate"] == 1.0
    assert s["tip_err_mm"]["median"] == pytest.approx(0.25)  # the three on the active frames
    assert s["other_needle_rate"] == 0.0


def test_a_detection_on_another_needle_is_not_a_wrong_object_nor_an_error_of_the_active():
    s = _score([
        (_truth(ACTIVE, OTHER), _found((300.0, 201.0), 90.0)),
        (_truth(ACTIVE, OTHER), _found((100.0, 100.0), 0.0)),
    ])
    assert s["wrong_object_rate"] == 0.0 and s["other_needle_rate"] == 0.5
    assert s["tip_err_mm"]["median"] == 0.0  # only the detection on the active needle


def test_frames_to_find_counts_from_the_first_visible_frame_of_each_appearance():
    hit = _found((100.0, 100.0), 0.0)
    s = _score([
        (_truth(), MISSED), (_truth(), MISSED),  # no needle yet
        (_truth(ACTIVE), MISSED), (_truth(ACTIVE), MISSED), (_truth(ACTIVE), hit),  # found: 2
        (_truth(ACTIVE), hit),
        (_truth(), MISSED),  # withdrawn, and back: found at once (0)
        (_truth(ACTIVE), hit),
        ("gap", None),  # a new run (beam off and on): this appearance is never found
        (_truth(ACTIVE), MISSED), (_truth(ACTIVE), MISSED),
    ])
    assert s["frames_to_find"] == {"median": 1.0, "max": 2, "entries": 3, "missed": 1}


def test_a_detection_on_a_wrong_object_does_not_count_as_finding_the_needle():
    s = _score([
        (_truth(ACTIVE), _found((400.0, 400.0), 45.0)),
        (_truth(ACTIVE), _found((400.0, 400.0), 45.0)),
        (_truth(ACTIVE), _found((100.5, 100.0), 0.0)),
    ])
    assert s["frames_to_find"]["max"] == 2 and s["frames_to_find"]["missed"] == 0
