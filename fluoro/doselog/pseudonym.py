"""Pseudonymous patient keys: the dose log links a patient's procedures without storing the ID.

``patient_key(patient_id, salt)`` is HMAC-SHA256 keyed with a secret *site salt* over the
normalised patient ID, cut to 32 hex digits (128 bits). The same patient gets the same key at the
same site, so the log can sum a patient's dose over the last weeks (cumulative-dose follow-up of
NCRP Report 168), while the ID itself is never written anywhere. Because the key is keyed with a
secret, a list of candidate IDs (medical record numbers are short and sequential) cannot be turned
into keys without the site salt: keep the salt file private and backed up, since without it new
procedures can no longer be linked to old ones.

Normalisation: Unicode NFKC, surrounding whitespace removed, inner runs of whitespace collapsed to
one space, upper case. ``" mrn 00123"`` and ``"MRN 00123"`` are the same patient;
``"MRN00123"`` is not (the separator is kept, as hospital systems keep it).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import secrets
import stat
import unicodedata
from pathlib import Path

from fluoro.errors import InputError
from fluoro.fsutil import fsync_folder

__all__ = ["KEY_HEX_DIGITS", "SALT_BYTES", "load_or_create_site_salt", "normalise_patient_id",
           "patient_key"]

SALT_BYTES = 32
KEY_HEX_DIGITS = 32
_MIN_SALT_BYTES = 16


def normalise_patient_id(patient_id: str) -> str:
    """The form of a patient ID that is keyed (see the module docstring)."""
    text = unicodedata.normalize("NFKC", patient_id)
    return " ".join(text.split()).upper()


def patient_key(patient_id: str, salt: bytes) -> str:
    """Pseudonymous key of a patient: HMAC-SHA256(salt, normalised ID), first 32 hex digits.

    Raises ``InputError`` for an empty ID (the message never repeats the ID) and ``ValueError``
    for a salt shorter than 16 bytes.
    """
    if not isinstance(patient_id, str):
        raise InputError("patient ID: expected a text identifier")
    normalised = normalise_patient_id(patient_id)
    if not normalised:
        raise InputError("patient ID: expected a non-empty identifier")
    if len(salt) < _MIN_SALT_BYTES:
        raise ValueError(f"site salt: expected at least {_MIN_SALT_BYTES} bytes, got {len(salt)}")
    digest = hmac.new(bytes(salt), normalised.encode("utf-8"), hashlib.sha256).hexdigest()
    return digest[:KEY_HEX_DIGITS]


def load_or_create_site_salt(path: str | os.PathLike[str]) -> bytes:
    """The site's secret salt from ``path``; created first (32 random bytes, mode 0600) if absent.

    The file is written under a temporary name and linked into place, so two processes starting
    at once end up with the same salt and nobody ever reads a half-written one. On POSIX a salt file
    that group or others may read is refused: anyone holding it can test guessed IDs.
    """
    path = Path(path)
    try:
        return _read_salt(path)
    except FileNotFoundError:
        pass
    folder = path.parent
    tmp = folder / f".{path.name}.{secrets.token_hex(8)}.tmp"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        raise InputError(f"{path}: cannot create the site salt: {exc.strerror}") from None
    try:
        with os.fdopen(fd, "wb") as file:
            file.write(secrets.token_bytes(SALT_BYTES))
            file.flush()
            os.fsync(file.fileno())
        with contextlib.suppress(FileExistsError):  # another process won the race: use its salt
            os.link(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    fsync_folder(folder)
    return _read_salt(path)


def _read_salt(path: Path) -> bytes:
    with open(path, "rb") as file:
        mode = os.fstat(file.fileno()).st_mode
        salt = file.read()
    if os.name == "posix" and mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise InputError(f"{path}: the site salt may be read by others "
                         f"(mode {stat.S_IMODE(mode):o}); expected mode 600 (chmod 600 {path})")
    if len(salt) != SALT_BYTES:
        raise InputError(f"{path}: expected a site salt of {SALT_BYTES} bytes, found {len(salt)}")
    return salt


