"""Exporting a procedure from the dose log as an X-Ray Radiation Dose SR (DICOM PS3.3 A.35.8).

``export_rdsr(log, uid, out)`` writes one file: SOP class 1.2.840.10008.5.1.4.1.1.88.67 with
the modules the IOD requires (Patient, General Study, SR Document Series, General Equipment,
Enhanced General Equipment, SR Document General, SR Document Content, SOP Common), content per
PS3.16 TID 10001 "Projection X-Ray Radiation Dose":

- TID 1002 observer context with a device observer (TID 1004): UID, name (the room),
  manufacturer, model (the C-arm as the log names it);
- Scope of Accumulation: Study (113014), with the Study Instance UID;
- one TID 10002 "Accumulated X-Ray Dose Data" container, single plane, holding the TID 10004
  totals: Dose Area Product Total 113722 and Fluoro DAP Total 113726 (Gy.m2), Dose (RP) Total
  113725 and Fluoro Dose (RP) Total 113728 (Gy), Total Fluoro Time 113730 (s), the acquisition
  totals 113727/113729/113855 (0: fluoro records fluoroscopy only), Total Number of
  Radiographic Frames 113731 (0) and the Reference Point Definition 113780 (code 113860 when the
  IEC 60601-2-43 point is in force, else the log's text);
- one TID 10003 "Irradiation Event X-Ray Data" container per irradiation event (pedal press):
  Irradiation Event Type 113721 = Fluoroscopy (SCT 44491008), UID, DateTime Started, DAP 122130
  (Gy.m2), Dose (RP) 113738 (Gy), Collimated Field Area 113790 (m2), Fluoro Mode Pulsed, Pulse
  Rate 113791 ({pulse}/s), Number of Pulses 113768 (1), Irradiation Duration 113742 (s), and the
  TID 10003B source data KVP 113733 (kV), X-Ray Tube Current 113734 (mA), Pulse Width 113793 (ms).

The patient: the log holds only the pseudonymous key, so Patient ID is that key (Issuer of
Patient ID ``FLUORO-PSEUDONYM``) and Patient's Name, Birth Date and Sex are empty (type 2). An
imported procedure is exported from the report it came from.
"""

from __future__ import annotations

import os
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, ExplicitVRLittleEndian, generate_uid

from fluoro import __version__
from fluoro.dicomtime import da_tm, dicom_datetime, parse_dicom_datetime
from fluoro.doselog import DoseLog, ImportedEvent, ImportedPlane, ImportedProcedure
from fluoro.doselog.records import ProcedureInfo, ProcedureSummary
from fluoro.errors import InputError
from fluoro.rdsr import codes as c
from fluoro.rdsr.content import (
    CONTAINS,
    HAS_CONCEPT_MOD,
    HAS_OBS_CONTEXT,
    HAS_PROPERTIES,
    code,
    code_item,
    container,
    datetime_item,
    num,
    text,
    uid_from,
    uidref,
)

__all__ = ["build_dataset", "export_rdsr", "live_report"]

# Completion Flag must be COMPLETE in this IOD; a procedure the log holds without its end (a
# killed process) or a report imported as PARTIAL says so in a Comment (121106) instead.
_PARTIAL_COMMENT = ("Partial record: the procedure has no end in the dose log (or was reported "
                    "as PARTIAL); the totals are those of the pulses that were recorded.")


def _mean(values: list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def live_report(log: DoseLog, summary: ProcedureSummary) -> ImportedProcedure:
    """A live procedure's logged pulses as report content: one event per irradiation event.

    Per event: DAP and Ka,r summed over its pulses plus the estimates for its missing pulses (so
    the events add up to the procedure totals); Number of Pulses counts both; kVp, mA, pulse
    width and pulse rate are means over its pulses; the collimated field area is given at the
    image receptor (DICOM 113790), i.e. the logged area at the reference point times
    (SID / source-to-reference-point distance)²; Irradiation Duration runs from the first pulse
    to the end of the last; DateTime Started is the procedure start plus the source-clock offset
    of the event from the first one.
    """
    uid = summary.procedure_uid
    pulses = defaultdict(list)
    for pulse in log.pulses(uid):
        pulses[pulse.event].append(pulse)
    gaps = defaultdict(list)
    for gap in log.gaps(uid):
        gaps[gap.event].append(gap)
    logged = log.events(uid)
    t0 = logged[0].start_t_s if logged else 0.0
    events = []
    for index, event in enumerate(logged, start=1):
        own, lost = pulses.get(event.event, []), gaps.get(event.event, [])
        exposures = [p.exposure for p in own]
        last_ms = exposures[-1].pulse_ms if exposures else 0.0
        areas = [e.field_area_cm2 * (e.sid_mm / e.sirp_mm) ** 2 for e in exposures
                 if e.sirp_mm > 0]
        started = summary.started_utc + timedelta(seconds=event.start_t_s - t0)
        events.append(ImportedEvent(
            index=index, uid=uid_from(uid, "event", str(event.event)),
            started=dicom_datetime(started), event_type="fluoroscopy",
            event_type_code=f"{c.FLUOROSCOPY.value}^{c.FLUOROSCOPY.scheme}", plane="single",
            protocol=summary.procedure_name,
            dap_gycm2=sum(p.dap_gycm2 for p in own) + sum(g.dap_est_gycm2 for g in lost),
            kar_mgy=sum(p.kar_mgy for p in own) + sum(g.kar_est_mgy for g in lost),
            field_area_cm2=_mean(areas), kvp=_mean([e.kvp for e in exposures]),
            ma=_mean([e.ma for e in exposures]),
            pulse_rate_hz=_mean([e.pulse_rate_hz for e in exposures if e.pulse_rate_hz]),
            pulses=float(len(own) + sum(g.count for g in lost)),
            pulse_ms=_mean([e.pulse_ms for e in exposures]),
            duration_s=max(0.0, event.end_t_s - event.start_t_s) + last_ms / 1e3,
            reference_point=summary.info.reference_point,
            reference_point_code=summary.info.reference_point_code))
    info = summary.info
    plane = ImportedPlane(
        plane="single", dap_total_gycm2=summary.dap_gycm2, kar_total_mgy=summary.kar_mgy,
        fluoro_dap_gycm2=summary.dap_gycm2, fluoro_kar_mgy=summary.kar_mgy,
        fluoro_time_s=summary.fluoro_time_s, acquisition_dap_gycm2=0.0, acquisition_kar_mgy=0.0,
        acquisition_time_s=0.0, radiographic_frames=0.0, reference_point=info.reference_point,
        reference_point_code=info.reference_point_code)
    return ImportedProcedure(
        sop_instance_uid="", study_instance_uid=uid_from(uid, "study"), file_name="",
        manufacturer="", model=info.device, device_serial="", device_observer_name=info.room,
        device_observer_uid="", completion_flag="COMPLETE" if summary.complete else "PARTIAL",
        started=summary.started_utc.isoformat(), time_zone_stated=True,
        reference_point=info.reference_point, reference_point_code=info.reference_point_code,
        planes=(plane,), events=tuple(events))


def _reference_point(relationship: str, point: str | None, point_code: str | None) -> Dataset:
    if point_code == c.IEC_REFERENCE_POINT_CODE.value:
        return code(relationship, c.REFERENCE_POINT_DEFINITION, c.IEC_REFERENCE_POINT_CODE)
    if point_code == c.IMAGE_INPUT_30CM_CODE.value:
        return code(relationship, c.REFERENCE_POINT_DEFINITION, c.IMAGE_INPUT_30CM_CODE)
    return text(relationship, c.REFERENCE_POINT_DEFINITION, point or "not stated")


def _nums(rows: list[tuple[c.Code, float | None, c.Code, float]]) -> list[Dataset]:
    """NUM items for the stated values: (concept, value in fluoro's unit, DICOM unit, factor
    from fluoro's unit to the DICOM unit)."""
    return [num(CONTAINS, concept, value * factor, unit)
            for concept, value, unit, factor in rows if value is not None]


def _plane_code(plane: str) -> c.Code:
    return {"A": c.PLANE_A, "B": c.PLANE_B}.get(plane, c.SINGLE_PLANE)


def _accumulated(plane: ImportedPlane) -> Dataset:
    """TID 10002 with the TID 10004 totals of one plane."""
    gy_m2, gy = 1e-4, 1e-3  # Gy·cm² -> Gy.m2, mGy -> Gy
    rows = [
        (c.DOSE_AREA_PRODUCT_TOTAL, plane.dap_total_gycm2, c.UNIT_GY_M2, gy_m2),
        (c.DOSE_RP_TOTAL, plane.kar_total_mgy, c.UNIT_GY, gy),
        (c.FLUORO_DOSE_AREA_PRODUCT_TOTAL, plane.fluoro_dap_gycm2, c.UNIT_GY_M2, gy_m2),
        (c.FLUORO_DOSE_RP_TOTAL, plane.fluoro_kar_mgy, c.UNIT_GY, gy),
        (c.TOTAL_FLUORO_TIME, plane.fluoro_time_s, c.UNIT_S, 1.0),
        (c.ACQUISITION_DOSE_AREA_PRODUCT_TOTAL, plane.acquisition_dap_gycm2, c.UNIT_GY_M2, gy_m2),
        (c.ACQUISITION_DOSE_RP_TOTAL, plane.acquisition_kar_mgy, c.UNIT_GY, gy),
        (c.TOTAL_ACQUISITION_TIME, plane.acquisition_time_s, c.UNIT_S, 1.0),
        (c.TOTAL_NUMBER_OF_RADIOGRAPHIC_FRAMES, plane.radiographic_frames, c.UNIT_NONE, 1.0),
    ]
    return container(CONTAINS, c.ACCUMULATED_XRAY_DOSE_DATA, [
        code(HAS_CONCEPT_MOD, c.ACQUISITION_PLANE, _plane_code(plane.plane)),
        *_nums(rows),
        _reference_point(CONTAINS, plane.reference_point, plane.reference_point_code)])


def _event_type(event: ImportedEvent) -> c.Code:
    if event.event_type == "fluoroscopy":
        return c.FLUOROSCOPY
    value, _, scheme = event.event_type_code.partition("^")
    return c.Code(value, scheme, event.event_type) if value and scheme else c.FLUOROSCOPY


def _event(event: ImportedEvent, fallback_start: datetime, procedure_uid: str) -> Dataset:
    """TID 10003 (with TID 10003B source data) for one irradiation event."""
    started = parse_dicom_datetime(event.started) or fallback_start
    items = [code(HAS_CONCEPT_MOD, c.ACQUISITION_PLANE, _plane_code(event.plane)),
             datetime_item(CONTAINS, c.DATETIME_STARTED, started),
             code(CONTAINS, c.IRRADIATION_EVENT_TYPE, _event_type(event))]
    if event.protocol:
        items.append(text(CONTAINS, c.ACQUISITION_PROTOCOL, event.protocol[:1024]))
    items += [_reference_point(CONTAINS, event.reference_point, event.reference_point_code),
              uidref(CONTAINS, c.IRRADIATION_EVENT_UID,
                     event.uid or uid_from(procedure_uid, "event", str(event.index)))]
    items += _nums([
        (c.DOSE_AREA_PRODUCT, event.dap_gycm2, c.UNIT_GY_M2, 1e-4),
        (c.DOSE_RP, event.kar_mgy, c.UNIT_GY, 1e-3),
        (c.COLLIMATED_FIELD_AREA, event.field_area_cm2, c.UNIT_M2, 1e-4)])
    if event.event_type == "fluoroscopy" and event.pulse_rate_hz:
        items.append(code(CONTAINS, c.FLUORO_MODE, c.PULSED))
    items += _nums([
        (c.PULSE_RATE, event.pulse_rate_hz, c.UNIT_PULSE_PER_S, 1.0),
        (c.NUMBER_OF_PULSES, event.pulses, c.UNIT_NONE, 1.0),
        (c.IRRADIATION_DURATION, event.duration_s, c.UNIT_S, 1.0),
        (c.KVP, event.kvp, c.UNIT_KV, 1.0),
        (c.XRAY_TUBE_CURRENT, event.ma, c.UNIT_MA, 1.0),
        (c.PULSE_WIDTH, event.pulse_ms, c.UNIT_MS, 1.0)])
    return container(CONTAINS, c.IRRADIATION_EVENT_XRAY_DATA, items)


def _observer(info: ProcedureInfo, report: ImportedProcedure) -> list[Dataset]:
    """TID 1002 observer context, device observer (TID 1004)."""
    model = (report.model or info.device or "fluoro dose monitor")[:64]
    items = [code(HAS_OBS_CONTEXT, c.OBSERVER_TYPE, c.DEVICE),
             uidref(HAS_OBS_CONTEXT, c.DEVICE_OBSERVER_UID,
                    report.device_observer_uid if report.device_observer_uid[:1].isdigit()
                    else uid_from("fluoro-device", info.device, info.room)),
             text(HAS_OBS_CONTEXT, c.DEVICE_OBSERVER_NAME,
                  report.device_observer_name or info.room or "fluoro"),
             text(HAS_OBS_CONTEXT, c.DEVICE_OBSERVER_MANUFACTURER, report.manufacturer or "fluoro"),
             text(HAS_OBS_CONTEXT, c.DEVICE_OBSERVER_MODEL_NAME, model)]
    if report.device_serial:
        items.append(text(HAS_OBS_CONTEXT, c.DEVICE_OBSERVER_SERIAL_NUMBER, report.device_serial))
    return items


def build_dataset(info: ProcedureInfo, report: ImportedProcedure, now: datetime | None = None,
                  ) -> Dataset:
    """The X-Ray Radiation Dose SR of one procedure (see the module docstring)."""
    now = (now or datetime.now(UTC)).astimezone(UTC)
    started = info.started_utc.astimezone(UTC) if info.started_utc else now
    uid = info.procedure_uid or ""
    ends = [s + timedelta(seconds=e.duration_s or 0.0) for e in report.events
            if (s := parse_dicom_datetime(e.started))]
    ds = Dataset()
    texts = [info.procedure_name, info.device, info.room, info.reference_point,
             report.manufacturer, report.model, report.device_observer_name,
             *[e.protocol for e in report.events], *[e.reference_point for e in report.events],
             *[plane.reference_point for plane in report.planes]]
    if not all(t.isascii() for t in texts if t):
        ds.SpecificCharacterSet = "ISO_IR 192"  # UTF-8; the default repertoire is ASCII
    ds.InstanceCreationDate, ds.InstanceCreationTime = da_tm(now)
    ds.SOPClassUID = c.XRAY_RADIATION_DOSE_SR
    ds.SOPInstanceUID = generate_uid()
    ds.StudyDate, ds.StudyTime = da_tm(started)
    ds.ContentDate, ds.ContentTime = da_tm(now)
    ds.AccessionNumber = ""
    ds.Modality = "SR"
    ds.Manufacturer = "fluoro"
    ds.ReferringPhysicianName = ""
    ds.TimezoneOffsetFromUTC = "+0000"
    ds.StudyDescription = (info.procedure_name or "")[:64]
    ds.SeriesDescription = "Radiation Dose Information"
    ds.ManufacturerModelName = "fluoro dose monitor"
    ds.PatientName = ""  # only the pseudonymous key is in the log
    ds.PatientID = info.patient_key or ""
    if info.patient_key:
        ds.IssuerOfPatientID = c.PSEUDONYM_ISSUER
    ds.PatientBirthDate = ""
    ds.PatientSex = ""
    ds.DeviceSerialNumber = (info.device or info.room or "unspecified")[:64]
    ds.SoftwareVersions = f"fluoro {__version__}"
    ds.StudyInstanceUID = report.study_instance_uid or uid_from(uid, "study")
    ds.SeriesInstanceUID = generate_uid()
    ds.StudyID = ""
    ds.SeriesNumber = 1
    ds.InstanceNumber = 1
    ds.ReferencedPerformedProcedureStepSequence = Sequence()
    ds.ValueType = "CONTAINER"
    ds.ConceptNameCodeSequence = Sequence([code_item(c.XRAY_RADIATION_DOSE_REPORT)])
    ds.ContinuityOfContent = "SEPARATE"
    template = Dataset()
    template.MappingResource = "DCMR"
    template.TemplateIdentifier = "10001"
    ds.ContentTemplateSequence = Sequence([template])
    ds.CompletionFlag = "COMPLETE"  # the X-Ray Radiation Dose SR IOD allows no other value
    ds.VerificationFlag = "UNVERIFIED"
    ds.PerformedProcedureCodeSequence = Sequence()
    ds.ContentSequence = Sequence([
        code(HAS_CONCEPT_MOD, c.PROCEDURE_REPORTED, c.PROJECTION_XRAY),
        *_observer(info, report),
        code(HAS_OBS_CONTEXT, c.SCOPE_OF_ACCUMULATION, c.STUDY, [
            uidref(HAS_PROPERTIES, c.STUDY_INSTANCE_UID, ds.StudyInstanceUID)]),
        *[_accumulated(plane) for plane in report.planes],
        *[_event(event, started, uid) for event in report.events],
        *([text(CONTAINS, c.COMMENT, _PARTIAL_COMMENT)]
          if report.completion_flag not in ("", "COMPLETE") else []),
        code(CONTAINS, c.SOURCE_OF_DOSE_INFORMATION, c.SYSTEM_CALCULATED),
        datetime_item(CONTAINS, c.START_OF_XRAY_IRRADIATION, started),
        datetime_item(CONTAINS, c.END_OF_XRAY_IRRADIATION, max(ends) if ends else started)])
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    meta.ImplementationVersionName = f"FLUORO_{__version__}"[:16]
    ds.file_meta = meta
    return ds


def export_rdsr(log: DoseLog, procedure_uid: str, out: str | os.PathLike[str]) -> Path:
    """Write procedure ``procedure_uid`` of ``log`` as an RDSR at ``out``; returns the path.

    Raises ``InputError`` for an unknown procedure or an output path that cannot be written.
    """
    out = Path(out)
    summary = log.procedure(procedure_uid)
    report = summary.imported or live_report(log, summary)
    ds = build_dataset(summary.info, report)
    if out.is_dir():
        raise InputError(f"--out {out}: is a folder; expected a file name such as dose.dcm")
    if not out.parent.is_dir():
        raise InputError(f"--out {out}: folder {out.parent} does not exist")
    ds.save_as(out, enforce_file_format=True)
    return out
