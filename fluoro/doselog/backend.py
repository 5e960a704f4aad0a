"""Which database a dose log lives in, chosen by its name: a ``postgresql://`` (or
``postgres://``) URL opens the department database (``fluoro.doselog.postgres``), anything
else an SQLite file (``fluoro.doselog.sqlite``). Both give a connection with the
``sqlite3.Connection`` methods the shared code uses (``execute`` with ``?`` placeholders,
``BEGIN``/``COMMIT``), so the writing, query and verify code is one for both. The name
returned is what messages show: the path, or the URL without its password.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, NamedTuple

from fluoro.doselog.ledger import Clock
from fluoro.doselog.postgres import (
    connect_pg_reader,
    connect_pg_writer,
    database_url,
    is_database_url,
    redact,
)
from fluoro.doselog.sqlite import connect_reader, connect_writer

__all__ = ["Opened", "is_database_url", "open_reader", "open_writer"]


class Opened(NamedTuple):
    """An open dose-log connection, the name messages show, and the SQLite file it lives in
    (None for the department database)."""

    conn: Any
    name: Path | str
    file: Path | None


def open_writer(target: str | os.PathLike[str], synchronous: str, clock: Clock) -> Opened:
    """The dose log ``target`` opened for appending."""
    url = database_url(target)
    if url is not None:
        return Opened(connect_pg_writer(url, clock), redact(url), None)
    path = Path(target)
    return Opened(connect_writer(path, synchronous, clock), path, path)


def open_reader(target: str | os.PathLike[str]) -> Opened:
    """The dose log ``target`` opened read-only."""
    url = database_url(target)
    if url is not None:
        return Opened(connect_pg_reader(url), redact(url), None)
    path = Path(target)
    return Opened(connect_reader(path), path, path)
