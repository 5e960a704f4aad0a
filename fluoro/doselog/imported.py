"""Imported procedures in the dose log: dose reports written by other systems (vendors' RDSRs).

An imported procedure is stored, in one committed transaction, as these ledger rows:

1. ``procedure_start`` — the ``ProcedureInfo`` (pseudonymous patient key, device, reference point,
   start time from the report) with ``"source": "rdsr-import"``;
2. ``imported_procedure`` — the report as stated (``ImportedProcedure`` without its events): the
   accumulated totals of every plane (TID 10002/10004), the document's identity (SOP Instance
   UID, file name, manufacturer, model, completion flag) and any warnings from reading it;
3. one ``imported_event`` per irradiation event (TID 10003, ``ImportedEvent``), in report order;
4. ``procedure_end`` — ``DoseTotals`` holding the *stated* totals, and the chain anchor.

Rows 2 and 3 use only the identifying typed columns (like notes), so live-procedure queries
(pulses, gaps, events, ``_sums``) never count them, and the hash chain and ``verify`` treat them
as any other row. Stated totals and the sums over the imported events are both kept and both
reported; neither replaces the other. Units are fluoro's: DAP Gy·cm², Ka,r mGy, time s,
field area cm², kV, mA, pulses per second, ms.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from fluoro.dose.accumulator import DoseTotals
from fluoro.doselog.ledger import PROCEDURE_END, PROCEDURE_START, Row, plain

__all__ = [
    "IMPORTED_EVENT",
    "IMPORTED_PROCEDURE",
    "SOURCE_LIVE",
    "SOURCE_RDSR",
    "ImportedEvent",
    "ImportedPlane",
    "ImportedProcedure",
]

IMPORTED_PROCEDURE = "imported_procedure"
IMPORTED_EVENT = "imported_event"
SOURCE_LIVE = "live"
SOURCE_RDSR = "rdsr-import"


@dataclass(frozen=True, slots=True)
class ImportedEvent:
    """One irradiation event as a report states it (TID 10003); None where not stated.

    ``event_type``: ``"fluoroscopy"``, ``"acquisition"`` or the code meaning of another type;
    ``event_type_code``: ``"VALUE^SCHEME"``. ``plane``: the Acquisition Plane meaning.
    ``field_area_cm2`` is the Collimated Field Area (DICOM 113790, at the image receptor).
    ``started``: DateTime Started as written (DICOM DT text).
    """

    index: int
    uid: str | None
    started: str | None
    event_type: str
    event_type_code: str
    plane: str
    protocol: str
    dap_gycm2: float | None
    kar_mgy: float | None
    field_area_cm2: float | None
    kvp: float | None
    ma: float | None
    pulse_rate_hz: float | None
    pulses: float | None
    pulse_ms: float | None
    duration_s: float | None
    reference_point: str | None
    reference_point_code: str | None

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> ImportedEvent:
        return cls(**{f.name: data[f.name] for f in fields(cls)})


@dataclass(frozen=True, slots=True)
class ImportedPlane:
    """Accumulated dose of one acquisition plane as stated (TID 10002 / TID 10004).

    DAP in Gy·cm², Dose (RP) (Ka,r) in mGy, times in s; None where the report states no value.
    """

    plane: str
    dap_total_gycm2: float | None
    kar_total_mgy: float | None
    fluoro_dap_gycm2: float | None
    fluoro_kar_mgy: float | None
    fluoro_time_s: float | None
    acquisition_dap_gycm2: float | None
    acquisition_kar_mgy: float | None
    acquisition_time_s: float | None
    radiographic_frames: float | None
    reference_point: str | None
    reference_point_code: str | None

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> ImportedPlane:
        return cls(**{f.name: data[f.name] for f in fields(cls)})


def _sum(values: list[float | None]) -> float | None:
    """Sum over planes or events; None when no item states a value."""
    stated = [v for v in values if v is not None]
    return sum(stated) if stated else None


@dataclass(frozen=True, slots=True)
class ImportedProcedure:
    """A dose report from another system, as imported (see the module docstring)."""

    sop_instance_uid: str
    study_instance_uid: str
    file_name: str
    manufacturer: str
    model: str
    device_serial: str
    device_observer_name: str
    device_observer_uid: str
    completion_flag: str
    started: str | None
    time_zone_stated: bool
    reference_point: str
    reference_point_code: str | None
    planes: tuple[ImportedPlane, ...]
    events: tuple[ImportedEvent, ...] = ()
    warnings: tuple[str, ...] = ()

    # -- stated totals, summed over planes -------------------------------------------------

    def stated(self, name: str) -> float | None:
        """A stated accumulated quantity (an ``ImportedPlane`` field) summed over planes."""
        return _sum([getattr(p, name) for p in self.planes])

    def stated_totals(self) -> dict[str, float | None]:
        names = [f.name for f in fields(ImportedPlane)
                 if f.name not in ("plane", "reference_point", "reference_point_code")]
        return {name: self.stated(name) for name in names}

    # -- sums over the imported irradiation events ----------------------------------------------

    def event_sums(self) -> dict[str, float | None]:
        """DAP (Gy·cm²), Ka,r (mGy), durations (s) and pulses summed over events, in all and by
        type (fluoroscopy, acquisition)."""
        def of(kind: str | None, name: str) -> float | None:
            return _sum([getattr(e, name) for e in self.events
                         if kind is None or e.event_type == kind])
        return {"dap_gycm2": of(None, "dap_gycm2"), "kar_mgy": of(None, "kar_mgy"),
                "fluoro_dap_gycm2": of("fluoroscopy", "dap_gycm2"),
                "fluoro_kar_mgy": of("fluoroscopy", "kar_mgy"),
                "fluoro_duration_s": of("fluoroscopy", "duration_s"),
                "acquisition_dap_gycm2": of("acquisition", "dap_gycm2"),
                "acquisition_kar_mgy": of("acquisition", "kar_mgy"),
                "pulses": of(None, "pulses")}

    def summary_totals(self) -> tuple[float, float, float, str]:
        """(Ka,r mGy, DAP Gy·cm², fluoro time s, where from) for the procedure list: the stated
        totals (113725, 113722, 113730); where a report states no total, the stated fluoro plus
        acquisition totals, else the sum over its events, and ``where from`` says so."""
        sums = self.event_sums()
        found = [self.stated("kar_total_mgy"), self.stated("dap_total_gycm2"),
                 self.stated("fluoro_time_s")]
        parts = [_sum([self.stated("fluoro_kar_mgy"), self.stated("acquisition_kar_mgy")]),
                 _sum([self.stated("fluoro_dap_gycm2"), self.stated("acquisition_dap_gycm2")]),
                 None]
        events = [sums["kar_mgy"], sums["dap_gycm2"], sums["fluoro_duration_s"]]
        origin = "stated"
        for i in range(3):
            if found[i] is None:
                origin = "stated where given, else summed from parts or events"
                found[i] = parts[i] if parts[i] is not None else events[i]
        kar, dap, time_s = (value or 0.0 for value in found)
        return kar, dap, time_s, origin

    def to_data(self) -> dict[str, Any]:
        """The ``imported_procedure`` row's data: everything but the events."""
        data = plain(self, "imported procedure")
        del data["events"]
        return data

    @classmethod
    def from_rows(cls, data: dict[str, Any], events: list[dict[str, Any]]) -> ImportedProcedure:
        values = {f.name: data[f.name] for f in fields(cls) if f.name != "events"}
        values["planes"] = tuple(ImportedPlane.from_data(p) for p in values["planes"])
        values["warnings"] = tuple(values["warnings"])
        return cls(**values, events=tuple(ImportedEvent.from_data(e) for e in events))


def import_rows(uid: str, info_data: dict[str, Any], report: ImportedProcedure,
                software: str) -> list[Row]:
    """The ledger rows of one imported procedure, in order (see the module docstring); the end
    row's ``DoseTotals`` hold the report's totals (``summary_totals``) and its event count."""
    kar, dap, time_s, _ = report.summary_totals()
    pulses = report.event_sums()["pulses"]
    totals = DoseTotals(kar_mgy=kar, dap_gycm2=dap, fluoro_time_s=time_s,
                        pulses=round(pulses or 0), events=len(report.events))
    return [
        (PROCEDURE_START, uid, {"info": info_data, "source": SOURCE_RDSR, "software": software}),
        (IMPORTED_PROCEDURE, uid, report.to_data()),
        *[(IMPORTED_EVENT, uid, plain(e, f"event {e.index}")) for e in report.events],
        (PROCEDURE_END, uid, {"totals": plain(totals, "totals")}),
    ]
