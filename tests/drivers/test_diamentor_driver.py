"""PTW DIAMENTOR driver end to end: the emulator serves a real pty (``os.openpty()``) behind a
symbolic link and the driver opens it by name with pyserial. No timing asserts: waits are upper
bounds that fail the test only when something never happens."""

import os
import subprocess
import sys
import time
import tty
from pathlib import Path

import pytest
import serial

from drivers.diamentor.driver import DiamentorMeter, DiamentorOptions, backoff_delays_s
from drivers.diamentor.emulator import Emulator
from drivers.dose_sources import open_dose_source
from fluoro.dose.meter import DoseSource, MeterEvent, MeterReading
from fluoro.errors import SourceError

REPO = Path(__file__).resolve().parents[2]
FAST = "&poll_hz=20&reply_timeout_s=0.2"


class FakeClock:
    """Seconds that move only when told, for a meter whose dose is known exactly."""

    def __init__(self) -> None:
        self.t_s = 0.0

    def __call__(self) -> float:
        return self.t_s


def collect(meter, until, timeout_s: float = 10.0) -> list:
    """Items from ``meter.read`` until ``until(items)`` holds (or fail after ``timeout_s``)."""
    items: list = []
    deadline = time.monotonic() + timeout_s
    while not until(items):
        assert time.monotonic() < deadline, f"gave up waiting; got {items[-8:]}"
        if (item := meter.read(0.1)) is not None:
            items.append(item)
    return items


def readings(items) -> list[MeterReading]:
    return [i for i in items if isinstance(i, MeterReading)]


def events(items, kind: str) -> list[MeterEvent]:
    return [i for i in items if isinstance(i, MeterEvent) and i.kind == kind]


def n_readings(n: int):
    return lambda items: len(readings(items)) >= n


def after(kind: str, n: int = 1):
    """Until an event of ``kind`` and then ``n`` readings after it."""
    def done(items) -> bool:
        index = next((k for k, i in enumerate(items) if getattr(i, "kind", None) == kind), None)
        return index is not None and len(readings(items[index:])) >= n
    return done


def assert_sane(items, emulator: Emulator) -> None:
    """Totals never go down and never exceed what was delivered (no invented dose)."""
    totals = [r.dap_total_gycm2 for r in readings(items)]
    assert totals == sorted(totals)
    assert all(t <= emulator.delivered_dap_gycm2 * 1.0001 + 1e-4 for t in totals)


@pytest.fixture
def emulator():
    with Emulator(1.0, seed=7) as emu:
        yield emu


@pytest.fixture
def meter(emulator):
    source = open_dose_source(emulator.url + FAST)
    yield source
    source.close()


def test_polls_readings_through_the_pty(emulator, meter):
    assert isinstance(meter, DoseSource)
    assert os.path.islink(emulator.port_path) and emulator.pty_name.startswith("/dev/pts/")
    items = collect(meter, n_readings(3))
    first = items[0]
    assert isinstance(first, MeterEvent) and first.kind == "connected"
    assert "CRS 2.33" in first.message and "SN 345678" in meter.info.description
    got = readings(items)
    assert all(r.device == "PTW DIAMENTOR CRS 2.33 SN 345678" for r in got)
    assert all(r.dap_rate_gycm2_s == pytest.approx(1.0) for r in got)
    assert got[-1].dap_total_gycm2 > 0 and got[-1].meter_time_s is not None
    assert_sane(items, emulator)
    meter.close()
    meter.close()  # twice is fine
    # what was polled before the close is still handed out, at once, then nothing: the
    # poll thread has stopped (it asked 20 times a second)
    left = []
    while (item := meter.read(0.0)) is not None:
        left.append(item)
        assert len(left) < 100, "read goes on handing out items after close"
    assert all(isinstance(i, (MeterReading, MeterEvent)) for i in left)
    assert meter.read(0.5) is None


def test_read_hands_out_what_each_poll_queued_and_none_before():
    """Without the poll thread (``autostart=False``) nothing arrives until ``poll_once``: read
    returns None, then exactly the reading that poll queued, then None again."""
    clock = FakeClock()
    with Emulator(2.0, clock=clock) as emu, \
            DiamentorMeter(str(emu.port_path), DiamentorOptions(), autostart=False) as meter:
        connected = meter.read(0.0)
        assert isinstance(connected, MeterEvent) and connected.kind == "connected"
        assert meter.read(0.0) is None
        assert meter.read(0.2) is None  # it waited, and still nothing: no thread polls
        assert "M" not in emu.commands
        for n, t_s in ((1, 0.5), (2, 1.25)):
            clock.t_s = t_s  # RES at t = 0, then 2 Gy·cm²/s
            meter.poll_once()
            reading = meter.read(0.0)
            assert isinstance(reading, MeterReading), reading
            assert reading.dap_total_gycm2 == pytest.approx(2.0 * t_s, rel=1e-5)
            assert list(emu.commands).count("M") == n
            assert meter.read(0.0) is None


@pytest.mark.parametrize("unit", ["cGycm2", "Gycm2", "uGym2", "Rcm2"])
def test_units_are_set_checked_and_converted(unit):
    clock = FakeClock()
    with Emulator(2.5, clock=clock, unit_code=3) as emu:
        clock.t_s = 1.0  # 2.5 Gy·cm² delivered, the beam stays on at 2.5 Gy·cm²/s
        with open_dose_source(f"{emu.url}&unit={unit}&reset=0{FAST}") as meter:
            reading = readings(collect(meter, n_readings(1)))[0]
        code = {"cGycm2": 1, "Gycm2": 2, "uGym2": 3, "Rcm2": 4}[unit]
        assert emu.model.unit_code == code
        commands = list(emu.commands)
        assert commands.index(f"U{code}") < commands.index("U") < commands.index("M")
    assert reading.dap_total_gycm2 == pytest.approx(2.5, rel=1e-5)
    assert reading.dap_rate_gycm2_s == pytest.approx(2.5, rel=1e-5)


def test_res_at_start_and_reset_0_keeps_the_total():
    clock = FakeClock()
    with Emulator(2.0, clock=clock) as emu:
        clock.t_s = 1.0  # 2 Gy·cm² on the meter before the procedure
        with open_dose_source(f"{emu.url}&reset=0{FAST}") as meter:
            assert readings(collect(meter, n_readings(1)))[0].dap_total_gycm2 == pytest.approx(2)
        assert "RES" not in emu.commands
        with open_dose_source(f"{emu.url}{FAST}") as meter:
            assert readings(collect(meter, n_readings(1)))[0].dap_total_gycm2 == 0.0
            assert "RES sent at start" in meter.info.description
        assert list(emu.commands).count("RES") == 1
        assert emu.delivered_dap_gycm2 == 0.0


def test_garbage_is_reported_and_skipped(emulator, meter):
    collect(meter, n_readings(1))
    emulator.inject("garbage", 3)
    items = collect(meter, lambda items: len(events(items, "garbage")) >= 3 and
                    after("garbage", 2)(items))
    assert "non-ASCII" in events(items, "garbage")[0].message
    assert_sane(items, emulator)


def test_partial_line_times_out_then_resynchronises(emulator, meter):
    collect(meter, n_readings(1))
    emulator.inject("partial")
    items = collect(meter, after("garbage", 2))
    timeouts = events(items, "timeout")
    assert timeouts and "partial line held" in timeouts[0].message
    assert items.index(timeouts[0]) < items.index(events(items, "garbage")[0])
    assert_sane(items, emulator)


def test_no_reply_is_a_timeout_and_polling_goes_on(emulator, meter):
    collect(meter, n_readings(1))
    emulator.inject("silence", 2)
    items = collect(meter, lambda items: len(events(items, "timeout")) >= 2 and
                    after("timeout", 2)(items))
    assert "no reply to 'M'" in events(items, "timeout")[0].message
    assert_sane(items, emulator)


@pytest.mark.parametrize(("code", "text"), [(5, "E5: Max. input current exceeded."),
                                            (4, "E4: Charge overflow"),
                                            (2, "E2: undocumented error code")])
def test_meter_error_code_becomes_an_error_event(emulator, meter, code, text):
    collect(meter, n_readings(1))
    emulator.inject("error", code=code)
    items = collect(meter, after("error", 1))
    assert events(items, "error")[0].message.startswith(text)


@pytest.mark.parametrize(("fault", "text"), [("backwards", "went backwards"),
                                             ("nonfinite", "non-finite")])
def test_implausible_reading_is_rejected(emulator, meter, fault, text):
    collect(meter, n_readings(2))
    emulator.inject(fault)
    items = collect(meter, after("error", 2))
    assert text in events(items, "error")[0].message
    assert_sane(items, emulator)  # the halved total never came through


def test_disconnect_and_return_by_the_same_url(emulator, meter):
    before = readings(collect(meter, n_readings(2)))[-1].dap_total_gycm2
    emulator.disconnect(down_s=0.4)
    items = collect(meter, after("connected", 2))
    kinds = [i.kind for i in items if isinstance(i, MeterEvent)]
    assert kinds.index("disconnected") < kinds.index("connected")
    assert emulator.faults_done["disconnect"] == 1 and os.path.islink(emulator.port_path)
    # the meter's total went on while away and was not reset
    assert readings(items)[-1].dap_total_gycm2 > before + 0.3
    assert list(emulator.commands).count("RES") == 1
    assert_sane(items, emulator)


def beam_off_total(meter, emulator) -> tuple[list, float]:
    """Switch the beam off and read until a reading taken after that (its total is final)."""
    emulator.set_beam(False)
    t_off_ns = time.monotonic_ns()
    items = collect(meter, lambda got: any(r.t_host_ns > t_off_ns and r.dap_rate_gycm2_s == 0
                                           for r in readings(got)))
    return items, readings(items)[-1].dap_total_gycm2


def test_a_meter_gone_silent_is_a_gap_then_reconnects(emulator, meter):
    collect(meter, n_readings(1))
    emulator.muted = True
    items = collect(meter, lambda got: bool(events(got, "disconnected")))
    assert len(events(items, "timeout")) >= 5 and "5 polls in a row" in items[-1].message
    emulator.muted = False
    items += collect(meter, after("connected", 2))
    assert_sane(items, emulator)
    assert list(emulator.commands).count("RES") == 1


@pytest.mark.parametrize("beam_on", [False, True])
def test_meter_restart_keeps_the_dose_measured_before(emulator, beam_on):
    options = DiamentorOptions(poll_hz=20, reply_timeout_s=0.2, restart_after=3)
    with DiamentorMeter(str(emulator.port_path), options) as meter:
        collect(meter, n_readings(3))
        items, before = beam_off_total(meter, emulator)
        assert before == pytest.approx(emulator.delivered_dap_gycm2, abs=1e-4)
        emulator.set_beam(beam_on)  # restart while idle, or while the total climbs back
        emulator.model.power_cycle()
        items += collect(meter, lambda got: any("restarted" in e.message
                                                for e in events(got, "error")))
        emulator.set_beam(True)
        items += collect(meter, n_readings(len(readings(items)) + 3))
        more, total = beam_off_total(meter, emulator)
    totals = [r.dap_total_gycm2 for r in readings(items + more)]
    assert totals == sorted(totals) and totals[-1] > before
    assert total <= emulator.delivered_dap_gycm2 + 1e-4  # since RES; a power cycle keeps it
    if not beam_on:  # nothing was delivered while the readings were rejected: nothing lost
        assert total == pytest.approx(emulator.delivered_dap_gycm2, abs=2e-4)


def test_backoff_doubles_and_is_capped():
    delays = backoff_delays_s(0.1, 1.0)
    assert [next(delays) for _ in range(6)] == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.0, 1.0])


def test_holds_a_pyserial_object_given_to_it(emulator):
    port = serial.Serial(str(emulator.port_path), 9600)
    with DiamentorMeter(port, DiamentorOptions(poll_hz=20, reply_timeout_s=0.2)) as meter:
        assert readings(collect(meter, n_readings(1)))
    assert not port.is_open


def test_a_port_that_only_echoes_is_refused():
    loop = serial.serial_for_url("loop://", timeout=0.1)
    with pytest.raises(SourceError, match="loop://"):
        DiamentorMeter(loop, DiamentorOptions(reply_timeout_s=0.05))


def test_a_silent_device_is_refused_in_one_line():
    master, slave = os.openpty()
    tty.setraw(slave)
    try:
        url = f"serial:{os.ttyname(slave)}?protocol=diamentor&reply_timeout_s=0.05"
        with pytest.raises(SourceError) as info:
            open_dose_source(url)
        message = str(info.value)
        assert url in message and "no reply to 'PTW'" in message and "\n" not in message
    finally:
        os.close(master)
        os.close(slave)


@pytest.mark.parametrize(("url", "expected"), [
    ("serial:", "no serial port"),
    ("serial:?protocol=diamentor", "no serial port"),
    ("serial:/dev/ttyUSB0", "no protocol"),
    ("serial:/dev/ttyUSB0?protocol=unidos", "unknown meter protocol"),
    ("serial:/dev/ttyUSB0?protocol=diamentor&baud=12345", "baud='12345'"),
    ("serial:/dev/ttyUSB0?protocol=diamentor&baud=fast", "expected one of 9600"),
    ("serial:/dev/ttyUSB0?protocol=diamentor&poll_hz=abc", "poll_hz"),
    ("serial:/dev/ttyUSB0?protocol=diamentor&unit=mGycm2", "unit"),
    ("serial:/dev/ttyUSB0?protocol=diamentor&colour=red", "unknown option 'colour'"),
    ("serial:/dev/ttyUSB0?protocol=diamentor&baud=9600&baud=9600", "given twice"),
    ("serial:/nonexistent/ttyNOPE?protocol=diamentor", "/nonexistent/ttyNOPE"),
    ("serial:nosuch://x?protocol=diamentor", "pyserial URL"),
    ("meter:/dev/ttyUSB0", "unknown dose-source scheme"),
    ("/dev/ttyUSB0", "not a dose-source URL"),
])
def test_bad_urls_fail_in_one_line_naming_the_url(url, expected):
    with pytest.raises(SourceError) as info:
        open_dose_source(url)
    message = str(info.value)
    assert repr(url) in message and expected in message and "\n" not in message


def test_sum_matches_delivered_through_faults_and_a_disconnect():
    kinds = ("garbage", "partial", "silence", "error", "backwards", "nonfinite")
    with Emulator(2.0, fault_rate=0.25, fault_kinds=kinds, seed=3) as emu:
        with open_dose_source(emu.url + FAST) as meter:
            items = collect(meter, n_readings(5))
            emu.disconnect(down_s=0.3)
            items += collect(meter, after("connected", 5))
            emu.fault_rate = 0.0
            items += beam_off_total(meter, emu)[0]
        delivered = emu.delivered_dap_gycm2
        assert sum(emu.faults_done.values()) >= 3  # the faults really happened
    assert_sane(items, emu)
    assert events(items, "disconnected") and len(events(items, "connected")) >= 2
    assert readings(items)[-1].dap_total_gycm2 == pytest.approx(delivered, rel=1e-3)


def test_emulator_runs_as_a_process(tmp_path):
    link = tmp_path / "ttyDAP"
    process = subprocess.Popen(
        [sys.executable, "-m", "drivers.diamentor.emulator", "--rate", "1", "--link", str(link)],
        cwd=REPO, stdout=subprocess.PIPE, text=True)
    try:
        first = process.stdout.readline()
        assert str(link) in first and "/dev/pts/" in first
        url = process.stdout.readline().split("open it with: ")[1].strip()
        with open_dose_source(url + FAST) as meter:
            assert readings(collect(meter, n_readings(1)))
    finally:
        process.terminate()
        out, _ = process.communicate(timeout=10)
    assert process.returncode == 0 and "delivered" in out
