"""The PTW DIAMENTOR serial protocol: command encoding, line framing and reply parsing.

Pure functions and small records, no I/O: the driver and the emulator both use this module, so
what one writes the other reads.

Source: the public PyMeasure driver ``pymeasure.instruments.ptw.ptwDIAMENTOR`` and its protocol
tests (github.com/pymeasure/pymeasure, ``tests/instruments/ptw/test_ptwDIAMENTOR.py``). From
there:

- ASCII commands, each terminated by CR (``\\r``); replies terminated by CR LF; 9600 baud by
  default (``BR0``..``BR4`` select 9600, 19200, 38400, 57600, 115200).
- ``M`` → ``M<dap>,<dap rate>,<min>,<s>,...`` e.g. ``M9999.99,8888.88,222,33,eeee.ee,ffff.ff,
  mmm,ss,34567``: DAP and DAP rate in the selected unit, measuring time as minutes and seconds.
- ``RES`` resets dose and charge. ``U`` asks the DAP unit (reply ``U1``); ``U1``..``U4`` set it
  (the meter echoes ``U3``): 1 cGy·cm², 2 Gy·cm², 3 µGy·m², 4 R·cm².
- ``KA`` asks the chamber calibration factor, µGy·m²/s (reply ``KA1.3356E11``); ``KA4.3000E09``
  sets it (echoed), range 1E8 to 9.999E12.
- ``PTW`` asks the firmware version (reply e.g. ``CRS 2.33``); ``SER`` the serial number
  (reply ``SER345678``).
- An error is a reply ``E<n>``; the message table below is PyMeasure's (E1, E4–E7, E9,
  E23–E26). Other codes in E1–E26 exist on the meter but their text is not public; they are
  reported as "undocumented error code".

Assumptions (where the public sources are silent; parser and emulator agree on them):

- ``RES`` is answered by the echo ``RES`` (PyMeasure reads one reply after it, content unused).
- In the ``M`` reply the DAP rate is in the selected unit **per second**; fields 5–9 (meaning
  not documented) must be numbers and are ignored; a reply of only the first 4 fields is also
  accepted. Numbers are decimal with an optional exponent; ``nan``/``inf`` are read as numbers
  so that the driver can reject them as non-finite (never as dose).
- R·cm² converts to Gy·cm² with air kerma 8.764 mGy per R (2.58e-4 C/kg × W/e 33.97 J/C).
- A reply line longer than ``MAX_LINE_BYTES`` or holding a non-printable byte is garbage.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = [
    "BAUD_RATES",
    "ERROR_MESSAGES",
    "MAX_LINE_BYTES",
    "UNITS",
    "DapUnit",
    "ErrorReply",
    "Garbage",
    "LineSplitter",
    "Measurement",
    "TextReply",
    "encode_command",
    "error_message",
    "format_measurement",
    "parse_reply",
    "unit_by_name",
]

COMMAND_TERMINATOR = b"\r"
REPLY_TERMINATOR = b"\r\n"
MAX_LINE_BYTES = 128
BAUD_RATES = (9600, 19200, 38400, 57600, 115200)

# PyMeasure ptwDIAMENTOR.read(); text kept as published there.
ERROR_MESSAGES: dict[int, str] = {
    1: "Syntax error, unknown command",
    4: "Charge overflow",
    5: "Max. input current exceeded.",
    6: "Chamber voltage is out of range.",
    7: "Parameter is write protected.",
    9: "Parameter is out of range.",
    23: "EEPROM reading/writing error",
    24: "DIAMENTOR is not calibrated electrically.",
    25: "Input-Buffer-Overrun",
    26: "Firmware malfunction",
}

GY_PER_ROENTGEN = 2.58e-4 * 33.97  # air kerma per exposure: C/kg per R times W/e in J/C


@dataclass(frozen=True, slots=True)
class DapUnit:
    """One DAP unit of the meter: its ``U<code>``, name, and size in Gy·cm²."""

    code: int
    name: str
    gycm2: float


UNITS: dict[int, DapUnit] = {
    1: DapUnit(1, "cGycm2", 0.01),
    2: DapUnit(2, "Gycm2", 1.0),
    3: DapUnit(3, "uGym2", 1e-6 * 1e4),  # µGy × m² = 1e-6 Gy × 1e4 cm²
    4: DapUnit(4, "Rcm2", GY_PER_ROENTGEN),
}


def unit_by_name(text: str) -> DapUnit | None:
    """The unit named ``text`` (``Gycm2``, ``cGycm2``, ``uGym2``, ``Rcm2``, or ``1``..``4``)."""
    if text.isdigit():
        return UNITS.get(int(text))
    folded = text.replace("µ", "u").replace("·", "").replace("*", "").lower()
    return next((u for u in UNITS.values() if u.name.lower() == folded), None)


def error_message(code: int) -> str:
    """``"E5: Max. input current exceeded."``; an unknown code says it is undocumented."""
    text = ERROR_MESSAGES.get(code, "undocumented error code (not in the public table)")
    return f"E{code}: {text}"


# ---- records -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Measurement:
    """An ``M`` reply in the meter's units: DAP, DAP per second, measuring time in s."""

    dap: float
    dap_rate_per_s: float
    time_s: int


@dataclass(frozen=True, slots=True)
class ErrorReply:
    """An ``E<n>`` reply."""

    code: int

    @property
    def message(self) -> str:
        return error_message(self.code)


@dataclass(frozen=True, slots=True)
class TextReply:
    """Any other well-formed reply (an echo such as ``U2``/``RES``, ``SER345678``, a version)."""

    text: str


@dataclass(frozen=True, slots=True)
class Garbage:
    """A line that is not a reply to the command sent; ``reason`` says why, for the log."""

    line: bytes
    reason: str

    def describe(self) -> str:
        more = "…" if len(self.line) > 40 else ""
        return f"{self.reason}: {self.line[:40]!r}{more} ({len(self.line)} bytes)"


Reply = Measurement | ErrorReply | TextReply | Garbage


# ---- encoding ------------------------------------------------------------------------------


def encode_command(command: str) -> bytes:
    """``"M"`` → ``b"M\\r"``; raises ValueError for a command that is not plain printable ASCII."""
    if not command or not command.isascii() or not command.isprintable():
        raise ValueError(f"DIAMENTOR command {command!r}: expected printable ASCII")
    return command.encode("ascii") + COMMAND_TERMINATOR


def format_number(value: float) -> str:
    """How the emulator writes a DAP or rate (assumption: fixed point, 4 decimals)."""
    return f"{value:.4f}"


def format_measurement(dap: float, dap_rate_per_s: float, time_s: int) -> bytes:
    """An ``M`` reply line with its CR LF, in the 9-field layout PyMeasure's test shows."""
    minutes, seconds = divmod(int(time_s), 60)
    fields = [format_number(dap), format_number(dap_rate_per_s), f"{minutes:03d}", f"{seconds:02d}",
              "0.0000", "0.0000", "000", "00", "00000"]
    return ("M" + ",".join(fields)).encode("ascii") + REPLY_TERMINATOR


# ---- framing -------------------------------------------------------------------------------


class LineSplitter:
    """Cuts a byte stream into reply lines at CR or LF (an empty line, as in CR LF, is dropped).

    A line that grows past ``MAX_LINE_BYTES`` without a terminator is handed out at once as an
    over-long line (it is garbage) and the rest up to the next line end is dropped: that is the
    resynchronisation. ``pending`` tells whether a partial line is held.
    """

    def __init__(self, max_line_bytes: int = MAX_LINE_BYTES) -> None:
        self._max = max_line_bytes
        self._buffer = bytearray()
        self._skipping = False
        self._lines: list[bytes] = []

    @property
    def pending(self) -> bool:
        return bool(self._buffer) or self._skipping

    def feed(self, data: bytes) -> None:
        for byte in data:
            if byte in (0x0D, 0x0A):
                if self._buffer and not self._skipping:
                    self._lines.append(bytes(self._buffer))
                self._buffer.clear()
                self._skipping = False
            elif not self._skipping:
                self._buffer.append(byte)
                if len(self._buffer) > self._max:
                    self._lines.append(bytes(self._buffer))
                    self._buffer.clear()
                    self._skipping = True

    def pop(self) -> bytes | None:
        """The oldest complete line, or None."""
        return self._lines.pop(0) if self._lines else None


# ---- parsing -------------------------------------------------------------------------------

_NUMBER = r"[+-]?(?:(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?|nan|inf|infinity)"
_INT = r"\d{1,6}"
_MEASUREMENT = re.compile(
    rf"M({_NUMBER}),({_NUMBER}),({_INT}),({_INT})(?:(?:,{_NUMBER}){{4}},{_INT})?",
    re.IGNORECASE,
)
_ERROR = re.compile(r"E(\d{1,2})")


def parse_reply(line: bytes, command: str) -> Reply:
    """Parse one reply ``line`` (without terminator) to ``command``; never raises.

    ``M`` expects a measurement; ``U``/``U<n>`` a unit echo; ``KA``/``KA<x>`` a calibration
    factor; ``SER`` a serial number; other commands (``RES``, ``PTW``) any printable text, except
    that a reply looking like an ``M`` reply is garbage for them. An ``E<n>`` reply is an error
    whatever the command. Anything else is ``Garbage``.
    """
    if len(line) > MAX_LINE_BYTES:
        return Garbage(line, "over-long line")
    try:
        text = line.decode("ascii")
    except UnicodeDecodeError:
        return Garbage(line, "non-ASCII bytes")
    if not text.isprintable():
        return Garbage(line, "non-printable bytes")
    if (match := _ERROR.fullmatch(text)) is not None:
        return ErrorReply(int(match.group(1)))
    head = command[:1]
    if command == "M":
        if (match := _MEASUREMENT.fullmatch(text)) is None:
            return Garbage(line, "not an M reply")
        dap, rate, minutes, seconds = match.groups()
        return Measurement(float(dap), float(rate), 60 * int(minutes) + int(seconds))
    if head == "U":
        ok = re.fullmatch(r"U[1-4]", text) and (command == "U" or text == command)
        return TextReply(text) if ok else Garbage(line, f"not a reply to {command}")
    if command.startswith("KA"):
        ok = re.fullmatch(rf"KA{_NUMBER}", text, re.IGNORECASE)
        return TextReply(text) if ok else Garbage(line, f"not a reply to {command}")
    if command == "SER":
        ok = re.fullmatch(r"SER\d{1,10}", text)
        return TextReply(text) if ok else Garbage(line, "not a reply to SER")
    if command == "RES":
        return TextReply(text) if text == "RES" else Garbage(line, "not a reply to RES")
    if _MEASUREMENT.fullmatch(text) or not text.strip():
        return Garbage(line, f"not a reply to {command}")
    return TextReply(text)
