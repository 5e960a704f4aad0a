"""DICOM cine replay: ``dicom:PATH[?realtime=0&loop=1]`` plays an XA/RF image as a frame source.

Single- and multi-frame X-ray angiography (XA) and radiofluoroscopy (RF) images are accepted
whatever their SOP class (a Secondary Capture with Modality XA plays too): what is checked is
the Modality (0008,0060) and that there is pixel data. Compressed transfer syntaxes decode
through pydicom's pixel handlers (JPEG Baseline / Lossless and JPEG 2000 through the
pylibjpeg plug-ins). MONOCHROME1 is inverted so that, as with every fluoro source, a larger
value means more detected signal (bone dark). Pixel values keep their stored scale (Bits
Stored, DICOM PS3.3 C.7.6.3).

Pacing: Frame Time (0018,1063, ms), else Cine Rate (0018,0040), else Recommended Display Frame
Rate (0008,2144), else the span of the per-frame times; without any 15 frames/s is assumed
and the description says so.
Pixel spacing (row, col), mm: Imager Pixel Spacing (0018,1164) divided by the Estimated
Radiographic Magnification Factor (0018,1114) when both are present, else Pixel Spacing
(0028,0030), else the bare Imager Pixel Spacing, else 1 mm (and the description says so).

Technique factors (kVp 0018,0060; X-Ray Tube Current 0018,1151 or X-Ray Tube Current in mA
0018,9330; Average Pulse Width 0018,1154, else Exposure Time in ms 0018,9328 or Exposure Time
0018,1150; Distance Source to Detector 0018,1110; Distance Source to Isocenter 0018,9402 for
the reference point 15 cm toward the source), measured dose and copper filtration become each
frame's ``Exposure``, looked up per frame in the enhanced XA/XRF functional groups, then the
shared groups, then the top level (see ``drivers.dicom_technique``). A header without kVp and
tube current gives frames without one (the dose path then counts frames but models no dose).
Frame times: the frames' Frame Acquisition DateTime, else the Frame Time Vector, else the
frame rate.

A damaged file (truncated in the header or the pixel data, a corrupt compressed stream, fewer
decoded frames than Number of Frames) is refused with one line naming the URL.
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from drivers import dicom_technique as technique
from drivers.url_options import path_and_flags
from fluoro.errors import SourceError
from fluoro.frame import EndOfStream, Frame, SourceInfo, now_ns

MODALITIES = ("XA", "RF")
DEFAULT_FPS = 15.0
UNDEFINED_LENGTH = 0xFFFFFFFF


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    text = text if len(text) <= 160 else text[:157] + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _frame_rate(ds: Any) -> tuple[float, str] | None:
    if (frame_time_ms := technique.as_float(ds.get("FrameTime"))) and frame_time_ms > 0:
        return 1000.0 / frame_time_ms, f"frame time {frame_time_ms:g} ms"
    for keyword in ("CineRate", "RecommendedDisplayFrameRate"):
        if (rate := technique.as_float(ds.get(keyword))) and rate > 0:
            return rate, f"{keyword} {rate:g}/s"
    return None


def _read(path: Path, url: str) -> Any:
    """The data set, refused when pydicom fails or stopped short of an element's length."""
    import pydicom
    from pydicom.dataelem import RawDataElement
    from pydicom.errors import InvalidDicomError

    try:
        with warnings.catch_warnings(record=True) as caught:  # stderr stays one line
            warnings.simplefilter("always")
            ds = pydicom.dcmread(path)
    except InvalidDicomError as exc:
        raise SourceError(f"{url}: not a DICOM file ({exc})") from None
    except Exception as exc:  # EOFError, struct.error, OSError on a cut or damaged file
        raise SourceError(f"{url}: unreadable DICOM file, truncated or corrupt "
                          f"({_one_line(exc)})") from None
    for warning in caught:
        if "end of file" in str(warning.message).lower():
            raise SourceError(f"{url}: truncated file ({_one_line(warning.message)})")
    if len(ds) == 0:
        raise SourceError(f"{url}: no data elements after the file meta information "
                          "(truncated file?)")
    if "TransferSyntaxUID" not in ds.file_meta:
        raise SourceError(f"{url}: no Transfer Syntax UID in the file meta information "
                          "(truncated file?)")
    for tag in ds.keys():  # noqa: SIM118 (iterating the data set would convert values)
        elem = ds.get_item(tag)
        if (isinstance(elem, RawDataElement) and elem.length != UNDEFINED_LENGTH
                and elem.value is not None and len(elem.value) < elem.length):
            raise SourceError(f"{url}: truncated file: element {elem.tag} has "
                              f"{len(elem.value)} of its {elem.length} bytes")
    return ds


def _pixels(ds: Any, url: str) -> np.ndarray:
    """Decoded frames (N×H×W), refused when short, undecodable or fewer than declared."""
    syntax = ds.file_meta.TransferSyntaxUID
    rows, cols = int(ds.get("Rows") or 0), int(ds.get("Columns") or 0)
    declared = int(ds.get("NumberOfFrames") or 1)
    if not syntax.is_encapsulated:
        bits = int(ds.get("BitsAllocated") or 0)
        expected = (rows * cols * declared * int(ds.get("SamplesPerPixel") or 1) * bits + 7) // 8
        if len(ds.PixelData) < expected:
            raise SourceError(f"{url}: truncated pixel data: {len(ds.PixelData)} of the "
                              f"{expected} bytes that {declared} frames of {cols}x{rows} at "
                              f"{bits} bits need")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pixels = ds.pixel_array
    except Exception as exc:  # a transfer syntax with no decoder installed, corrupt data
        raise SourceError(f"{url}: cannot decode the pixel data ({syntax.name}, {declared} "
                          f"frames declared): {_one_line(exc)}") from None
    if pixels.ndim == 2:
        pixels = pixels[np.newaxis]
    if pixels.ndim != 3:
        raise SourceError(f"{url}: expected grey-scale frames, got pixel array {pixels.shape}")
    if pixels.shape[0] != declared:
        raise SourceError(f"{url}: decoded {pixels.shape[0]} frames, the header declares "
                          f"{declared} (truncated or corrupt pixel data)")
    return pixels


class DicomCine:
    """Frames of one DICOM file, paced at the file's frame rate or as fast as read."""

    def __init__(self, path: Path, url: str, realtime: bool = True, loop: bool = False) -> None:
        if not path.is_file():
            raise SourceError(f"{url}: no such file {str(path)!r}")
        ds = _read(path, url)
        modality = str(ds.get("Modality", ""))
        if modality not in MODALITIES:
            hint = "" if modality or "PixelData" in ds else " (truncated file?)"
            raise SourceError(f"{url}: Modality {modality or 'missing'!r}; expected an X-ray "
                              f"angiography or fluoroscopy image ({', '.join(MODALITIES)})"
                              f"{hint}")
        if "PixelData" not in ds:
            raise SourceError(f"{url}: the file has no pixel data (truncated file?)")
        pixels = _pixels(ds, url)
        if str(ds.get("PhotometricInterpretation", "")) == "MONOCHROME1":
            pixels = pixels.max() - pixels
        self._frames = np.ascontiguousarray(pixels.astype(np.uint16))
        self._frames.flags.writeable = False
        n, h, w = self._frames.shape
        try:
            rate_note = self._header(ds, n)
        except Exception as exc:  # a malformed header value pydicom could not convert
            raise SourceError(f"{url}: unreadable technique attributes ({_one_line(exc)})"
                              ) from None
        self.realtime = realtime
        self.loop = loop
        self.info = SourceInfo(
            url=url,
            description=(f"DICOM {modality} {path.name}: {n} frames {w}x{h}, "
                         f"{ds.get('BitsStored', '?')} bits stored, {rate_note}, "
                         f"{self._spacing_note}"),
            shape=(h, w), nominal_fps=self.fps, pixel_spacing_mm=self.pixel_spacing_mm)
        self._index = 0
        self._t0_ns: int | None = None

    def _header(self, ds: Any, n: int) -> str:
        """Frame rate, per-frame times, spacing and exposures; returns the pacing note."""
        scopes = technique.frame_scopes(ds, n)
        self._times = technique.frame_times(ds, scopes)
        rate = _frame_rate(ds)
        if rate is None and self._times and self._times[-1] > 0:
            rate = (n - 1) / self._times[-1], "rate from the frame times"
        self.fps, rate_note = rate or (
            DEFAULT_FPS, f"no frame time in the file: {DEFAULT_FPS:g} frames/s assumed")
        spacings = [technique.pixel_spacing(scope) for scope in scopes]
        self._spacings = [s for s, _ in spacings]
        self.pixel_spacing_mm, self._spacing_note = spacings[0]
        self._exposures = [technique.exposure(scope, self.fps, n) for scope in scopes]
        self.exposure = self._exposures[0]
        if self._times:
            rate_note += ", per-frame times"
        return rate_note

    @property
    def frame_count(self) -> int:
        return int(self._frames.shape[0])

    def _t_s(self, index: int) -> float:
        if not self._times:
            return index / self.fps
        loops, i = divmod(index, self.frame_count)
        return loops * (self._times[-1] + 1.0 / self.fps) + self._times[i]

    def read(self, timeout_s: float = 0.1) -> Frame | None:
        if self._index >= self.frame_count and not self.loop:
            raise EndOfStream
        t_s = self._t_s(self._index)
        if self.realtime:
            if self._t0_ns is None:
                self._t0_ns = now_ns()
            wait_s = (self._t0_ns + t_s * 1e9 - now_ns()) * 1e-9
            if wait_s > timeout_s:
                time.sleep(timeout_s)
                return None
            if wait_s > 0:
                time.sleep(wait_s)
        i = self._index % self.frame_count
        frame = Frame(self._frames[i], self._index, t_s, now_ns(), self._spacings[i],
                      self._exposures[i])
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
