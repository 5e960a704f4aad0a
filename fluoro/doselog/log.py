"""``DoseLog``: one open dose log, for appending a procedure's records or reading them back.

The writing methods build ledger rows (``fluoro.doselog.ledger``) and commit them before they
return; the reading methods run one read transaction over the queries of
``fluoro.doselog.query``. Which database the log lives in is ``fluoro.doselog.backend``'s
business. Each object is one connection used by one thread at a time (a lock makes it safe to
share, e.g. a UI thread reading totals while the acquisition thread appends); readers in other
processes use ``DoseLog.open_readonly``.
"""
from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from types import TracebackType

from fluoro import __version__
from fluoro.dose.accumulator import DoseGap, DoseTotals, PulseDose
from fluoro.dose.meter import MeterEvent, MeterReading
from fluoro.doselog import query
from fluoro.doselog.backend import open_reader, open_writer
from fluoro.doselog.imported import (
    ImportedProcedure,
    import_rows,
)
from fluoro.doselog.ledger import (
    ACK,
    ALARM,
    EVENT,
    GAP,
    METER_EVENT,
    METER_READING,
    NOTE,
    PROCEDURE_END,
    PROCEDURE_START,
    PULSE,
    Clock,
    Row,
    append_rows,
    format_utc,
    plain,
    read_head,
    utc_now,
)
from fluoro.doselog.records import (
    AlarmRecord,
    IrradiationEvent,
    NoteRecord,
    PatientHistory,
    ProcedureInfo,
    ProcedureSummary,
)
from fluoro.doselog.verify import Head, VerifyReport, verify
from fluoro.errors import InputError

__all__ = ["DoseLog", "DoseLogError"]


class DoseLogError(RuntimeError):
    """The dose log was used out of order (append with no procedure open, a write to a log
    opened read-only or closed): a programming error, not bad input."""


class DoseLog:
    """An open dose log. Make one with ``create_or_open`` (to append) or ``open_readonly``.

    ``append`` stores one ``PulseDose`` or ``DoseGap``, committed before it returns; a live
    procedure writes through ``fluoro.doselog.failover.FailoverWriter``. Use as a context
    manager or call ``close``.

    ``path`` is what messages name (the file, or the URL without its password); ``file`` is the
    SQLite file the log lives in, None for the department database.
    """

    def __init__(self, conn: sqlite3.Connection, path: Path | str, *, readonly: bool,
                 clock: Clock, target: str | os.PathLike[str] | None = None,
                 file: Path | None = None) -> None:
        self.path = path
        self.file = file
        self._target = path if target is None else target
        self.readonly = readonly
        self._conn: sqlite3.Connection | None = conn
        self._clock = clock
        self._lock = threading.RLock()
        self._procedure_uid: str | None = None
        self._last_event: int | None = None

    @classmethod
    def create_or_open(cls, path: str | os.PathLike[str], *, synchronous: str = "FULL",
                       clock: Clock | None = None) -> DoseLog:
        """Open the dose log at ``path`` for appending, creating it (mode 0600) if absent; a
        ``postgresql://user@host:port/db`` URL opens the department database
        (``fluoro.doselog.postgres``; an empty database gets the schema).

        ``synchronous``: SQLite's ``FULL`` (default; survives power loss) or ``NORMAL`` (survives
        a killed process). ``clock`` returns the current timezone-aware wall time (tests).
        Raises ``InputError`` naming the path when it cannot be created or is not a fluoro dose
        log.
        """
        clock = clock or utc_now
        conn, name, file = open_writer(path, synchronous, clock)
        return cls(conn, name, readonly=False, clock=clock, target=path, file=file)

    @classmethod
    def open_readonly(cls, path: str | os.PathLike[str]) -> DoseLog:
        """Open an existing dose log for reading only (its own connection, URI ``mode=ro``)."""
        conn, name, file = open_reader(path)
        return cls(conn, name, readonly=True, clock=utc_now, target=path, file=file)

    # -- writing -------------------------------------------------------------------------------

    @property
    def procedure_uid(self) -> str | None:
        """UID of the procedure now open, or None."""
        return self._procedure_uid

    def begin_procedure(self, info: ProcedureInfo) -> str:
        """Start a procedure; returns its UID (``info.procedure_uid`` or a new ``2.25.…`` UID)."""
        with self._lock:
            if self._procedure_uid is not None:
                raise DoseLogError(f"{self.path}: procedure {self._procedure_uid} is still open; "
                                   "call end_procedure first")
            uid = info.procedure_uid or f"2.25.{uuid.uuid4().int}"
            if self._writable("begin_procedure").execute(
                    "SELECT 1 FROM ledger WHERE procedure_uid = ? AND kind = ?",
                    (uid, PROCEDURE_START)).fetchone():
                raise InputError(f"procedure_uid={uid!r}: already in the dose log {self.path}")
            info = replace(info, procedure_uid=uid, started_utc=info.started_utc or self._clock())
            self._write([(PROCEDURE_START, uid, {"info": info.to_data(),
                                                 "software": f"fluoro {__version__}"})])
            self._procedure_uid, self._last_event = uid, None
            return uid

    def append(self, record: PulseDose | DoseGap) -> None:
        """Store one pulse or gap of the open procedure, committed before returning.

        A pulse whose event number differs from the previous pulse's also writes an
        irradiation-event row (TID 10003: event number, start ``t_s``, technique of its first
        pulse) in the same transaction. Raises ``DoseLogError`` outside a procedure,
        ``ValueError`` for a non-finite number, ``sqlite3.Error``/``OSError`` if the write fails.
        """
        with self._lock:
            uid = self._require_procedure("append")
            if isinstance(record, PulseDose):
                data = plain(record, f"pulse seq {record.seq}")
                rows: list[Row] = []
                if record.event != self._last_event:
                    rows.append((EVENT, uid, {"event": data["event"], "start_t_s": data["t_s"],
                                              "first_seq": data["seq"],
                                              "technique": data["exposure"]}))
                rows.append((PULSE, uid, data))
                self._write(rows)
                self._last_event = record.event
            elif isinstance(record, DoseGap):
                self._write([(GAP, uid, plain(record, f"gap at seq {record.first_seq}"))])
            else:
                raise TypeError(f"append: expected a PulseDose or DoseGap, "
                                f"got {type(record).__name__}")

    def log_alarm(self, key: str, quantity: str, threshold: float, value: float, t_s: float,
                  message: str) -> None:
        """Record an alarm: ``quantity`` (e.g. ``"kar_mgy"``) reached ``value`` against
        ``threshold`` (same unit) at source time ``t_s`` (s); ``key`` identifies it for acks."""
        with self._lock:
            uid = self._require_procedure("log_alarm")
            if not key:
                raise InputError("alarm key: expected a non-empty name")
            self._write([(ALARM, uid, plain({"key": key, "quantity": quantity,
                                             "threshold": threshold, "value": value, "t_s": t_s,
                                             "message": message}, f"alarm {key}"))])

    def log_ack(self, key: str, user: str) -> None:
        """Record that ``user`` acknowledged the most recent alarm ``key`` (now, UTC)."""
        with self._lock:
            conn = self._writable("log_ack")
            if not user or not user.strip():
                raise InputError(f"alarm {key!r}: expected the name of who acknowledged it")
            alarm = conn.execute("SELECT id, procedure_uid FROM ledger WHERE kind = ? AND "
                                 "alarm_key = ? ORDER BY id DESC LIMIT 1", (ALARM, key)).fetchone()
            if alarm is None:
                raise InputError(f"alarm {key!r}: no such alarm in the dose log {self.path}")
            self._write([(ACK, alarm[1], {"key": key, "user": user, "alarm_row": alarm[0]})])

    def log_note(self, text: str, author: str = "") -> None:
        """Record a free-text note, in the open procedure if there is one. Never put patient
        identifiers in a note."""
        with self._lock:
            self._writable("log_note")
            self._write([(NOTE, self._procedure_uid, {"text": text, "author": author})])

    def log_meter_reading(self, reading: MeterReading) -> None:
        """Record a DAP meter's reading (its total, Gy·cm², since its reset) in the open
        procedure."""
        with self._lock:
            uid = self._require_procedure("log_meter_reading")
            self._write([(METER_READING, uid, plain(reading, "meter reading"))])

    def log_meter_event(self, event: MeterEvent) -> None:
        """Record a change of the meter's link (a disconnect starts a gap in the measured DAP)."""
        with self._lock:
            uid = self._require_procedure("log_meter_event")
            self._write([(METER_EVENT, uid, plain(event, "meter event"))])

    def meter_record(self, uid: str) -> query.MeterRecord:
        """The procedure's meter readings and link events, summarised."""
        with self._reading() as conn:
            return query.meter_record(conn, uid)

    def end_procedure(self, totals: DoseTotals) -> Head:
        """End the open procedure with the accumulator's final ``totals``.

        The end row also records the chain head before it. Returns the head after it: print it
        in the procedure report as the log's anchor (see ``verify``).
        """
        with self._lock:
            uid = self._require_procedure("end_procedure")
            rows, digest = self._write([(PROCEDURE_END, uid,
                                         {"totals": plain(totals, "totals")})], anchor_last=True)
            self._procedure_uid, self._last_event = None, None
            return Head(rows, digest)

    def import_procedure(self, info: ProcedureInfo, report: ImportedProcedure) -> Head:
        """Store a procedure from another system's dose report, all its rows in one committed
        transaction (see ``fluoro.doselog.imported``): start, the report as stated, one row per
        irradiation event, and an end row holding the stated totals and the chain anchor.

        ``info.procedure_uid`` is required (the report's SOP Instance UID); a UID already in the
        log raises ``InputError``. Returns the head after the end row.
        """
        with self._lock:
            conn = self._writable("import_procedure")
            uid = info.procedure_uid
            if not uid:
                raise DoseLogError("import_procedure: info.procedure_uid is required")
            if self.has_procedure(uid, conn):
                raise InputError(f"procedure_uid={uid!r}: already in the dose log {self.path}")
            rows = import_rows(uid, info.to_data(), report, f"fluoro {__version__}")
            return Head(*self._write(rows, anchor_last=True))

    def has_procedure(self, uid: str, conn: sqlite3.Connection | None = None) -> bool:
        """Whether a procedure (live or imported) with this UID is in the log."""
        with self._lock:
            conn = conn or self._connection()
            return conn.execute("SELECT 1 FROM ledger WHERE procedure_uid = ? AND kind = ?",
                                (uid, PROCEDURE_START)).fetchone() is not None

    # -- reading -------------------------------------------------------------------------------

    def head(self) -> Head:
        """The last row id (the row count of an intact log) and its hash."""
        with self._reading() as conn:
            return Head(*read_head(conn))

    def procedures(self) -> list[ProcedureSummary]:
        """Every procedure in start order, with totals recomputed from its rows."""
        with self._reading() as conn:
            return query.procedures(conn)

    def procedure(self, uid: str) -> ProcedureSummary:
        with self._reading() as conn:
            found = query.procedures(conn, uid=uid)
        if not found:
            raise InputError(f"procedure {uid}: not in the dose log {self.path}")
        return found[0]

    def imported(self, uid: str) -> ImportedProcedure | None:
        """The dose report an imported procedure came from (None for a live procedure)."""
        with self._reading() as conn:
            return query.imported(conn, uid).get(uid)

    def pulses(self, uid: str) -> list[PulseDose]:
        with self._reading() as conn:
            return query.pulses(conn, uid)

    def gaps(self, uid: str) -> list[DoseGap]:
        with self._reading() as conn:
            return query.gaps(conn, uid)

    def events(self, uid: str) -> list[IrradiationEvent]:
        with self._reading() as conn:
            return query.events(conn, uid)

    def alarms(self, uid: str) -> list[AlarmRecord]:
        """The procedure's alarms in order, each with its acknowledgements."""
        with self._reading() as conn:
            return query.alarms(conn, uid)

    def notes(self, uid: str | None = None) -> list[NoteRecord]:
        """Notes of one procedure (None: the notes written outside any procedure)."""
        with self._reading() as conn:
            return query.notes(conn, uid)

    def patient_history(self, patient_key: str, weeks: float = 12, now: datetime | None = None,
                        exclude_uid: str | None = None) -> PatientHistory:
        """Ka,r (mGy), DAP (Gy·cm²) and procedure count of the patient's procedures started in
        the ``weeks`` before ``now`` (default: the current time), complete or not."""
        with self._reading() as conn:
            return query.patient_history(conn, patient_key, weeks, now, exclude_uid)

    def verify(self, anchor: Head | None = None) -> VerifyReport:
        """``verify(self.path, anchor)`` (through its own read-only connection)."""
        return verify(self._target, anchor)

    # -- life cycle ----------------------------------------------------------------------------

    def close(self) -> None:
        """Close the file. An open procedure stays without an end row (listed as incomplete)."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __enter__(self) -> DoseLog:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._conn is None else "read-only" if self.readonly else "open"
        return f"DoseLog({str(self.path)!r}, {state}, procedure={self._procedure_uid})"

    # -- internals -----------------------------------------------------------------------------

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise DoseLogError(f"{self.path}: the dose log is closed")
        return self._conn

    def _writable(self, action: str) -> sqlite3.Connection:
        if self.readonly:
            raise DoseLogError(f"{self.path}: {action} on a dose log opened read-only")
        return self._connection()

    def _require_procedure(self, action: str) -> str:
        self._writable(action)
        if self._procedure_uid is None:
            raise DoseLogError(f"{self.path}: {action} called with no procedure open "
                               "(call begin_procedure first)")
        return self._procedure_uid

    def _write(self, rows: list[Row], *, anchor_last: bool = False) -> tuple[int, str]:
        return append_rows(self._writable("write"), rows, format_utc(self._clock()),
                           anchor_last=anchor_last)

    @contextlib.contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection]:
        """One read transaction: a consistent snapshot across the statements of a query."""
        with self._lock:
            conn = self._connection()
            conn.execute("BEGIN")
            try:
                yield conn
            finally:
                conn.execute("COMMIT")

