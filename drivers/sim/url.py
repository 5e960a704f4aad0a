"""Parse ``sim://spine?size=1024&fps=15&...`` into a ``SimConfig``."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlsplit

from drivers.sim.config import PARAMETERS, SimConfig
from fluoro.errors import SourceError


def parse_sim_url(url: str) -> SimConfig:
    """The configuration a ``sim://spine`` URL asks for; ``SourceError`` naming the URL, the
    parameter and what was expected when it asks for something else."""
    try:
        parts = urlsplit(url)
    except ValueError as exc:
        raise SourceError(f"{url}: not a URL ({exc})") from None
    if parts.scheme.lower() != "sim":
        raise SourceError(f"{url}: expected the scheme sim://")
    if parts.netloc.lower() != "spine" or parts.path not in ("", "/"):
        raise SourceError(f"{url}: the simulator knows one phantom, expected sim://spine?...")
    if parts.fragment:
        raise SourceError(f"{url}: unexpected fragment #{parts.fragment}")
    values: dict[str, object] = {}
    try:
        pairs = parse_qsl(parts.query, keep_blank_values=True, strict_parsing=bool(parts.query))
    except ValueError:
        raise SourceError(
            f"{url}: malformed query; expected name=value pairs joined by &"
        ) from None
    for name, text in pairs:
        if name not in PARAMETERS:
            raise SourceError(
                f"{url}: unknown parameter {name!r}; expected one of {', '.join(PARAMETERS)}"
            )
        if name in values:
            raise SourceError(f"{url}: {name} is given more than once")
        parse, ok, expected = PARAMETERS[name]
        try:
            value = parse(text)
            good = ok(value)
        except (ValueError, TypeError):
            good = False
        if not good:
            raise SourceError(f"{url}: {name} must be {expected}")
        values[name] = value
    return SimConfig(**values)  # type: ignore[arg-type]
