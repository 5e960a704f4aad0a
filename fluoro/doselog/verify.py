"""Checking a dose log's hash chain: has any row been altered, inserted or removed?

``verify(path)`` reads every ledger row in id order inside one read transaction (a consistent
snapshot, safe while the acquisition thread is appending) and checks, for each row: its id is the
next one (no row missing), its ``prev_hash`` is the previous row's ``hash``, its payload is in
canonical form and hashes to its ``hash``, and its typed columns equal the projection of the
hashed payload. It names the first row that fails.

Limit: deleting the *last* rows leaves a shorter chain that is still whole, so the chain alone
cannot detect it. Every procedure-end row records the head before it (row count and hash), and
``DoseLog.head()`` gives the current one: print it in the procedure report as an anchor, and pass
it back as ``verify(path, anchor=...)`` to prove that the log still reaches that far, unchanged.
"""

from __future__ import annotations

import json
import os
import sqlite3
from dataclasses import dataclass

from fluoro.doselog.backend import open_reader
from fluoro.doselog.ledger import (
    COLUMNS,
    GAP,
    GENESIS_HASH,
    PULSE,
    canonical_json,
    chain_hash,
    project,
)

__all__ = ["Head", "VerifyReport", "verify"]


@dataclass(frozen=True, slots=True)
class Head:
    """The end of the chain: ``rows`` (the last row id, equal to the row count of an intact log)
    and ``hash`` (that row's hash, hex). Printed as ``rows:hash`` it is the log's anchor."""

    rows: int
    hash: str

    def __str__(self) -> str:
        return f"{self.rows}:{self.hash}"

    @classmethod
    def parse(cls, text: str) -> Head:
        """The inverse of ``str(head)``, for an anchor copied from a printed report."""
        rows, _, digest = text.strip().partition(":")
        if not rows.isdigit() or len(digest) != 64:
            raise ValueError(f"{text!r}: expected an anchor 'ROWS:SHA256HEX'")
        return cls(int(rows), digest.lower())


@dataclass(frozen=True, slots=True)
class VerifyReport:
    """Outcome of ``verify``: ``ok``; ``rows_checked`` (rows that passed before the first
    failure, or all); ``first_bad_row`` (id of the first altered or missing row, None when ok);
    ``problem`` (one line naming the row and what is wrong, None when ok); ``head`` (the end of
    the verified chain)."""

    ok: bool
    rows_checked: int
    first_bad_row: int | None
    problem: str | None
    head: Head

    def __str__(self) -> str:
        if self.ok:
            return f"dose log OK: {self.rows_checked} rows, anchor {self.head}"
        return f"dose log FAILED verification: {self.problem}"


_SELECT = (f"SELECT {', '.join(COLUMNS)}, payload, prev_hash, hash FROM ledger ORDER BY id")


def verify(path: str | os.PathLike[str], anchor: Head | None = None) -> VerifyReport:
    """Recompute the hash chain of the dose log at ``path`` (an SQLite file or a
    ``postgresql://`` URL, opened read-only).

    ``anchor``: a head printed earlier (see the module docstring); the report fails if the log
    no longer reaches that row or that row's hash differs. Raises ``InputError`` if ``path`` is
    not a fluoro dose log.
    """
    conn = open_reader(path).conn
    try:
        conn.execute("BEGIN")
        return _verify_rows(conn, anchor)
    finally:
        conn.close()


def _verify_rows(conn: sqlite3.Connection, anchor: Head | None) -> VerifyReport:
    expected_id, prev_hash = 1, GENESIS_HASH
    hashes_at_anchor = None

    def bad(row_id: int, problem: str) -> VerifyReport:
        return VerifyReport(False, expected_id - 1, row_id, problem,
                            Head(expected_id - 1, prev_hash))

    for row in conn.execute(_SELECT):
        columns, (payload, stored_prev, stored_hash) = row[:len(COLUMNS)], row[len(COLUMNS):]
        row_id = columns[0]
        if row_id != expected_id:
            gone = (f"row {expected_id}" if row_id == expected_id + 1
                    else f"rows {expected_id}–{row_id - 1}")
            return bad(expected_id, f"{gone} missing (the next row present is {row_id})")
        where = f"row {row_id} ({_describe(columns)})"
        if stored_prev != prev_hash:
            return bad(row_id, f"{where}: does not chain to row {row_id - 1} (its prev_hash is "
                               f"not that row's hash): row {row_id - 1} or {row_id} was altered")
        problem = _content_problem(payload, columns, prev_hash, stored_hash)
        if problem:
            return bad(row_id, f"{where}: {problem}")
        prev_hash = stored_hash
        if anchor is not None and row_id == anchor.rows:
            hashes_at_anchor = stored_hash
        expected_id += 1
    rows = expected_id - 1
    head = Head(rows, prev_hash)
    if anchor is not None:
        if anchor.rows > rows:
            return VerifyReport(False, rows, rows + 1,
                                f"rows {rows + 1}–{anchor.rows} missing: the log ends at row "
                                f"{rows} but the anchor {anchor} names row {anchor.rows} "
                                "(its last rows were deleted)", head)
        if hashes_at_anchor != anchor.hash.lower():
            return VerifyReport(False, rows, anchor.rows,
                                f"row {anchor.rows}: its hash differs from the anchor {anchor} "
                                "(the log was rewritten from there or before)", head)
    return VerifyReport(True, rows, None, None, head)


def _content_problem(payload: str, columns: tuple, prev_hash: str, stored_hash: str) -> str:
    try:
        content = json.loads(payload)
        canonical = canonical_json(content)
    except (TypeError, ValueError):
        return "content does not match its hash (payload is not valid JSON)"
    if canonical != payload or chain_hash(prev_hash, payload) != stored_hash:
        return "content does not match its hash"
    try:
        hashed_columns = project(content)
    except (KeyError, TypeError):
        return "content does not match its hash (payload lacks fields of its kind)"
    for name, stored, hashed in zip(COLUMNS, columns, hashed_columns, strict=True):
        if stored != hashed:
            return (f"content does not match its hash ({name} is {stored!r}, "
                    f"the hashed content says {hashed!r})")
    return ""


def _describe(columns: tuple) -> str:
    """A row in words, from its (possibly altered) typed columns."""
    c = dict(zip(COLUMNS, columns, strict=True))
    of = f" of procedure {c['procedure_uid']}" if c["procedure_uid"] else ""
    kind = c["kind"]
    if kind == PULSE:
        return f"pulse seq {c['seq']}{of}"
    if kind == GAP:
        return f"gap of {c['missing_pulses']} pulses from seq {c['seq']}{of}"
    if kind == "event":
        return f"irradiation event {c['event']}{of}"
    if kind in ("alarm", "ack"):
        return f"{kind} {c['alarm_key']!r}{of}"
    return f"{str(kind).replace('_', ' ')}{of}"
