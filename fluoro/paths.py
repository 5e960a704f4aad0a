"""Where fluoro keeps its files on this computer."""

from __future__ import annotations

import os
import sys
from pathlib import Path


def data_dir() -> Path:
    """The user's fluoro data folder: ``$FLUORO_DATA_DIR`` if set, else the platform's place
    (``$XDG_DATA_HOME/fluoro`` or ``~/.local/share/fluoro`` on Linux,
    ``~/Library/Application Support/fluoro`` on macOS, ``%LOCALAPPDATA%\\fluoro`` on Windows)."""
    if override := os.environ.get("FLUORO_DATA_DIR"):
        return Path(override)
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support" / "fluoro"
    if sys.platform == "win32":
        return Path(os.environ.get("LOCALAPPDATA", Path.home())) / "fluoro"
    base = os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share"
    return Path(base) / "fluoro"


def default_dose_log() -> Path:
    """The dose log ``fluoro run`` writes unless ``--dose-log`` says otherwise."""
    return data_dir() / "dose-log.sqlite"


def site_key_file() -> Path:
    """The site's secret for pseudonymous patient keys (``fluoro.doselog.pseudonym``)."""
    return data_dir() / "site.key"
