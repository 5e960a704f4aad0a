"""``fluoro bench``: stream frames through the pipeline and measure it (JSON of DESIGN.md).

The frames are read from the source *before* the clock starts (pre-rendered), so the source is
never what is measured. Two passes over the same frames:

1. **capacity**: frames handed over as fast as the pipeline takes them, the queue blocking
   instead of dropping -> ``throughput_fps`` (frames / wall time, first hand-off to last result);
2. **paced**: frames handed over at ``fps`` (one pulse interval apart, as a C-arm delivers them),
   the queue dropping oldest as in live use -> ``latency_ms``, ``stages_ms``,
   ``frames_dropped_processing`` and the ``dose`` section.

Before them, when scorers are given, an untimed **quality** pass runs the stages over every
frame in order (as the capacity pass would, without threads) and hands each frame and its
output to the scorers, which fill the ``denoise`` and ``tracking`` sections against the truth.

Both timed passes run the real dose path: every pulse is committed to an SQLite dose log (in a
temporary folder) before its frame is queued, and the ``dose`` section is read back from that
log, so ``pulses_logged`` counts what was durably committed.

Sections are present only when measured (DESIGN.md): nothing is filled with placeholders.
"""

from __future__ import annotations

import json
import os
import platform
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any, Protocol

from fluoro.dose.siteconfig import load_site_config
from fluoro.doselog import DoseLog, ProcedureInfo, ProcedureSummary
from fluoro.frame import EndOfStream, Frame, FrameSource, SourceInfo, Stage, WorkItem
from fluoro.imaging.preview import save_png
from fluoro.session.engine import DoseEngine
from fluoro.stream.pipeline import Pipeline, StageRunner
from fluoro.stream.prerendered import PrerenderedSource

PROGRESS = Callable[[int, int, str], None]  # (done, total, label)


class Scorer(Protocol):
    """Scores stage output against the truth for one section of the report (``section_name``:
    ``"denoise"``, ``"tracking"``). ``add`` sees every beam-on frame, in order, after the stages
    ran on it; ``section`` returns the section, or None when nothing could be measured (no truth),
    so the section is left out rather than filled with placeholders."""

    section_name: str

    def add(self, frame: Frame, item: WorkItem) -> None: ...

    def section(self) -> dict[str, Any] | None: ...


@dataclass(frozen=True, slots=True)
class BenchConfig:
    source_url: str
    frames: int
    fps: float
    scenario: str | None = None
    json_path: Path | None = None
    save_frames_dir: Path | None = None
    noise_quanta: float | None = None  # add Poisson noise to a non-simulated source's frames
    seed: int = 1
    baselines: bool = False
    baseline_frames: int = 8  # the slow baselines (OpenCV NLM) run on this many frames


def prerender(source: FrameSource, count: int,
              progress: PROGRESS | None = None) -> tuple[list[Frame], float]:
    """Read up to ``count`` frames from ``source``; returns them and the source's frames/s."""
    frames: list[Frame] = []
    t0 = time.perf_counter()
    try:
        while len(frames) < count:
            try:
                frame = source.read(1.0)
            except EndOfStream:
                break
            if frame is not None:
                frames.append(frame)
                if progress:
                    progress(len(frames), count, "rendering frames")
    finally:
        source.close()
    elapsed_s = time.perf_counter() - t0
    return frames, (len(frames) / elapsed_s if elapsed_s > 0 else float("inf"))


@dataclass(frozen=True, slots=True)
class _Pass:
    pipe: Pipeline
    elapsed_s: float
    logged: ProcedureSummary  # the procedure as the durable dose log holds it


def _run_pass(frames: Sequence[Frame], info: SourceInfo, stages: Sequence[Stage],
              fps: float | None, drop_when_full: bool, label: str,
              progress: PROGRESS | None) -> _Pass:
    """One pass with the real dose path: a dose engine committing every pulse to an SQLite
    dose log (in a temporary folder), exactly as ``fluoro run`` does."""
    with tempfile.TemporaryDirectory(prefix="fluoro-bench-") as folder:
        log = DoseLog.create_or_open(Path(folder) / "bench-dose-log.sqlite")
        engine = DoseEngine(load_site_config(None), log,
                            ProcedureInfo(patient_key=None, procedure_name=f"fluoro bench {label}"))
        pipe = Pipeline(PrerenderedSource(frames, info, fps), stages, engine,
                        drop_when_full=drop_when_full)
        pipe.warm_up()
        t0 = time.perf_counter()
        pipe.start()
        while not pipe.join(0.2):
            if progress:
                progress(pipe.stats().frames_received, len(frames), label)
        elapsed_s = time.perf_counter() - t0
        engine.close()
        (logged,) = log.procedures()
        log.close()
    if progress:
        progress(len(frames), len(frames), label)
    return _Pass(pipe, elapsed_s, logged)


def _pct(summary: dict[str, float], keys: Sequence[str]) -> dict[str, float]:
    return {k: round(summary[k], 4) for k in keys}


def _dose_section(frames: Sequence[Frame], paced: _Pass) -> dict[str, Any]:
    """Pulses the source emitted against what the dose log committed (read back from it)."""
    logged = paced.logged
    seqs = [f.seq for f in frames]
    lost = sum(max(0, b - a - 1) for a, b in pairwise(seqs))
    emitted = sum(1 for f in frames if f.beam_on) + lost
    section: dict[str, Any] = {
        "pulses_emitted": emitted,
        "pulses_logged": logged.pulses + logged.missing_pulses,
        "pulses_missing_estimated": logged.missing_pulses,
        "irradiation_events": logged.events,
        "kar_mgy": round(logged.kar_mgy, 6),
        "dap_gycm2": round(logged.dap_gycm2, 6),
        "fluoro_time_s": round(logged.fluoro_time_s, 3),
    }
    if paced.pipe.stats().dose.log_error:
        section["log_error"] = paced.pipe.stats().dose.log_error
    truths = [f.truth for f in frames if f.truth is not None]
    if truths and len(truths) == len(frames):
        section["kar_truth_mgy"] = round(sum(t.kar_mgy for t in truths), 6)
        section["dap_truth_gycm2"] = round(sum(t.dap_gycm2 for t in truths), 6)
    return section


def quality_pass(frames: Sequence[Frame], stages: Sequence[Stage], scorers: Sequence[Scorer],
                 progress: PROGRESS | None = None) -> dict[str, dict[str, Any]]:
    """Run ``stages`` over every frame in order and return the scorers' sections."""
    runner = StageRunner(stages)
    runner.warm_up(frames[0].shape)
    for i, frame in enumerate(frames):
        item, _ = runner.run(frame)
        if frame.beam_on:
            for scorer in scorers:
                scorer.add(frame, item)
        if progress:
            progress(i + 1, len(frames), "quality pass")
    return {s.section_name: section for s in scorers if (section := s.section()) is not None}


def run_bench(cfg: BenchConfig, source: FrameSource, stages_factory: Callable[[], list[Stage]],
              progress: PROGRESS | None = None,
              scorers_factory: Callable[[], list[Scorer]] | None = None) -> dict[str, Any]:
    """Run the passes and return the benchmark report (DESIGN.md "Benchmark JSON")."""
    info = source.info
    frames, source_fps = prerender(source, cfg.frames, progress)
    if not frames:
        raise ValueError(f"{cfg.source_url}: the source gave no frames")
    if cfg.noise_quanta is not None:  # the source's frames become the clean truth
        from fluoro.bench.add_noise import add_poisson_noise

        frames = add_poisson_noise(frames, cfg.noise_quanta, cfg.seed)
    if cfg.save_frames_dir is not None:
        save_frames(frames, cfg.save_frames_dir, cfg.scenario or "source")

    scored: dict[str, dict[str, Any]] = {}
    if scorers_factory is not None:
        stages = stages_factory()
        scored = quality_pass(frames, stages, scorers_factory(), progress)
        for stage in stages:  # a stage's state held between frames, beside its scores
            held = getattr(stage, "state_bytes", None)
            if isinstance(held, int) and stage.name in scored:
                scored[stage.name]["state_bytes"] = held
    capacity = _run_pass(frames, info, stages_factory(), None, False, "capacity pass", progress)
    paced = _run_pass(frames, info, stages_factory(), cfg.fps, True,
                      f"paced pass at {cfg.fps:g}/s", progress)
    stats = paced.pipe.stats()
    h, w = frames[0].shape
    report: dict[str, Any] = {
        "source": cfg.source_url,
        "scenario": cfg.scenario,
        "size": [h, w],
        "frames": len(frames),
        "fps_target": cfg.fps,
        "throughput_fps": round(capacity.pipe.stats().frames_processed / capacity.elapsed_s, 2),
        "source_fps": round(source_fps, 2),
    }
    if stats.latency_ms is not None:
        report["latency_ms"] = _pct(stats.latency_ms, ("p50", "p95", "p99", "max"))
    report["stages_ms"] = {name: _pct(s, ("p50", "p99")) for name, s in stats.stages_ms.items()}
    report["frames_dropped_processing"] = stats.frames_dropped
    report.update(scored)
    if cfg.baselines:
        from fluoro.bench.denoise_baselines import run_baselines
        from fluoro.imaging.denoise import Denoiser

        # our own denoiser scored on the same frames, for a like-for-like comparison
        report["baselines"] = run_baselines(frames, cfg.baseline_frames, progress,
                                            stage_factory=Denoiser)
    report["dose"] = _dose_section(frames, paced)
    report["machine"] = {"cpus": os.cpu_count(), "python": platform.python_version(),
                         "platform": platform.platform()}
    for name, run in (("capacity", capacity), ("paced", paced)):
        if run.pipe.stats().error:
            report.setdefault("errors", {})[name] = run.pipe.stats().error
    if cfg.json_path is not None:
        cfg.json_path.parent.mkdir(parents=True, exist_ok=True)
        cfg.json_path.write_text(json.dumps(report, indent=2) + "\n")
    return report


def save_frames(frames: Sequence[Frame], directory: Path, label: str) -> list[Path]:
    """Save the last frame (and, when known, its noise-free truth) as PNG pictures."""
    last = next((f for f in reversed(frames) if f.beam_on), frames[-1])
    paths = [save_png(last.pixels, directory / f"{label}_frame{last.seq:05d}.png")]
    if last.truth is not None and last.truth.clean is not None:
        clean_path = directory / f"{label}_frame{last.seq:05d}_clean.png"
        paths.append(save_png(last.truth.clean, clean_path))
    return paths


def summary_lines(report: dict[str, Any]) -> list[str]:
    """A human-readable digest of a report, one fact a line."""
    lines = [f"source {report['source']}  {report['size'][1]}x{report['size'][0]}  "
             f"{report['frames']} frames  target {report['fps_target']:g} pulses/s",
             f"throughput {report['throughput_fps']:.1f} frames/s (capacity pass); "
             f"source rendered at {report['source_fps']:.1f} frames/s"]
    if "latency_ms" in report:
        lat = report["latency_ms"]
        lines.append(f"latency ms  p50 {lat['p50']:.2f}  p95 {lat['p95']:.2f}  "
                     f"p99 {lat['p99']:.2f}  max {lat['max']:.2f}")
    for name, s in report["stages_ms"].items():
        lines.append(f"stage {name:<12} p50 {s['p50']:.3f} ms  p99 {s['p99']:.3f} ms")
    lines.append(f"frames dropped by processing: {report['frames_dropped_processing']}")
    dose = report["dose"]
    truth = ""
    if "kar_truth_mgy" in dose:
        truth = f" (truth {dose['kar_truth_mgy']:.4f} mGy, {dose['dap_truth_gycm2']:.5f} Gy·cm²)"
    lines.append(f"dose: pulses emitted {dose['pulses_emitted']}, logged {dose['pulses_logged']}; "
                 f"Ka,r {dose['kar_mgy']:.4f} mGy, DAP {dose['dap_gycm2']:.5f} Gy·cm²{truth}; "
                 f"fluoro time {dose['fluoro_time_s']:.1f} s")
    if "denoise" in report:
        dn = report["denoise"]
        line = (f"denoise: PSNR {dn['psnr_in_db']:.2f} -> {dn['psnr_out_db']:.2f} dB, "
                f"SSIM {dn['ssim_in']:.3f} -> {dn['ssim_out']:.3f}")
        if "needle_cnr_retained" in dn:
            line += f", needle CNR retained {dn['needle_cnr_retained']:.3f}"
        if "state_bytes" in dn:
            line += f", state {dn['state_bytes'] / 2**20:.1f} MiB"
        lines.append(line)
    for name, entry in report.get("baselines", {}).items():
        if "psnr_out_db" in entry and entry.get("ms_per_frame") is not None:
            lines.append(f"baseline {name:<18} PSNR {entry['psnr_out_db']:.2f} dB  "
                         f"SSIM {entry['ssim_out']:.3f}  {entry['ms_per_frame']:.1f} ms/frame  "
                         f"({entry['frames']} frames)")
    return lines


def default_scorers() -> list[Scorer]:
    """The scorers of the stages of ``fluoro.stream.pipeline.default_stages``: the ``denoise``
    and ``tracking`` sections."""
    from fluoro.bench.denoise_score import DenoiseScorer
    from fluoro.bench.tracking_score import TrackingScorer

    return [DenoiseScorer(), TrackingScorer()]
