"""PTW DIAMENTOR protocol: framing, reply parsing, units, errors, and the simulated meter's answers.

Reply formats follow PyMeasure's ptwDIAMENTOR driver and its protocol tests (see the docstring of
``drivers.diamentor.protocol``)."""

import math

import pytest

from drivers.diamentor.model import MeterModel
from drivers.diamentor.protocol import (
    UNITS,
    ErrorReply,
    Garbage,
    LineSplitter,
    Measurement,
    TextReply,
    encode_command,
    error_message,
    format_measurement,
    parse_reply,
    unit_by_name,
)


def test_commands_end_with_cr():
    assert encode_command("M") == b"M\r"
    with pytest.raises(ValueError):
        encode_command("M\r")


def test_measurement_as_pymeasure_shows_it():
    reply = parse_reply(b"M9999.99,8888.88,222,33,eeee.ee,ffff.ff,mmm,ss,34567", "M")
    assert isinstance(reply, Garbage)  # its placeholders are letters: not numbers
    reply = parse_reply(b"M9999.99,8888.88,222,33,1.00,2.00,001,02,34567", "M")
    assert reply == Measurement(9999.99, 8888.88, 222 * 60 + 33)
    assert parse_reply(b"M1.5,0.25,000,07", "M") == Measurement(1.5, 0.25, 7)


def test_format_and_parse_agree():
    line = format_measurement(12.34567, 0.5, 125)
    assert line.endswith(b"\r\n")
    reply = parse_reply(line.rstrip(b"\r\n"), "M")
    assert reply == Measurement(12.3457, 0.5, 125)


@pytest.mark.parametrize(("line", "command", "expected"), [
    (b"U2", "U2", TextReply("U2")),
    (b"U3", "U", TextReply("U3")),
    (b"RES", "RES", TextReply("RES")),
    (b"SER345678", "SER", TextReply("SER345678")),
    (b"KA1.3356E11", "KA", TextReply("KA1.3356E11")),
    (b"CRS 2.33", "PTW", TextReply("CRS 2.33")),
    (b"E5", "M", ErrorReply(5)),
])
def test_replies(line, command, expected):
    assert parse_reply(line, command) == expected


@pytest.mark.parametrize(("line", "command"), [
    (b"U1", "U2"), (b"M1,2,3,4", "RES"), (b"SERabc", "SER"), (b"M1.0M2.0,0,000,00", "M"),
    (b"M\xff1.0,0,000,00", "M"), (b"M1.0,0.0,000", "M"), (b"", "PTW"), (b"\x00\x01", "PTW"),
])
def test_not_a_reply_is_garbage(line, command):
    assert isinstance(parse_reply(line, command), Garbage)


def test_error_table_from_pymeasure():
    assert error_message(5) == "E5: Max. input current exceeded."
    assert error_message(1) == "E1: Syntax error, unknown command"
    assert error_message(26) == "E26: Firmware malfunction"
    assert "undocumented" in error_message(2)
    assert ErrorReply(24).message.startswith("E24: DIAMENTOR is not calibrated")


def test_units_to_gycm2():
    assert UNITS[1].gycm2 == pytest.approx(0.01)  # cGy·cm²
    assert UNITS[2].gycm2 == 1.0  # Gy·cm²
    assert UNITS[3].gycm2 == pytest.approx(0.01)  # µGy·m² = 1e-6 Gy × 1e4 cm²
    assert UNITS[4].gycm2 == pytest.approx(8.764e-3, rel=1e-3)  # R·cm², 8.764 mGy per R
    assert unit_by_name("µGy·m2") is UNITS[3] and unit_by_name("4") is UNITS[4]
    assert unit_by_name("mGycm2") is None


def test_splitter_resynchronises_at_next_line_end():
    splitter = LineSplitter(max_line_bytes=16)
    splitter.feed(b"M1.0,0,000,0")  # partial
    assert splitter.pop() is None and splitter.pending
    splitter.feed(b"1\r\nE5\r\n" + b"x" * 40 + b"tail\r\nRES\r\n")
    assert [splitter.pop() for _ in range(4)] == [b"M1.0,0,000,01", b"E5", b"x" * 17, b"RES"]
    assert splitter.pop() is None and not splitter.pending


def test_model_answers_commands():
    clock = [0.0]
    model = MeterModel(2.0, beam_on=True, unit_code=1, clock=lambda: clock[0])
    clock[0] = 1.5
    assert parse_reply(model.handle("M").rstrip(), "M") == Measurement(300.0, 200.0, 1)
    assert model.handle("U2") == b"U2\r\n" and model.handle("U") == b"U2\r\n"
    assert model.handle("U7") == b"E9\r\n"
    assert model.handle("KA") == b"KA1.0000E09\r\n"
    assert model.handle("KA4.3E9") == b"KA4.3000E09\r\n"
    assert model.handle("KA1E5") == b"E9\r\n"
    assert model.handle("PTW") == b"CRS 2.33\r\n" and model.handle("SER") == b"SER345678\r\n"
    assert model.handle("XYZ") == b"E1\r\n" and model.handle("M" * 100) == b"E25\r\n"
    assert model.handle("RES") == b"RES\r\n" and model.delivered_dap_gycm2 == 0.0
    assert model.lifetime_dap_gycm2 == pytest.approx(3.0)
    clock[0] = 2.0
    model.power_cycle()
    assert model.meter_dap_gycm2 == 0.0 and model.delivered_dap_gycm2 == pytest.approx(1.0)
    assert math.isclose(model.lifetime_dap_gycm2, 4.0)
