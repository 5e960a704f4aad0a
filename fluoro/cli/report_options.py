"""Options of ``fluoro dose report``: dates, the patient, the output file.

Dates are UTC unless they carry an offset. ``--since DAY`` starts at 00:00 of that day and
``--until DAY`` includes the whole day; a time of day (``2025-03-03T14:30``) is taken as given,
``--until`` excluding that instant.
"""

from __future__ import annotations

import argparse
import os
import re
import tempfile
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from fluoro.errors import InputError

__all__ = ["check_out", "parse_since", "parse_until", "parse_weeks", "resolve_patient",
           "write_output"]

_KEY = re.compile(r"[0-9a-f]{32,64}")
_EXPECTED = "expected a date YYYY-MM-DD or a time YYYY-MM-DDTHH:MM[:SS] (UTC unless an offset " \
            "such as +01:00 is given)"


def _parse(text: str) -> tuple[datetime, bool]:
    """(moment, whether only a day was given)."""
    try:
        if len(text.strip()) == 10:
            day = date.fromisoformat(text.strip())
            return datetime(day.year, day.month, day.day, tzinfo=UTC), True
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: {_EXPECTED}") from None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)), False


def parse_since(text: str) -> datetime:
    """``--since``: the first instant included (UTC)."""
    return _parse(text)[0]


def parse_until(text: str) -> datetime:
    """``--until``: the first instant *excluded* (a day: the next day's 00:00 UTC)."""
    moment, day_only = _parse(text)
    return moment + timedelta(days=1) if day_only else moment


def parse_weeks(text: str) -> float:
    """``--weeks``: a positive number of weeks."""
    try:
        weeks = float(text)
    except ValueError:
        weeks = float("nan")
    if not weeks > 0 or weeks == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r}: expected a positive number of weeks")
    return weeks


def resolve_patient(text: str | None) -> str | None:
    """``--patient``: a pseudonymous key as printed in reports (32–64 hex digits), or a patient
    ID keyed with this site's secret (``fluoro.doselog.pseudonym``); the ID is never echoed."""
    if text is None:
        return None
    if _KEY.fullmatch(text.strip().lower()):
        return text.strip().lower()
    from fluoro.doselog.pseudonym import load_or_create_site_salt, patient_key
    from fluoro.paths import site_key_file

    salt_file = site_key_file()
    if not salt_file.exists():  # never create a new secret just to look a patient up
        raise InputError(f"--patient: not a patient key (32-64 hex digits), and there is no "
                         f"site key at {salt_file} to derive one from a patient ID")
    return patient_key(text, load_or_create_site_salt(salt_file))


def check_out(path: Path | None) -> None:
    """Refuse an ``--out`` that cannot be written, before any work is done."""
    if path is None:
        return
    folder = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise InputError(f"--out {path}: is a folder; expected a file name")
    if not folder.is_dir():
        raise InputError(f"--out {path}: the folder {folder} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK) or (path.exists()
                                                    and not os.access(path, os.W_OK)):
        raise InputError(f"--out {path}: not writable")


def write_output(path: Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` whole or not at all (a temporary file renamed)."""
    check_out(path)
    folder = path.parent if str(path.parent) else Path(".")
    try:
        fd, temp = tempfile.mkstemp(prefix=f".{path.name}.", dir=folder)
        try:
            with os.fdopen(fd, "w", encoding="utf-8", newline="") as out:
                out.write(text)
            os.chmod(temp, 0o644)
            os.replace(temp, path)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise
    except OSError as exc:
        raise InputError(f"--out {path}: cannot write ({exc.strerror or exc})") from None
