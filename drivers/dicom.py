"""DICOM cine replay: ``dicom:PATH[?realtime=0&loop=1]`` plays an XA/RF image as a frame source.

Single- and multi-frame X-ray angiography (XA) and radiofluoroscopy (RF) images are accepted
whatever their SOP class (a Secondary Capture with Modality XA plays too): what is checked is
the Modality (0008,0060) and that there is pixel data. Compressed transfer syntaxes decode
through pydicom's pixel handlers (JPEG Baseline / Lossless and JPEG 2000 through the
pylibjpeg plug-ins). MONOCHROME1 is inverted so that, as with every fluoro source, a larger
value means more detected signal (bone dark). Pixel values keep their stored scale (Bits
Stored, DICOM PS3.3 C.7.6.3).

Pacing: Frame Time (0018,1063, ms), else Cine Rate (0018,0040), else Recommended Display Frame
Rate (0008,2144); without any of them 15 frames/s is assumed and the description says so.
Pixel spacing (row, col), mm: Imager Pixel Spacing (0018,1164) divided by the Estimated
Radiographic Magnification Factor (0018,1114) when present, else Pixel Spacing (0028,0030),
else 1 mm (and the description says it is unknown).

Technique factors from the header (kVp 0018,0060; X-Ray Tube Current 0018,1151 mA; Exposure
Time 0018,1150 ms or Average Pulse Width 0018,1154; Distance Source to Detector 0018,1110;
Distance Source to Isocenter 0018,9402 for the reference point 15 cm toward the source) become
the frames' ``Exposure``; a header without kVp and tube current gives frames without one (the
dose path then counts frames but models no dose). Per-frame functional groups of enhanced XA
are not read yet.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from drivers.url_options import path_and_flags
from fluoro.errors import SourceError
from fluoro.frame import EndOfStream, Exposure, Frame, SourceInfo, now_ns

MODALITIES = ("XA", "RF")
DEFAULT_FPS = 15.0
REFERENCE_POINT_OFFSET_MM = 150.0  # IEC 60601-2-43: 15 cm from the isocentre toward the source


def _number(ds: Any, keyword: str) -> float | None:
    value = ds.get(keyword)
    if value is None or value == "":
        return None
    try:
        return float(value[0] if isinstance(value, list | tuple) else value)
    except (TypeError, ValueError):
        return None


def _frame_rate(ds: Any) -> tuple[float, str]:
    if (frame_time_ms := _number(ds, "FrameTime")) and frame_time_ms > 0:
        return 1000.0 / frame_time_ms, f"frame time {frame_time_ms:g} ms"
    for keyword in ("CineRate", "RecommendedDisplayFrameRate"):
        if (rate := _number(ds, keyword)) and rate > 0:
            return rate, f"{keyword} {rate:g}/s"
    return DEFAULT_FPS, f"no frame time in the file: {DEFAULT_FPS:g} frames/s assumed"


def _pixel_spacing(ds: Any) -> tuple[tuple[float, float], str]:
    for keyword in ("ImagerPixelSpacing", "PixelSpacing"):
        value = ds.get(keyword)
        if value is not None and len(value) == 2 and all(float(v) > 0 for v in value):
            row_mm, col_mm = float(value[0]), float(value[1])
            magnification = _number(ds, "EstimatedRadiographicMagnificationFactor")
            if keyword == "ImagerPixelSpacing" and magnification and magnification > 0:
                row_mm, col_mm = row_mm / magnification, col_mm / magnification
            return (row_mm, col_mm), keyword
    return (1.0, 1.0), "pixel spacing unknown: 1 mm assumed"


def _exposure(ds: Any, fps: float) -> Exposure | None:
    kvp, ma = _number(ds, "KVP"), _number(ds, "XRayTubeCurrent")
    if kvp is None or ma is None:
        return None
    pulse_ms = _number(ds, "AveragePulseWidth") or _number(ds, "ExposureTime") or 0.0
    sid_mm = _number(ds, "DistanceSourceToDetector") or 1000.0
    iso_mm = _number(ds, "DistanceSourceToIsocenter")
    sirp_mm = iso_mm - REFERENCE_POINT_OFFSET_MM if iso_mm else 0.6 * sid_mm
    return Exposure(beam_on=True, kvp=kvp, ma=ma, pulse_ms=pulse_ms, sid_mm=sid_mm,
                    sirp_mm=sirp_mm, field_area_cm2=0.0, filter_mm_cu=0.0, pulse_rate_hz=fps)


class DicomCine:
    """Frames of one DICOM file, paced at the file's frame rate or as fast as read."""

    def __init__(self, path: Path, url: str, realtime: bool = True, loop: bool = False) -> None:
        import pydicom
        from pydicom.errors import InvalidDicomError

        if not path.is_file():
            raise SourceError(f"{url}: no such file {str(path)!r}")
        try:
            ds = pydicom.dcmread(path)
        except (InvalidDicomError, OSError, ValueError) as exc:
            raise SourceError(f"{url}: not a DICOM file ({exc})") from None
        modality = str(ds.get("Modality", ""))
        if modality not in MODALITIES:
            raise SourceError(f"{url}: Modality {modality or 'missing'!r}; expected an X-ray "
                              f"angiography or fluoroscopy image ({', '.join(MODALITIES)})")
        if "PixelData" not in ds:
            raise SourceError(f"{url}: the file has no pixel data")
        try:
            pixels = ds.pixel_array
        except Exception as exc:  # a transfer syntax with no decoder installed, corrupt data
            raise SourceError(f"{url}: cannot decode the pixel data "
                              f"({ds.file_meta.TransferSyntaxUID.name}): {exc}") from None
        if pixels.ndim == 2:
            pixels = pixels[np.newaxis]
        if pixels.ndim != 3:
            raise SourceError(f"{url}: expected grey-scale frames, got pixel array {pixels.shape}")
        if str(ds.get("PhotometricInterpretation", "")) == "MONOCHROME1":
            pixels = pixels.max() - pixels
        self._frames = np.ascontiguousarray(pixels.astype(np.uint16))
        self._frames.flags.writeable = False
        self.fps, rate_note = _frame_rate(ds)
        self.pixel_spacing_mm, spacing_note = _pixel_spacing(ds)
        self.exposure = _exposure(ds, self.fps)
        self.realtime = realtime
        self.loop = loop
        n, h, w = self._frames.shape
        self.info = SourceInfo(
            url=url,
            description=(f"DICOM {modality} {path.name}: {n} frames {w}x{h}, "
                         f"{ds.get('BitsStored', '?')} bits stored, {rate_note}, {spacing_note}"),
            shape=(h, w), nominal_fps=self.fps, pixel_spacing_mm=self.pixel_spacing_mm)
        self._index = 0
        self._t0_ns: int | None = None

    @property
    def frame_count(self) -> int:
        return int(self._frames.shape[0])

    def read(self, timeout_s: float = 0.1) -> Frame | None:
        if self._index >= self.frame_count and not self.loop:
            raise EndOfStream
        if self.realtime:
            if self._t0_ns is None:
                self._t0_ns = now_ns()
            wait_s = (self._t0_ns + self._index * 1e9 / self.fps - now_ns()) * 1e-9
            if wait_s > timeout_s:
                time.sleep(timeout_s)
                return None
            if wait_s > 0:
                time.sleep(wait_s)
        i = self._index % self.frame_count
        frame = Frame(self._frames[i], self._index, self._index / self.fps, now_ns(),
                      self.pixel_spacing_mm, self.exposure)
        self._index += 1
        return frame

    def close(self) -> None:
        pass

    def __enter__(self) -> DicomCine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_dicom(url: str) -> DicomCine:
    """Open ``dicom:PATH[?realtime=0|1&loop=0|1]`` (raises ``SourceError`` naming the URL)."""
    path, flags = path_and_flags(url, {"realtime": True, "loop": False})
    return DicomCine(path, url, **flags)
