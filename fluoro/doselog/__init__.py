"""The dose log: an append-only, tamper-evident record of every pulse of every procedure, in an
SQLite file (``sqlite``) or, many rooms in one log, a PostgreSQL database (``postgres``).

What is kept
------------
Every row of every kind in one ``ledger`` table, in the order written: procedures, pulses,
irradiation events, gaps, alarms, acknowledgements, notes, meter rows, imported dose reports
(row kinds and the hash chain: ``ledger``; the records the queries return: ``records``;
imported reports: ``imported``). The patient ID is never stored, only a keyed pseudonym
(``pseudonym``).

Durability
----------
Every ``append`` is committed before it returns (a pulse and the event row it opens together);
SQLite's ``synchronous`` modes and their measured cost are in ``sqlite``, the PostgreSQL commit
and the cross-room append lock in ``postgres``.

Failure
-------
``DoseLog.append`` raises (``sqlite3.Error``, ``psycopg.Error``, ``OSError``) when the write
fails and leaves the chain as it was. A live procedure writes through ``failover``: after the
first failure every record goes to a ``FallbackJournal`` (``fallback``), and the failure is
reported, never raised into the dose path.

Tamper evidence and its limit
-----------------------------
Each row's hash covers the previous row's hash and the row's canonical content (id and kind
included), and triggers refuse UPDATE and DELETE. ``verify(path)`` recomputes the chain and names
the first altered or missing row. Deleting the *last* rows cannot be seen from the chain alone:
print ``DoseLog.head()`` (or the value ``end_procedure`` returns) in the procedure report and
check it later with ``verify(path, anchor=Head.parse(text))``.

This package is the face of the wing: import ``DoseLog`` and the records from
``fluoro.doselog``. It may import ``fluoro.dose`` (the records it stores) and the shared modules.
"""

from fluoro.doselog.fallback import FALLBACK_SUFFIX, FallbackJournal, JournalEntry
from fluoro.doselog.imported import ImportedEvent, ImportedPlane, ImportedProcedure
from fluoro.doselog.log import DoseLog, DoseLogError
from fluoro.doselog.records import (
    IEC_REFERENCE_POINT,
    REFERENCE_POINT_CODE,
    Acknowledgement,
    AlarmRecord,
    IrradiationEvent,
    NoteRecord,
    PatientHistory,
    ProcedureInfo,
    ProcedureSummary,
)
from fluoro.doselog.verify import Head, VerifyReport, verify

__all__ = [
    "FALLBACK_SUFFIX",
    "IEC_REFERENCE_POINT",
    "REFERENCE_POINT_CODE",
    "Acknowledgement",
    "AlarmRecord",
    "DoseLog",
    "DoseLogError",
    "FallbackJournal",
    "Head",
    "ImportedEvent",
    "ImportedPlane",
    "ImportedProcedure",
    "IrradiationEvent",
    "JournalEntry",
    "NoteRecord",
    "PatientHistory",
    "ProcedureInfo",
    "ProcedureSummary",
    "VerifyReport",
    "verify",
]
