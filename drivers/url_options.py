"""Parsing of file-like source URLs: ``SCHEME:PATH?flag=0|1&...``."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

from fluoro.errors import SourceError


def path_and_flags(url: str, defaults: dict[str, bool]) -> tuple[Path, dict[str, bool]]:
    """The path of ``url`` and its 0/1 flags (unknown parameters or values raise
    ``SourceError`` naming the URL and what was expected)."""
    parts = urlsplit(url)
    path = Path(parts.netloc + parts.path)
    if not parts.path and not parts.netloc:
        raise SourceError(f"{url!r}: expected {parts.scheme}:PATH")
    options = dict(parse_qsl(parts.query, keep_blank_values=True))
    flags = {}
    for name, default in defaults.items():
        value = options.pop(name, "1" if default else "0")
        if value not in ("0", "1"):
            raise SourceError(f"{url}: {name} must be 0 or 1, got {value!r}")
        flags[name] = value == "1"
    if options:
        raise SourceError(f"{url}: unknown parameter(s) {', '.join(sorted(options))}; "
                          f"expected {', '.join(defaults)}")
    return path, flags
