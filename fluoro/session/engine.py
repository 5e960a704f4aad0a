"""The dose engine of one procedure: accumulator, alarms and the durable dose log together.

The pipeline's acquisition thread calls ``DoseEngine.add(frame)`` for every frame, before any
image processing. In that call, in this order: the accumulator (``fluoro.dose.accumulator``)
models the pulse (``fluoro.dose.model``) and returns its records (a gap, a pulse), which are
committed to the dose log through one ``FailoverWriter`` (``fluoro.doselog.failover``); then
the alarm levels are checked on the new totals (``fluoro.dose.alarms``: 21 CFR 1020.32(h), NCRP
Report No. 168) and each alarm raised is written the same way. Acknowledgements (any thread)
and the DAP meter's readings (its feed thread) go through the same writer.

When the log fails mid-procedure (full disk, file removed) the live image must go on: the
writer sends this and every later record to its fallback journal, the totals keep accumulating
in memory, ``DoseTotals.log_error`` says DOSE LOG FAILED and where the records went, and the
procedure gets no end row, so reports mark it incomplete.
"""

from __future__ import annotations

import threading
from dataclasses import replace

from fluoro.dose.accumulator import DoseAccumulator, DoseTotals, FrameDose, PulseDose
from fluoro.dose.alarms import KINDS, Acknowledgement, Alarm, AlarmEngine
from fluoro.dose.meter import MeterEvent, MeterReading
from fluoro.dose.siteconfig import SiteConfig
from fluoro.doselog import DoseLog, Head, ProcedureInfo
from fluoro.doselog.failover import FailoverWriter
from fluoro.frame import Frame

# Meter and model DAP are compared only once both exceed this: a few pulses' worth of DAP is
# dominated by the meter's resolution and the poll interval.
METER_CHECK_MIN_GYCM2 = 0.05


class DoseEngine:
    """Dose accounting, alarms and logging for one procedure.

    Parameters
    ----------
    site : SiteConfig
        Room calibration (``room_factor``), alarm levels, measured-vs-model tolerance.
    log : DoseLog or None
        The durable log (the engine writes to it, its opener closes it); None: the totals and
        alarms only, nothing is written (tests).
    info : ProcedureInfo or None
        Written as the procedure's first row when a log is given.
    pregnant : bool
        Add the site's pregnancy alarm levels.
    """

    def __init__(self, site: SiteConfig, log: DoseLog | None = None,
                 info: ProcedureInfo | None = None, pregnant: bool = False) -> None:
        self.site = site
        self.alarms = AlarmEngine(site.alarms, pregnant=pregnant)
        self.accumulator = DoseAccumulator(room_factor=site.room_factor)
        self.procedure_uid: str | None = None
        self.writer: FailoverWriter | None = None
        if log is not None:
            self.procedure_uid = log.begin_procedure(info or ProcedureInfo(patient_key=None))
            self.writer = FailoverWriter(log, self.procedure_uid)
        self._mismatch_raised: set[str] = set()
        self.raised: list[Alarm] = []  # every alarm of the procedure, in order
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
            if self.writer is not None:
                self.writer.log_meter_reading(item)
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
        if self.writer is not None:
            self.writer.log_meter_event(item)

    # -- the acquisition thread ----------------------------------------------------------------

    def add(self, frame: Frame) -> FrameDose:
        """Account for one frame (see the module docstring); returns its records once they
        are written."""
        done = self.accumulator.add(frame)
        if self.writer is not None:
            for record in done.records:
                self.writer.append(record)
        if done.pulse is not None and done.pulse.measured:
            self._check_measured(done.pulse)
        for alarm in self.alarms.update(self.accumulator.totals(), frame.t_s):
            self._raise(alarm)
        return done

    def totals(self) -> DoseTotals:
        """The procedure's totals; ``log_error`` set once the dose log has failed, and, with a
        DAP meter, the meter's DAP with the model's beside it."""
        totals = self.accumulator.totals()
        if self.writer is not None and self.writer.failed:
            totals = replace(totals, log_error=self.writer.failure)
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
        if self.writer is not None:
            for ack in acks:
                self.writer.log_ack(ack)
        return acks

    def close(self) -> Head | None:
        """End the procedure: write the end row with the final totals (unless the log failed,
        which leaves the procedure marked incomplete) and return the chain head as an anchor."""
        if self.writer is None:
            return None
        head = self.writer.end_procedure(self.totals())
        self.writer.close()
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
            self.raised.append(alarm)
            self._new_alarms.append(alarm)
        if self.writer is not None:
            self.writer.log_alarm(alarm)
