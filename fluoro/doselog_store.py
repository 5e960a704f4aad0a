"""Storage layer of the dose log: the SQLite schema, opening a file safely, and the hash chain.

Everything here is private to ``fluoro.doselog`` (and its query and verify modules); the public
API is ``fluoro.doselog.DoseLog``.

Durability
----------
Every ``append`` is one committed SQLite transaction (WAL mode) before it returns; a pulse and the
event row it opens are committed together. ``synchronous=FULL`` (the default) fsyncs the WAL at
every commit, so a committed pulse survives a killed process and a power loss. Measured with
``benchmarks/doselog_throughput.py`` (5,000 pulses, one transaction each; development machine:
2 cores, virtio disk, ext4-class file system, SQLite 3.40): FULL 3,300–3,800 pulses/s (append
p50 0.23 ms, p99 0.5–4 ms), NORMAL 15,000–16,000 pulses/s (p50 0.05 ms). The pipeline produces
7.5–30 pulses/s and the requirement is 1,000 pulses/s, so FULL is the default. ``NORMAL`` (in WAL
mode it survives a killed process, but a power loss may take the last commits) stays available as
``create_or_open(path, synchronous="NORMAL")`` for disks where fsync is slow; run the benchmark on
the disk the log will live on.

Schema (schema version 1)
-------------------------
``meta(key, value)``: ``application = fluoro-dose-log``, ``schema_version = 1``, ``log_id``,
``created_utc``.

``ledger``: every row of every kind, in the order written, never updated or deleted (triggers
refuse both). ``id`` runs 1, 2, 3, … without gaps. ``payload`` is the canonical JSON of the row's
whole content ``{"id", "kind", "procedure_uid", "wall_time_utc", "data": {...}}``; the typed
columns (``seq``, ``t_s``, ``kar_mgy``, …) are a projection of it for queries. ``hash`` is
``sha256(bytes.fromhex(prev_hash) + payload)`` in hex and ``prev_hash`` is the previous row's
``hash`` (``GENESIS_HASH`` for row 1), so changing, inserting or deleting any row but the last
ones breaks the chain that ``verify`` recomputes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import math
import os
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from fluoro import __version__
from fluoro.errors import InputError
from fluoro.fsutil import fsync_folder

APPLICATION = "fluoro-dose-log"
SCHEMA_VERSION = 1
GENESIS_HASH = "0" * 64
SQLITE_HEADER = b"SQLite format 3\x00"
SYNCHRONOUS_MODES = ("FULL", "NORMAL", "EXTRA")

# Row kinds
LOG_CREATED = "log_created"
PROCEDURE_START = "procedure_start"
PROCEDURE_END = "procedure_end"
PULSE = "pulse"
EVENT = "event"
GAP = "gap"
ALARM = "alarm"
ACK = "ack"
NOTE = "note"
METER_READING = "meter_reading"  # a DAP meter's total (fluoro.meter.MeterReading)
METER_EVENT = "meter_event"  # the meter's link: connected, disconnected, error, garbage, timeout

# Typed columns, in table order, between the identifying columns and the payload.
COLUMNS = ("id", "kind", "procedure_uid", "wall_time_utc", "patient_key", "seq", "t_s", "event",
           "missing_pulses", "kar_mgy", "dap_gycm2", "beam_time_s", "measured", "alarm_key")

_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL) STRICT;
CREATE TABLE ledger (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    procedure_uid TEXT,
    wall_time_utc TEXT NOT NULL,
    patient_key TEXT,
    seq INTEGER,
    t_s REAL,
    event INTEGER,
    missing_pulses INTEGER,
    kar_mgy REAL,
    dap_gycm2 REAL,
    beam_time_s REAL,
    measured INTEGER,
    alarm_key TEXT,
    payload TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
) STRICT;
CREATE INDEX ledger_procedure ON ledger (procedure_uid, kind);
CREATE INDEX ledger_patient ON ledger (patient_key) WHERE patient_key IS NOT NULL;
CREATE INDEX ledger_alarm ON ledger (alarm_key) WHERE alarm_key IS NOT NULL;
CREATE TRIGGER ledger_no_update BEFORE UPDATE ON ledger
    BEGIN SELECT RAISE(ABORT, 'the dose log is append-only: rows cannot be changed'); END;
CREATE TRIGGER ledger_no_delete BEFORE DELETE ON ledger
    BEGIN SELECT RAISE(ABORT, 'the dose log is append-only: rows cannot be deleted'); END;
CREATE TRIGGER meta_no_update BEFORE UPDATE ON meta
    BEGIN SELECT RAISE(ABORT, 'the dose log meta table cannot be changed'); END;
CREATE TRIGGER meta_no_delete BEFORE DELETE ON meta
    BEGIN SELECT RAISE(ABORT, 'the dose log meta table cannot be changed'); END;
"""

_INSERT = (f"INSERT INTO ledger ({', '.join(COLUMNS)}, payload, prev_hash, hash) "
           f"VALUES ({', '.join('?' * (len(COLUMNS) + 3))})")

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


# -- canonical content and hashing -----------------------------------------------------------

def canonical_json(obj: Any) -> str:
    """The one serialisation that is hashed: sorted keys, no spaces, ASCII, finite numbers."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True,
                      allow_nan=False)


def chain_hash(prev_hash: str, payload: str) -> str:
    """``sha256(prev_hash as 32 bytes || payload as ASCII)`` in hex."""
    return hashlib.sha256(bytes.fromhex(prev_hash) + payload.encode("ascii")).hexdigest()


def format_utc(moment: datetime) -> str:
    """ISO 8601 UTC with microseconds, e.g. ``2024-05-01T09:30:00.000000Z`` (sorts as text)."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{moment!r}: expected a timezone-aware datetime")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_utc(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def plain(value: Any, name: str) -> Any:
    """``value`` as JSON-ready data: dataclasses become dicts, numpy scalars Python numbers,
    datetimes UTC text. A non-finite number raises ``ValueError`` naming the field."""
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or isinstance(value, (bool, str, int)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{name} is {value}: the dose log stores finite numbers only")
        return value + 0.0  # -0.0 -> 0.0: one spelling per number
    if isinstance(value, datetime):
        return format_utc(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name), f"{name}.{f.name}")
                for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): plain(v, f"{name}.{k}") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v, f"{name}[{i}]") for i, v in enumerate(value)]
    raise TypeError(f"{name}: cannot store a {type(value).__name__} in the dose log")


def project(content: dict[str, Any]) -> tuple[Any, ...]:
    """The typed columns of a row, derived from its hashed content (same order as ``COLUMNS``)."""
    kind, data = content["kind"], content["data"]
    col: dict[str, Any] = dict.fromkeys(COLUMNS)
    col.update(id=content["id"], kind=kind, procedure_uid=content["procedure_uid"],
               wall_time_utc=content["wall_time_utc"])
    if kind == PROCEDURE_START:
        col["patient_key"] = data["info"]["patient_key"]
    elif kind == PULSE:
        col.update(seq=data["seq"], t_s=data["t_s"], event=data["event"], kar_mgy=data["kar_mgy"],
                   dap_gycm2=data["dap_gycm2"], beam_time_s=data["beam_time_s"],
                   measured=int(bool(data["measured"])))
    elif kind == GAP:
        col.update(seq=data["first_seq"], t_s=data["t_s"], event=data["event"],
                   missing_pulses=data["count"], kar_mgy=data["kar_est_mgy"],
                   dap_gycm2=data["dap_est_gycm2"], beam_time_s=data["beam_time_est_s"])
    elif kind == EVENT:
        col.update(seq=data["first_seq"], t_s=data["start_t_s"], event=data["event"])
    elif kind == ALARM:
        col.update(t_s=data["t_s"], alarm_key=data["key"])
    elif kind == ACK:
        col.update(alarm_key=data["key"])
    return tuple(col[name] for name in COLUMNS)


def read_head(conn: sqlite3.Connection) -> tuple[int, str]:
    """(last row id, its hash), or (0, GENESIS_HASH) for an empty ledger."""
    row = conn.execute("SELECT id, hash FROM ledger ORDER BY id DESC LIMIT 1").fetchone()
    return (0, GENESIS_HASH) if row is None else (row[0], row[1])


Row = tuple[str, str | None, dict[str, Any]]  # (kind, procedure_uid, data)


def append_rows(conn: sqlite3.Connection, rows: list[Row], wall_time_utc: str, *,
                anchor_last: bool = False) -> tuple[int, str]:
    """Append ``(kind, procedure_uid, data)`` rows in one committed transaction.

    The head is read inside the write lock (BEGIN IMMEDIATE), so the chain stays whole even when
    another process appends to the same file. With ``anchor_last`` the last row's data gets
    ``anchor = {"rows", "hash"}``: the head just before it. Returns the new head. On any failure
    the transaction is rolled back and the exception propagates.
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        head = insert_rows(conn, rows, wall_time_utc, anchor_last)
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return head


def insert_rows(conn: sqlite3.Connection, rows: list[Row], wall_time_utc: str,
                 anchor_last: bool) -> tuple[int, str]:
    last_id, last_hash = read_head(conn)
    for i, (kind, procedure_uid, data) in enumerate(rows):
        if anchor_last and i == len(rows) - 1:
            data = {**data, "anchor": {"rows": last_id, "hash": last_hash}}
        content = {"id": last_id + 1, "kind": kind, "procedure_uid": procedure_uid,
                   "wall_time_utc": wall_time_utc, "data": data}
        payload = canonical_json(content)
        row_hash = chain_hash(last_hash, payload)
        conn.execute(_INSERT, (*project(content), payload, last_hash, row_hash))
        last_id, last_hash = last_id + 1, row_hash
    return last_id, last_hash


# -- opening files ----------------------------------------------------------------------------

def _create_file(path: Path) -> None:
    """Create ``path`` empty with mode 0600 unless it exists; InputError naming why not."""
    folder = path.parent
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    except NotADirectoryError:
        raise InputError(f"{path}: cannot create the dose log: {folder} is not a folder") from None
    except FileNotFoundError:
        raise InputError(f"{path}: cannot create the dose log: folder {folder} does not exist"
                         ) from None
    except PermissionError:
        raise InputError(f"{path}: cannot create the dose log: folder is not writable") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot create the dose log: {exc.strerror}") from None
    os.close(fd)
    fsync_folder(folder)


def _check_file(path: Path, *, empty_ok: bool) -> None:
    if path.is_dir():
        raise InputError(f"{path}: is a folder; expected a fluoro dose log file")
    try:
        with open(path, "rb") as file:
            header = file.read(len(SQLITE_HEADER))
    except FileNotFoundError:
        raise InputError(f"{path}: no such dose log") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read the dose log: {exc.strerror}") from None
    if not header and empty_ok:
        return
    if header != SQLITE_HEADER:
        raise InputError(f"{path}: not a fluoro dose log (not an SQLite database)")


def check_meta(name: object, tables: set[str], conn: Any,
               foreign_table_errors: tuple[type[BaseException], ...]) -> None:
    """Refuse (``InputError`` naming the log) a database that is not a fluoro dose log of a
    schema this version reads. ``tables`` are the database's table names; reading ``meta``
    raising one of ``foreign_table_errors`` means a ``meta`` table of another program. Shared
    by the SQLite and PostgreSQL stores."""
    if "meta" not in tables:
        raise InputError(f"{name}: not a fluoro dose log (no fluoro meta table)")
    try:
        meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
    except foreign_table_errors:
        raise InputError(f"{name}: not a fluoro dose log (its meta table is not fluoro's)"
                         ) from None
    if meta.get("application") != APPLICATION:
        raise InputError(f"{name}: not a fluoro dose log "
                         f"(meta application is {meta.get('application')!r})")
    version = str(meta.get("schema_version", ""))
    if not version.isdigit() or int(version) > SCHEMA_VERSION:
        raise InputError(f"{name}: dose log schema {version!r} is newer than this fluoro reads "
                         f"(schema {SCHEMA_VERSION}); update fluoro")
    if "ledger" not in tables:
        raise InputError(f"{name}: damaged fluoro dose log (no ledger table)")


def _check_meta(conn: sqlite3.Connection, path: Path) -> None:
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_schema WHERE type = 'table'")}
    check_meta(path, tables, conn, (sqlite3.DatabaseError,))


def _initialise(conn: sqlite3.Connection, wall_time_utc: str) -> None:
    conn.execute("BEGIN IMMEDIATE")
    try:
        if conn.execute("SELECT count(*) FROM sqlite_schema").fetchone()[0] == 0:
            log_id = str(uuid.uuid4())
            for statement in _SCHEMA.split(";\n"):
                if statement.strip():
                    conn.execute(statement)
            conn.executemany("INSERT INTO meta (key, value) VALUES (?, ?)", [
                ("application", APPLICATION), ("schema_version", str(SCHEMA_VERSION)),
                ("log_id", log_id), ("created_utc", wall_time_utc)])
            insert_rows(conn, [(LOG_CREATED, None, {
                "log_id": log_id, "schema_version": SCHEMA_VERSION,
                "software": f"fluoro {__version__}", "sqlite": sqlite3.sqlite_version})],
                wall_time_utc, anchor_last=False)
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


@contextlib.contextmanager
def closed_on_failure(conn: Any, name: object, errors: tuple[type[BaseException], ...],
                      describe: Callable[[BaseException], str] = str) -> Iterator[None]:
    """Set up a freshly opened connection: on any failure close it; a database error
    (``errors``) becomes one ``InputError`` line naming the log. Shared by the SQLite and
    PostgreSQL openers."""
    try:
        yield
    except errors as exc:
        conn.close()
        raise InputError(f"{name}: cannot open the dose log: {describe(exc)}") from None
    except BaseException:
        conn.close()
        raise


def connect_writer(path: Path, synchronous: str, clock: Clock) -> sqlite3.Connection:
    """Open (creating if needed, mode 0600) a dose log for appending; InputError if unusable."""
    if synchronous not in SYNCHRONOUS_MODES:
        raise ValueError(f"synchronous={synchronous!r}: expected one of {SYNCHRONOUS_MODES}")
    _create_file(path)
    _check_file(path, empty_ok=True)
    if not os.access(path, os.R_OK | os.W_OK):
        raise InputError(f"{path}: cannot append to the dose log: the file is not writable")
    old_umask = os.umask(0o077)  # the -wal and -shm files must not be world-readable either
    try:
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=2.0)
        with closed_on_failure(conn, path, (sqlite3.DatabaseError,)):
            conn.execute("PRAGMA busy_timeout = 2000")
            if conn.execute("PRAGMA journal_mode = WAL").fetchone()[0].lower() != "wal":
                raise InputError(f"{path}: cannot use the dose log: the file system does not "
                                 "support SQLite's write-ahead log")
            conn.execute(f"PRAGMA synchronous = {synchronous}")
            _initialise(conn, format_utc(clock()))
            _check_meta(conn, path)
    finally:
        os.umask(old_umask)
    return conn


def connect_reader(path: Path) -> sqlite3.Connection:
    """Open an existing dose log read-only (URI ``mode=ro``); InputError if it is not one."""
    _check_file(path, empty_ok=False)
    uri = f"{path.resolve().as_uri()}?mode=ro"
    try:
        conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False,
                               timeout=2.0)
    except sqlite3.Error as exc:
        raise InputError(f"{path}: cannot open the dose log: {exc}") from None
    with closed_on_failure(conn, path, (sqlite3.DatabaseError,)):
        conn.execute("PRAGMA query_only = ON")
        _check_meta(conn, path)
    return conn
