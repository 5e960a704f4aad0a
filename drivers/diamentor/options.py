"""Options of a DIAMENTOR connection and the ``serial:PORT?protocol=diamentor&...`` URL that
sets them (each option is described in ``drivers.diamentor.driver``)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from drivers.diamentor.protocol import BAUD_RATES, UNITS, DapUnit, unit_by_name
from drivers.dose_sources import split_serial_url
from fluoro.errors import SourceError

__all__ = ["DiamentorOptions", "parse_diamentor_url"]


@dataclass(frozen=True, slots=True)
class DiamentorOptions:
    """Settings of one meter connection.

    The URL sets ``baud``, ``poll_hz`` (per s), ``reset``, ``unit`` and ``reply_timeout_s`` (s);
    the rest are for code: ``reconnect_initial_s`` / ``reconnect_max_s`` (back-off, s),
    ``restart_after`` (lower readings that mean the meter's total restarted) and
    ``silent_polls_to_disconnect`` (time-outs in a row that count as the meter gone).
    """

    baud: int = 9600
    poll_hz: float = 2.0
    reset: bool = True
    unit: DapUnit = UNITS[2]
    reply_timeout_s: float = 0.5
    reconnect_initial_s: float = 0.1
    reconnect_max_s: float = 5.0
    restart_after: int = 3
    silent_polls_to_disconnect: int = 5


def _number(url: str, key: str, text: str, low: float, high: float) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not low <= value <= high:
        raise SourceError(f"{url!r}: {key}={text!r}; expected a number from {low:g} to {high:g}")
    return value


def parse_diamentor_url(url: str) -> tuple[str, DiamentorOptions]:
    """The port and options of a ``serial:PORT?protocol=diamentor&...`` URL (SourceError if bad)."""
    port, options = split_serial_url(url)
    if options.pop("protocol", "diamentor").lower() != "diamentor":
        raise SourceError(f"{url!r}: not a DIAMENTOR URL; expected protocol=diamentor")
    values: dict[str, object] = {}
    for key, text in options.items():
        if key == "baud":
            if not text.isdigit() or int(text) not in BAUD_RATES:
                expected = ", ".join(map(str, BAUD_RATES))
                raise SourceError(f"{url!r}: baud={text!r}; expected one of {expected}")
            values["baud"] = int(text)
        elif key == "poll_hz":
            values["poll_hz"] = _number(url, key, text, 0.1, 20.0)
        elif key == "reply_timeout_s":
            values["reply_timeout_s"] = _number(url, key, text, 0.05, 10.0)
        elif key == "reset":
            if text.lower() not in ("0", "1", "true", "false", "yes", "no"):
                raise SourceError(f"{url!r}: reset={text!r}; expected 1 or 0")
            values["reset"] = text.lower() in ("1", "true", "yes")
        elif key == "unit":
            if (unit := unit_by_name(text)) is None:
                names = ", ".join(u.name for u in UNITS.values())
                raise SourceError(f"{url!r}: unit={text!r}; expected one of {names} or 1-4")
            values["unit"] = unit
        else:
            known = "protocol, baud, poll_hz, reset, unit, reply_timeout_s"
            raise SourceError(f"{url!r}: unknown option {key!r}; expected one of {known}")
    return port, DiamentorOptions(**values)  # type: ignore[arg-type]
