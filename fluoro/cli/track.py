"""``fluoro track IMAGE [--json]``: needle detection on one image (DICOM, PNG or TIFF).

The image gets the tracker's cold-start path (a whole-frame search, no history): one image
cannot show a line moving like a needle, so it is judged on its shape alone, and the output
says so (live guidance waits until a line has moved like a needle). Pixel
spacing: DICOM Pixel Spacing (0028,0030), else Imager Pixel Spacing (0018,1164), else
``--pixel-spacing``, else 1 mm (said on stderr) — the millimetres then mean pixels, and the
needle's expected width in pixels is taken as at a typical 0.25 mm detector pixel.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

from fluoro.console import notice
from fluoro.errors import InputError
from fluoro.imaging.needle import NeedleTracker
from fluoro.imaging.needle_detect import NOMINAL_SPACING_MM
from fluoro.imaging.needle_result import NeedleResult

EXPECTED = "a DICOM, PNG or TIFF greyscale image (8- or 16-bit)"


def add_track_parser(sub: Any) -> None:
    """Add ``track`` to the ``fluoro`` sub-command parsers."""
    track = sub.add_parser("track", help="detect the needle in one image",
                           description="Detect a needle in one image (DICOM, PNG, TIFF) and "
                                       "print its tip, hub and angle in pixels.")
    track.add_argument("image", type=Path, metavar="IMAGE", help="the image file")
    track.add_argument("--json", action="store_true",
                       help="print {detected, confidence, tip_px, hub_px, angle_deg} as JSON")
    track.add_argument("--pixel-spacing", type=float, metavar="MM",
                       help="pixel spacing in mm when the file does not give one")
    track.set_defaults(func=cmd_track)


def _is_dicom(path: Path) -> bool:
    with path.open("rb") as fh:
        head = fh.read(132)
    return (len(head) == 132 and head[128:132] == b"DICM") or path.suffix.lower() == ".dcm"


def _read_dicom(path: Path) -> tuple[np.ndarray, tuple[float, float] | None]:
    import pydicom

    try:
        ds = pydicom.dcmread(str(path))
        pixels = ds.pixel_array
    except Exception as exc:
        raise InputError(f"{path}: not a readable DICOM image ({type(exc).__name__}); "
                         f"expected {EXPECTED}") from None
    if pixels.ndim == 3 and getattr(ds, "SamplesPerPixel", 1) == 1:
        pixels = pixels[0]  # a cine: its first frame
    spacing = None
    for keyword in ("PixelSpacing", "ImagerPixelSpacing"):
        value = getattr(ds, keyword, None)
        if value is not None and len(value) == 2 and all(float(v) > 0 for v in value):
            spacing = (float(value[0]), float(value[1]))
            break
    if getattr(ds, "PhotometricInterpretation", "") == "MONOCHROME1":
        pixels = pixels.max() - pixels  # keep the attenuating needle dark
    return np.asarray(pixels), spacing


def load_image(path: Path) -> tuple[np.ndarray, tuple[float, float] | None]:
    """Greyscale pixels (uint16 or float32, H×W) and the file's pixel spacing (row, col) mm,
    or None when it has none. ``InputError`` naming the file when it cannot be read."""
    if not path.is_file():
        raise InputError(f"{path}: no such file; expected {EXPECTED}")
    if _is_dicom(path):
        pixels, spacing = _read_dicom(path)
    else:
        import cv2

        pixels = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if pixels is None:
            raise InputError(f"{path}: not a readable image; expected {EXPECTED}")
        spacing = None
        if pixels.ndim == 3:
            code = cv2.COLOR_BGRA2GRAY if pixels.shape[2] == 4 else cv2.COLOR_BGR2GRAY
            pixels = cv2.cvtColor(pixels, code)
    if pixels.ndim != 2 or min(pixels.shape) < 32:
        raise InputError(f"{path}: a {'x'.join(map(str, pixels.shape))} array; expected "
                         f"{EXPECTED}, at least 32x32")
    if pixels.dtype != np.uint16:
        pixels = pixels.astype(np.float32)
    return np.ascontiguousarray(pixels), spacing


def detect_file(path: Path, pixel_spacing_mm: float | None = None
                ) -> tuple[NeedleResult, tuple[float, float], bool]:
    """Detect the needle in the file: (result, spacing used, whether the spacing is known)."""
    pixels, spacing = load_image(path)
    known = True
    detection_spacing = None
    if spacing is None and pixel_spacing_mm is not None:
        spacing = (pixel_spacing_mm, pixel_spacing_mm)
    if spacing is None:
        spacing, known = (1.0, 1.0), False
        detection_spacing = NOMINAL_SPACING_MM
    tracker = NeedleTracker()
    result = tracker.detect(pixels, spacing, detection_spacing_mm=detection_spacing)
    return result, spacing, known


def result_json(result: NeedleResult) -> dict[str, Any]:
    """The ``--json`` object: detected, confidence, tip_px, hub_px, angle_deg."""
    def point(p: tuple[float, float] | None) -> list[float] | None:
        return None if p is None else [round(p[0], 3), round(p[1], 3)]

    return {"detected": result.detected, "confidence": round(result.confidence, 4),
            "tip_px": point(result.tip_px), "hub_px": point(result.hub_px),
            "angle_deg": None if result.angle_deg is None else round(result.angle_deg, 3)}


def cmd_track(args: argparse.Namespace) -> int:
    result, spacing, known = detect_file(args.image, args.pixel_spacing)
    if not known:
        notice(f"{args.image}: no pixel spacing in the file; using 1 mm (mm values are pixels)")
    if args.json:
        print(json.dumps(result_json(result)), flush=True)
        return 0
    if not result.detected:
        print(f"{args.image}: no needle detected (confidence {result.confidence:.2f})")
        return 0
    tip, hub = result.tip_px, result.hub_px
    assert tip is not None and hub is not None and result.angle_deg is not None
    print(f"{args.image}: needle tip ({tip[0]:.1f}, {tip[1]:.1f}) px, hub ({hub[0]:.1f}, "
          f"{hub[1]:.1f}) px, angle {result.angle_deg:.1f} deg, confidence "
          f"{result.confidence:.2f} (pixel spacing {spacing[0]:g} x {spacing[1]:g} mm; one "
          f"image: judged on its shape alone)",
          flush=True)
    return 0
