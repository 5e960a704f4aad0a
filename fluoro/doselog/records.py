"""Records of the dose log: what a procedure is started with and what the queries return.

What is kept
------------
One ``ledger`` table holds every row of every kind in the order written (see
``fluoro.doselog.ledger`` for the schema): the start of each procedure (``ProcedureInfo``: UID,
pseudonymous patient key, name, operator, room, device, the reference-point definition in force
(IEC 60601-2-43 by default, DICOM code 113860), calibration factor, pregnancy status, start time);
every pulse (``PulseDose``: seq, source time ``t_s`` (s), event, Ka,r (mGy), DAP (Gy·cm²), the
modelled values beside them, measured flag, beam-on time (s; the fluoroscopy time of
21 CFR 1020.32(h)) and the pulse's technique factors); an irradiation-event row (DICOM PS3.16
TID 10003) whenever a pulse's event number differs from the previous pulse's; every sequence gap
(``DoseGap``) with its estimated dose; alarms, their acknowledgements, free notes; and the end of
each procedure with the final totals and the chain head before it (an anchor, see ``verify``).
The patient ID itself is never stored: see ``fluoro.doselog.pseudonym``.

Procedures imported from other systems' dose reports (RDSR, ``fluoro.rdsr.ingest``) are stored
by ``import_procedure`` in one transaction as start, ``imported_procedure`` (the report's stated
totals per plane), one ``imported_event`` per irradiation event, and end rows; they are listed by
``procedures()`` with ``source="rdsr-import"`` and never mixed into the live pulse queries (see
``fluoro.doselog.imported``).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any, NamedTuple

from fluoro.dose.accumulator import DoseTotals
from fluoro.doselog.imported import SOURCE_LIVE, ImportedProcedure
from fluoro.doselog.ledger import parse_utc, plain
from fluoro.errors import InputError
from fluoro.frame import Exposure

__all__ = ["IEC_REFERENCE_POINT", "REFERENCE_POINT_CODE", "Acknowledgement", "AlarmRecord",
           "IrradiationEvent", "NoteRecord", "PatientHistory", "ProcedureInfo",
           "ProcedureSummary"]

IEC_REFERENCE_POINT = ("IEC 60601-2-43 patient entrance reference point: "
                       "15 cm from the isocentre toward the source")
# DICOM PS3.16 CID 10025 "Irradiation Event Reference Point" (scheme DCM):
# 113860 "15cm from Isocenter toward Source".
REFERENCE_POINT_CODE = "113860"
_PATIENT_KEY = re.compile(r"[0-9a-f]{32,64}")


@dataclass(frozen=True, slots=True)
class ProcedureInfo:
    """What the dose log records when a procedure starts.

    Attributes
    ----------
    patient_key : str or None
        Pseudonymous key from ``fluoro.doselog.pseudonym.patient_key`` (never the patient ID itself;
        anything that is not 32–64 lowercase hex digits is refused). None for a phantom or QA run.
    procedure_name, operator, room, device : str
        Free text: the procedure, who operated the C-arm, the room, the C-arm (model, serial).
    reference_point : str
        Definition of the point where Ka,r is given; by default the IEC 60601-2-43 patient
        entrance reference point, 15 cm from the isocentre toward the source.
    reference_point_code : str or None
        DICOM code (scheme DCM, CID 10025) of that definition when there is one: 113860.
    calibration_factor : float
        Room calibration factor applied to modelled dose (measured Ka,r over modelled, 1.0 until
        calibrated), dimensionless.
    pregnant : bool or None
        Pregnancy status as recorded before the procedure; None when not recorded.
    started_utc : datetime or None
        Start wall time (timezone-aware); None means "now" by the log's clock.
    procedure_uid : str or None
        None lets the log generate a DICOM UID (``2.25.<uuid>``).
    """

    patient_key: str | None
    procedure_name: str = ""
    operator: str = ""
    room: str = ""
    device: str = ""
    reference_point: str = IEC_REFERENCE_POINT
    reference_point_code: str | None = REFERENCE_POINT_CODE
    calibration_factor: float = 1.0
    pregnant: bool | None = None
    started_utc: datetime | None = None
    procedure_uid: str | None = None

    def __post_init__(self) -> None:
        key = self.patient_key
        if key is not None and (not isinstance(key, str) or not _PATIENT_KEY.fullmatch(key)):
            # never echo the value: it may be a real patient ID passed by mistake
            raise InputError("patient_key: expected the pseudonymous key from "
                             "fluoro.doselog.pseudonym.patient_key (32-64 lowercase hex digits), "
                             "never the patient ID itself")
        factor = self.calibration_factor
        if not isinstance(factor, (int, float)) or not math.isfinite(factor) or factor <= 0:
            raise InputError(f"calibration_factor={factor!r}: expected a positive number "
                             "(measured over modelled Ka,r)")
        if not self.reference_point.strip():
            raise InputError("reference_point: expected the definition of the dose reference "
                             "point (e.g. IEC 60601-2-43, 15 cm from the isocentre)")
        if self.started_utc is not None and self.started_utc.utcoffset() is None:
            raise InputError(f"started_utc={self.started_utc!r}: expected a timezone-aware "
                             "datetime")
        uid = self.procedure_uid
        if uid is not None and (not uid or len(uid) > 64 or any(c.isspace() for c in uid)):
            raise InputError(f"procedure_uid={uid!r}: expected 1-64 characters without spaces")

    def to_data(self) -> dict[str, Any]:
        return plain(self, "procedure")

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> ProcedureInfo:
        values = {f.name: data[f.name] for f in fields(cls)}
        if values["started_utc"] is not None:
            values["started_utc"] = parse_utc(values["started_utc"])
        return cls(**values)


@dataclass(frozen=True, slots=True)
class IrradiationEvent:
    """One irradiation event (pedal press; DICOM PS3.16 TID 10003) as logged.

    ``technique`` holds the technique factors of the event's first pulse. ``pulses``,
    ``kar_mgy`` (mGy), ``dap_gycm2`` (Gy·cm²), ``beam_time_s`` (s) and ``end_t_s`` (source clock,
    s) are summed from the event's logged pulses; estimates for missing pulses are not included.
    """

    event: int
    start_t_s: float
    first_seq: int
    technique: Exposure
    pulses: int
    kar_mgy: float
    dap_gycm2: float
    beam_time_s: float
    end_t_s: float


@dataclass(frozen=True, slots=True)
class Acknowledgement:
    """Who acknowledged an alarm and when (UTC)."""

    user: str
    wall_time_utc: datetime


@dataclass(frozen=True, slots=True)
class AlarmRecord:
    """An alarm raised during a procedure: ``quantity`` (e.g. ``"kar_mgy"``) crossed
    ``threshold`` (in the unit of that quantity) reaching ``value`` at source time ``t_s`` (s)."""

    row_id: int
    key: str
    quantity: str
    threshold: float
    value: float
    t_s: float
    message: str
    wall_time_utc: datetime
    acks: tuple[Acknowledgement, ...] = ()


@dataclass(frozen=True, slots=True)
class NoteRecord:
    """A free-text note, with its author and time (UTC)."""

    text: str
    author: str
    wall_time_utc: datetime


@dataclass(frozen=True, slots=True)
class ProcedureSummary:
    """One procedure as the log holds it; totals recomputed from its pulse and gap rows.

    ``kar_mgy`` (Ka,r at the reference point of ``info.reference_point``, mGy) and ``dap_gycm2``
    (Gy·cm²) include the estimated dose of missing pulses; ``fluoro_time_s`` is the beam-on time
    of 21 CFR 1020.32(h) (s); ``events`` counts irradiation events (TID 10003). ``complete`` is
    False when no end row was written. ``reported`` holds the totals given to ``end_procedure``
    and ``anchor`` the chain head recorded there (``"rows:hash"``).

    ``source`` is ``"live"`` for a procedure this system recorded pulse by pulse and
    ``"rdsr-import"`` for one imported from another system's dose report; an imported one has no
    pulse rows, ``imported`` holds the report as stated (per-plane totals, events, sums over
    events) and ``kar_mgy``/``dap_gycm2``/``fluoro_time_s``/``events`` are the report's stated
    totals (see ``ImportedProcedure.summary_totals``).
    """

    info: ProcedureInfo
    procedure_uid: str
    patient_key: str | None
    procedure_name: str
    started_utc: datetime
    ended_utc: datetime | None
    pulses: int
    missing_pulses: int
    measured_pulses: int
    events: int
    fluoro_time_s: float
    kar_mgy: float
    dap_gycm2: float
    alarms: int
    complete: bool
    reported: DoseTotals | None = None
    anchor: str | None = None
    source: str = SOURCE_LIVE
    imported: ImportedProcedure | None = None

    @property
    def is_imported(self) -> bool:
        return self.imported is not None


class PatientHistory(NamedTuple):
    """A patient's dose over recent weeks: Ka,r (mGy), DAP (Gy·cm²), number of procedures."""

    kar_mgy: float
    dap_gycm2: float
    procedures: int
