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
from typing import Any

from fluoro.doselog.ledger import Clock
from fluoro.doselog.postgres import (
    connect_pg_reader,
    connect_pg_writer,
    database_url,
    is_database_url,
    redact,
)
from fluoro.doselog.sqlite import connect_reader, connect_writer

__all__ = ["is_database_url", "open_reader", "open_writer"]


def open_writer(target: str | os.PathLike[str], synchronous: str,
                clock: Clock) -> tuple[Any, Path | str]:
    """(connection, name) of the dose log ``target`` opened for appending."""
    url = database_url(target)
    if url is not None:
        return connect_pg_writer(url, clock), redact(url)
    path = Path(target)
    return connect_writer(path, synchronous, clock), path


def open_reader(target: str | os.PathLike[str]) -> tuple[Any, Path | str]:
    """(connection, name) of the dose log ``target`` opened read-only."""
    url = database_url(target)
    if url is not None:
        return connect_pg_reader(url), redact(url)
    path = Path(target)
    return connect_reader(path), path
