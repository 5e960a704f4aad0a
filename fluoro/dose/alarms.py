"""Dose alarms of one procedure: the 5-minute fluoroscopy-time signal and NCRP 168 levels.

The live pipeline calls ``AlarmEngine.update(totals, t_s)`` after every pulse with the
procedure's running ``DoseTotals``; it returns the alarms that pulse raised (almost always
none). Each threshold is crossed at most once per procedure, so each alarm is raised exactly
once and never repeated. The caller logs every alarm and acknowledgement; the display shows
``active()``. Use one engine per procedure.

Kinds of alarm (thresholds come from the site configuration, ``fluoro/data/site.toml``):

``signal`` (severity ``info``)
    21 CFR 1020.32(h)(2)(ii): a signal audible to the fluoroscopist sounds for each passage of
    5 minutes of fluoroscopic irradiation time, until manually reset. One alarm per multiple of
    the interval (300 s, 600 s, ...); it always requires acknowledgement (the manual reset).
``notification`` (``warning``)
    NCRP Report No. 168 (2010), Section 5, notification levels: Ka,r 3000 mGy then every further
    1000 mGy; DAP 300 Gy·cm² then every further 100 Gy·cm²; fluoroscopy time 30 min then every
    further 15 min. The operator is told the dose so far, to weigh against the benefit of going on.
``srdl`` (``critical``)
    NCRP Report No. 168 (2010), Section 5, substantial radiation dose level (SRDL): Ka,r 5000 mGy,
    DAP 500 Gy·cm², fluoroscopy time 60 min. Reaching it triggers patient follow-up for skin
    injury.
``pregnancy_notification`` (``warning``), ``pregnancy_consult`` (``critical``)
    Site-set levels for a pregnant patient (``AlarmEngine(config, pregnant=True)``), applied *in
    addition to* the levels above, never instead of them: the lower levels protect the conceptus,
    while the NCRP levels still guard the patient's own skin. Defaults: notify at Ka,r 50 mGy
    then every further 50 mGy (DAP 5 Gy·cm², then every 5); consult the medical physicist at
    Ka,r 100 mGy (DAP 10 Gy·cm²). The reasoning is in ``fluoro/data/site.toml``.

Values are in the unit the quantity's name carries: ``kar_mgy`` (mGy), ``dap_gycm2`` (Gy·cm²),
``fluoro_time_s`` (s).
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass
from typing import Final, Literal

from fluoro.dose.accumulator import DoseTotals
from fluoro.errors import InputError

__all__ = [
    "KINDS",
    "QUANTITIES",
    "Acknowledgement",
    "Alarm",
    "AlarmConfig",
    "AlarmEngine",
    "AlarmLevel",
    "Kind",
    "Severity",
]

Kind = Literal["signal", "notification", "srdl", "pregnancy_notification", "pregnancy_consult",
               "calibration"]
Severity = Literal["info", "warning", "critical"]

# A value within this relative distance below a threshold counts as reaching it: fluoroscopy time
# is summed from pulse intervals (1/15 s ...), and 4500 of them may add up to 299.99999999997 s.
THRESHOLD_REL_TOL: Final = 1e-9
# At most this many levels of one series fire in one update; a larger jump (a corrupt meter
# reading) fires the rest on the following updates instead of stalling the acquisition thread.
MAX_LEVELS_PER_UPDATE: Final = 1000


@dataclass(frozen=True, slots=True)
class QuantityInfo:
    """How a ``DoseTotals`` quantity appears in alarm keys and messages."""

    short: str  # in keys: "kar"
    label: str  # in messages: "Ka,r"
    unit: str  # of the attribute, for display: "Gy·cm²"
    key_unit: str  # ASCII, in keys: "Gycm2"


QUANTITIES: Final[dict[str, QuantityInfo]] = {
    "kar_mgy": QuantityInfo("kar", "Ka,r", "mGy", "mGy"),
    "dap_gycm2": QuantityInfo("dap", "DAP", "Gy·cm²", "Gycm2"),
    "fluoro_time_s": QuantityInfo("fluoro_time", "fluoroscopy time", "s", "s"),
}


@dataclass(frozen=True, slots=True)
class KindInfo:
    """Fixed properties of a kind of alarm: its key prefix, wording, severity and source."""

    key_prefix: str
    title: str
    severity: Severity
    citation: str
    advice: str  # appended to the message, may be ""


_PREGNANCY_SOURCE = (
    "site pregnancy levels (conceptus dose: ICRP Publication 84 (2000); "
    "ACR–SPR practice parameter for imaging pregnant patients)"
)
KINDS: Final[dict[str, KindInfo]] = {
    "signal": KindInfo(
        "fluoro_time_signal", "Fluoroscopy time signal", "info",
        "21 CFR 1020.32(h)(2)(ii)", "; sounds until reset"),
    "notification": KindInfo(
        "ncrp_notification", "NCRP 168 notification", "warning",
        "NCRP Report No. 168 (2010), Section 5: notification levels", ""),
    "pregnancy_notification": KindInfo(
        "pregnancy_notification", "Pregnant patient notification", "warning",
        _PREGNANCY_SOURCE, "; keep the conceptus out of the beam"),
    "srdl": KindInfo(
        "ncrp_srdl", "NCRP 168 substantial radiation dose level", "critical",
        "NCRP Report No. 168 (2010), Section 5: substantial radiation dose level",
        "; patient follow-up required"),
    "pregnancy_consult": KindInfo(
        "pregnancy_consult", "Pregnant patient consult level", "critical",
        _PREGNANCY_SOURCE, "; medical physicist to estimate the conceptus dose"),
    # Raised by the dose engine, not by a level: measured and modelled dose disagree by more
    # than the site's tolerance (21 CFR 1020.32(k): displayed values within ±35 %).
    "calibration": KindInfo(
        "measured_model_mismatch", "Measured and modelled dose disagree", "warning",
        "21 CFR 1020.32(k)", "; check the dose meter and the room calibration"),
}

_QUANTITY_ORDER: Final = {name: i for i, name in enumerate(QUANTITIES)}
_KIND_ORDER: Final = {name: i for i, name in enumerate(KINDS)}
_SEVERITY_ORDER: Final = {"info": 0, "warning": 1, "critical": 2}


@dataclass(frozen=True, slots=True)
class AlarmLevel:
    """A series of thresholds on one quantity: ``first``, then every ``step`` beyond it.

    ``step`` None means ``first`` only. ``first`` and ``step`` are in the unit the ``quantity``
    name carries (``kar_mgy``: mGy, ``dap_gycm2``: Gy·cm², ``fluoro_time_s``: s).
    """

    kind: Kind
    quantity: str
    first: float
    step: float | None = None
    requires_ack: bool = True

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"AlarmLevel.kind: expected one of {list(KINDS)}, got {self.kind!r}")
        if self.quantity not in QUANTITIES:
            raise ValueError(
                f"AlarmLevel.quantity: expected one of {list(QUANTITIES)}, got {self.quantity!r}")
        for name, value in (("first", self.first), ("step", self.step)):
            if value is not None and not (math.isfinite(value) and value > 0):
                raise ValueError(f"AlarmLevel.{name}: expected a positive number, got {value!r}")
        if self.kind == "signal" and not self.requires_ack:
            # 21 CFR 1020.32(h)(2)(ii): the signal sounds until manually reset.
            raise ValueError("AlarmLevel: a fluoroscopy time signal always requires a reset")

    def threshold(self, index: int) -> float:
        """The ``index``-th threshold (0 = ``first``); +inf past the end of the series."""
        if index == 0:
            return self.first
        if self.step is None:
            return math.inf
        return self.first + index * self.step  # not summed step by step: no drift

    def key(self, index: int) -> str:
        """The alarm key of the ``index``-th threshold, e.g. ``ncrp_notification_kar@3000mGy``."""
        kind, quantity = KINDS[self.kind], QUANTITIES[self.quantity]
        name = kind.key_prefix if self.kind == "signal" else f"{kind.key_prefix}_{quantity.short}"
        return f"{name}@{self.threshold(index):.10g}{quantity.key_unit}"


@dataclass(frozen=True, slots=True)
class AlarmConfig:
    """The alarm levels of a site: ``levels`` always apply; ``pregnancy_levels`` are added for a
    pregnant patient."""

    levels: tuple[AlarmLevel, ...] = ()
    pregnancy_levels: tuple[AlarmLevel, ...] = ()


@dataclass(frozen=True, slots=True)
class Alarm:
    """One raised alarm. ``threshold`` and ``value`` (the quantity when the threshold was
    reached) are in the unit ``quantity`` names; ``t_s`` is the source clock of the pulse."""

    key: str
    kind: Kind
    quantity: str
    threshold: float
    value: float
    t_s: float
    message: str
    severity: Severity
    requires_ack: bool
    citation: str


@dataclass(frozen=True, slots=True)
class Acknowledgement:
    """Who acknowledged (reset) which alarm, and when (wall clock, seconds since the epoch)."""

    key: str
    user: str
    t_wall_s: float


class _Series:
    """The engine's position in one ``AlarmLevel`` series (mutable; private to the engine)."""

    __slots__ = ("index", "level", "threshold", "trigger")

    def __init__(self, level: AlarmLevel) -> None:
        self.level = level
        self.index = 0
        self.threshold = level.threshold(0)
        self.trigger = self.threshold * (1.0 - THRESHOLD_REL_TOL)

    def advance(self) -> None:
        self.index += 1
        self.threshold = self.level.threshold(self.index)
        self.trigger = self.threshold * (1.0 - THRESHOLD_REL_TOL)


class AlarmEngine:
    """Raises each configured alarm level once as the procedure's dose totals cross it.

    ``update`` is called from one thread (the acquisition thread); the other methods may be
    called from any thread.

    Parameters
    ----------
    config : AlarmConfig
        The site's levels, usually ``load_site_config(path).alarms``.
    pregnant : bool
        Add ``config.pregnancy_levels`` to the standard levels.
    """

    def __init__(self, config: AlarmConfig, pregnant: bool = False) -> None:
        self._config = config
        self._pregnant = pregnant
        levels = config.levels + (config.pregnancy_levels if pregnant else ())
        self._series: tuple[tuple[str, tuple[_Series, ...]], ...] = tuple(
            (quantity, tuple(_Series(lv) for lv in levels if lv.quantity == quantity))
            for quantity in QUANTITIES
            if any(lv.quantity == quantity for lv in levels)
        )
        self._lock = threading.Lock()
        self._raised: list[Alarm] = []
        self._by_key: dict[str, Alarm] = {}
        self._active: dict[str, Alarm] = {}  # insertion-ordered: the order they were raised
        self._acknowledgements: list[Acknowledgement] = []

    @property
    def config(self) -> AlarmConfig:
        return self._config

    @property
    def pregnant(self) -> bool:
        """Whether the pregnancy levels apply (fixed for the engine's life)."""
        return self._pregnant

    def update(self, totals: DoseTotals, t_s: float) -> list[Alarm]:
        """Raise every level the totals have reached; returns the newly raised alarms.

        Levels crossed by one jump are all raised, in ascending order of threshold per quantity
        (Ka,r, then DAP, then fluoroscopy time; at equal thresholds the less severe first).
        Costs a few comparisons when nothing is reached. Non-finite values raise nothing.
        """
        fired: list[Alarm] | None = None
        for quantity, series_of_quantity in self._series:
            value: float = getattr(totals, quantity)
            for series in series_of_quantity:
                if value >= series.trigger and math.isfinite(value):
                    if fired is None:
                        fired = []
                    for _ in range(MAX_LEVELS_PER_UPDATE):
                        fired.append(_alarm(series.level, series.index, value, t_s))
                        series.advance()
                        if not value >= series.trigger:
                            break
        if fired is None:
            return []
        fired.sort(key=_alarm_order)
        with self._lock:
            for alarm in fired:
                self._raised.append(alarm)
                self._by_key[alarm.key] = alarm
                if alarm.requires_ack:
                    self._active[alarm.key] = alarm
        return fired

    def acknowledge(self, key: str | None, user: str,
                    t_wall_s: float | None = None) -> list[Acknowledgement]:
        """Acknowledge (reset) the active alarm ``key``, or every active alarm when ``key`` is None.

        Returns one ``Acknowledgement`` per alarm it cleared, for the caller to log; an alarm
        already acknowledged, or one that needs none, gives an empty list. ``t_wall_s`` defaults
        to now (``time.time()``).

        Raises
        ------
        InputError
            ``user`` is empty (every reset is attributed to a person), or no alarm ``key`` has
            been raised in this procedure.
        """
        if not isinstance(user, str) or not user.strip():
            raise InputError(
                f"acknowledge: user: expected the name of the person acknowledging, got {user!r}")
        when_s = time.time() if t_wall_s is None else float(t_wall_s)
        with self._lock:
            if key is None:
                keys = list(self._active)
            elif key in self._active:
                keys = [key]
            elif key in self._by_key:
                keys = []
            else:
                raise InputError(
                    f"acknowledge: {key!r}: no such alarm raised in this procedure "
                    f"(active: {', '.join(self._active) or 'none'})")
            done = [Acknowledgement(k, user.strip(), when_s) for k in keys]
            for ack in done:
                del self._active[ack.key]
            self._acknowledgements.extend(done)
        return done

    def active(self) -> list[Alarm]:
        """Alarms raised and not yet acknowledged, oldest first (never those needing no ack)."""
        with self._lock:
            return list(self._active.values())

    def raised(self) -> list[Alarm]:
        """Every alarm raised in this procedure, in the order raised."""
        with self._lock:
            return list(self._raised)

    def acknowledgements(self) -> list[Acknowledgement]:
        """Every acknowledgement made in this procedure, in order."""
        with self._lock:
            return list(self._acknowledgements)

    def next_levels(self) -> dict[str, float]:
        """The next threshold still to be reached per quantity (``{"kar_mgy": 3000.0, ...}``),
        in the quantity's unit; a quantity with no level left is absent."""
        upcoming: dict[str, float] = {}
        for quantity, series_of_quantity in self._series:
            threshold = min(s.threshold for s in series_of_quantity)
            if math.isfinite(threshold):
                upcoming[quantity] = threshold
        return upcoming


def _alarm(level: AlarmLevel, index: int, value: float, t_s: float) -> Alarm:
    kind = KINDS[level.kind]
    threshold = level.threshold(index)
    return Alarm(
        key=level.key(index),
        kind=level.kind,
        quantity=level.quantity,
        threshold=threshold,
        value=value,
        t_s=t_s,
        message=_message(level, threshold, value),
        severity=kind.severity,
        requires_ack=level.requires_ack,
        citation=kind.citation,
    )


def _message(level: AlarmLevel, threshold: float, value: float) -> str:
    """E.g. ``"NCRP 168 notification: Ka,r 3000 mGy reached (3012 mGy)"``; times in minutes."""
    kind, quantity = KINDS[level.kind], QUANTITIES[level.quantity]
    if level.quantity == "fluoro_time_s":
        limit, now = f"{threshold / 60:.10g} min", f"{value / 60:.1f} min"
    else:
        shown = f"{value:.0f}" if abs(value) >= 100 else f"{value:.3g}"
        limit, now = f"{threshold:.10g} {quantity.unit}", f"{shown} {quantity.unit}"
    return f"{kind.title}: {quantity.label} {limit} reached ({now}){kind.advice}"


def _alarm_order(alarm: Alarm) -> tuple[int, float, int, int]:
    return (_QUANTITY_ORDER[alarm.quantity], alarm.threshold,
            _SEVERITY_ORDER[alarm.severity], _KIND_ORDER[alarm.kind])
