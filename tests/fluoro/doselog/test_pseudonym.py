"""Pseudonymous patient keys and the site salt they are keyed with."""

import os
import stat

import pytest

from fluoro.doselog.pseudonym import load_or_create_site_salt, normalise_patient_id, patient_key
from fluoro.errors import InputError

SALT = bytes(range(32))


def test_the_key_is_stable_per_site_and_differs_between_sites():
    key = patient_key("MRN-4711", SALT)
    assert key == patient_key("MRN-4711", SALT)
    assert len(key) == 32 and int(key, 16) >= 0
    assert key != patient_key("MRN-4712", SALT)
    assert key != patient_key("MRN-4711", bytes(reversed(SALT)))


def test_ids_that_differ_only_in_spacing_or_case_are_the_same_patient():
    assert normalise_patient_id("  mrn\u00a0 4711 ") == "MRN 4711"
    assert patient_key(" mrn 4711", SALT) == patient_key("MRN 4711", SALT)
    assert patient_key("MRN4711", SALT) != patient_key("MRN 4711", SALT)


def test_errors_never_repeat_the_id():
    with pytest.raises(InputError) as caught:
        patient_key(" \t ", SALT)
    assert str(caught.value) == "patient ID: expected a non-empty identifier"
    with pytest.raises(ValueError, match="at least 16 bytes"):
        patient_key("MRN-4711", b"short")


def test_the_site_salt_is_created_once_owner_only(tmp_path):
    path = tmp_path / "site.key"
    old = os.umask(0)
    try:
        salt = load_or_create_site_salt(path)
    finally:
        os.umask(old)
    assert len(salt) == 32 and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_or_create_site_salt(path) == salt
    assert load_or_create_site_salt(tmp_path / "other.key") != salt
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_a_salt_others_can_read_or_of_the_wrong_size_is_refused(tmp_path):
    path = tmp_path / "site.key"
    load_or_create_site_salt(path)
    path.chmod(0o644)
    with pytest.raises(InputError, match="chmod 600"):
        load_or_create_site_salt(path)
    path.chmod(0o600)
    path.write_bytes(b"\x00" * 8)
    with pytest.raises(InputError, match="expected a site salt of 32 bytes, found 8"):
        load_or_create_site_salt(path)
