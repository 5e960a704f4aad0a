"""PTW DIAMENTOR DAP meter on a serial port, as a ``fluoro.dose.meter.DoseSource``.

URL: ``serial:PORT?protocol=diamentor&baud=9600&poll_hz=2&reset=1&unit=Gycm2&reply_timeout_s=0.5``

- ``baud``: 9600 (default), 19200, 38400, 57600 or 115200 (the meter's ``BR`` settings).
- ``poll_hz``: how often ``M`` is asked, 0.1 to 20 per second (default 2).
- ``reset``: 1 (default) sends ``RES`` once at procedure start (open), never on a reconnect.
- ``unit``: the DAP unit set with ``U<n>`` and checked with ``U`` at start and on every
  reconnect: ``cGycm2``, ``Gycm2`` (default), ``uGym2``, ``Rcm2`` or 1–4. Readings are converted
  to Gy·cm² by the unit in force.
- ``reply_timeout_s``: how long a reply may take, s (default 0.5).

The driver holds a pyserial port (it is given a URL or an already-open pyserial object, it does
not inherit from one) and polls it in its own thread; ``read`` hands out readings and events in
order. Faults never raise out of ``read``; each becomes a ``MeterEvent``:

- garbage bytes / partial lines → ``"garbage"``; framing resynchronises at the next line end;
- no reply within ``reply_timeout_s`` → ``"timeout"``; the next poll goes on;
- the port failing (read/write error, device gone), or ``silent_polls_to_disconnect`` (5) polls
  in a row without any reply (meter switched off behind a live adapter) → ``"disconnected"``,
  then reopening the same port with exponential back-off (``reconnect_initial_s`` doubling up
  to ``reconnect_max_s``), repeating the unit hand-shake without ``RES``, → ``"connected"``;
- an ``E<n>`` reply → ``"error"`` with the message of ``protocol.ERROR_MESSAGES``;
- a DAP or rate that is not finite or negative, or a DAP below the last accepted one →
  ``"error"``, reading rejected. When ``restart_after`` consecutive lower readings agree with
  each other (the meter's own total restarted: power cycle, front-panel reset), the total
  accepted before is kept as an offset and the count goes on from there, with an ``"error"``
  event saying so: dose measured is never dropped and never invented.

Protocol and its assumptions: ``drivers.diamentor.protocol``.
"""

from __future__ import annotations

import contextlib
import logging
import math
import queue
import threading
import time
from collections.abc import Iterator

import serial

from drivers.diamentor.options import DiamentorOptions, parse_diamentor_url
from drivers.diamentor.protocol import (
    ErrorReply,
    Garbage,
    LineSplitter,
    Measurement,
    Reply,
    TextReply,
    encode_command,
    parse_reply,
)
from fluoro.dose.meter import DoseSourceInfo, MeterEvent, MeterEventKind, MeterReading
from fluoro.errors import SourceError
from fluoro.frame import now_ns

__all__ = [
    "DiamentorMeter",
    "DiamentorOptions",
    "backoff_delays_s",
    "open_diamentor",
    "parse_diamentor_url",
]

log = logging.getLogger(__name__)


def open_diamentor(url: str) -> DiamentorMeter:
    """Open the meter named by ``url`` (the ``serial`` + ``protocol=diamentor`` opener)."""
    port, options = parse_diamentor_url(url)
    return DiamentorMeter(port, options, url=url)


def backoff_delays_s(initial_s: float, max_s: float) -> Iterator[float]:
    """Waits before each reconnect attempt, s: ``initial_s`` doubling, capped at ``max_s``."""
    delay_s = initial_s
    while True:
        yield min(delay_s, max_s)
        delay_s = min(2 * delay_s, max_s)


class _NoReply(Exception):
    """The meter did not answer a command in time."""


class _Silent(Exception):
    """The meter has not answered several polls in a row: treated as gone."""


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


class DiamentorMeter:
    """A PTW DIAMENTOR held on a serial port, polled for DAP (Gy·cm²) in a background thread.

    Parameters
    ----------
    port : str or pyserial port object
        A device path / pyserial URL (opened here), or a pyserial object (opened here if it is
        not yet). Reconnects close and reopen the same object, so the same path.
    options : DiamentorOptions
        Rates, unit, time-outs, back-off.
    url : str, optional
        The dose-source URL, for ``info`` and error messages.
    autostart : bool
        Start the polling thread (default). Without it nothing polls until ``poll_once`` is
        called: for tests, and for a caller that keeps its own clock.

    Raises ``SourceError`` (one line naming the URL) when the port cannot be opened or the meter
    does not complete the start hand-shake (``PTW``, ``SER``, ``U<n>``, ``U``, ``KA``, ``RES``).
    """

    def __init__(
        self,
        port: str | serial.SerialBase,
        options: DiamentorOptions | None = None,
        *,
        url: str | None = None,
        autostart: bool = True,
    ) -> None:
        self.options = options or DiamentorOptions()
        opts = self.options
        self.port_name = str(getattr(port, "port", None) or getattr(port, "name", None) or port)
        url = url or f"serial:{self.port_name}?protocol=diamentor"
        try:
            if isinstance(port, str):
                port = serial.serial_for_url(port, do_not_open=True)
                port.baudrate = opts.baud
            port.timeout = opts.reply_timeout_s
            port.write_timeout = max(1.0, opts.reply_timeout_s)
        except (ValueError, serial.SerialException) as exc:  # e.g. an unknown pyserial URL
            raise SourceError(f"{url!r}: {_one_line(exc)}; expected a serial device path or a "
                              "pyserial URL") from None
        self._serial = port
        self._items: queue.Queue[MeterReading | MeterEvent] = queue.Queue()
        self._splitter = LineSplitter()
        self._stop = threading.Event()
        self._offset_gycm2 = 0.0
        self._last_meter_gycm2: float | None = None
        self._last_t_ns = 0
        self._silent_polls = 0
        self._last_garbage = ""
        self._lower_run: list[tuple[float, int]] = []  # (meter DAP Gy·cm², host ns) below last
        self.device = "PTW DIAMENTOR"
        self.calibration_factor_ugym2_s: float | None = None
        try:
            if not self._serial.is_open:
                self._serial.open()
            self._serial.reset_input_buffer()
            self._handshake(reset=opts.reset)
        except (serial.SerialException, OSError, _NoReply, SourceError) as exc:
            self._close_port()
            raise SourceError(f"{url!r}: {_one_line(exc)}; expected a PTW DIAMENTOR at "
                              f"{opts.baud} baud on {self.port_name}") from None
        ka = self.calibration_factor_ugym2_s
        self.info = DoseSourceInfo(url=url, description=(
            f"{self.device} on {self.port_name} at {opts.baud} baud, M polled at "
            f"{opts.poll_hz:g}/s, unit U{opts.unit.code} ({opts.unit.name}), calibration factor "
            f"{'unknown' if ka is None else f'{ka:.4E}'} µGy·m²/s, "
            f"{'RES sent at start' if opts.reset else 'no RES at start'}"),
            reset_at_start=opts.reset)
        self._emit("connected", f"{self.info.description}")
        self._thread: threading.Thread | None = None
        if autostart:
            self._thread = threading.Thread(target=self._run, name="diamentor-poll", daemon=True)
            self._thread.start()

    # ---- DoseSource ----------------------------------------------------------------------

    def read(self, timeout_s: float = 0.1) -> MeterReading | MeterEvent | None:
        """The next reading or event, waiting at most ``timeout_s`` seconds; None if none came."""
        try:
            if timeout_s <= 0:
                return self._items.get_nowait()
            return self._items.get(timeout=timeout_s)
        except queue.Empty:
            return None

    def close(self) -> None:
        """Stop polling and release the port; safe to call again."""
        self._stop.set()
        cancel = getattr(self._serial, "cancel_read", None)
        if cancel is not None:
            with contextlib.suppress(Exception):  # a port half gone may refuse; close anyway
                cancel()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5 * self.options.reply_timeout_s + 1.0)
        self._close_port()

    def __enter__(self) -> DiamentorMeter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- talking to the meter ------------------------------------------------------------

    def _emit(self, kind: MeterEventKind, message: str) -> None:
        log.info("%s: %s: %s", self.port_name, kind, message)
        self._items.put(MeterEvent(kind, message, now_ns()))

    def _close_port(self) -> None:
        with contextlib.suppress(Exception):  # a vanished device may fail; closed either way
            self._serial.close()

    def _transact(self, command: str) -> tuple[Reply, int] | None:
        """Send ``command``; the first reply that is not garbage and its host time, ns, or None.

        Garbage lines on the way are reported as events. Serial errors propagate.
        """
        self._serial.write(encode_command(command))
        deadline = time.monotonic() + self.options.reply_timeout_s
        while True:
            line = self._splitter.pop()
            if line is None:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._stop.is_set():
                    return None
                self._serial.timeout = remaining
                data = self._serial.read(1)
                if data:
                    data += self._serial.read(self._serial.in_waiting)
                    self._splitter.feed(data)
                continue
            reply = parse_reply(line, command)
            if isinstance(reply, Garbage):
                self._last_garbage = reply.describe()
                self._emit("garbage", f"{self._last_garbage} (after {command}); skipped")
                continue
            return reply, now_ns()

    def _ask(self, command: str) -> Reply:
        self._last_garbage = ""
        result = self._transact(command)
        if result is None:
            got = f" (got {self._last_garbage})" if self._last_garbage else ""
            raise _NoReply(f"no reply to {command!r} within "
                           f"{self.options.reply_timeout_s:g} s{got}")
        return result[0]

    def _handshake(self, *, reset: bool) -> None:
        """Identify the meter, set and check the unit, read KA, and RES if asked."""
        version = self._ask("PTW")
        number = self._ask("SER")
        if isinstance(version, TextReply):
            self.device = f"PTW DIAMENTOR {version.text}"
        if isinstance(number, TextReply):
            self.device += f" SN {number.text.removeprefix('SER')}"
        code = self.options.unit.code
        for command in (f"U{code}", "U"):
            reply = self._ask(command)
            if not (isinstance(reply, TextReply) and reply.text == f"U{code}"):
                raise SourceError(f"unit U{code} not confirmed: {command} answered {reply}")
        ka = self._ask("KA")
        if isinstance(ka, TextReply):
            self.calibration_factor_ugym2_s = float(ka.text[2:])
        if reset:
            reply = self._ask("RES")
            if not isinstance(reply, TextReply):
                raise SourceError(f"RES refused: {reply}")
            self._last_meter_gycm2 = 0.0

    # ---- polling thread ------------------------------------------------------------------

    def poll_once(self) -> None:
        """Ask ``M`` once and queue what came of it; a failing port is reconnected first.

        The polling thread calls this at ``poll_hz``; call it yourself only with
        ``autostart=False``. Never raises for a fault of the meter or the link.
        """
        try:
            self._poll()
        except (serial.SerialException, OSError, _Silent) as exc:
            if self._stop.is_set():
                return
            self._emit("disconnected", f"lost {self.port_name}: {_one_line(exc)}")
            self._silent_polls = 0
            self._reconnect()

    def _run(self) -> None:
        period_s = 1.0 / self.options.poll_hz
        next_poll = time.monotonic()
        while not self._stop.is_set():
            delay = next_poll - time.monotonic()
            if delay > 0 and self._stop.wait(delay):
                break
            next_poll = max(next_poll + period_s, time.monotonic())
            self.poll_once()

    def _poll(self) -> None:
        result = self._transact("M")
        if result is None:
            if self._stop.is_set():
                return
            self._silent_polls += 1
            held = "; partial line held, resynchronising" if self._splitter.pending else ""
            self._emit("timeout", f"no reply to 'M' within "
                                  f"{self.options.reply_timeout_s:g} s{held}")
            if self._silent_polls >= self.options.silent_polls_to_disconnect:
                raise _Silent(f"no reply to {self._silent_polls} polls in a row")
            return
        self._silent_polls = 0
        reply, t_host_ns = result
        if isinstance(reply, ErrorReply):
            self._emit("error", reply.message)
        elif isinstance(reply, Measurement):
            self._accept(reply, t_host_ns)
        else:  # parse_reply gives M only Measurement, ErrorReply or Garbage
            self._emit("garbage", f"unexpected reply {reply} to 'M'")

    def _accept(self, m: Measurement, t_host_ns: int) -> None:
        """Convert to Gy·cm² and pass on, unless the value cannot be dose."""
        gycm2 = self.options.unit.gycm2
        dap_gycm2, rate_gycm2_s = m.dap * gycm2, m.dap_rate_per_s * gycm2
        if not (math.isfinite(dap_gycm2) and math.isfinite(rate_gycm2_s)):
            self._emit("error", f"non-finite reading (DAP {m.dap!r}, rate {m.dap_rate_per_s!r}"
                                f" U{self.options.unit.code}); rejected")
            return
        if dap_gycm2 < 0 or rate_gycm2_s < 0:
            self._emit("error", f"negative reading (DAP {dap_gycm2:g} Gy·cm², rate "
                                f"{rate_gycm2_s:g} Gy·cm²/s); rejected")
            return
        if not self._continues(dap_gycm2, rate_gycm2_s, t_host_ns):
            return
        self._lower_run.clear()
        self._last_meter_gycm2, self._last_t_ns = dap_gycm2, t_host_ns
        self._items.put(MeterReading(
            t_host_ns=t_host_ns,
            dap_total_gycm2=self._offset_gycm2 + dap_gycm2,
            dap_rate_gycm2_s=rate_gycm2_s,
            meter_time_s=float(m.time_s),
            device=self.device,
        ))

    def _continues(self, dap_gycm2: float, rate_gycm2_s: float, t_host_ns: int) -> bool:
        """Whether a reading continues the accepted total (possibly after a meter restart).

        A reading below the last accepted one is rejected and starts a run of lower readings.
        A later reading joins the run when it is not below the run's last and is nearer to what
        the run predicts (its last value plus rate × time) than to what the accepted total
        predicts; otherwise the run was a glitch and is forgotten. ``restart_after`` readings in
        a run mean the meter's own total restarted: the accepted total becomes an offset.
        """
        last = self._last_meter_gycm2
        if last is None:
            return True
        run = self._lower_run
        if run:
            run_dap, run_t_ns = run[-1]
            predicted_run = run_dap + rate_gycm2_s * (t_host_ns - run_t_ns) * 1e-9
            predicted_last = last + rate_gycm2_s * (t_host_ns - self._last_t_ns) * 1e-9
            if dap_gycm2 >= run_dap and (abs(dap_gycm2 - predicted_run)
                                         < abs(dap_gycm2 - predicted_last)):
                run.append((dap_gycm2, t_host_ns))
                if len(run) >= self.options.restart_after:
                    self._offset_gycm2 += last
                    self._emit("error", f"meter total restarted ({len(run)} readings on from "
                                        f"{run[0][0]:.6g} Gy·cm², below {last:.6g}); the "
                                        f"{self._offset_gycm2:.6g} Gy·cm² measured before is "
                                        "kept and counting goes on")
                    return True
                self._emit("error", f"DAP {dap_gycm2:.6g} Gy·cm² still below {last:.6g} "
                                    f"({len(run)} of {self.options.restart_after} readings "
                                    "before a meter restart is assumed); reading rejected")
                return False
            run.clear()
        if dap_gycm2 < last:
            run.append((dap_gycm2, t_host_ns))
            self._emit("error", f"DAP went backwards from {last:.6g} to {dap_gycm2:.6g} "
                                "Gy·cm²; reading rejected")
            return False
        return True

    def _reconnect(self) -> None:
        """Reopen the same port with exponential back-off until the hand-shake succeeds."""
        delays_s = backoff_delays_s(self.options.reconnect_initial_s, self.options.reconnect_max_s)
        while not self._stop.is_set():
            self._close_port()
            if self._stop.wait(next(delays_s)):
                return
            try:
                self._serial.open()
                self._serial.reset_input_buffer()
                self._splitter = LineSplitter()
                self._handshake(reset=False)  # never RES on reconnect: the total goes on
            except (serial.SerialException, OSError, _NoReply, SourceError) as exc:
                log.debug("%s: reconnect failed: %s", self.port_name, _one_line(exc))
                continue
            self._emit("connected", f"{self.device} back on {self.port_name}")
            return
