"""The tracker on real X-ray images (../shared/data/xray): angiograms with a catheter, a
curved line-like device, and no needle. It must not crash, and it must not claim a straight
needle along the catheter with the confidence the window draws a trajectory for."""

import numpy as np
import pydicom

from fluoro.frame import Frame
from fluoro.imaging.denoise import Denoiser
from fluoro.imaging.needle import NeedleTracker
from fluoro.imaging.needle_result import CONFIDENT
from fluoro.stream.pipeline import StageRunner

SPACING_MM = (0.3, 0.3)  # the files carry none; a typical 512² XA detector pixel at 1.5×


def _cine_frames(shared_data):
    ds = pydicom.dcmread(shared_data / "xray" / "xa_coronary_cine_512.dcm")
    pixels = ds.pixel_array.astype(np.uint16) * 16  # 8-bit to the 12-bit range
    frames = []
    for i, image in enumerate(pixels):
        image.flags.writeable = False
        frames.append(Frame(image, i, i * 0.033, 0, SPACING_MM))
    return frames


def test_a_catheter_in_a_real_coronary_cine_is_not_taken_for_a_needle(shared_data):
    tracker = NeedleTracker()
    runner = StageRunner([Denoiser(), tracker])
    results = [runner.run(frame)[0].results["track"] for frame in _cine_frames(shared_data)]
    detected = [r for r in results if r.detected]
    assert len(results) == 96
    assert len(detected) <= 0.05 * len(results), [round(r.confidence, 3) for r in detected]
    assert not any(r.confidence >= CONFIDENT for r in detected)


def test_a_real_cerebral_angiogram_with_a_catheter_gives_no_confident_needle(shared_data):
    ds = pydicom.dcmread(shared_data / "xray" / "xa_cerebral_1024_jpll.dcm")
    image = ds.pixel_array.astype(np.float32)
    result = NeedleTracker().detect(image, SPACING_MM)
    assert not result.detected or result.confidence < CONFIDENT, result
