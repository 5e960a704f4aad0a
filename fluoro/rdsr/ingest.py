"""Importing vendors' X-Ray Radiation Dose SRs (DICOM PS3.16 TID 10001) into the dose log.

``read_report(path, key_of)`` reads one file fully and returns what the log stores; nothing is
written until every file given has been read (``import_files``), and each file's rows go in one
transaction (``DoseLog.import_procedure``), so a bad file imports nothing.

What is read (concepts matched by CodeValue and scheme, never by meaning; values converted by
the unit's CodeValue, see ``fluoro.rdsr.codes``):

- TID 1002 observer context (device observer, TID 1004): UID, name, manufacturer, model, serial —
  the header's Manufacturer / Manufacturer's Model Name where the content has none;
- every TID 10002 "Accumulated X-Ray Dose Data" container, one per acquisition plane (TID 10004
  totals: DAP 113722/113726/113727, Dose (RP) 113725/113728/113729, times 113730/113855, frames
  113731, Reference Point Definition 113780 as a code or as free text);
- every TID 10003 "Irradiation Event X-Ray Data" container: type 113721, UID 113769, DateTime
  Started 111526, protocol, DAP 122130, Dose (RP) 113738, Collimated Field Area 113790, and from
  TID 10003B KVP 113733, X-Ray Tube Current 113734, Pulse Rate 113791, Number of Pulses 113768,
  Pulse Width 113793 (technique factors given once per pulse are averaged), Irradiation
  Duration 113742.

A NUM item with no Measured Value Sequence, or an empty value, reads as "not stated" (None). A
dose, DAP or time in a unit that is not known for its kind is refused (guessing a factor of
10,000 would be worse than stopping); an unknown unit of a technique factor is skipped with a
warning kept beside the import.

The patient: the Patient ID is never stored. It is replaced by the pseudonymous key
(``fluoro.doselog.pseudonym.patient_key`` with the site's secret), so imported procedures count
in the patient's cumulative dose; a report that fluoro exported carries the key already (Issuer of
Patient ID ``FLUORO-PSEUDONYM``) and keeps it.
"""

from __future__ import annotations

import math
import os
import re
import warnings
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from pathlib import Path

from pydicom.dataset import Dataset

from fluoro.dicomtime import parse_dicom_datetime, parse_utc_offset
from fluoro.doselog import DoseLog, Head, ProcedureInfo
from fluoro.doselog.imported import (
    ImportedEvent,
    ImportedPlane,
    ImportedProcedure,
)
from fluoro.errors import InputError
from fluoro.rdsr import codes
from fluoro.rdsr.read import read_dose_sr

__all__ = ["import_files", "read_report", "read_reports", "store_reports"]

_KEY = re.compile(r"[0-9a-f]{32,64}")
_CT_PROCEDURES = {("P5-08000", "SRT"), ("77477000", "SCT")}
_STRICT_KINDS = ("dap", "dose", "time")
_NOT_STATED = "not stated in the dose report"
KeyOf = Callable[[str], str]


def _pair(seq: Sequence[Dataset] | None) -> tuple[str, str] | None:
    if not seq:
        return None
    return (str(seq[0].get("CodeValue", "") or "").strip(),
            str(seq[0].get("CodingSchemeDesignator", "") or "").strip())


def _meaning(seq: Sequence[Dataset] | None) -> str:
    return str(seq[0].get("CodeMeaning", "") or "").strip() if seq else ""


def _concept(item: Dataset) -> tuple[str, str] | None:
    return _pair(item.get("ConceptNameCodeSequence"))


def _children(item: Dataset) -> Sequence[Dataset]:
    return item.get("ContentSequence") or ()


def _descendants(item: Dataset) -> Iterator[Dataset]:
    for child in _children(item):
        yield child
        yield from _descendants(child)


class _Reader:
    """Reads the content tree of one report; ``warnings`` collects what was skipped."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.warnings: list[str] = []

    def numbers(self, container: Dataset, concept: codes.Code, kind: str) -> list[float]:
        """Every stated value of NUM ``concept`` under ``container``, in the canonical unit."""
        values = []
        for item in _descendants(container):
            if item.get("ValueType") != "NUM" or _concept(item) != concept.key():
                continue
            value = self._number(item, concept, kind)
            if value is not None:
                values.append(value)
        return values

    def _number(self, item: Dataset, concept: codes.Code, kind: str) -> float | None:
        measured = item.get("MeasuredValueSequence")
        if not measured:
            return None
        raw = measured[0].get("NumericValue")
        if raw is None or raw == "":
            raw = measured[0].get("FloatingPointValue")
        if raw is None or raw == "" or (isinstance(raw, (list, tuple)) and not raw):
            return None
        try:
            value = float(raw[0] if isinstance(raw, (list, tuple)) else raw)
        except (TypeError, ValueError):
            raise InputError(f"{self.path}: {concept.meaning} ({concept.value}) has the value "
                             f"{raw!r}; expected a number") from None
        unit = _pair(measured[0].get("MeasurementUnitsCodeSequence"))
        unit_code = unit[0] if unit else ""
        converted = codes.to_canonical(value, unit_code, kind)
        if converted is None or not math.isfinite(converted):
            known = ", ".join(codes.UNITS_TO_CANONICAL[kind])
            problem = (f"{concept.meaning} ({concept.value}) in unit {unit_code!r}: expected one "
                       f"of {known}" if converted is None else
                       f"{concept.meaning} ({concept.value}) is {value}: expected a finite number")
            if kind in _STRICT_KINDS:
                raise InputError(f"{self.path}: {problem}")
            self.warnings.append(f"skipped {problem}")
            return None
        return converted

    def first(self, container: Dataset, concept: codes.Code, kind: str) -> float | None:
        values = self.numbers(container, concept, kind)
        return values[0] if values else None

    def mean(self, container: Dataset, concept: codes.Code, kind: str) -> float | None:
        values = self.numbers(container, concept, kind)
        return sum(values) / len(values) if values else None


def _child_value(container: Dataset, concept: codes.Code) -> Dataset | None:
    for item in _children(container):
        if _concept(item) == concept.key():
            return item
    return None


def _text_of(item: Dataset | None) -> str:
    """A TEXT, UIDREF, CODE (its meaning) or DATETIME item's value as text."""
    if item is None:
        return ""
    kind = item.get("ValueType")
    if kind == "CODE":
        return _meaning(item.get("ConceptCodeSequence"))
    for keyword in ("TextValue", "UID", "DateTime", "PersonName"):
        if keyword in item:
            return str(item.get(keyword) or "").strip()
    return ""


def _reference_point(container: Dataset) -> tuple[str | None, str | None]:
    """Reference Point Definition (113780) as (text, code value): a CODE gives its meaning and
    value (CID 10025), a TEXT its text and no code."""
    item = _child_value(container, codes.REFERENCE_POINT_DEFINITION)
    if item is None:
        return None, None
    if item.get("ValueType") == "CODE":
        code = _pair(item.get("ConceptCodeSequence"))
        return _meaning(item.get("ConceptCodeSequence")) or None, code[0] if code else None
    return _text_of(item) or None, None


def _plane(container: Dataset) -> str:
    item = _child_value(container, codes.ACQUISITION_PLANE)
    if item is None:
        return "unstated"
    code = _pair(item.get("ConceptCodeSequence"))
    names = {codes.SINGLE_PLANE.key(): "single", codes.PLANE_A.key(): "A",
             codes.PLANE_B.key(): "B"}
    return names.get(code, _meaning(item.get("ConceptCodeSequence")) or "unstated")


def _read_plane(reader: _Reader, container: Dataset) -> ImportedPlane:
    """One TID 10002 container (with its TID 10004 totals)."""
    c = codes
    point, point_code = _reference_point(container)
    return ImportedPlane(
        plane=_plane(container),
        dap_total_gycm2=reader.first(container, c.DOSE_AREA_PRODUCT_TOTAL, "dap"),
        kar_total_mgy=reader.first(container, c.DOSE_RP_TOTAL, "dose"),
        fluoro_dap_gycm2=reader.first(container, c.FLUORO_DOSE_AREA_PRODUCT_TOTAL, "dap"),
        fluoro_kar_mgy=reader.first(container, c.FLUORO_DOSE_RP_TOTAL, "dose"),
        fluoro_time_s=reader.first(container, c.TOTAL_FLUORO_TIME, "time"),
        acquisition_dap_gycm2=reader.first(container, c.ACQUISITION_DOSE_AREA_PRODUCT_TOTAL,
                                           "dap"),
        acquisition_kar_mgy=reader.first(container, c.ACQUISITION_DOSE_RP_TOTAL, "dose"),
        acquisition_time_s=reader.first(container, c.TOTAL_ACQUISITION_TIME, "time"),
        radiographic_frames=reader.first(container, c.TOTAL_NUMBER_OF_RADIOGRAPHIC_FRAMES,
                                         "count"),
        reference_point=point, reference_point_code=point_code)


def _event_type(container: Dataset) -> tuple[str, str]:
    item = _child_value(container, codes.IRRADIATION_EVENT_TYPE)
    code = _pair(item.get("ConceptCodeSequence")) if item is not None else None
    if code is None:
        return "unstated", ""
    name = ("fluoroscopy" if code in codes.FLUOROSCOPY_TYPES else
            "acquisition" if code in codes.ACQUISITION_TYPES else
            _meaning(item.get("ConceptCodeSequence")) or "other")
    return name, f"{code[0]}^{code[1]}"


def _read_event(reader: _Reader, container: Dataset, index: int) -> ImportedEvent:
    """One TID 10003 container (with its TID 10003B source data)."""
    c = codes
    event_type, type_code = _event_type(container)
    point, point_code = _reference_point(container)
    return ImportedEvent(
        index=index,
        uid=_text_of(_child_value(container, c.IRRADIATION_EVENT_UID)) or None,
        started=_text_of(_child_value(container, c.DATETIME_STARTED)) or None,
        event_type=event_type, event_type_code=type_code, plane=_plane(container),
        protocol=_text_of(_child_value(container, c.ACQUISITION_PROTOCOL)),
        dap_gycm2=reader.first(container, c.DOSE_AREA_PRODUCT, "dap"),
        kar_mgy=reader.first(container, c.DOSE_RP, "dose"),
        field_area_cm2=reader.first(container, c.COLLIMATED_FIELD_AREA, "area"),
        kvp=reader.mean(container, c.KVP, "voltage"),
        ma=reader.mean(container, c.XRAY_TUBE_CURRENT, "current"),
        pulse_rate_hz=reader.mean(container, c.PULSE_RATE, "rate"),
        pulses=reader.first(container, c.NUMBER_OF_PULSES, "count"),
        pulse_ms=(None if (w := reader.mean(container, c.PULSE_WIDTH, "time")) is None
                  else w * 1e3),
        duration_s=reader.first(container, c.IRRADIATION_DURATION, "time"),
        reference_point=point, reference_point_code=point_code)


def _observer(ds: Dataset) -> dict[str, str]:
    """TID 1002/1004 device observer context at the root, header attributes as fallback."""
    c = codes
    wanted = {"uid": c.DEVICE_OBSERVER_UID, "name": c.DEVICE_OBSERVER_NAME,
              "manufacturer": c.DEVICE_OBSERVER_MANUFACTURER,
              "model": c.DEVICE_OBSERVER_MODEL_NAME, "serial": c.DEVICE_OBSERVER_SERIAL_NUMBER}
    found = {key: _text_of(_child_value(ds, code)) for key, code in wanted.items()}
    header = {"manufacturer": "Manufacturer", "model": "ManufacturerModelName",
              "serial": "DeviceSerialNumber", "name": "StationName"}
    for key, keyword in header.items():
        if not found[key]:
            found[key] = str(ds.get(keyword, "") or "").strip()
    return found


def _refuse_ct(ds: Dataset, path: Path) -> None:
    reported = _child_value(ds, codes.PROCEDURE_REPORTED)
    code = _pair(reported.get("ConceptCodeSequence")) if reported is not None else None
    if code in _CT_PROCEDURES or _child_value(ds, codes.CT_ACCUMULATED_DOSE_DATA) is not None:
        raise InputError(f"{path}: a CT radiation dose report (TID 10011); expected a projection "
                         "X-ray dose report (TID 10001)")


def _patient_key(ds: Dataset, key_of: KeyOf) -> str | None:
    patient_id = str(ds.get("PatientID", "") or "").strip()
    if not patient_id:
        return None
    if str(ds.get("IssuerOfPatientID", "") or "") == codes.PSEUDONYM_ISSUER and \
            _KEY.fullmatch(patient_id):
        return patient_id
    return key_of(patient_id)


def read_report(path: str | os.PathLike[str], key_of: KeyOf) -> tuple[ProcedureInfo,
                                                                      ImportedProcedure]:
    """Read the dose report at ``path`` fully: what ``DoseLog.import_procedure`` stores.

    ``key_of`` turns a Patient ID into the pseudonymous key. Raises ``InputError`` (one line
    naming the file) for anything that is not a complete projection X-ray dose report.
    """
    path = Path(path)
    with warnings.catch_warnings():  # pydicom warns about vendors' invalid values: not for users
        warnings.simplefilter("ignore")
        try:
            return _read(path, key_of)
        except InputError:
            raise
        except Exception as exc:
            # pydicom decodes values lazily, so a damaged element surfaces here (an unknown VR,
            # a value that is not of its VR); FLUORO_DEBUG=1 shows the traceback
            if os.environ.get("FLUORO_DEBUG"):
                raise
            detail = str(exc).splitlines()[0] if str(exc) else ""
            raise InputError(f"{path}: damaged DICOM file or unreadable dose report content "
                             f"({type(exc).__name__}: {detail})") from None


def _read(path: Path, key_of: KeyOf) -> tuple[ProcedureInfo, ImportedProcedure]:
    ds = read_dose_sr(path)
    _refuse_ct(ds, path)
    reader = _Reader(path)
    uid = str(ds.get("SOPInstanceUID", "") or "").strip()
    if not uid or len(uid) > 64:
        raise InputError(f"{path}: dose report without a valid SOP Instance UID")
    root_items = list(_descendants(ds))
    planes = tuple(_read_plane(reader, item) for item in root_items
                   if _concept(item) == codes.ACCUMULATED_XRAY_DOSE_DATA.key())
    events = tuple(_read_event(reader, item, i + 1) for i, item in enumerate(
        item for item in root_items if _concept(item) == codes.IRRADIATION_EVENT_XRAY_DATA.key()))
    if not planes and not events:
        raise InputError(f"{path}: dose report with no accumulated dose (TID 10002) and no "
                         "irradiation events (TID 10003)")
    point, point_code = next(((p.reference_point, p.reference_point_code) for p in planes
                              if p.reference_point), (None, None))
    if point is None:
        stated = {(e.reference_point, e.reference_point_code) for e in events
                  if e.reference_point}
        if len(stated) == 1:
            point, point_code = stated.pop()
    offset = str(ds.get("TimezoneOffsetFromUTC", "") or "") or None
    starts = [t for e in events if (t := parse_dicom_datetime(e.started, offset))]
    started = min(starts) if starts else _header_time(ds, offset)
    observer = _observer(ds)
    report = ImportedProcedure(
        sop_instance_uid=uid, study_instance_uid=str(ds.get("StudyInstanceUID", "") or ""),
        file_name=path.name, manufacturer=observer["manufacturer"], model=observer["model"],
        device_serial=observer["serial"], device_observer_name=observer["name"],
        device_observer_uid=observer["uid"],
        completion_flag=str(ds.get("CompletionFlag", "") or ""),
        started=started.isoformat() if started else None,
        time_zone_stated=parse_utc_offset(offset) is not None or any(
            parse_utc_offset(e.started[-5:]) is not None for e in events if e.started),
        reference_point=point or _NOT_STATED, reference_point_code=point_code,
        planes=planes, events=events, warnings=tuple(dict.fromkeys(reader.warnings)))
    device = " ".join(x for x in (observer["manufacturer"], observer["model"]) if x)
    if observer["serial"]:
        device += f" (serial {observer['serial']})"
    info = ProcedureInfo(
        patient_key=_patient_key(ds, key_of),
        procedure_name=str(ds.get("StudyDescription", "") or "").strip()
        or "imported dose report",
        room=observer["name"], device=device.strip(),
        reference_point=point or _NOT_STATED, reference_point_code=point_code,
        started_utc=started, procedure_uid=uid)
    return info, report


def _header_time(ds: Dataset, offset: str | None) -> datetime | None:
    for date, time in (("StudyDate", "StudyTime"), ("ContentDate", "ContentTime")):
        if ds.get(date):
            return parse_dicom_datetime(f"{ds.get(date)}{ds.get(time, '') or ''}", offset)
    return None


Report = tuple[Path, ProcedureInfo, ImportedProcedure]


def read_reports(paths: Sequence[str | os.PathLike[str]], key_of: KeyOf) -> list[Report]:
    """Read every file fully (``read_report``); the first bad one raises ``InputError``."""
    return [(Path(p), *read_report(p, key_of)) for p in paths]


def store_reports(log: DoseLog, reports: Sequence[Report]) -> list[tuple[Path, str, Head | None]]:
    """Write reports read by ``read_reports`` into ``log``, each file in its own transaction.
    Returns ``(path, procedure UID, head after it)`` per file; head None for a report already in
    the log (same SOP Instance UID), which is skipped."""
    done: list[tuple[Path, str, Head | None]] = []
    seen: set[str] = set()
    for path, info, report in reports:
        uid = info.procedure_uid or ""
        if uid in seen or log.has_procedure(uid):
            done.append((path, uid, None))
            continue
        seen.add(uid)
        done.append((path, uid, log.import_procedure(info, report)))
    return done


def import_files(paths: Sequence[str | os.PathLike[str]], log: DoseLog,
                 key_of: KeyOf) -> list[tuple[Path, str, Head | None]]:
    """Import dose reports into ``log``: every file is read fully first (an ``InputError`` for
    any file imports nothing), then each is written in its own transaction (``store_reports``)."""
    return store_reports(log, read_reports(paths, key_of))
