"""The ledger of the dose log, the same in every backend: row kinds, typed columns, canonical
payloads and the hash chain, and appending rows to it.

Everything here is private to ``fluoro.doselog``; the public API is ``fluoro.doselog.DoseLog``.
The SQLite file is ``fluoro.doselog.sqlite``, the department database ``fluoro.doselog.postgres``.

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
import sqlite3
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import numpy as np

from fluoro import __version__
from fluoro.errors import InputError

APPLICATION = "fluoro-dose-log"
SCHEMA_VERSION = 1
GENESIS_HASH = "0" * 64

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
METER_READING = "meter_reading"  # a DAP meter's total (fluoro.dose.meter.MeterReading)
METER_EVENT = "meter_event"  # the meter's link: connected, disconnected, error, garbage, timeout

# Typed columns, in table order, between the identifying columns and the payload.
COLUMNS = ("id", "kind", "procedure_uid", "wall_time_utc", "patient_key", "seq", "t_s", "event",
           "missing_pulses", "kar_mgy", "dap_gycm2", "beam_time_s", "measured", "alarm_key")

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


# -- shared by the SQLite and PostgreSQL stores -------------------------------------------

def write_genesis(conn: Any, wall_time_utc: str, engine: dict[str, str]) -> None:
    """Fill a new log's ``meta`` table and write its first ledger row, ``log_created`` (the
    log's id and schema version, the software, and ``engine``: the database and its version),
    inside the caller's write transaction."""
    log_id = str(uuid.uuid4())
    conn.executemany("INSERT INTO meta (key, value) VALUES (?, ?)", [
        ("application", APPLICATION), ("schema_version", str(SCHEMA_VERSION)),
        ("log_id", log_id), ("created_utc", wall_time_utc)])
    insert_rows(conn, [(LOG_CREATED, None, {
        "log_id": log_id, "schema_version": SCHEMA_VERSION,
        "software": f"fluoro {__version__}", **engine})], wall_time_utc, anchor_last=False)


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
