"""Per-frame technique, geometry, timing and dose of a DICOM XA/RF image (DICOM PS3.3).

Every value is looked up for each frame in this order: the frame's item of the Per-frame
Functional Groups Sequence (5200,9230), then the Shared Functional Groups Sequence (5200,9229),
then the top-level data set (XA/XRF Acquisition, X-Ray Acquisition Dose, X-Ray Filtration
modules). Inside a functional-group item every macro sequence is searched one level deep, so
the keyword is found whichever macro carries it: Frame Acquisition (0018,9417: KVP, X-Ray Tube
Current in mA), XA/XRF Frame Characteristics (0018,9412: Distance Source to Isocenter), X-Ray
Geometry (0018,9476), Frame Pixel Data Properties (0028,9443: Imager Pixel Spacing), Pixel
Measures (0028,9110: Pixel Spacing), Frame Content (0020,9111: Frame Acquisition / Reference
DateTime).

Dose in the header is measured dose: Image and Fluoroscopy Area Dose Product (0018,115E,
dGy·cm²) and Entrance Dose in mGy (0040,8302), else Entrance Dose (0040,0302, dGy). A value
found in a frame's own group is that frame's; a shared or top-level value is the whole run's
and is spread evenly over the frames. Filter Material (0018,7050) / Filter Thickness Minimum
(0018,7052, mm) give the added copper (the thicknesses of the COPPER entries).
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise
from typing import Any

from fluoro.frame import Exposure

REFERENCE_POINT_OFFSET_MM = 150.0  # IEC 60601-2-43: 15 cm from the isocentre toward the source
DEFAULT_SID_MM = 1000.0
COPPER = ("COPPER", "CU")


class FrameScope:
    """Where one frame's attributes are looked up: its own group items, shared items, top."""

    def __init__(self, own: Sequence[Any], shared: Sequence[Any], top: Any) -> None:
        self._scopes = [(item, True) for item in own] + [(item, False) for item in shared]
        self._scopes.append((top, False))

    def find(self, keyword: str) -> tuple[Any, bool]:
        """(value, True when it came from the frame's own per-frame group) or (None, False)."""
        for item, own in self._scopes:
            value = item.get(keyword)
            if value is not None and value != "":
                return value, own
        return None, False

    def number(self, *keywords: str) -> float | None:
        """The first of ``keywords`` present as a number."""
        for keyword in keywords:
            value = as_float(self.find(keyword)[0])
            if value is not None:
                return value
        return None

    def numbers(self, keyword: str) -> list[float]:
        value = self.find(keyword)[0]
        if value is None:
            return []
        values = value if isinstance(value, Sequence) and not isinstance(value, str) else [value]
        floats = [as_float(v) for v in values]
        return [v for v in floats if v is not None]


def as_float(value: Any) -> float | None:
    if value is None or value == "":
        return None
    if isinstance(value, Sequence) and not isinstance(value, str):
        if len(value) == 0:
            return None
        value = value[0]
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _group_items(group: Any) -> list[Any]:
    """The macro items inside one functional-group item (every sequence, one level deep)."""
    if group is None:
        return []
    return [sub for elem in group if elem.VR == "SQ" for sub in (elem.value or [])]


def frame_scopes(ds: Any, n_frames: int) -> list[FrameScope]:
    """One lookup scope per frame. A per-frame sequence whose length is not the number of
    frames is ignored (the shared groups and the top level still apply)."""
    shared_seq = ds.get("SharedFunctionalGroupsSequence")
    shared = _group_items(shared_seq[0]) if shared_seq else []
    per_frame = ds.get("PerFrameFunctionalGroupsSequence")
    if not per_frame or len(per_frame) != n_frames:
        scope = FrameScope([], shared, ds)
        return [scope] * n_frames
    return [FrameScope(_group_items(item), shared, ds) for item in per_frame]


def pixel_spacing(scope: FrameScope) -> tuple[tuple[float, float], str]:
    """(row, col) mm in the patient: Imager Pixel Spacing / magnification, else a calibrated
    Pixel Spacing, else the bare Imager Pixel Spacing, else 1 mm."""
    imager = _pair(scope.numbers("ImagerPixelSpacing"))
    magnification = scope.number("EstimatedRadiographicMagnificationFactor")
    if imager and magnification and magnification > 0:
        return (imager[0] / magnification, imager[1] / magnification), "ImagerPixelSpacing"
    if pixel := _pair(scope.numbers("PixelSpacing")):
        return pixel, "PixelSpacing"
    if imager:
        return imager, "ImagerPixelSpacing"
    return (1.0, 1.0), "pixel spacing unknown: 1 mm assumed"


def _pair(values: list[float]) -> tuple[float, float] | None:
    if len(values) == 2 and all(v > 0 for v in values):
        return values[0], values[1]
    return None


def copper_mm(scope: FrameScope) -> float:
    """Added copper, mm: the minimum thickness of every COPPER entry of Filter Material."""
    materials = scope.find("FilterMaterial")[0]
    if materials is None:
        return 0.0
    if isinstance(materials, str):
        materials = [materials]
    thickness = scope.numbers("FilterThicknessMinimum")
    total = 0.0
    for index, material in enumerate(materials):
        if str(material).strip().upper() in COPPER and thickness:
            total += thickness[index] if index < len(thickness) else thickness[-1]
    return total


def _dose(scope: FrameScope, keyword: str, scale: float, n_frames: int) -> float | None:
    value, own = scope.find(keyword)
    number = as_float(value)
    if number is None or number < 0:
        return None
    return number * scale if own else number * scale / n_frames


def exposure(scope: FrameScope, fps: float, n_frames: int) -> Exposure | None:
    """The frame's technique; None without kVp and tube current."""
    kvp = scope.number("KVP")
    ma = scope.number("XRayTubeCurrentInmA", "XRayTubeCurrent")
    if kvp is None or ma is None:
        return None
    pulse_ms = scope.number("AveragePulseWidth", "ExposureTimeInms", "ExposureTime") or 0.0
    sid_mm = scope.number("DistanceSourceToDetector") or DEFAULT_SID_MM
    iso_mm = scope.number("DistanceSourceToIsocenter")
    sirp_mm = iso_mm - REFERENCE_POINT_OFFSET_MM if iso_mm else 0.6 * sid_mm
    dap = _dose(scope, "ImageAndFluoroscopyAreaDoseProduct", 0.1, n_frames)  # dGy·cm² → Gy·cm²
    kar = _dose(scope, "EntranceDoseInmGy", 1.0, n_frames)
    if kar is None:
        kar = _dose(scope, "EntranceDose", 100.0, n_frames)  # dGy → mGy
    return Exposure(beam_on=True, kvp=kvp, ma=ma, pulse_ms=pulse_ms, sid_mm=sid_mm,
                    sirp_mm=sirp_mm, field_area_cm2=0.0, filter_mm_cu=copper_mm(scope),
                    dap_gycm2=dap, kar_mgy=kar, pulse_rate_hz=fps)


def frame_times(ds: Any, scopes: list[FrameScope]) -> list[float] | None:
    """Seconds from the first frame: Frame Acquisition DateTime (else Frame Reference DateTime)
    of each frame's Frame Content, else the Frame Time Vector (0018,1065, ms increments).
    None when neither gives a non-decreasing time for every frame."""
    from pydicom.valuerep import DT

    stamps = []
    for scope in scopes:
        text, own = scope.find("FrameAcquisitionDateTime")
        if not own:
            text, own = scope.find("FrameReferenceDateTime")
        if not own:
            stamps = []
            break
        stamps.append(text)
    times: list[float] | None = None
    if stamps and len(stamps) == len(scopes):
        try:
            moments = [DT(str(s)) for s in stamps]
            times = [(m - moments[0]).total_seconds() for m in moments]
        except (TypeError, ValueError):
            times = None
    if times is None:
        vector = ds.get("FrameTimeVector")
        if vector is not None and len(vector) == len(scopes) > 1:
            try:
                increments = [float(v) for v in vector]
            except (TypeError, ValueError):
                return None
            times, total = [], 0.0
            for i, ms in enumerate(increments):
                total += ms if i else 0.0
                times.append(total / 1000.0)
    if times is None or any(b < a for a, b in pairwise(times)):
        return None
    return times
