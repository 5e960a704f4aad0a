"""The family as a frame source: ``family://CONDITION?seed=1&size=1024&frames=90&realtime=0``.

``FamilyStream`` renders a scene's frames in order (needles drawn per frame onto the shifted
patient layer, then ``render.Detector``), with the truth: ``needle_visible`` (some needle's
shaft is in the field: its tip inside and at least ``MIN_VISIBLE_SHAFT_MM`` of shaft),
``tip_px`` / ``hub_px`` of the active needle (the visible one that moved most recently;
``hub_px`` is where the shaft meets the hub, or where it enters the field when the hub is
outside), ``others`` for the other visible needles, and ``clean``. Dose truth is 0.0: the
family is for tracking, not dose; ``Exposure`` carries a plausible technique. A beam-off
frame (pedal released) repeats the last image and its truth (last-image hold). With
``mirror`` the frame and every x coordinate of the truth are flipped left-right.

URL options: ``seed`` (int, default 1), ``size`` (pixels, 64–4096, default the condition's),
``frames`` (>= 1, default the condition's), ``realtime`` (1: paced at the pulse rate; default
0), ``clean`` (1: attach the noise-free image; default 1).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import replace
from urllib.parse import parse_qsl, urlsplit

import numpy as np

from drivers.family.conditions import CONDITIONS, Condition, with_overrides
from drivers.family.motion import active_needle
from drivers.family.objects import draw_needle
from drivers.family.render import Detector, shift_layer
from drivers.family.scene import Scene, build_scene, noise_rng, visible_shaft
from fluoro.errors import SourceError
from fluoro.frame import EndOfStream, Exposure, Frame, NeedleTruth, SourceInfo, Truth, now_ns

OPTIONS = ("seed", "size", "frames", "realtime", "clean")
MIN_SIZE_PX, MAX_SIZE_PX = 64, 4096


class FamilyStream:
    """The frames of one scene, rendered in order (``next_frame``), or all at once
    (``frames``)."""

    def __init__(self, scene: Scene, want_clean: bool = True) -> None:
        self.scene = scene
        self.want_clean = want_clean
        self.detector = Detector(scene, noise_rng(scene.condition, scene.seed))
        self.index = 0
        self._last: tuple[np.ndarray, Truth] | None = None
        cond = scene.condition
        self._exposure_on = Exposure(
            beam_on=True, kvp=scene.detector.kvp, ma=scene.detector.ma,
            pulse_ms=scene.detector.pulse_ms, sid_mm=round(scene.proj.sid_mm, 1),
            sirp_mm=round(scene.proj.sod_mm - 150.0, 1),
            field_area_cm2=round(scene.field_area_cm2_at_reference(), 2),
            filter_mm_cu=scene.detector.filter_mm_cu, pulse_rate_hz=cond.fps)
        self._exposure_off = replace(self._exposure_on, beam_on=False)

    @property
    def count(self) -> int:
        return self.scene.condition.frames

    def next_frame(self) -> Frame:
        """The next frame (``EndOfStream`` after the last)."""
        if self.index >= self.count:
            raise EndOfStream
        i = self.index
        self.index += 1
        scene = self.scene
        n = scene.size_px
        spacing = (scene.spacing_mm, scene.spacing_mm)
        if not scene.beam_on[i] and self._last is not None:
            pixels, truth = self._last
            self.detector.reset_lag()
            return Frame(pixels, i, scene.t_s(i), now_ns(), spacing, self._exposure_off, truth)
        attenuation = shift_layer(scene.patient_layer, scene.pad_px, n, scene.shift_px(i))
        if scene.fixed_layer is not None:
            attenuation += scene.fixed_layer
        seen: list[tuple[bool, tuple[float, float] | None, tuple[float, float]]] = []
        for pose, setup in zip(scene.needle_poses(i), scene.needles, strict=True):
            if pose is None:
                seen.append((False, None, (0.0, 0.0)))
                continue
            drawn = draw_needle(attenuation, scene.proj, pose[0], pose[1], setup.spec)
            visible, hub = visible_shaft(scene, drawn.shaft_px)
            seen.append((visible, hub, drawn.tip_px))
        pixels, clean = self.detector.expose(attenuation, self.want_clean)
        truth = self._truth(i, seen, clean)
        if scene.mirror:
            pixels = np.ascontiguousarray(pixels[:, ::-1])
        pixels.flags.writeable = False
        self._last = (pixels, truth)
        return Frame(pixels, i, scene.t_s(i), now_ns(), spacing, self._exposure_on, truth)

    def _truth(self, frame: int, seen, clean: np.ndarray | None) -> Truth:
        scene = self.scene
        n = scene.size_px

        def flip(p: tuple[float, float]) -> tuple[float, float]:
            x, y = float(p[0]), float(p[1])
            return ((n - 1) - x, y) if scene.mirror else (x, y)

        visible = [v for v, _, _ in seen]
        plans = [s.plan for s in scene.needles]
        active = active_needle(plans, visible, frame) if plans else None
        if clean is not None and scene.mirror:
            clean = np.ascontiguousarray(clean[:, ::-1])
        if active is None:
            return Truth(False, None, None, 0.0, 0.0, clean)
        others = tuple(NeedleTruth(flip(tip), flip(hub) if hub else None)
                       for k, (v, hub, tip) in enumerate(seen) if v and k != active)
        _, hub, tip = seen[active]
        return Truth(True, flip(tip), flip(hub) if hub else None, 0.0, 0.0, clean, others)

    def frames(self) -> Iterator[Frame]:
        while True:
            try:
                yield self.next_frame()
            except EndOfStream:
                return


def stream(condition: Condition, seed: int = 1, size_px: int | None = None,
           frames: int | None = None, want_clean: bool = True) -> FamilyStream:
    """A ``FamilyStream`` of ``condition`` (optionally at another size or length)."""
    return FamilyStream(build_scene(with_overrides(condition, size_px, frames), seed),
                        want_clean)


class FamilySource:
    """``family://CONDITION?...``: a ``FrameSource`` over a ``FamilyStream`` (see the module
    docstring for the options)."""

    def __init__(self, url: str, condition: Condition, seed: int, realtime: bool,
                 want_clean: bool) -> None:
        self._stream = FamilyStream(build_scene(condition, seed), want_clean)
        scene = self._stream.scene
        self.realtime = realtime
        self._t0: float | None = None
        self.info = SourceInfo(
            url, f"validation family {condition.name} (seed {seed}, {scene.view} view, "
                 f"{scene.spacing_mm:.3f} mm pixels, {condition.frames} frames): "
                 f"{condition.description}",
            (scene.size_px, scene.size_px), condition.fps,
            (scene.spacing_mm, scene.spacing_mm), has_truth=True)

    @property
    def scene(self) -> Scene:
        return self._stream.scene

    def read(self, timeout_s: float = 0.1) -> Frame | None:
        if self.realtime:
            if self._t0 is None:
                self._t0 = time.monotonic()
            due = self._t0 + self._stream.index / self._stream.scene.condition.fps
            wait_s = due - time.monotonic()
            if wait_s > timeout_s:
                time.sleep(timeout_s)
                return None
            if wait_s > 0:
                time.sleep(wait_s)
        return self._stream.next_frame()

    def close(self) -> None:
        pass


def _int_option(url: str, options: dict[str, str], name: str, low: int, high: int,
                default: int) -> int:
    text = options.get(name)
    if text is None:
        return default
    try:
        value = int(text)
    except ValueError:
        value = None
    if value is None or not low <= value <= high:
        raise SourceError(f"{url}: {name} must be an integer from {low} to {high}, "
                          f"got {text!r}")
    return value


def parse_family_url(url: str) -> tuple[Condition, int, bool, bool]:
    """(condition at the URL's size and length, seed, realtime, clean) of a ``family://``
    URL; ``SourceError`` naming the URL and what was expected otherwise."""
    parts = urlsplit(url)
    name = (parts.netloc + parts.path).strip("/")
    if not name:
        raise SourceError(f"{url!r}: expected family://CONDITION, one of "
                          f"{', '.join(CONDITIONS)}")
    if name not in CONDITIONS:
        raise SourceError(f"{url}: unknown condition {name!r}; expected one of "
                          f"{', '.join(CONDITIONS)}")
    try:
        pairs = parse_qsl(parts.query, keep_blank_values=True, strict_parsing=bool(parts.query))
    except ValueError:
        raise SourceError(f"{url}: malformed options {parts.query!r}; expected "
                          "NAME=VALUE&...") from None
    options = dict(pairs)
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        raise SourceError(f"{url}: unknown option(s) {', '.join(unknown)}; expected "
                          f"{', '.join(OPTIONS)}")
    condition = CONDITIONS[name]
    seed = _int_option(url, options, "seed", 0, 2**32 - 1, 1)
    size = _int_option(url, options, "size", MIN_SIZE_PX, MAX_SIZE_PX, condition.size_px)
    frames = _int_option(url, options, "frames", 1, 100_000, condition.frames)
    flags = {}
    for flag, default in (("realtime", False), ("clean", True)):
        value = options.get(flag, "1" if default else "0")
        if value not in ("0", "1"):
            raise SourceError(f"{url}: {flag} must be 0 or 1, got {value!r}")
        flags[flag] = value == "1"
    return with_overrides(condition, size, frames), seed, flags["realtime"], flags["clean"]


def open_family(url: str) -> FamilySource:
    """Open ``family://CONDITION?seed=S&size=N&frames=N&realtime=0|1&clean=0|1``."""
    condition, seed, realtime, clean = parse_family_url(url)
    return FamilySource(url, condition, seed, realtime, clean)
