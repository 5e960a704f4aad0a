"""The dose engine of one procedure: accumulator, alarms and the durable dose log together.

The pipeline's acquisition thread calls ``DoseEngine.add(frame)`` for every frame, before any
image processing. In that call the pulse is modelled (``fluoro.dose.model``), committed to the
dose log (``fluoro.doselog``), added to the live totals (``fluoro.dose.accumulator``) and the
alarm levels are checked (``fluoro.dose.alarms``: 21 CFR 1020.32(h), NCRP Report No. 168); each
alarm raised is logged too.

When the log fails mid-procedure (full disk, file removed) the live image must go on: the totals
keep accumulating in memory, ``DoseTotals.log_error`` says DOSE LOG FAILED, every later record
goes to a fallback journal beside the log (``<log>.fallback.jsonl``) when one can be written,
and the procedure has no end row, so reports mark it incomplete.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from fluoro.dose.accumulator import DoseAccumulator, DoseGap, DoseTotals, MemoryDoseLog, PulseDose
from fluoro.dose.alarms import KINDS, Acknowledgement, Alarm, AlarmEngine
from fluoro.dose.meter import MeterEvent, MeterReading
from fluoro.dose.siteconfig import SiteConfig
from fluoro.doselog import DoseLog, FallbackJournal, Head, ProcedureInfo
from fluoro.frame import Frame
from fluoro.paths import data_dir

# Meter and model DAP are compared only once both exceed this: a few pulses' worth of DAP is
# dominated by the meter's resolution and the poll interval.
METER_CHECK_MIN_GYCM2 = 0.05


class DoseLogFailed(RuntimeError):
    """The dose log refused a record; the message says where the record went instead."""


class _LoggedSink:
    """Writes each record to the dose log; after the first failure, to the fallback journal."""

    def __init__(self, log: DoseLog, procedure_uid: str) -> None:
        self.log = log
        self.procedure_uid = procedure_uid
        self.failure: str | None = None
        self._journal: FallbackJournal | None = None
        self._file_id: tuple[int, int] | None = None
        if isinstance(log.path, Path):  # an SQLite file (a PostgreSQL log is a URL)
            stat = os.stat(log.path)
            self._file_id = (stat.st_dev, stat.st_ino)

    def check_file(self) -> None:
        """Fail if the SQLite log file was removed or replaced: SQLite would go on writing to
        the unlinked file without an error, and every later pulse would be lost at close."""
        if self._file_id is None:
            return
        try:
            stat = os.stat(self.log.path)
        except FileNotFoundError:
            raise OSError("the dose log file was removed") from None
        if (stat.st_dev, stat.st_ino) != self._file_id:
            raise OSError("the dose log file was replaced by another file")

    def append(self, record: PulseDose | DoseGap) -> None:
        if self.failure is None:
            try:
                self.check_file()
                self.log.append(record)
                return
            except Exception as exc:
                self.failure = f"{self.log.path}: {type(exc).__name__}: {exc}"
        self.journal_write(lambda j: j.append(record, self.procedure_uid))

    def journal_write(self, write: Callable[[FallbackJournal], None]) -> None:
        try:
            if self._journal is None:
                self._journal = (
                    FallbackJournal.beside(self.log.path) if isinstance(self.log.path, Path)
                    # a department database: the journal stays on this computer
                    else FallbackJournal(data_dir() / f"fallback-{self.procedure_uid}.jsonl"))
            write(self._journal)
        except Exception as exc:
            raise DoseLogFailed(f"{self.failure}; fallback journal failed too: {exc}") from None
        raise DoseLogFailed(f"{self.failure}; records go to {self._journal.path}")

    def close(self) -> None:
        if self._journal is not None:
            self._journal.close()


class DoseEngine:
    """Dose accounting, alarms and logging for one procedure.

    Parameters
    ----------
    site : SiteConfig
        Room calibration (``room_factor``), alarm levels, measured-vs-model tolerance.
    log : DoseLog or None
        The durable log; None keeps records in memory only (benchmarks, tests).
    info : ProcedureInfo or None
        Written as the procedure's first row when a log is given.
    pregnant : bool
        Add the site's pregnancy alarm levels.
    """

    def __init__(self, site: SiteConfig, log: DoseLog | None = None,
                 info: ProcedureInfo | None = None, pregnant: bool = False) -> None:
        self.site = site
        self.log = log
        self.alarms = AlarmEngine(site.alarms, pregnant=pregnant)
        self.procedure_uid: str | None = None
        self._sink: _LoggedSink | None = None
        if log is not None:
            self.procedure_uid = log.begin_procedure(info or ProcedureInfo(patient_key=None))
            self._sink = _LoggedSink(log, self.procedure_uid)
            self.accumulator = DoseAccumulator(self._sink, room_factor=site.room_factor)
        else:
            self.accumulator = DoseAccumulator(MemoryDoseLog(), room_factor=site.room_factor)
        self._mismatch_raised: set[str] = set()
        self._new_alarms: list[Alarm] = []
        self._lock = threading.Lock()
        # DAP meter (fluoro.dose.meter): its total since procedure start replaces the modelled DAP.
        self._meter_baseline_gycm2: float | None = None
        self._meter_total_gycm2: float | None = None
        self._meter_state: str | None = None
        self._meter_down_since_ns: int | None = None
        self.meter_gaps_s: list[float] = []

    # -- the dose-source thread ----------------------------------------------------------------

    def attach_meter(self, reset_at_start: bool) -> None:
        """A DAP meter will feed ``add_meter``. ``reset_at_start``: the meter was reset when the
        procedure began, so its totals count from zero; otherwise the first reading is the
        baseline."""
        self._meter_baseline_gycm2 = 0.0 if reset_at_start else None
        self._meter_state = "DISCONNECTED"

    def add_meter(self, item: MeterReading | MeterEvent) -> None:
        """A reading or link event from the DAP meter; both are logged. A disconnect is a gap in
        the measured record, logged with its duration when the meter returns."""
        if isinstance(item, MeterReading):
            with self._lock:
                if self._meter_baseline_gycm2 is None:
                    self._meter_baseline_gycm2 = item.dap_total_gycm2
                self._meter_total_gycm2 = item.dap_total_gycm2
                self._meter_state = "ok"
            self._write_log(lambda log: log.log_meter_reading(item), "meter_reading",
                            {"dap_total_gycm2": item.dap_total_gycm2, "device": item.device})
            totals = self.totals()
            if totals.dap_model_gycm2 is not None:
                self._check_ratio("dap_gycm2", totals.dap_gycm2, totals.dap_model_gycm2,
                                  t_s=item.t_host_ns * 1e-9, minimum=METER_CHECK_MIN_GYCM2)
            return
        if item.kind == "disconnected":
            with self._lock:
                self._meter_state = "DISCONNECTED"
                self._meter_down_since_ns = item.t_host_ns
        elif item.kind == "connected" and self._meter_down_since_ns is not None:
            self.meter_gaps_s.append((item.t_host_ns - self._meter_down_since_ns) * 1e-9)
            self._meter_down_since_ns = None
        self._write_log(lambda log: log.log_meter_event(item), "meter_event",
                        {"kind": item.kind, "message": item.message})

    # -- the acquisition thread ----------------------------------------------------------------

    def add(self, frame: Frame) -> PulseDose | None:
        """Account for one frame (see the module docstring); returns its pulse record."""
        pulse = self.accumulator.add(frame)
        if pulse is not None and pulse.measured:
            self._check_measured(pulse)
        for alarm in self.alarms.update(self.accumulator.totals(), frame.t_s):
            self._raise(alarm)
        return pulse

    def totals(self) -> DoseTotals:
        totals = self.accumulator.totals()
        with self._lock:
            if self._meter_state is None:
                return totals
            measured = totals.dap_gycm2
            if self._meter_total_gycm2 is not None and self._meter_baseline_gycm2 is not None:
                measured = self._meter_total_gycm2 - self._meter_baseline_gycm2
            return replace(totals, dap_gycm2=measured, dap_model_gycm2=totals.dap_gycm2,
                           meter_state=self._meter_state)

    # -- any thread ----------------------------------------------------------------------------

    def take_new_alarms(self) -> list[Alarm]:
        """Alarms raised since the last call (for a display that announces each once)."""
        with self._lock:
            alarms, self._new_alarms = self._new_alarms, []
        return alarms

    def acknowledge(self, user: str, key: str | None = None) -> list[Acknowledgement]:
        """Acknowledge one alarm (or every active one) as ``user``; each is logged."""
        acks = self.alarms.acknowledge(key, user)
        for ack in acks:
            self._write_log(lambda log, a=ack: log.log_ack(a.key, a.user),
                            "ack", {"key": ack.key, "user": ack.user, "t_wall_s": ack.t_wall_s})
        return acks

    def close(self) -> Head | None:
        """End the procedure: write the end row with the final totals (unless the log failed,
        which leaves the procedure marked incomplete) and return the chain head as an anchor."""
        head = None
        if self.log is not None and self._sink is not None and self._sink.failure is None:
            try:
                head = self.log.end_procedure(self.totals())
            except Exception as exc:
                self._sink.failure = f"{self.log.path}: {type(exc).__name__}: {exc}"
        if self._sink is not None:
            self._sink.close()
        return head

    # -- internals -----------------------------------------------------------------------------

    def _check_measured(self, pulse: PulseDose) -> None:
        """Measured values a source reported with the pulse, against the model."""
        self._check_ratio("kar_mgy", pulse.kar_mgy, pulse.kar_model_mgy, pulse.t_s)
        self._check_ratio("dap_gycm2", pulse.dap_gycm2, pulse.dap_model_gycm2, pulse.t_s)

    def _check_ratio(self, quantity: str, measured: float, model: float, t_s: float,
                     minimum: float = 0.0) -> None:
        """21 CFR 1020.32(k): warn once per quantity when measured and modelled disagree by more
        than the site's tolerance (both must exceed ``minimum`` to be compared)."""
        if quantity in self._mismatch_raised or model <= minimum or measured <= minimum:
            return
        tolerance = self.site.measured_model_tolerance
        ratio = measured / model
        if abs(ratio - 1.0) > tolerance:
            self._mismatch_raised.add(quantity)
            info = KINDS["calibration"]
            self._raise(Alarm(
                key=f"{info.key_prefix}_{quantity}", kind="calibration", quantity=quantity,
                threshold=tolerance, value=ratio, t_s=t_s,
                message=(f"{info.title}: measured {quantity} is {ratio:.2f}× the modelled "
                         f"value (tolerance ±{tolerance:.0%}){info.advice}"),
                severity=info.severity, requires_ack=False, citation=info.citation))

    def _raise(self, alarm: Alarm) -> None:
        with self._lock:
            self._new_alarms.append(alarm)
        self._write_log(
            lambda log: log.log_alarm(alarm.key, alarm.quantity, alarm.threshold, alarm.value,
                                      alarm.t_s, alarm.message),
            "alarm", {"key": alarm.key, "quantity": alarm.quantity, "threshold": alarm.threshold,
                      "value": alarm.value, "t_s": alarm.t_s, "message": alarm.message})

    def _write_log(self, write_log: Callable[[DoseLog], None], kind: str,
                   data: dict[str, Any]) -> None:
        """Write an alarm or acknowledgement row; on failure, to the journal, and say so."""
        sink = self._sink
        if self.log is None or sink is None:
            return
        if sink.failure is None:
            try:
                sink.check_file()
                write_log(self.log)
                return
            except Exception as exc:
                sink.failure = f"{self.log.path}: {type(exc).__name__}: {exc}"
        try:
            sink.journal_write(lambda j: j.write(kind, data, self.procedure_uid))
        except DoseLogFailed as exc:
            self.accumulator.mark_log_error(str(exc))
