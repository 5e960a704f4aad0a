"""One registry of dose sources (DAP meters), keyed by URL scheme, like ``drivers.registry``.

``serial:PORT?protocol=NAME&...`` opens a meter on a serial port; the ``protocol`` option picks
the driver (built in: ``diamentor``, the PTW DIAMENTOR). PORT is a device path (``/dev/ttyUSB0``,
``/dev/serial/by-id/...``, ``COM3``) or a pyserial URL (``rfc2217://host:port``, ``loop://``).

A third-party package adds a scheme through the ``fluoro.dose_sources`` entry-point group, or a
serial protocol through ``fluoro.serial_protocols``; the object is a callable
``open(url: str) -> DoseSource``, e.g.::

    [project.entry-points."fluoro.serial_protocols"]
    mymeter = "mymeter.driver:open_meter"
"""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module
from importlib.metadata import entry_points
from urllib.parse import parse_qsl

from fluoro.dose.meter import DoseSource
from fluoro.errors import SourceError

SCHEME_GROUP = "fluoro.dose_sources"
PROTOCOL_GROUP = "fluoro.serial_protocols"

# Imported lazily so that naming one source never loads another's dependencies.
_BUILTIN_SCHEMES: dict[str, str] = {"serial": "drivers.dose_sources:open_serial_meter"}
_BUILTIN_PROTOCOLS: dict[str, str] = {"diamentor": "drivers.diamentor.driver:open_diamentor"}

Opener = Callable[[str], DoseSource]


def _load(target: str) -> Opener:
    module_name, _, attr = target.partition(":")
    return getattr(import_module(module_name), attr)


def _plugins(group: str) -> dict[str, object]:
    return {ep.name: ep for ep in entry_points(group=group)}


def _opener(name: str, builtin: dict[str, str], group: str) -> Opener | None:
    if name in builtin:
        return _load(builtin[name])
    plugin = _plugins(group).get(name)
    return None if plugin is None else plugin.load()  # type: ignore[attr-defined]


def schemes() -> list[str]:
    """Every dose-source URL scheme that can be opened."""
    return sorted(set(_BUILTIN_SCHEMES) | set(_plugins(SCHEME_GROUP)))


def serial_protocols() -> list[str]:
    """Every meter protocol ``serial:PORT?protocol=NAME`` accepts."""
    return sorted(set(_BUILTIN_PROTOCOLS) | set(_plugins(PROTOCOL_GROUP)))


def split_serial_url(url: str) -> tuple[str, dict[str, str]]:
    """``serial:/dev/ttyUSB0?protocol=diamentor&baud=9600`` → ``("/dev/ttyUSB0", {...})``.

    Raises ``SourceError`` naming the URL for a missing port or a repeated option.
    """
    scheme, sep, rest = url.partition(":")
    if scheme.lower() != "serial" or not sep:
        raise SourceError(f"{url!r}: not a serial URL; expected serial:PORT?protocol=NAME")
    if rest.startswith("//") and "://" not in rest:  # serial:///dev/ttyUSB0, serial://COM3
        rest = rest[2:]
    port, _, query = rest.rpartition("?") if "?" in rest else (rest, "", "")
    if not port:
        raise SourceError(
            f"{url!r}: no serial port; expected serial:PORT?protocol=NAME, "
            "e.g. serial:/dev/ttyUSB0?protocol=diamentor"
        )
    options: dict[str, str] = {}
    for key, value in parse_qsl(query, keep_blank_values=True):
        if key in options:
            raise SourceError(f"{url!r}: option {key!r} given twice; expected it once")
        options[key] = value
    return port, options


def open_serial_meter(url: str) -> DoseSource:
    """Open ``serial:PORT?protocol=NAME&...`` with the driver of that protocol."""
    _, options = split_serial_url(url)
    protocol = options.get("protocol", "").lower()
    known = ", ".join(serial_protocols())
    if not protocol:
        raise SourceError(f"{url!r}: no protocol; expected protocol=NAME, one of {known}")
    opener = _opener(protocol, _BUILTIN_PROTOCOLS, PROTOCOL_GROUP)
    if opener is None:
        raise SourceError(f"{url!r}: unknown meter protocol {protocol!r}; expected one of {known}")
    return opener(url)


def open_dose_source(url: str) -> DoseSource:
    """Open the dose source named by ``url``; raises ``SourceError`` naming the URL if it can't."""
    scheme, sep, _ = url.partition(":")
    known = ", ".join(schemes())
    if not sep or not scheme or not scheme.replace("+", "").replace("-", "").isalnum():
        raise SourceError(f"{url!r}: not a dose-source URL; expected SCHEME:..., one of {known}")
    opener = _opener(scheme.lower(), _BUILTIN_SCHEMES, SCHEME_GROUP)
    if opener is None:
        raise SourceError(
            f"{url!r}: unknown dose-source scheme {scheme!r}; expected one of {known}"
        )
    return opener(url)
