"""One live procedure's writes to its dose log, failing over to a fallback journal.

``FailoverWriter`` is the only place that decides what happens when the dose log fails during a
procedure. Every record of the procedure (pulses, gaps, alarms, acknowledgements, meter
readings and events, and its end) goes through it, on whichever thread produced it:

1. While the log works, each record is committed to it before the call returns. Before each
   write to an SQLite file the file's identity (device, inode) is checked: SQLite would go on
   writing into a file that was removed or replaced without an error, and every later record
   would be lost when the process ends.
2. At the first failure (full disk, I/O error, file removed, database gone) the writer stops
   using the log for the rest of the procedure, so the log keeps a clean prefix and the
   procedure has no end row (reports show it INCOMPLETE), and writes this and every later
   record to a ``FallbackJournal``: beside an SQLite log (``<log>.fallback.jsonl``), or, for
   the department database, in this computer's data folder (``fallback-<procedure>.jsonl``).
3. If the journal cannot be written either, the record is kept in ``unwritten`` (memory) and
   the failure says so.

Nothing here raises into the dose path: ``failure`` tells the caller (DOSE LOG FAILED on the
display) what went wrong and where the records went instead.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fluoro.dose.accumulator import DoseGap, DoseTotals, PulseDose
from fluoro.dose.alarms import Acknowledgement, Alarm
from fluoro.dose.meter import MeterEvent, MeterReading
from fluoro.doselog.fallback import FallbackJournal
from fluoro.doselog.ledger import ACK, ALARM, GAP, METER_EVENT, METER_READING, PULSE, plain
from fluoro.doselog.log import DoseLog
from fluoro.doselog.verify import Head
from fluoro.paths import data_dir

__all__ = ["FailoverWriter"]


class FailoverWriter:
    """Writes the records of the open procedure ``procedure_uid`` of ``log``; see the module
    docstring. Safe to call from several threads (one lock orders the writes)."""

    def __init__(self, log: DoseLog, procedure_uid: str) -> None:
        self.log = log
        self.procedure_uid = procedure_uid
        self.unwritten: list[tuple[str, Any]] = []  # (kind, record) neither log nor journal took
        self._lock = threading.Lock()
        self._log_failure: str | None = None
        self._journal_failure: str | None = None
        self._journal: FallbackJournal | None = None
        self._file_id = _file_id(log.file) if log.file is not None else None

    @property
    def failed(self) -> bool:
        """True once the log has failed (the rest of the procedure goes to the journal)."""
        return self._log_failure is not None

    @property
    def failure(self) -> str | None:
        """None while the log works; else why it failed and where the records go instead."""
        if self._log_failure is None:
            return None
        if self._journal_failure is not None:
            return f"{self._log_failure}; fallback journal failed too: {self._journal_failure}"
        where = self._journal.path if self._journal is not None else self.journal_path()
        return f"{self._log_failure}; records go to {where}"

    def journal_path(self) -> Path:
        """Where the fallback journal is (or would be) written."""
        if self.log.file is not None:
            return FallbackJournal.path_beside(self.log.file)
        return data_dir() / f"fallback-{self.procedure_uid}.jsonl"

    # -- the records ---------------------------------------------------------------------------

    def append(self, record: PulseDose | DoseGap) -> None:
        """A pulse or a gap (``DoseLog.append``)."""
        kind = PULSE if isinstance(record, PulseDose) else GAP
        self._write(lambda log: log.append(record), kind, record)

    def log_alarm(self, alarm: Alarm) -> None:
        self._write(
            lambda log: log.log_alarm(alarm.key, alarm.quantity, alarm.threshold, alarm.value,
                                      alarm.t_s, alarm.message),
            ALARM, {"key": alarm.key, "quantity": alarm.quantity, "threshold": alarm.threshold,
                    "value": alarm.value, "t_s": alarm.t_s, "message": alarm.message})

    def log_ack(self, ack: Acknowledgement) -> None:
        self._write(lambda log: log.log_ack(ack.key, ack.user), ACK,
                    {"key": ack.key, "user": ack.user, "t_wall_s": ack.t_wall_s})

    def log_meter_reading(self, reading: MeterReading) -> None:
        self._write(lambda log: log.log_meter_reading(reading), METER_READING,
                    {"dap_total_gycm2": reading.dap_total_gycm2, "device": reading.device})

    def log_meter_event(self, event: MeterEvent) -> None:
        self._write(lambda log: log.log_meter_event(event), METER_EVENT,
                    {"kind": event.kind, "message": event.message})

    def end_procedure(self, totals: DoseTotals) -> Head | None:
        """Write the end row with the final totals and return the chain head (the anchor), or
        None when the log had failed: the procedure then stays without an end row, which is
        how reports know it is incomplete."""
        with self._lock:
            if self._log_failure is not None:
                return None
            try:
                self._check_file()
                return self.log.end_procedure(totals)
            except Exception as exc:
                self._log_failure = _describe(self.log, exc)
                return None

    def close(self) -> None:
        """Close the journal, if one was opened (the log is its owner's to close)."""
        with self._lock:
            if self._journal is not None:
                self._journal.close()

    # -- internals -----------------------------------------------------------------------------

    def _write(self, write_log: Callable[[DoseLog], None], kind: str, record: Any) -> None:
        with self._lock:
            if self._log_failure is None:
                try:
                    self._check_file()
                    write_log(self.log)
                    return
                except Exception as exc:  # any failure: this record and the rest to the journal
                    self._log_failure = _describe(self.log, exc)
            self._to_journal(kind, record)

    def _to_journal(self, kind: str, record: Any) -> None:
        try:
            if self._journal is None:
                self._journal = FallbackJournal(self.journal_path())
            self._journal.write(kind, plain(record, kind), self.procedure_uid)
        except Exception as exc:
            self._journal_failure = f"{type(exc).__name__}: {exc}"
            self.unwritten.append((kind, record))

    def _check_file(self) -> None:
        """Fail if the SQLite log file was removed or replaced since the procedure began."""
        if self._file_id is None or self.log.file is None:  # a database: no file to check
            return
        try:
            now = _file_id(self.log.file)
        except FileNotFoundError:
            raise OSError("the dose log file was removed") from None
        if now != self._file_id:
            raise OSError("the dose log file was replaced by another file")


def _file_id(path: Path) -> tuple[int, int]:
    stat = os.stat(path)
    return stat.st_dev, stat.st_ino


def _describe(log: DoseLog, exc: BaseException) -> str:
    return f"{log.path}: {type(exc).__name__}: {exc}"
