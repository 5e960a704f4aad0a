"""The dose log in an SQLite file: its schema, opening a file safely, and its durability.

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

Files are created mode 0600 (and the ``-wal`` and ``-shm`` files with them); the table layout
and the hash chain are those of ``fluoro.doselog.ledger``.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from fluoro.doselog.ledger import (
    Clock,
    check_meta,
    closed_on_failure,
    format_utc,
    write_genesis,
)
from fluoro.errors import InputError
from fluoro.fsutil import fsync_folder

SQLITE_HEADER = b"SQLite format 3\x00"
SYNCHRONOUS_MODES = ("FULL", "NORMAL", "EXTRA")

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


def _check_meta(conn: sqlite3.Connection, path: Path) -> None:
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_schema WHERE type = 'table'")}
    check_meta(path, tables, conn, (sqlite3.DatabaseError,))


def _initialise(conn: sqlite3.Connection, wall_time_utc: str) -> None:
    conn.execute("BEGIN IMMEDIATE")
    try:
        if conn.execute("SELECT count(*) FROM sqlite_schema").fetchone()[0] == 0:
            for statement in _SCHEMA.split(";\n"):
                if statement.strip():
                    conn.execute(statement)
            write_genesis(conn, wall_time_utc, {"sqlite": sqlite3.sqlite_version})
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
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
