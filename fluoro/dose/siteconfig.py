"""Site configuration: room and device names, dose calibration and the dose alarm levels.

One TOML file per room, owned by the site's medical physicist. The documented defaults ship as
``fluoro/data/site.toml`` (read with ``importlib.resources``); a site file only needs the keys it
changes, the others keep their defaults. A key the schema does not know is refused rather than
ignored, so a misspelt threshold can never silently fall back to the default; so are values of
the wrong type, thresholds that are not positive, and notification levels that are not below the
level they lead up to (NCRP Report No. 168: notification first, then the SRDL).
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Final

from fluoro.dose.alarms import AlarmConfig, AlarmLevel, Kind
from fluoro.errors import InputError

__all__ = ["SiteConfig", "default_site_toml", "load_site_config"]

DEFAULT_SOURCE: Final = "fluoro/data/site.toml (shipped defaults)"


@dataclass(frozen=True, slots=True)
class SiteConfig:
    """The settings of one room.

    Attributes
    ----------
    room, device : str
        Names stored with every procedure.
    room_factor : float
        Calibration of the dose model: measured / modelled Ka,r (1.0 = the model as is).
    reference_point : str
        Where Ka,r refers to, stored with every procedure.
    history_weeks : int
        Weeks of a patient's earlier procedures the dose review takes into account.
    measured_model_tolerance : float
        Largest accepted relative difference between measured and modelled dose (0.35 = ±35 %,
        21 CFR 1020.32(k)).
    alarms : AlarmConfig
        The dose alarm levels (``fluoro.dose.alarms``).
    source : str
        Where this configuration came from (the file, or the shipped defaults), for the log.
    """

    room: str
    device: str
    room_factor: float
    reference_point: str
    history_weeks: int
    measured_model_tolerance: float
    alarms: AlarmConfig
    source: str


# -- schema: every key a site file may set, and what it must hold ------------------------------

_TEXT: Final = "a non-empty string"
_FLAG: Final = "true or false"
_WEEKS: Final = "a whole number of weeks, at least 1"
_FRACTION: Final = "a number above 0 and at most 1 (0.35 = ±35 %)"


def _positive(unit: str) -> str:
    return f"a positive number ({unit})"


# (TOML key stem, unit suffix in the key, DoseTotals attribute, factor to the attribute's unit)
_QUANTITY_KEYS: Final = (
    ("kar", "mgy", "kar_mgy", 1.0),
    ("dap", "gycm2", "dap_gycm2", 1.0),
    ("fluoro_time", "min", "fluoro_time_s", 60.0),
)
_UNITS: Final = {"mgy": "mGy", "gycm2": "Gy·cm²", "min": "minutes"}

_SERIES_KEYS: Final = {
    **{f"{stem}_{part}_{suffix}": _positive(_UNITS[suffix])
       for stem, suffix, _, _ in _QUANTITY_KEYS for part in ("first", "step")},
    "requires_ack": _FLAG,
}
_SINGLE_KEYS: Final = {
    **{f"{stem}_{suffix}": _positive(_UNITS[suffix]) for stem, suffix, _, _ in _QUANTITY_KEYS},
    "requires_ack": _FLAG,
}
_SCHEMA: Final[dict[str, Any]] = {
    "site": {
        "room": _TEXT,
        "device": _TEXT,
        "room_factor": _positive("measured / modelled dose"),
        "reference_point": _TEXT,
        "history_weeks": _WEEKS,
        "measured_model_tolerance": _FRACTION,
    },
    "alarms": {
        "fluoro_time_signal": {"interval_min": _positive("minutes")},
        "ncrp_notification": _SERIES_KEYS,
        "ncrp_srdl": _SINGLE_KEYS,
        "pregnancy_notification": _SERIES_KEYS,
        "pregnancy_consult": _SINGLE_KEYS,
    },
}


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _valid(expected: str, value: object) -> bool:
    if expected == _TEXT:
        return isinstance(value, str) and bool(value.strip())
    if expected == _FLAG:
        return isinstance(value, bool)
    if expected == _WEEKS:
        return isinstance(value, int) and not isinstance(value, bool) and value >= 1
    if not _is_number(value) or not math.isfinite(value):  # type: ignore[arg-type]
        return False
    if expected == _FRACTION:
        return 0 < value <= 1  # type: ignore[operator]
    return value > 0  # type: ignore[operator]


def _check(table: dict[str, Any], schema: dict[str, Any], source: str, prefix: str = "") -> None:
    """Refuse unknown keys and bad values in ``table`` (one parsed TOML file)."""
    for key, value in table.items():
        dotted = f"{prefix}{key}"
        if key not in schema:
            raise InputError(f"{source}: {dotted}: unknown key "
                             f"(expected one of: {', '.join(schema)})")
        expected = schema[key]
        if isinstance(expected, dict):
            if not isinstance(value, dict):
                raise InputError(f"{source}: {dotted}: expected a table [{dotted}], "
                                 f"got {value!r}")
            _check(value, expected, source, f"{dotted}.")
        elif not _valid(expected, value):
            raise InputError(f"{source}: {dotted}: expected {expected}, got {value!r}")


def _merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _merge(merged[key], value)
        else:
            merged[key] = value
    return merged


# -- loading ------------------------------------------------------------------------------------

def default_site_toml() -> str:
    """The text of the shipped default configuration (a template for a site file)."""
    return resources.files("fluoro").joinpath("data/site.toml").read_text(encoding="utf-8")


def _parse(text: str, source: str) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{source}: not a valid TOML file ({exc})") from None


def _read(path: Path) -> dict[str, Any]:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"{path}: site configuration file not found") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read the site configuration "
                         f"({exc.strerror or exc})") from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError(f"{path}: not a valid TOML file (expected UTF-8 text)") from None
    return _parse(text, str(path))


def load_site_config(path: Path | str | None = None) -> SiteConfig:
    """Load a site configuration; ``None`` gives the shipped defaults.

    A site file overrides the defaults key by key.

    Raises
    ------
    InputError
        The file is missing or unreadable, is not TOML, or holds an unknown key or a bad value;
        the message names the file, the key and what was expected.
    """
    defaults = _parse(default_site_toml(), DEFAULT_SOURCE)
    _check(defaults, _SCHEMA, DEFAULT_SOURCE)
    if path is None:
        return _build(defaults, DEFAULT_SOURCE)
    path = Path(path)
    override = _read(path)
    _check(override, _SCHEMA, str(path))
    return _build(_merge(defaults, override), str(path))


def _build(raw: dict[str, Any], source: str) -> SiteConfig:
    site, alarms = raw["site"], raw["alarms"]
    _check_order(alarms, "ncrp_notification", "ncrp_srdl", source)
    _check_order(alarms, "pregnancy_notification", "pregnancy_consult", source)
    interval_s = float(alarms["fluoro_time_signal"]["interval_min"]) * 60.0
    # 21 CFR 1020.32(h)(2)(ii): one signal for each passage of the interval, reset by hand.
    signal = AlarmLevel("signal", "fluoro_time_s", interval_s, interval_s, requires_ack=True)
    config = AlarmConfig(
        levels=(
            signal,
            *_series_levels("notification", alarms, "ncrp_notification", source),
            *_single_levels("srdl", alarms["ncrp_srdl"]),
        ),
        pregnancy_levels=(
            *_series_levels("pregnancy_notification", alarms, "pregnancy_notification", source),
            *_single_levels("pregnancy_consult", alarms["pregnancy_consult"]),
        ),
    )
    return SiteConfig(
        room=site["room"].strip(),
        device=site["device"].strip(),
        room_factor=float(site["room_factor"]),
        reference_point=site["reference_point"].strip(),
        history_weeks=site["history_weeks"],
        measured_model_tolerance=float(site["measured_model_tolerance"]),
        alarms=config,
        source=source,
    )


def _series_levels(kind: Kind, alarms: dict[str, Any], table_name: str,
                   source: str) -> list[AlarmLevel]:
    """NCRP 168 style "first, then every further step" levels of one table."""
    table = alarms[table_name]
    levels = []
    for stem, suffix, quantity, factor in _QUANTITY_KEYS:
        first = table.get(f"{stem}_first_{suffix}")
        step = table.get(f"{stem}_step_{suffix}")
        if first is None and step is None:
            continue
        if first is None:
            raise InputError(
                f"{source}: alarms.{table_name}.{stem}_step_{suffix}: expected "
                f"alarms.{table_name}.{stem}_first_{suffix} too (the level the steps start from)")
        levels.append(AlarmLevel(kind, quantity, float(first) * factor,
                                 None if step is None else float(step) * factor,
                                 requires_ack=table.get("requires_ack", True)))
    return levels


def _single_levels(kind: Kind, table: dict[str, Any]) -> list[AlarmLevel]:
    return [AlarmLevel(kind, quantity, float(table[f"{stem}_{suffix}"]) * factor,
                       requires_ack=table.get("requires_ack", True))
            for stem, suffix, quantity, factor in _QUANTITY_KEYS
            if f"{stem}_{suffix}" in table]


def _check_order(alarms: dict[str, Any], lower: str, upper: str, source: str) -> None:
    """A notification series must start below the single level it leads up to."""
    for stem, suffix, _, _ in _QUANTITY_KEYS:
        first = alarms[lower].get(f"{stem}_first_{suffix}")
        top = alarms[upper].get(f"{stem}_{suffix}")
        if first is not None and top is not None and not first < top:
            raise InputError(
                f"{source}: alarms.{lower}.{stem}_first_{suffix}: expected a value below "
                f"alarms.{upper}.{stem}_{suffix} = {top:g}, got {first:g}")
