"""Dose-meter readings as the core sees them: what a DAP meter reported, and what went wrong.

A dose source (a serial DAP meter such as the PTW DIAMENTOR, an emulator, a replay) hands out
two kinds of items, in the order they happened:

- ``MeterReading``: the meter's dose-area product total, Gy·cm², at one host time. Totals
  never decrease within one source's life; a source rejects (and reports) a reading that goes
  backwards or is not a finite number rather than pass it on, and it never invents dose.
- ``MeterEvent``: something about the link or the meter, for the dose log. Kinds:
  ``"connected"`` (the meter answered; first item of every source, and again after a
  reconnect), ``"disconnected"`` (the link is gone; the interval until the next
  ``"connected"`` is a gap in the dose record), ``"error"`` (the meter replied with an error
  code, or sent a value that was rejected), ``"garbage"`` (bytes that were not a reply),
  ``"timeout"`` (a reply that never came).

This module holds the types only; it imports no serial library (drivers/ does that).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol, get_args, runtime_checkable

__all__ = [
    "DoseSource",
    "DoseSourceInfo",
    "MeterEvent",
    "MeterEventKind",
    "MeterReading",
]

MeterEventKind = Literal["connected", "disconnected", "error", "garbage", "timeout"]
EVENT_KINDS: tuple[str, ...] = get_args(MeterEventKind)


@dataclass(frozen=True, slots=True)
class MeterReading:
    """One accepted reading of a DAP meter.

    Attributes
    ----------
    t_host_ns : int
        Host monotonic clock when the reply was received, ns (the clock of ``Frame.t_host_ns``).
    dap_total_gycm2 : float
        Dose-area product accumulated by the meter, Gy·cm², converted from the unit in force
        on the meter. Counted from the meter's reset at procedure start when the source sent
        one; non-decreasing over the source's life (a disconnect does not reset it).
    dap_rate_gycm2_s : float or None
        DAP rate reported by the meter, Gy·cm²/s; None when the meter does not report one.
    meter_time_s : float or None
        The meter's own measuring (irradiation) time, s; None when not reported.
    device : str
        Which meter said so, e.g. ``"PTW DIAMENTOR CRS 2.33 SN 345678"``.
    """

    t_host_ns: int
    dap_total_gycm2: float
    dap_rate_gycm2_s: float | None
    meter_time_s: float | None
    device: str


@dataclass(frozen=True, slots=True)
class MeterEvent:
    """Something the dose log should record besides a reading.

    ``kind`` is one of ``EVENT_KINDS`` (see the module docstring); ``message`` is one line for
    a person (e.g. ``"E5: Max. input current exceeded."``); ``t_host_ns`` is the host monotonic
    clock, ns, when it was noticed.
    """

    kind: MeterEventKind
    message: str
    t_host_ns: int

    def __post_init__(self) -> None:
        if self.kind not in EVENT_KINDS:
            raise ValueError(f"meter event kind {self.kind!r}; expected one of {EVENT_KINDS}")


@dataclass(frozen=True, slots=True)
class DoseSourceInfo:
    """What a dose source says about itself once opened: its URL, a one-line description, and
    whether it reset the meter's total when it opened (then totals count from the procedure's
    start; otherwise the first reading is the baseline)."""

    url: str
    description: str
    reset_at_start: bool = False


@runtime_checkable
class DoseSource(Protocol):
    """Anything that hands out DAP-meter readings and link events.

    ``read`` blocks for at most ``timeout_s`` seconds and returns the next reading or event in
    the order they happened, or None when nothing happened in that time. It never raises for a
    fault of the meter or the link (those are events). ``close`` stops polling and releases the
    port; it may be called more than once.
    """

    info: DoseSourceInfo

    def read(self, timeout_s: float = 0.1) -> MeterReading | MeterEvent | None: ...

    def close(self) -> None: ...
