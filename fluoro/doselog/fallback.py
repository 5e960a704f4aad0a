"""A fallback journal for when the dose log database fails: one JSON line per record, fsynced.

When the dose log fails during a procedure (disk full, database locked, I/O error, file
removed), ``fluoro.doselog.failover.FailoverWriter`` writes this and every later record of the
procedure here: beside an SQLite log (``<log>.fallback.jsonl``), or in this computer's data
folder for the department database, while the totals go on in memory and the display shows
DOSE LOG FAILED. Plain appends to a plain file need far less to go right than an
SQLite transaction. Each line is one canonical JSON object written with one ``write`` to a file
opened for appending (mode 0600) and fsynced before ``append`` returns (a line torn by a crash
is cut off when the journal is next opened):

``{"n": 1, "kind": "pulse", "procedure_uid": "2.25…", "wall_time_utc": "…Z", "data": {…}}``

``data`` holds every field of the ``PulseDose`` (with its ``exposure``) or ``DoseGap``, so the
records can be imported into a dose log later (``read`` rebuilds them). ``n`` counts lines from 1
across sessions, so a line removed from the middle shows as a jump.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from fluoro.dose.accumulator import DoseGap, PulseDose
from fluoro.doselog.ledger import (
    GAP,
    PULSE,
    Clock,
    canonical_json,
    format_utc,
    parse_utc,
    plain,
    utc_now,
)
from fluoro.doselog.query import gap_from_data, pulse_from_data
from fluoro.errors import InputError
from fluoro.fsutil import fsync_folder

__all__ = ["FALLBACK_SUFFIX", "FallbackJournal", "JournalEntry"]

FALLBACK_SUFFIX = ".fallback.jsonl"


@dataclass(frozen=True, slots=True)
class JournalEntry:
    """One line of a fallback journal; ``record`` is rebuilt for pulses and gaps, else a dict."""

    n: int
    kind: str
    procedure_uid: str | None
    wall_time_utc: datetime
    record: PulseDose | DoseGap | dict[str, Any]


class FallbackJournal:
    """Append-only JSON-lines journal at ``path`` (see the module docstring).

    ``FallbackJournal.beside(log_path)`` opens ``<log_path>.fallback.jsonl``. Use from one
    thread at a time.
    """

    def __init__(self, path: str | os.PathLike[str], *, clock: Clock | None = None) -> None:
        self.path = Path(path)
        self._clock = clock or utc_now
        existed = self.path.exists()
        try:
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        except OSError as exc:
            raise InputError(f"{self.path}: cannot open the fallback dose journal: "
                             f"{exc.strerror}") from None
        if not existed:
            fsync_folder(self.path.parent)
        self._n = _drop_torn_line(self._fd, self.path)

    @classmethod
    def beside(cls, log_path: str | os.PathLike[str], *, clock: Clock | None = None
               ) -> FallbackJournal:
        return cls(cls.path_beside(log_path), clock=clock)

    @staticmethod
    def path_beside(log_path: str | os.PathLike[str]) -> Path:
        """The journal of the SQLite log ``log_path``: ``<log_path>.fallback.jsonl``."""
        return Path(f"{os.fspath(log_path)}{FALLBACK_SUFFIX}")

    def append(self, record: PulseDose | DoseGap, procedure_uid: str | None = None) -> None:
        """Write one pulse or gap record, durably (fsynced) before returning."""
        kind = PULSE if isinstance(record, PulseDose) else GAP
        self.write(kind, plain(record, kind), procedure_uid)

    def write(self, kind: str, data: dict[str, Any], procedure_uid: str | None = None) -> None:
        """Write any other record (an alarm, an acknowledgement, a note) as ``kind`` + ``data``."""
        line = canonical_json({"n": self._n + 1, "kind": kind, "procedure_uid": procedure_uid,
                               "wall_time_utc": format_utc(self._clock()),
                               "data": plain(data, kind)}) + "\n"
        encoded = line.encode("ascii")
        written = os.write(self._fd, encoded)
        if written != len(encoded):
            raise OSError(f"{self.path}: short write to the fallback dose journal "
                          f"({written} of {len(encoded)} bytes)")
        os.fsync(self._fd)
        self._n += 1

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> FallbackJournal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @staticmethod
    def read(path: str | os.PathLike[str]) -> list[JournalEntry]:
        """All complete lines of a journal (a torn last line, cut by a crash, is left out)."""
        entries = []
        with open(path, encoding="ascii") as file:
            for number, line in enumerate(file, 1):
                if not line.endswith("\n"):
                    break
                try:
                    obj = json.loads(line)
                except ValueError:
                    raise InputError(f"{path}: line {number} is not a JSON record") from None
                data = obj["data"]
                record: PulseDose | DoseGap | dict[str, Any] = (
                    pulse_from_data(data) if obj["kind"] == PULSE
                    else gap_from_data(data) if obj["kind"] == GAP else data)
                entries.append(JournalEntry(obj["n"], obj["kind"], obj["procedure_uid"],
                                            parse_utc(obj["wall_time_utc"]), record))
        return entries


def _drop_torn_line(fd: int, path: Path) -> int:
    """Cut a last line left without its newline by a crash (its ``append`` never returned, so
    nobody relied on it) and return the number of complete lines."""
    with open(path, "rb") as file:
        data = file.read()
    complete = data.rfind(b"\n") + 1
    if complete < len(data):
        os.ftruncate(fd, complete)
        os.fsync(fd)
    return data.count(b"\n")
