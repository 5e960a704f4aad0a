"""A PTW DIAMENTOR served on a real pseudo-terminal, with faults on demand.

Run it in a thread (``Emulator(...).start()``; tests) or as a process::

    python -m drivers.diamentor.emulator --rate 0.05 [--fault-rate 0.05] [--link PATH]

which prints the port to open, e.g. ``serial:/tmp/fluoro-diamentor-x/ttyDIAMENTOR?protocol=
diamentor``, and serves until interrupted.

The port path is a **symbolic link** to the pty's slave (``/dev/pts/N``), the way udev's
``/dev/serial/by-id/...`` links name a USB adapter. A disconnect closes the pty (the driver's
next read or write fails, as with an unplugged adapter) and removes the link (reopening fails);
the return opens a new pty and points the link at it, so a driver reconnects by the same URL.
The meter's dose keeps integrating while it is away, and its total is not reset.

Faults apply to replies to ``M`` (the hand-shake is left alone): ``garbage`` (non-ASCII bytes
and a line end, then the real reply), ``partial`` (the first half of the reply, no line end, then
nothing), ``silence`` (no reply), ``error`` (``E<n>`` instead of the reply; default E5),
``backwards`` (a DAP half the true one), ``nonfinite`` (DAP ``nan``), and ``disconnect``.
``inject(kind)`` queues one; ``fault_rate`` draws them at random per ``M``. Setting ``muted``
makes the whole meter silent (switched off behind a live port).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import select
import shutil
import signal
import tempfile
import threading
import time
import tty
from collections import Counter, deque
from pathlib import Path

from drivers.diamentor.model import MeterModel

__all__ = ["FAULT_KINDS", "Emulator", "main"]

FAULT_KINDS = ("garbage", "partial", "silence", "error", "backwards", "nonfinite", "disconnect")
LINK_NAME = "ttyDIAMENTOR"


class Emulator:
    """A simulated DIAMENTOR on a pty, answered by a background thread.

    Parameters
    ----------
    dap_rate_gycm2_s : float
        DAP rate while the beam is on, Gy·cm²/s.
    beam_on : bool
        Whether the beam is on from the start.
    link_path : str or Path, optional
        Where to put the port's symbolic link; a fresh temporary folder by default.
    fault_rate : float
        Probability that a reply to ``M`` carries a random fault from ``fault_kinds``.
    disconnect_s : float
        How long a disconnect lasts, s.
    seed : int, optional
        For the random faults.
    **model_options
        Passed to ``MeterModel`` (``unit_code``, ``version``, ``serial_number``, ...).
    """

    def __init__(
        self,
        dap_rate_gycm2_s: float = 0.05,
        *,
        beam_on: bool = True,
        link_path: str | Path | None = None,
        fault_rate: float = 0.0,
        fault_kinds: tuple[str, ...] = FAULT_KINDS,
        disconnect_s: float = 0.5,
        seed: int | None = None,
        **model_options: object,
    ) -> None:
        unknown = set(fault_kinds) - set(FAULT_KINDS)
        if unknown or not 0.0 <= fault_rate <= 1.0:
            raise ValueError(f"faults {sorted(unknown)} / rate {fault_rate}: expected kinds from "
                             f"{FAULT_KINDS} and a rate from 0 to 1")
        self.model = MeterModel(dap_rate_gycm2_s, beam_on=beam_on, **model_options)  # type: ignore[arg-type]
        self._own_dir = link_path is None
        self.port_path = Path(link_path or Path(tempfile.mkdtemp(prefix="fluoro-diamentor-"))
                              / LINK_NAME)
        self.fault_rate = fault_rate
        self.fault_kinds = fault_kinds
        self.disconnect_s = disconnect_s
        self._rng = random.Random(seed)
        self._pending: deque[tuple[str, int | bytes]] = deque()
        self.faults_done: Counter[str] = Counter()
        self.commands: deque[str] = deque(maxlen=1000)
        self.pty_name: str | None = None
        self._master: int | None = None
        self._slave: int | None = None
        self._return_at_s: float | None = None
        self.muted = False  # True: the meter is off behind a live port, nothing is answered
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._wake_r, self._wake_w = os.pipe()
        self._thread: threading.Thread | None = None

    # ---- control -------------------------------------------------------------------------

    def start(self) -> Emulator:
        """Open the pty, point ``port_path`` at it and start answering."""
        self._open_pty()
        self._thread = threading.Thread(target=self._serve, name="diamentor-emulator", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop answering, close the pty and remove the link (and its folder if made here)."""
        self._stop.set()
        self._wake()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._close_pty()
        for fd in (self._wake_r, self._wake_w):
            if fd >= 0:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._wake_r = self._wake_w = -1
        if self._own_dir:
            shutil.rmtree(self.port_path.parent, ignore_errors=True)

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """The dose-source URL a driver opens this emulator by."""
        return f"serial:{self.port_path}?protocol=diamentor"

    @property
    def delivered_dap_gycm2(self) -> float:
        """True DAP delivered since the last ``RES``, Gy·cm² (what a perfect driver reports)."""
        return self.model.delivered_dap_gycm2

    @property
    def connected(self) -> bool:
        return self._master is not None

    def set_beam(self, on: bool, dap_rate_gycm2_s: float | None = None) -> None:
        """Beam on (DAP integrates at the rate, Gy·cm²/s) or off."""
        self.model.set_beam(on, dap_rate_gycm2_s)

    def inject(self, kind: str, count: int = 1, *, code: int = 5) -> None:
        """Queue ``count`` faults of ``kind`` (one of ``FAULT_KINDS``) for the next ``M`` replies;
        ``code`` is the error number for ``"error"``. ``"disconnect"`` happens at once."""
        if kind not in FAULT_KINDS:
            raise ValueError(f"fault {kind!r}: expected one of {', '.join(FAULT_KINDS)}")
        if kind == "disconnect":
            self.disconnect()
            return
        with self._lock:
            self._pending.extend([(kind, code)] * count)

    def inject_raw(self, data: bytes) -> None:
        """The next ``M`` is answered with exactly ``data`` (any bytes; for fuzzing)."""
        with self._lock:
            self._pending.append(("raw", bytes(data)))

    def clear_faults(self) -> None:
        """Forget queued faults (random faults go on at ``fault_rate``)."""
        with self._lock:
            self._pending.clear()

    def disconnect(self, down_s: float | None = None) -> None:
        """Unplug now: close the pty, remove the link; return after ``down_s`` seconds."""
        with self._lock:
            self._close_pty()
            self._return_at_s = time.monotonic() + (self.disconnect_s if down_s is None else down_s)
            self.faults_done["disconnect"] += 1
        self._wake()

    # ---- pty -----------------------------------------------------------------------------

    def _open_pty(self) -> None:
        master, slave = os.openpty()
        tty.setraw(slave)  # no echo, no CR/LF translation until the driver configures it
        os.set_blocking(master, False)
        self._master, self._slave = master, slave
        self.pty_name = os.ttyname(slave)
        tmp = self.port_path.with_name(self.port_path.name + ".new")
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        tmp.symlink_to(self.pty_name)
        tmp.replace(self.port_path)  # atomic re-point, as udev does
        self._return_at_s = None

    def _close_pty(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.port_path.unlink()
        for fd in (self._master, self._slave):
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._master = self._slave = None

    def _wake(self) -> None:
        if self._wake_w < 0:
            return
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b"x")

    # ---- serving -------------------------------------------------------------------------

    def _serve(self) -> None:
        buffer = bytearray()
        while not self._stop.is_set():
            with self._lock:
                master, return_at = self._master, self._return_at_s
                if master is None and return_at is not None and time.monotonic() >= return_at:
                    self._open_pty()
                    master, buffer = self._master, bytearray()
            timeout = None if return_at is None else max(0.0, return_at - time.monotonic())
            watched = [self._wake_r] + ([master] if master is not None else [])
            try:
                ready, _, _ = select.select(watched, [], [], timeout)
            except (OSError, ValueError):  # the pty was closed by a disconnect meanwhile
                continue
            if self._wake_r in ready:
                os.read(self._wake_r, 64)
            if master is None or master not in ready:
                continue
            with self._lock:  # read only if it is still our pty (fd numbers are reused)
                if self._master != master:
                    continue
                try:
                    data = os.read(master, 1024)
                except OSError:  # nothing after all (EAGAIN), or EIO
                    continue
            buffer += data
            while (end := next((i for i, b in enumerate(buffer) if b in b"\r\n"), -1)) >= 0:
                line, buffer = bytes(buffer[:end]), buffer[end + 1:]
                if line:
                    self._reply(master, line)
            if len(buffer) > 4096:  # nobody sends that much without a CR: drop it
                buffer.clear()

    def _reply(self, master: int, line: bytes) -> None:
        command = line.decode("ascii", "replace").strip()
        self.commands.append(command)
        if self.muted:
            return
        reply = self.model.handle(command)
        if command == "M":
            reply = self._apply_fault(reply)
        if reply:
            with self._lock:
                if self._master != master:
                    return
                with contextlib.suppress(OSError):  # full (nobody reading) or gone: dropped
                    os.write(master, reply)

    def _apply_fault(self, reply: bytes) -> bytes:
        with self._lock:
            if self._pending:
                kind, arg = self._pending.popleft()
            elif self.fault_rate and self._rng.random() < self.fault_rate:
                kind, arg = self._rng.choice(self.fault_kinds), self._rng.choice((4, 5, 6, 24))
            else:
                return reply
            if kind != "disconnect":
                self.faults_done[kind] += 1
        if kind == "raw":
            return bytes(arg)  # type: ignore[arg-type]
        if kind == "garbage":
            size = self._rng.randrange(1, 24)
            noise = bytes(self._rng.randrange(0x80, 0x100) for _ in range(size))
            return noise + b"\r\n" + reply
        if kind == "partial":
            return reply[: max(1, len(reply) // 2)]
        if kind == "silence":
            return b""
        if kind == "error":
            return f"E{arg}\r\n".encode()
        if kind == "backwards":
            return self.model.measurement(dap_scale=0.5)
        if kind == "nonfinite":
            return b"Mnan" + reply[reply.index(b","):]
        self.disconnect()
        return b""


def main(argv: list[str] | None = None) -> int:
    """``python -m drivers.diamentor.emulator``: serve a DIAMENTOR until interrupted."""
    parser = argparse.ArgumentParser(prog="python -m drivers.diamentor.emulator",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=0.05, help="DAP rate, Gy·cm²/s (beam on)")
    parser.add_argument("--beam-off", action="store_true", help="start with the beam off")
    parser.add_argument("--link", help="path of the port's symbolic link (default: a temp dir)")
    parser.add_argument("--unit", type=int, choices=(1, 2, 3, 4), default=1,
                        help="DAP unit at power-on (the driver sets its own)")
    parser.add_argument("--fault-rate", type=float, default=0.0,
                        help="probability of a random fault per M reply")
    parser.add_argument("--faults", default=",".join(FAULT_KINDS),
                        help=f"comma-separated fault kinds ({','.join(FAULT_KINDS)})")
    parser.add_argument("--disconnect-s", type=float, default=2.0,
                        help="how long a disconnect lasts, s")
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args(argv)
    kinds = tuple(k for k in args.faults.split(",") if k)
    try:
        emulator = Emulator(args.rate, beam_on=not args.beam_off, link_path=args.link,
                            fault_rate=args.fault_rate, fault_kinds=kinds,
                            disconnect_s=args.disconnect_s, seed=args.seed, unit_code=args.unit)
    except ValueError as exc:
        parser.error(str(exc))
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with emulator:
        print(f"DIAMENTOR emulator on {emulator.port_path} (-> {emulator.pty_name})", flush=True)
        print(f"open it with: {emulator.url}", flush=True)
        try:
            while not stop.wait(1.0):
                pass
        except KeyboardInterrupt:
            pass
        print(f"delivered {emulator.delivered_dap_gycm2:.6g} Gy·cm²; faults "
              f"{dict(emulator.faults_done) or 'none'}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
