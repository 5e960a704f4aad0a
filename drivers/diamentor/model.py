"""The state of a simulated PTW DIAMENTOR: integrates DAP while the beam is on, answers commands.

No I/O and no threads here (the emulator serves it on a pseudo-terminal); a lock makes the
public methods safe to call from a test thread while the emulator thread answers commands.
Reply formats: ``drivers.diamentor.protocol`` (its docstring lists sources and assumptions).
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable

from drivers.diamentor.protocol import UNITS, format_measurement

__all__ = ["MAX_COMMAND_BYTES", "MeterModel"]

MAX_COMMAND_BYTES = 64  # a longer command is answered E25 (input buffer overrun)
CALIBRATION_RANGE_UGYM2_S = (1e8, 9.999e12)  # PyMeasure's validator for KA


def _line(text: str) -> bytes:
    return text.encode("ascii") + b"\r\n"


def _ka_text(value: float) -> str:
    return f"KA{value:.4E}".replace("+", "")  # 1.0000E09, as PyMeasure writes and reads it


class MeterModel:
    """A DIAMENTOR's dose state and its command interpreter.

    Parameters
    ----------
    dap_rate_gycm2_s : float
        DAP rate delivered while the beam is on, Gy·cm²/s.
    beam_on : bool
        Whether the beam starts on.
    unit_code : int
        The DAP unit at power-on (1 cGy·cm², 2 Gy·cm², 3 µGy·m², 4 R·cm²); a real meter keeps the
        last one set, which is why the driver sets it explicitly.
    version, serial_number : str, int
        Answers to ``PTW`` and ``SER``.
    calibration_factor_ugym2_s : float
        Answer to ``KA``, µGy·m²/s (stored only: the simulated DAP comes from the rate).
    clock : callable
        Seconds, monotonic (tests may pass a fake one).
    """

    def __init__(
        self,
        dap_rate_gycm2_s: float = 0.05,
        *,
        beam_on: bool = False,
        unit_code: int = 1,
        version: str = "CRS 2.33",
        serial_number: int = 345678,
        calibration_factor_ugym2_s: float = 1.0e9,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._lock = threading.Lock()
        self._clock = clock
        self._t_mark_s = clock()
        self._rate_gycm2_s = float(dap_rate_gycm2_s)
        self._beam_on = beam_on
        self.unit_code = unit_code
        self.version = version
        self.serial_number = serial_number
        self.calibration_factor_ugym2_s = calibration_factor_ugym2_s
        self._meter_gycm2 = 0.0  # what the meter shows: since RES or power-on
        self._meter_time_s = 0.0  # beam-on time since RES or power-on, s
        self._delivered_gycm2 = 0.0  # truth since the last RES (a power cycle does not clear it)
        self._lifetime_gycm2 = 0.0  # truth since the model was made

    # ---- dose ----------------------------------------------------------------------------

    def _advance(self) -> None:
        now_s = self._clock()
        elapsed_s, self._t_mark_s = max(0.0, now_s - self._t_mark_s), now_s
        if self._beam_on:
            dose = self._rate_gycm2_s * elapsed_s
            self._meter_gycm2 += dose
            self._delivered_gycm2 += dose
            self._lifetime_gycm2 += dose
            self._meter_time_s += elapsed_s

    def set_beam(self, on: bool, dap_rate_gycm2_s: float | None = None) -> None:
        """Switch the beam on or off, optionally with a new DAP rate, Gy·cm²/s."""
        with self._lock:
            self._advance()
            self._beam_on = on
            if dap_rate_gycm2_s is not None:
                self._rate_gycm2_s = float(dap_rate_gycm2_s)

    def power_cycle(self) -> None:
        """The meter's own total and time restart at zero (the dose delivered is still true)."""
        with self._lock:
            self._advance()
            self._meter_gycm2 = 0.0
            self._meter_time_s = 0.0

    @property
    def delivered_dap_gycm2(self) -> float:
        """True DAP delivered since the last ``RES``, Gy·cm²."""
        with self._lock:
            self._advance()
            return self._delivered_gycm2

    @property
    def lifetime_dap_gycm2(self) -> float:
        """True DAP delivered since the model was made, Gy·cm²."""
        with self._lock:
            self._advance()
            return self._lifetime_gycm2

    @property
    def meter_dap_gycm2(self) -> float:
        """What the meter's display shows, Gy·cm²."""
        with self._lock:
            self._advance()
            return self._meter_gycm2

    def measurement(self, dap_scale: float = 1.0) -> bytes:
        """The ``M`` reply now; ``dap_scale`` < 1 makes a reading that goes backwards."""
        with self._lock:
            self._advance()
            per_unit = UNITS[self.unit_code].gycm2
            rate = self._rate_gycm2_s if self._beam_on else 0.0
            return format_measurement(self._meter_gycm2 * dap_scale / per_unit,
                                      rate / per_unit, int(self._meter_time_s))

    # ---- commands ------------------------------------------------------------------------

    def handle(self, command: str) -> bytes:
        """The reply line (with CR LF) to one command (without its CR)."""
        if len(command) > MAX_COMMAND_BYTES:
            return _line("E25")
        if command == "M":
            return self.measurement()
        with self._lock:
            return _line(self._answer(command))

    def _answer(self, command: str) -> str:
        if command == "RES":
            self._advance()
            self._meter_gycm2 = self._meter_time_s = self._delivered_gycm2 = 0.0
            return "RES"
        if command == "PTW":
            return self.version
        if command == "SER":
            return f"SER{self.serial_number}"
        if command == "U":
            return f"U{self.unit_code}"
        if re.fullmatch(r"U\d+", command):
            code = int(command[1:])
            if code not in UNITS:
                return "E9"
            self._advance()
            self.unit_code = code
            return command
        if command == "KA":
            return _ka_text(self.calibration_factor_ugym2_s)
        if command.startswith("KA"):
            try:
                value = float(command[2:])
            except ValueError:
                return "E1"
            low, high = CALIBRATION_RANGE_UGYM2_S
            if not low <= value <= high:
                return "E9"
            self.calibration_factor_ugym2_s = value
            return _ka_text(value)
        return "E1"
