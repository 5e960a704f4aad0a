"""``SimulatedCArm``: a pulsed mobile C-arm imaging a lumbar spine during transforaminal
injections; a ``fluoro.frame.FrameSource`` with truth.

Timeline (simulated seconds from the first pulse): the procedure runs in cycles, one needle
pass each. A cycle starts with a short scout shot (no needle yet), then pedal presses of
2–8 s on / 1–3 s off until the needle has reached its target and dwelt there; then the needle
is withdrawn and the next cycle (another level or side) begins. During a press, pulses come
every ``1/fps`` s; at each release one beam-off frame (last-image hold, no dose) follows.
In the off gaps nothing is emitted; ``realtime=1`` really waits through them.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace

import numpy as np

from drivers.sim import _kernels as kernels
from drivers.sim.anatomy import level
from drivers.sim.config import SimConfig
from drivers.sim.detector import DetectorModel
from drivers.sim.geometry import OBLIQUE_VIEW_DEG
from drivers.sim.needle import NeedlePlan, needle_patch, target_point
from drivers.sim.scene import breathing_shift_mm, build_scene
from drivers.sim.technique import AutomaticBrightnessControl, draw_event_s, pulse_times_s
from fluoro.dose.model import pulse_dap_gycm2, pulse_kar_mgy
from fluoro.frame import EndOfStream, Frame, SourceInfo, Truth, now_ns

DWELL_S = 6.0  # the needle stays at the target this long before the cycle ends
NO_NEEDLE_CYCLE_S = 25.0

_TARGETS = {  # (level, side) of successive cycles; side +1 = image right
    ("clean-spine", "ap"): (("L4", 1.0), ("L5", -1.0), ("L3", 1.0), ("L4", -1.0)),
    ("clean-spine", "oblique"): (("L4", 1.0), ("L5", 1.0), ("L3", 1.0)),
    ("fusion-hardware", "ap"): (("L3", 1.0), ("L3", -1.0)),
    ("fusion-hardware", "oblique"): (("L3", 1.0),),
}


@dataclass(frozen=True, slots=True)
class _Pulse:
    t_s: float
    beam_on: bool
    first_in_event: bool
    plan: NeedlePlan | None


@dataclass(frozen=True, slots=True)
class DoseTotals:
    """True dose of every pulse so far, delivered or lost in transmission."""

    pulses: int
    pulses_lost: int
    kar_mgy: float
    dap_gycm2: float
    fluoro_time_s: float


class SimulatedCArm:
    """A deterministic simulated C-arm; see ``drivers.sim`` for the URL parameters."""

    def __init__(self, config: SimConfig, url: str | None = None) -> None:
        self.config = config
        view_deg = OBLIQUE_VIEW_DEG if config.view == "oblique" else 0.0
        self._scene = scene = build_scene(
            config.size, view_deg, config.scenario == "fusion-hardware", config.seed
        )
        g = scene.geometry
        self.detector = DetectorModel.for_image(g.spacing_mm, config.quanta)
        self._abc = AutomaticBrightnessControl(
            config.quanta, config.fps, scene.roi_reference, scene.area_rp_cm2
        )
        n = config.size
        self.info = SourceInfo(
            url=url or config.url(),
            description=(
                f"simulated mobile C-arm, lumbar spine {config.view.upper()} "
                f"({config.scenario}), {n}x{n}, {config.fps:g} pulses/s, "
                f"{g.spacing_mm:.3f} mm pixels at the detector (x{g.px_per_mm * g.spacing_mm:.2f}"
                " magnification at the isocentre)"
            ),
            shape=(n, n),
            nominal_fps=config.fps,
            pixel_spacing_mm=(g.spacing_mm, g.spacing_mm),
            has_truth=True,
        )
        self._timeline_rng = np.random.default_rng([config.seed, 11])
        self._loss_rng = np.random.default_rng([config.seed, 12])
        self._breath_phase = float(np.random.default_rng([config.seed, 13]).uniform(0, 2 * math.pi))
        self._counts = np.empty((n, n), np.float32)
        self._rows = np.empty((n, n), np.float32)
        self._lag = np.zeros((n, n), np.float32)
        self._lam = np.empty((n, n), np.float32)
        self._poisson_tables = kernels.make_poisson_tables()
        self._pulses = self._pulse_stream()
        self._next_seq = 0
        self._emitted = 0
        self._pending: Frame | None = None
        self._t0_ns: int | None = None
        self._last: Frame | None = None
        self._closed = False
        self._pulses_total = 0
        self._pulses_lost = 0
        self._kar_total_mgy = 0.0
        self._dap_total_gycm2 = 0.0

    # -- FrameSource -------------------------------------------------------------------------
    def read(self, timeout_s: float = 0.1) -> Frame | None:
        """The next frame; in real-time mode waits for its pulse (at most ``timeout_s``, then
        None). Raises ``EndOfStream`` after ``frames`` frames or once closed."""
        if self._closed or (self.config.frames is not None and self._emitted >= self.config.frames):
            raise EndOfStream(self.info.url)
        if self._pending is None:
            self._pending = self._next_frame()
        frame = self._pending
        if self.config.realtime:
            if self._t0_ns is None:
                self._t0_ns = now_ns() - int(frame.t_s * 1e9)
            wait_s = (self._t0_ns + frame.t_s * 1e9 - now_ns()) * 1e-9
            if wait_s > timeout_s:
                time.sleep(max(timeout_s, 0.0))
                return None
            if wait_s > 0:
                time.sleep(wait_s)
        self._pending = None
        self._emitted += 1
        return replace(frame, t_host_ns=now_ns())

    def close(self) -> None:
        self._closed = True

    def __enter__(self) -> SimulatedCArm:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __iter__(self) -> Iterator[Frame]:
        """Frames until the end of the stream (waits in real-time mode)."""
        while True:
            try:
                frame = self.read(timeout_s=1.0)
            except EndOfStream:
                return
            if frame is not None:
                yield frame

    def dose_totals(self) -> DoseTotals:
        """True dose of all pulses so far, including those lost in transmission."""
        return DoseTotals(
            pulses=self._pulses_total,
            pulses_lost=self._pulses_lost,
            kar_mgy=self._kar_total_mgy,
            dap_gycm2=self._dap_total_gycm2,
            fluoro_time_s=self._pulses_total / self.config.fps,
        )

    # -- timeline ----------------------------------------------------------------------------
    def _plan(self, cycle: int, scout_end_s: float) -> NeedlePlan | None:
        targets = _TARGETS.get((self.config.scenario, self.config.view))
        if not targets:
            return None
        name, side = targets[cycle % len(targets)]
        start = scout_end_s + float(self._timeline_rng.uniform(0.2, 0.8))
        return NeedlePlan(start, target_point(level(name), side), side, self._timeline_rng)

    def _pulse_stream(self) -> Iterator[_Pulse]:
        rng = self._timeline_rng
        fps = self.config.fps
        t = 0.0
        cycle = 0
        while True:
            plan: NeedlePlan | None = None
            scout = True
            done_s = math.inf
            while t < done_s:
                on_s, off_s = draw_event_s(rng, scout)
                times = pulse_times_s(t, t + on_s, fps)
                for i, tp in enumerate(times):
                    yield _Pulse(float(tp), True, i == 0, plan)
                yield _Pulse(t + on_s, False, False, plan)
                if scout:
                    plan = self._plan(cycle, t + on_s)
                    done_s = (plan.end_s if plan else t + NO_NEEDLE_CYCLE_S) + DWELL_S
                    scout = False
                t += on_s + off_s
            cycle += 1

    # -- rendering ---------------------------------------------------------------------------
    def _next_frame(self) -> Frame:
        while True:
            pulse = next(self._pulses)
            seq = self._next_seq
            self._next_seq += 1
            if not pulse.beam_on:
                return self._hold_frame(pulse, seq)
            frame = self._pulse_frame(pulse, seq)
            if frame is not None:
                return frame

    def _hold_frame(self, pulse: _Pulse, seq: int) -> Frame:
        exposure = self._abc.exposure(beam_on=False)
        last = self._last
        if last is None or last.truth is None:
            n = self.config.size
            pixels = np.zeros((n, n), np.uint16)
            pixels.flags.writeable = False
            truth = Truth(False, None, None, 0.0, 0.0, None)
        else:
            pixels = last.pixels
            truth = replace(last.truth, kar_mgy=0.0, dap_gycm2=0.0)
        spacing = self.info.pixel_spacing_mm
        return Frame(pixels, seq, pulse.t_s, 0, spacing, exposure, truth)

    def _pulse_frame(self, pulse: _Pulse, seq: int) -> Frame | None:
        scene = self._scene
        g = scene.geometry
        cfg = self.config
        exposure = self._abc.exposure()
        quanta = self._abc.quanta
        kar = pulse_kar_mgy(exposure, cfg.calib)
        dap = pulse_dap_gycm2(exposure, cfg.calib)
        self._pulses_total += 1
        self._kar_total_mgy += kar
        self._dap_total_gycm2 += dap
        shift_mm = breathing_shift_mm(pulse.t_s, self._breath_phase)
        lam = self._lam
        kernels.expected_quanta(
            scene.anatomy,
            g.margin_rows,
            shift_mm * g.px_per_mm,
            scene.field,
            scene.scatter,
            quanta,
            lam,
        )
        state = pulse.plan.state(pulse.t_s) if pulse.plan is not None else None
        if state is not None:
            patch, row0, col0 = needle_patch(state, g, shift_mm)
            kernels.apply_needle(lam, scene.scatter, quanta, patch, row0, col0)
        self._abc.measure(kernels.roi_mean(lam, scene.roi))
        if cfg.lose > 0.0 and self._loss_rng.random() < cfg.lose:
            self._pulses_lost += 1
            return None
        kernels.poisson_image(
            lam, kernels.mix_key(cfg.seed, seq, 1), self._poisson_tables, self._counts
        )
        det = self.detector
        n = cfg.size
        kernels.blur_rows(self._counts, det.taps, self._rows)
        pixels = np.empty((n, n), np.uint16)
        kernels.finish_frame(
            self._rows,
            det.taps,
            self._lag,
            0.0 if pulse.first_in_event else det.lag,
            det.gain_dn_per_quantum,
            det.offset_dn,
            det.electronic_noise_dn,
            kernels.mix_key(cfg.seed, seq, 2),
            pixels,
        )
        pixels.flags.writeable = False
        clean = None
        if cfg.clean:
            kernels.blur_rows(lam, det.taps, self._rows)
            clean = np.empty((n, n), np.float32)
            gain, offset = det.gain_dn_per_quantum, det.offset_dn
            kernels.finish_clean(self._rows, det.taps, gain, offset, clean)
            clean.flags.writeable = False
        tip_px = hub_px = None
        visible = False
        if state is not None:
            shift = np.array([0.0, shift_mm, 0.0])
            tip_px = self._in_image(g.project(state.tip_mm + shift))
            hub_px = self._in_image(g.project(state.hub_mm + shift))
            if tip_px is not None:
                visible = bool(scene.inside[round(tip_px[1]), round(tip_px[0])])
        truth = Truth(visible, tip_px, hub_px, kar, dap, clean)
        frame = Frame(pixels, seq, pulse.t_s, 0, self.info.pixel_spacing_mm, exposure, truth)
        self._last = frame
        return frame

    def _in_image(self, xy: tuple[float, float]) -> tuple[float, float] | None:
        x, y = xy
        hi = self.config.size - 1
        if 0.0 <= x <= hi and 0.0 <= y <= hi:
            return (float(x), float(y))
        return None
