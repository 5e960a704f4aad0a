"""One live procedure, opened in order and closed in reverse: ``fluoro run``, the window, tests.

``Session(config, openers).run()`` opens, in this order, and closes in the reverse order (also
when opening fails half-way, or the run is interrupted):

1. the **dose log** (an SQLite file, by default in the user's data folder, or the department
   database): a bad log is refused before anything slow starts;
2. the **dose source** (a DAP meter), when one is given;
3. the **frame source**;
4. the **recording** folder, when one is given (so that every bad input is refused before the
   log gets a procedure);
5. the **procedure** in the log (the patient's pseudonymous key and prior dose, the site's
   reference point and calibration) and its **dose engine**; closing writes the end row and
   gives the log's anchor;
6. the meter's **feed** thread and the console acknowledger;
7. the **pipeline**, its kernels compiled before the first frame.

Sources and recorders come from the callables in ``Openers`` (the CLI passes the drivers'), so
this wing never imports a driver. The window talks to the running session through ``pipeline``
(``latest``, ``stats``, ``set_target``) and ``engine`` (alarms, acknowledgements).
"""

from __future__ import annotations

import contextlib
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Protocol, TextIO

from fluoro.console import notice
from fluoro.dose.meter import DoseSource
from fluoro.dose.siteconfig import SiteConfig
from fluoro.doselog import DoseLog, Head, ProcedureInfo
from fluoro.doselog.pseudonym import load_or_create_site_salt, patient_key
from fluoro.frame import Frame, FrameSource, Stage
from fluoro.paths import default_dose_log, site_key_file
from fluoro.session.engine import DoseEngine
from fluoro.session.headless import ConsoleAcknowledger, run_headless, summary_text
from fluoro.session.meter_feed import MeterFeed
from fluoro.stream.pipeline import Pipeline, PipelineStats, default_stages

__all__ = ["Openers", "Recording", "Session", "SessionConfig", "SessionResult"]


class Recording(Protocol):
    """A recorder of the session's frames (``drivers.recording.Recorder``): ``put`` is called
    on the acquisition thread and never blocks; it counts what it wrote and what it skipped."""

    directory: Path
    frames_written: int
    frames_skipped: int
    error: str | None

    def put(self, frame: Frame) -> None: ...

    def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class Openers:
    """How the session opens what lives outside the core: a frame source by URL, a dose source
    by URL, a recorder into a folder."""

    frame_source: Callable[[str], FrameSource]
    dose_source: Callable[[str], DoseSource] | None = None
    recorder: Callable[[Path], Recording] | None = None


@dataclass(frozen=True, slots=True)
class SessionConfig:
    """What one procedure is run with (the options of ``fluoro run``).

    ``dose_log`` None is the default SQLite file in the user's data folder; a
    ``postgresql://`` URL is the department database. ``patient_id`` is never stored, only its
    keyed pseudonym. ``max_frames`` bounds the run (all frames, beam-off frames included).
    """

    source_url: str
    site: SiteConfig
    dose_log: Path | str | None = None
    dose_source_url: str | None = None
    patient_id: str | None = None
    procedure_name: str = ""
    operator: str = ""
    pregnant: bool = False
    record_dir: Path | None = None
    passthrough: bool = False
    max_frames: int | None = None


@dataclass(frozen=True, slots=True)
class SessionResult:
    """How a session ended: the pipeline's final statistics (with the engine's final dose
    totals), the wall time (s), the procedure and the log's anchor (None: the procedure was
    left incomplete), and the summary's rows."""

    source_url: str
    stats: PipelineStats
    wall_s: float
    procedure_uid: str
    head: Head | None
    rows: tuple[tuple[str, str], ...]

    def summary(self) -> str:
        return summary_text(self.source_url, self.stats, self.wall_s, self.rows)


Runner = Callable[["Session"], tuple[PipelineStats, float]]


class Session:
    """One procedure; see the module docstring. Use ``run()``, or ``with session:`` (opens and
    closes) around your own use of ``pipeline`` and ``engine``."""

    def __init__(self, config: SessionConfig, openers: Openers, *,
                 say: Callable[[str], None] = notice,
                 stages: Callable[[], Sequence[Stage]] = default_stages,
                 console: TextIO | None = None) -> None:
        self.config = config
        self.openers = openers
        self._say = say
        self._stages = stages
        self._console_stream = console
        self._closers = contextlib.ExitStack()
        self.log: DoseLog | None = None
        self.meter: DoseSource | None = None
        self.source: FrameSource | None = None
        self.info: ProcedureInfo | None = None
        self.prior_text = ""
        self.engine: DoseEngine | None = None
        self.feed: MeterFeed | None = None
        self.recording: Recording | None = None
        self.console: ConsoleAcknowledger | None = None
        self.pipeline: Pipeline | None = None
        self.head: Head | None = None

    # -- life cycle ----------------------------------------------------------------------------

    def open(self) -> Session:
        """Open everything in order (module docstring); on any failure, close what was opened
        and raise. Bad input (a log, URL or folder) is refused before the slow start-up."""
        with contextlib.ExitStack() as closers:  # closes what was opened if a step fails
            cfg = self.config
            self.log = self._open_log()
            closers.callback(self.log.close)
            if cfg.dose_source_url is not None:
                if self.openers.dose_source is None:
                    raise ValueError("Session: a dose source URL but no dose-source opener")
                self.meter = self.openers.dose_source(cfg.dose_source_url)
                closers.callback(self.meter.close)
            self.source = self.openers.frame_source(cfg.source_url)
            closers.callback(self.source.close)
            if cfg.record_dir is not None:
                if self.openers.recorder is None:
                    raise ValueError("Session: a recording folder but no recorder opener")
                self.recording = self.openers.recorder(cfg.record_dir)
                closers.callback(self.recording.close)
            self.info = self._procedure_info()
            self.engine = DoseEngine(cfg.site, self.log, self.info, pregnant=cfg.pregnant)
            closers.callback(self._end_procedure)
            if self.meter is not None:
                self._say(f"dose source: {self.meter.info.description}")
                self.engine.attach_meter(reset_at_start=self.meter.info.reset_at_start)
                self.feed = MeterFeed(self.meter, self.engine.add_meter).start()
                closers.callback(self.feed.stop)
            if self._console_stream is not None:
                self.console = ConsoleAcknowledger(self._console_stream, self.engine.acknowledge,
                                                   cfg.operator or None).start()
            self.pipeline = Pipeline(
                self.source, [] if cfg.passthrough else self._stages(), dose=self.engine,
                max_frames=cfg.max_frames,
                taps=[self.recording.put] if self.recording is not None else ())
            closers.callback(self.pipeline.stop)
            self._say("compiling kernels ...")
            self.pipeline.warm_up()
            self._closers = closers.pop_all()  # all open: ``close`` runs them in reverse
        return self

    def close(self) -> None:
        """Close everything in the reverse order of opening (idempotent)."""
        self._closers.close()

    def __enter__(self) -> Session:
        return self.open()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- running -------------------------------------------------------------------------------

    def run(self, window: Runner | None = None, *, seconds: float | None = None,
            stop: threading.Event | None = None) -> SessionResult:
        """Run until the source ends, ``seconds`` pass, ``stop`` is set or Ctrl-C (or, with
        ``window``, until the window closes), then close, and return how it ended. Opens the
        session first unless it is open. Headless unless ``window`` is given: a callable that
        runs the window over this open session."""
        if self.pipeline is None:
            self.open()
        try:
            if window is not None:
                stats, wall_s = window(self)
            else:
                stats, wall_s = run_headless(self._running_pipeline(), seconds=seconds,
                                             stop=stop, announcements=self.announcements)
        finally:
            self.close()
        engine = self._running_engine()
        stats = replace(stats, dose=engine.totals())
        return SessionResult(self.config.source_url, stats, wall_s, engine.procedure_uid or "",
                             self.head, tuple(self._summary_rows()))

    def announcements(self) -> list[str]:
        """New alarms (one line each, once) and the console acknowledger's replies."""
        engine = self._running_engine()
        lines = [f"ALARM {a.severity.upper()}: {a.message}" for a in engine.take_new_alarms()]
        if lines and engine.alarms.active():
            bell = "\a" if sys.stderr.isatty() else ""
            lines[-1] += f"  (type: ack [NAME] + Enter){bell}"
        return lines + (self.console.take_lines() if self.console is not None else [])

    # -- internals -----------------------------------------------------------------------------

    def _open_log(self) -> DoseLog:
        target = self.config.dose_log
        if target is None:
            target = default_dose_log()
            target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        return DoseLog.create_or_open(target)

    def _procedure_info(self) -> ProcedureInfo:
        cfg, site, log = self.config, self.config.site, self.log
        assert log is not None
        key = None
        if cfg.patient_id is not None:
            site_key_file().parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            key = patient_key(cfg.patient_id, load_or_create_site_salt(site_key_file()))
            history = log.patient_history(key, weeks=site.history_weeks)
            self.prior_text = (
                f"{history.procedures} earlier procedures in the last {site.history_weeks} "
                f"weeks, Ka,r {history.kar_mgy:.1f} mGy, DAP {history.dap_gycm2:.2f} Gy·cm²")
            self._say(f"patient {key[:8]}…: {self.prior_text}")
        else:
            self._say("no --patient given: logged as a phantom/QA procedure")
        return ProcedureInfo(patient_key=key, procedure_name=cfg.procedure_name,
                             operator=cfg.operator, room=site.room, device=site.device,
                             reference_point=site.reference_point,
                             calibration_factor=site.room_factor,
                             pregnant=True if cfg.pregnant else None)

    def _end_procedure(self) -> None:
        self.head = self._running_engine().close()

    def _running_engine(self) -> DoseEngine:
        if self.engine is None:
            raise RuntimeError("Session: not opened")
        return self.engine

    def _running_pipeline(self) -> Pipeline:
        if self.pipeline is None:
            raise RuntimeError("Session: not opened")
        return self.pipeline

    def _summary_rows(self) -> list[tuple[str, str]]:
        engine = self._running_engine()
        name = self.info.procedure_name if self.info is not None else ""
        raised = [f"ALARM {a.severity.upper()}: {a.message}" for a in engine.raised]
        rows = [("procedure", f"{engine.procedure_uid} ({name or 'unnamed'})"),
                ("dose log", f"{self.log.path if self.log is not None else '-'}"
                             + (f", anchor {self.head}" if self.head else ", INCOMPLETE")),
                ("alarms", f"{len(raised)} raised" + "".join(f"\n{'':12}{a}" for a in raised))]
        if self.feed is not None:
            totals = engine.totals()
            gaps = engine.meter_gaps_s
            rows.append(("meter", f"DAP {totals.dap_gycm2:.5f} Gy·cm² measured, "
                                  f"{totals.dap_model_gycm2 or 0:.5f} modelled; "
                                  f"{len(gaps)} gap(s)"
                                  + (f" ({sum(gaps):.1f} s)" if gaps else "")))
        if self.recording is not None:
            rec = self.recording
            skipped = f", {rec.frames_skipped} NOT recorded" if rec.frames_skipped else ""
            rows.append(("recording", f"{rec.frames_written} frames in {rec.directory}{skipped}"
                                      + (f" ({rec.error})" if rec.error else "")))
        return rows
