"""The anatomy's offset from the key frame, on a textured scene moved by known amounts."""

import cv2
import numpy as np
import pytest

from fluoro.imaging.anatomy_motion import AnatomyMotion
from fluoro.imaging.needle_evidence import WORKED_LO_MM


def _anatomy(size=512, seed=0):
    """Bone-like texture: smoothed noise at two scales on a bright background."""
    rng = np.random.default_rng(seed)
    coarse = cv2.GaussianBlur(rng.normal(0, 1, (size, size)).astype(np.float32), (0, 0), 12)
    fine = cv2.GaussianBlur(rng.normal(0, 1, (size, size)).astype(np.float32), (0, 0), 3)
    return 2000.0 * np.exp(-0.8 * (coarse / coarse.std() * 0.3 + fine / fine.std() * 0.1))


def _moved(image, dx, dy, quanta, seed):
    m = np.float32([[1, 0, dx], [0, 1, dy]])
    shifted = cv2.warpAffine(image, m, image.shape[::-1], flags=cv2.INTER_LINEAR,
                             borderMode=cv2.BORDER_REFLECT)
    rng = np.random.default_rng(seed)
    gain = 2000.0 / quanta
    return (rng.poisson(shifted / gain) * gain).astype(np.uint16)


@pytest.mark.parametrize("quanta", [20, 60])
def test_known_shifts_are_measured_to_a_pixel(quanta):
    scene = _anatomy()
    motion = AnatomyMotion()
    assert motion.update(_moved(scene, 0, 0, quanta, 1)) == (0.0, 0.0)  # the key frame
    for i, (dx, dy) in enumerate([(0.0, 3.0), (1.5, 9.2), (-2.0, 14.0), (0.4, -6.5)]):
        got = motion.update(_moved(scene, dx, dy, quanta, 10 + i))
        assert got == pytest.approx((dx, dy), abs=1.0), (dx, dy, got)  # 0.25 mm at 0.25 mm/px


def test_a_thin_moving_needle_does_not_move_the_anatomy():
    scene = _anatomy(seed=3)
    motion = AnatomyMotion()
    for i, tip_x in enumerate(range(120, 420, 30)):
        frame = scene.copy()
        cv2.line(frame, (40, 60), (tip_x, 300), 600.0, 4)  # the needle advances
        got = motion.update(_moved(frame, 0, 0, 50, i))
        assert abs(got[0]) < 1.0 and abs(got[1]) < 1.0


def test_a_new_scene_rekeys_and_reset_starts_over():
    motion = AnatomyMotion()
    motion.update(_moved(_anatomy(seed=1), 0, 0, 50, 0))
    motion.update(_moved(_anatomy(seed=1), 2, 0, 50, 1))
    other = motion.update(_moved(_anatomy(seed=7), 0, 0, 50, 2))  # nothing in common
    assert motion.response < 0.2 and other == pytest.approx((2.0, 0.0), abs=0.5)
    motion.reset()
    assert motion.update(_moved(_anatomy(seed=7), 5, 5, 50, 3)) == (0.0, 0.0)


@pytest.mark.parametrize("condition", ["breathing-5mm", "mixed-fusion"])
def test_the_anatomy_offset_follows_the_validation_familys_breathing(condition):
    """Against the truth of scenes drawn by other code than the tracker's tests: the
    independent validation family's patient shift (``Scene.shift_px``), with hardware,
    a needle being worked, collimation and noise in view."""
    from drivers.family import CONDITIONS, stream

    source = stream(CONDITIONS[condition], seed=3, size_px=512, frames=45, want_clean=False)
    motion = AnatomyMotion()
    errors, truth0 = [], None
    for i, frame in enumerate(source.frames()):
        if not frame.beam_on:
            continue
        truth = np.asarray(source.scene.shift_px(i), float)
        if source.scene.condition.mirror:
            truth[0] = -truth[0]
        truth0 = truth if truth0 is None else truth0
        errors.append(np.asarray(motion.update(frame.pixels)) - (truth - truth0))
    rms_mm = float(np.sqrt(np.mean(np.sum(np.square(errors), axis=1)))) * source.scene.spacing_mm
    # what it is for: hardware must stay well below the travel that makes a line "worked"
    assert rms_mm <= 0.5 * WORKED_LO_MM, rms_mm
