"""Configuration of the simulated C-arm, and what each parameter accepts."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, fields
from typing import Any

SCENARIOS = ("clean-spine", "fusion-hardware", "no-needle")
VIEWS = ("ap", "oblique")
FPS_MAX = 60.0


def _int(text: str) -> int:
    return int(text.strip())


def _float(text: str) -> float:
    value = float(text.strip())
    if not math.isfinite(value):
        raise ValueError(text)
    return value


def _flag(text: str) -> bool:
    if text.strip() not in ("0", "1"):
        raise ValueError(text)
    return text.strip() == "1"


def _choice(options: tuple[str, ...]) -> Callable[[str], str]:
    def parse(text: str) -> str:
        if text.strip() not in options:
            raise ValueError(text)
        return text.strip()

    return parse


# name -> (parser from URL text, check of the parsed value, what was expected)
PARAMETERS: dict[str, tuple[Callable[[str], Any], Callable[[Any], bool], str]] = {
    "size": (_int, lambda v: 128 <= v <= 4096, "an image size in pixels, an integer in 128..4096"),
    "fps": (
        _float,
        lambda v: 0.0 < v <= FPS_MAX,
        "a pulse rate in pulses/s, one of 7.5, 15, 30 (or any number in (0, 60])",
    ),
    "quanta": (
        _float,
        lambda v: 0.0 < v <= 1e6,
        "a number > 0 (mean detected quanta per pixel behind soft tissue)",
    ),
    "seed": (_int, lambda v: 0 <= v < 2**63, "a non-negative integer"),
    "scenario": (_choice(SCENARIOS), lambda v: v in SCENARIOS, "one of " + ", ".join(SCENARIOS)),
    "view": (_choice(VIEWS), lambda v: v in VIEWS, "one of " + ", ".join(VIEWS)),
    "realtime": (_flag, lambda v: v in (0, 1), "0 or 1"),
    "frames": (_int, lambda v: v is None or v >= 0, "an integer >= 0 (frames before the end)"),
    "lose": (_float, lambda v: 0.0 <= v <= 1.0, "a probability in 0..1"),
    "clean": (_flag, lambda v: v in (0, 1), "0 or 1"),
    "calib": (_float, lambda v: 0.0 < v <= 100.0, "a room factor > 0 (true / modelled dose)"),
}


@dataclass(frozen=True, slots=True)
class SimConfig:
    """Parameters of ``sim://spine?...`` (see ``drivers.sim`` for their meaning)."""

    size: int = 1024
    fps: float = 15.0
    quanta: float = 50.0
    seed: int = 1
    scenario: str = "clean-spine"
    view: str = "ap"
    realtime: bool = True
    frames: int | None = None
    lose: float = 0.0
    clean: bool = True
    calib: float = 1.0

    def __post_init__(self) -> None:
        for f in fields(self):
            _, ok, expected = PARAMETERS[f.name]
            value = getattr(self, f.name)
            try:
                good = ok(value)
            except TypeError:
                good = False
            if not good:
                raise ValueError(f"{f.name} must be {expected}, not {value!r}")

    def url(self) -> str:
        """The ``sim://spine?...`` URL of this configuration (non-default values only)."""
        parts = []
        for f in fields(self):
            value = getattr(self, f.name)
            if value != f.default:
                text = str(int(value)) if isinstance(value, bool) else str(value)
                parts.append(f"{f.name}={text}")
        return "sim://spine" + ("?" + "&".join(parts) if parts else "")
