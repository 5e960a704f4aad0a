"""The department dose log: the same ledger as ``fluoro.doselog.ledger``, in PostgreSQL.

Many rooms append to one database, ``DoseLog.create_or_open("postgresql://user@host:port/db")``.
The schema, the canonical payloads, the hash chain and ``verify`` are those of the SQLite log
(a row's hash does not depend on the backend); only the SQL around them differs, and it lives
here:

- ``PgConnection`` wraps a psycopg 3 connection (autocommit; transactions are explicit) behind the
  few ``sqlite3.Connection`` methods the shared code uses, turning the ``?`` placeholders of the
  shared queries into psycopg's ``%s`` (and ``IS ?`` into ``IS NOT DISTINCT FROM %s``).
- Appends serialise across rooms with a transaction-level advisory lock
  (``pg_advisory_xact_lock``) taken before the head is read, so the chain stays whole and the ids
  contiguous; each append is committed (``synchronous_commit = on``) before it returns.
- Read transactions are ``REPEATABLE READ`` (one snapshot across the statements of a query).
- Trigger functions refuse UPDATE, DELETE and TRUNCATE on ``ledger`` and ``meta``.

Types: ``DOUBLE PRECISION`` for every real column (never ``REAL``, a 4-byte float, which would
not give back the hashed number) and ``BIGINT`` for integers.
"""

from __future__ import annotations

import os
import re
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from fluoro.doselog.ledger import (
    Clock,
    check_meta,
    closed_on_failure,
    format_utc,
    write_genesis,
)
from fluoro.errors import InputError

URL_SCHEMES = ("postgresql://", "postgres://")
ADVISORY_LOCK_KEY = 0x666C756F726F  # "fluoro": one appender at a time per database

_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY NOT NULL, value TEXT NOT NULL);
CREATE TABLE ledger (
    id BIGINT PRIMARY KEY,
    kind TEXT NOT NULL,
    procedure_uid TEXT,
    wall_time_utc TEXT NOT NULL,
    patient_key TEXT,
    seq BIGINT,
    t_s DOUBLE PRECISION,
    event BIGINT,
    missing_pulses BIGINT,
    kar_mgy DOUBLE PRECISION,
    dap_gycm2 DOUBLE PRECISION,
    beam_time_s DOUBLE PRECISION,
    measured INTEGER,
    alarm_key TEXT,
    payload TEXT NOT NULL,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE INDEX ledger_procedure ON ledger (procedure_uid, kind);
CREATE INDEX ledger_patient ON ledger (patient_key) WHERE patient_key IS NOT NULL;
CREATE INDEX ledger_alarm ON ledger (alarm_key) WHERE alarm_key IS NOT NULL;
CREATE FUNCTION fluoro_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN RAISE EXCEPTION '%', TG_ARGV[0]; END $$;
CREATE TRIGGER ledger_no_update BEFORE UPDATE ON ledger FOR EACH ROW EXECUTE FUNCTION
    fluoro_refuse_change('the dose log is append-only: rows cannot be changed');
CREATE TRIGGER ledger_no_delete BEFORE DELETE ON ledger FOR EACH ROW EXECUTE FUNCTION
    fluoro_refuse_change('the dose log is append-only: rows cannot be deleted');
CREATE TRIGGER ledger_no_truncate BEFORE TRUNCATE ON ledger FOR EACH STATEMENT EXECUTE FUNCTION
    fluoro_refuse_change('the dose log is append-only: rows cannot be deleted');
CREATE TRIGGER meta_no_update BEFORE UPDATE ON meta FOR EACH ROW EXECUTE FUNCTION
    fluoro_refuse_change('the dose log meta table cannot be changed');
CREATE TRIGGER meta_no_delete BEFORE DELETE ON meta FOR EACH ROW EXECUTE FUNCTION
    fluoro_refuse_change('the dose log meta table cannot be changed');
CREATE TRIGGER meta_no_truncate BEFORE TRUNCATE ON meta FOR EACH STATEMENT EXECUTE FUNCTION
    fluoro_refuse_change('the dose log meta table cannot be changed')
"""


def database_url(target: object) -> str | None:
    """The PostgreSQL URL ``target`` names, or None for an SQLite file.

    A URL that went through ``pathlib.Path`` (as command-line options typed ``Path`` do) has
    lost one slash of ``://``; it is restored, so ``Path("postgresql://u@host/db")`` still opens
    the database. (A host-less ``postgresql:///db`` cannot be told apart that way: pass a str.)
    """
    text = os.fspath(target) if isinstance(target, os.PathLike) else target
    if not isinstance(text, str):
        return None
    if text.lower().startswith(URL_SCHEMES):
        return text
    if isinstance(target, os.PathLike) and text.lower().startswith(("postgresql:/", "postgres:/")):
        scheme, _, rest = text.partition(":/")
        return f"{scheme}://{rest}"
    return None


def is_database_url(target: object) -> bool:
    """Whether ``target`` names a PostgreSQL database rather than an SQLite file."""
    return database_url(target) is not None


def redact(url: str) -> str:
    """``url`` without its password (in the user part or a ``password=`` parameter)."""
    try:
        parts = urlsplit(url)
        netloc = parts.netloc
        if "@" in netloc:
            user, _, host = netloc.rpartition("@")
            netloc = f"{user.partition(':')[0]}@{host}"
        query = urlencode([(k, v) for k, v in parse_qsl(parts.query) if k != "password"])
        return urlunsplit((parts.scheme, netloc, parts.path, query, ""))
    except ValueError:
        return re.sub(r":[^:@/]*@", "@", url.split("?", 1)[0])


class _Cursor:
    """The rows of one statement (psycopg's cursor; ``sqlite3``'s shape)."""

    def __init__(self, cursor: Any) -> None:
        self._cursor = cursor

    def fetchone(self) -> tuple | None:
        return self._cursor.fetchone() if self._cursor.description else None

    def fetchall(self) -> list[tuple]:
        return self._cursor.fetchall() if self._cursor.description else []

    def __iter__(self):
        return iter(self.fetchall())


class PgConnection:
    """A psycopg connection with the ``sqlite3.Connection`` methods the shared dose-log code
    calls: ``execute`` (``?`` placeholders), ``executemany``, ``in_transaction``, ``close``, and
    ``begin_write`` (the append lock)."""

    def __init__(self, conn: Any, name: str) -> None:
        self.raw = conn
        self.name = name

    @staticmethod
    def translate(sql: str) -> str:
        return sql.replace("IS ?", "IS NOT DISTINCT FROM ?").replace("?", "%s")

    def execute(self, sql: str, params: Any = ()) -> _Cursor:
        statement = sql.strip().upper()
        if statement == "BEGIN":  # a read: one snapshot across the query's statements
            sql = "BEGIN ISOLATION LEVEL REPEATABLE READ"
        elif statement == "BEGIN IMMEDIATE":
            self.begin_write()
            return _Cursor(self.raw.cursor())
        return _Cursor(self.raw.execute(self.translate(sql), tuple(params)))

    def executemany(self, sql: str, rows: Any) -> None:
        with self.raw.cursor() as cursor:
            cursor.executemany(self.translate(sql), [tuple(r) for r in rows])

    def begin_write(self) -> None:
        """Start an append: BEGIN, then wait for the database's append lock (released at the
        end of the transaction), so the head read next is the newest committed one."""
        self.raw.execute("BEGIN")
        self.raw.execute("SELECT pg_advisory_xact_lock(%s)", (ADVISORY_LOCK_KEY,))

    @property
    def in_transaction(self) -> bool:
        from psycopg.pq import TransactionStatus

        return self.raw.info.transaction_status != TransactionStatus.IDLE

    def close(self) -> None:
        self.raw.close()


def _connect(url: str, name: str, *, readonly: bool) -> PgConnection:
    try:
        import psycopg
    except ImportError:
        raise InputError(f"{name}: a PostgreSQL dose log needs psycopg "
                         "(pip install 'psycopg[binary]')") from None
    try:
        raw = psycopg.connect(url, autocommit=True, connect_timeout=5,
                              application_name="fluoro")
    except (psycopg.Error, ValueError) as exc:
        reason = _line(exc)
        for secret in _secrets(url):  # never echo a message that might carry the password
            reason = reason.replace(secret, "***")
        raise InputError(f"{name}: cannot open the dose log database: {reason}") from None
    conn = PgConnection(raw, name)
    try:
        raw.execute("SET synchronous_commit = on")
        if readonly:
            raw.execute("SET default_transaction_read_only = on")
    except psycopg.Error as exc:
        raw.close()
        raise InputError(f"{name}: cannot open the dose log database: {_line(exc)}") from None
    return conn


def _secrets(url: str) -> list[str]:
    try:
        parts = urlsplit(url)
        found = [parts.password or ""] + [v for k, v in parse_qsl(parts.query) if k == "password"]
    except ValueError:
        found = re.findall(r":([^:@/]+)@", url)
    return [s for s in found if s]


def _line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _tables(conn: PgConnection) -> set[str]:
    return {r[0] for r in conn.execute(
        "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")}


def _check_meta(conn: PgConnection) -> None:
    # a foreign "meta" table of any shape fails in any way: Exception
    check_meta(conn.name, _tables(conn), conn, (Exception,))


def engine_data(conn: PgConnection) -> dict[str, Any]:
    """What the ``log_created`` row records about the database engine."""
    return {"postgresql": str(conn.raw.info.server_version)}


def _initialise(conn: PgConnection, wall_time_utc: str) -> None:
    """Create the schema and the first row in an empty database (under the append lock, so two
    rooms starting at once create it once)."""
    conn.begin_write()
    try:
        if not _tables(conn):
            conn.raw.execute(_SCHEMA)
            write_genesis(conn, wall_time_utc, engine_data(conn))
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


def connect_pg_writer(url: str, clock: Clock) -> PgConnection:
    """Open (creating the schema in an empty database) a PostgreSQL dose log for appending."""
    import psycopg

    name = redact(url)
    conn = _connect(url, name, readonly=False)
    with closed_on_failure(conn, name, (psycopg.Error,), _line):
        _initialise(conn, format_utc(clock()))
        _check_meta(conn)
    return conn


def connect_pg_reader(url: str) -> PgConnection:
    """Open an existing PostgreSQL dose log read-only; InputError if it is not one."""
    import psycopg

    name = redact(url)
    conn = _connect(url, name, readonly=True)
    with closed_on_failure(conn, name, (psycopg.Error,), _line):
        _check_meta(conn)
    return conn
