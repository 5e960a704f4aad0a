"""Local diagnostic reference levels (DRLs) per procedure type, and outliers against them.

The shipped table is ``fluoro/data/drl.toml`` (its comments give the sources and what a DRL
means: ICRP Publication 135, a level near the 75th percentile of a procedure type's dose
distribution, used to find procedures to review — not a limit). A site replaces it with its own
file (``fluoro dose report --drl PATH``), same keys.
"""

from __future__ import annotations

import math
import re
import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from fluoro.errors import InputError

__all__ = ["DEFAULT_DRL_SOURCE", "QUANTITIES", "DrlEntry", "DrlTable", "Exceedance",
           "load_drl_table"]

DEFAULT_DRL_SOURCE = "fluoro/data/drl.toml (shipped defaults)"
# quantity key -> (label, unit) as the report shows them
QUANTITIES: dict[str, tuple[str, str]] = {
    "dap_gycm2": ("DAP", "Gy·cm²"),
    "fluoro_time_s": ("fluoro time", "s"),
    "kar_mgy": ("Ka,r", "mGy"),
}
_ENTRY_KEYS = {"name", "patterns", *QUANTITIES}


@dataclass(frozen=True, slots=True)
class DrlEntry:
    """One procedure type's reference levels: DAP (Gy·cm²), fluoro time (s), Ka,r (mGy); None
    where the table sets none. ``patterns`` match the start of a word, ignoring case."""

    name: str
    patterns: tuple[str, ...]
    dap_gycm2: float | None = None
    fluoro_time_s: float | None = None
    kar_mgy: float | None = None

    def matches(self, procedure_name: str) -> bool:
        text = procedure_name.casefold()
        return any(re.search(r"(?<![0-9a-z])" + re.escape(p.casefold()), text)
                   for p in self.patterns)

    def levels(self) -> dict[str, float]:
        """The levels this entry sets, by quantity key (``dap_gycm2``, ...)."""
        return {key: getattr(self, key) for key in QUANTITIES if getattr(self, key) is not None}


@dataclass(frozen=True, slots=True)
class Exceedance:
    """A procedure's ``quantity`` (a ``QUANTITIES`` key) at ``value`` above its ``level``."""

    quantity: str
    value: float
    level: float

    @property
    def ratio(self) -> float:
        return self.value / self.level


@dataclass(frozen=True, slots=True)
class DrlTable:
    """Procedure types in match order, the ``default`` for names none matches, and where the
    table came from (a path or the shipped defaults)."""

    entries: tuple[DrlEntry, ...]
    default: DrlEntry | None
    source: str

    def match(self, procedure_name: str) -> DrlEntry | None:
        """The first entry whose pattern matches the name, else the default (or None)."""
        for entry in self.entries:
            if entry.matches(procedure_name or ""):
                return entry
        return self.default

    @staticmethod
    def exceedances(entry: DrlEntry | None, values: dict[str, float]) -> list[Exceedance]:
        """Each quantity of ``values`` (by ``QUANTITIES`` key) strictly above its level."""
        if entry is None:
            return []
        return [Exceedance(key, values[key], level) for key, level in entry.levels().items()
                if key in values and values[key] > level]


def _entry(data: Any, where: str, *, default: bool) -> DrlEntry:
    if not isinstance(data, dict):
        raise InputError(f"{where}: expected a table of name, patterns and levels")
    unknown = sorted(set(data) - _ENTRY_KEYS)
    if unknown:
        raise InputError(f"{where}: unknown key {unknown[0]!r} (expected name, patterns, "
                         f"{', '.join(QUANTITIES)})")
    name = data.get("name", "default" if default else None)
    if not isinstance(name, str) or not name.strip():
        raise InputError(f"{where}.name: expected the procedure type's name")
    patterns = data.get("patterns", [])
    if default and patterns:
        raise InputError(f"{where}.patterns: the default applies to unmatched names; "
                         "it takes no patterns")
    if not default and (not isinstance(patterns, list) or not patterns or not all(
            isinstance(p, str) and p.strip() for p in patterns)):
        raise InputError(f"{where}.patterns: expected a list of non-empty texts to match "
                         "procedure names")
    levels: dict[str, float] = {}
    for key in QUANTITIES:
        value = data.get(key)
        if value is None:
            continue
        if (isinstance(value, bool) or not isinstance(value, (int, float))
                or not math.isfinite(value) or value <= 0):
            raise InputError(f"{where}.{key}: expected a positive number, got {value!r}")
        levels[key] = float(value)
    if not levels:
        raise InputError(f"{where}: expected at least one level ({', '.join(QUANTITIES)})")
    return DrlEntry(name.strip(), tuple(p.strip() for p in patterns), **levels)


def parse_drl_table(text: str, source: str) -> DrlTable:
    """A DRL table from TOML text; ``InputError`` naming ``source`` and the key when wrong."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{source}: not a valid TOML file ({exc})") from None
    unknown = sorted(set(data) - {"procedure", "default"})
    if unknown:
        raise InputError(f"{source}: unknown table {unknown[0]!r} (expected [[procedure]] "
                         "and [default])")
    procedures = data.get("procedure", [])
    if not isinstance(procedures, list):
        raise InputError(f"{source}: expected [[procedure]] tables")
    entries = tuple(_entry(p, f"{source}: procedure {i + 1}", default=False)
                    for i, p in enumerate(procedures))
    default = (_entry(data["default"], f"{source}: default", default=True)
               if "default" in data else None)
    if not entries and default is None:
        raise InputError(f"{source}: no reference levels ([[procedure]] or [default])")
    return DrlTable(entries, default, source)


def load_drl_table(path: Path | str | None = None) -> DrlTable:
    """The DRL table of ``path`` (a site file), or the shipped defaults when None."""
    if path is None:
        text = resources.files("fluoro").joinpath("data/drl.toml").read_text(encoding="utf-8")
        return parse_drl_table(text, DEFAULT_DRL_SOURCE)
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise InputError(f"{path}: DRL file not found") from None
    except UnicodeDecodeError:
        raise InputError(f"{path}: not a valid TOML file (expected UTF-8 text)") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read the DRL file ({exc.strerror or exc})") from None
    return parse_drl_table(text, str(path))
