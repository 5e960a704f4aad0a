"""The independent validation family (drivers/family): every condition renders, streams are
reproducible, the truth is where the image says it is, the CLI writes recordings that replay
bit-exactly, bad input gets one clear line, and the family shares no code with the simulator.

Small frames (128–384 px) and few frames keep this fast.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO, assert_one_error_line, read_all, run_fluoro

from drivers import open_source
from drivers.family import CONDITIONS, stream
from drivers.family.objects import GAUGE_OD_MM
from drivers.family.scene import Scene
from fluoro.errors import SourceError
from fluoro.frame import EndOfStream


def _bilinear(image: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    x0 = np.clip(np.floor(x).astype(int), 0, image.shape[1] - 2)
    y0 = np.clip(np.floor(y).astype(int), 0, image.shape[0] - 2)
    fx, fy = x - x0, y - y0
    return (image[y0, x0] * (1 - fx) * (1 - fy) + image[y0, x0 + 1] * fx * (1 - fy)
            + image[y0 + 1, x0] * (1 - fx) * fy + image[y0 + 1, x0 + 1] * fx * fy)


def _line_contrast(clean: np.ndarray, points: np.ndarray, normal: np.ndarray,
                   offset_px: float) -> np.ndarray:
    """Relative darkness of ``clean`` on the points against beside them (both sides)."""
    on = _bilinear(clean, points[:, 0], points[:, 1])
    side = 0.5 * (_bilinear(clean, *(points + offset_px * normal).T)
                  + _bilinear(clean, *(points - offset_px * normal).T))
    return (side - on) / np.maximum(side, 1.0)


def _frames(name: str, seed: int = 1, size: int = 160, frames: int = 6, **changes):
    condition = replace(CONDITIONS[name], **changes) if changes else CONDITIONS[name]
    st = stream(condition, seed, size, frames)
    return st.scene, list(st.frames())


@pytest.mark.parametrize("name", list(CONDITIONS))
def test_every_condition_renders_at_a_small_size(name):
    scene, frames = _frames(name, size=128, frames=4)
    assert [f.seq for f in frames] == [0, 1, 2, 3]
    for frame in frames:
        assert frame.pixels.shape == (128, 128) and frame.pixels.dtype == np.uint16
        assert not frame.pixels.flags.writeable
        assert frame.pixels.max() <= 4095 and frame.pixels.min() >= 0
        assert frame.truth.clean.shape == (128, 128) and frame.truth.clean.dtype == np.float32
        assert frame.truth.kar_mgy == 0.0 and frame.truth.dap_gycm2 == 0.0
        assert frame.exposure.kvp > 0 and frame.exposure.pulse_rate_hz == scene.condition.fps
        assert frame.pixel_spacing_mm == (scene.spacing_mm, scene.spacing_mm)
        assert 0.15 <= scene.spacing_mm <= 0.4
    if CONDITIONS[name].needles == 0:
        assert not any(f.truth.needle_visible for f in frames)


def test_the_same_seed_gives_the_same_stream_and_another_seed_another():
    _, a = _frames("mixed-everything", seed=5, frames=8)
    _, b = _frames("mixed-everything", seed=5, frames=8)
    _, c = _frames("mixed-everything", seed=6, frames=8)
    for fa, fb in zip(a, b, strict=True):
        assert np.array_equal(fa.pixels, fb.pixels)
        assert np.array_equal(fa.truth.clean, fb.truth.clean)
        assert (fa.truth.tip_px, fa.truth.hub_px, fa.truth.others) == (
            fb.truth.tip_px, fb.truth.hub_px, fb.truth.others)
        assert fa.exposure == fb.exposure
    assert not np.array_equal(a[0].pixels, c[0].pixels)


@pytest.mark.parametrize(("name", "seed"), [
    ("ap-basic", 1), ("ap-basic", 2), ("oblique-basic", 1), ("lateral-basic", 2),
    ("gauge-18", 3), ("gauge-25", 1), ("gauge-25", 2), ("spacing-0.4", 1), ("spacing-0.15", 2),
])
def test_the_truth_tip_is_where_the_shaft_ends_in_the_clean_image(name, seed):
    scene, frames = _frames(name, seed, size=256, frames=3)
    frame = frames[-1]
    truth = frame.truth
    assert truth.needle_visible
    tip, hub = np.array(truth.tip_px), np.array(truth.hub_px)
    u = (tip - hub) / np.linalg.norm(tip - hub)
    normal = np.array([-u[1], u[0]])
    spec = scene.needles[0].spec
    radius_px = GAUGE_OD_MM[spec.gauge] / 2 * scene.proj.magnification_iso / scene.spacing_mm
    s = np.arange(-12.0, 12.01, 0.1)  # px along the axis, 0 at the true tip
    contrast = _line_contrast(truth.clean, tip + s[:, None] * u, normal,
                              radius_px + 2 * scene.detector.blur_px + 3)
    shaft = contrast[(s > -10) & (s < -4)].mean()
    beyond = contrast[(s > 4) & (s < 10)].mean()
    assert shaft > 0.08, "the shaft is dark before the tip"
    assert abs(beyond) < 0.25 * shaft, "background beyond the tip"
    half = (shaft + beyond) / 2
    crossings = s[np.flatnonzero((contrast[:-1] >= half) & (contrast[1:] < half))]
    assert crossings.size and np.min(np.abs(crossings)) <= 1.0, crossings


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_hub_outside_puts_hub_px_on_the_field_edge(seed):
    scene, frames = _frames("hub-outside", seed, size=256, frames=4)
    for frame in frames:
        assert frame.truth.needle_visible
        x, y = frame.truth.hub_px
        assert abs(float(scene.field.signed_distance(x, y))) <= 1.0, (x, y)
        tip_x, tip_y = frame.truth.tip_px
        assert scene.field.signed_distance(tip_x, tip_y) > 1.0


def test_a_needle_entering_mid_stream_is_absent_first_then_seen():
    for seed in (1, 2, 3):
        scene, frames = _frames("enters-mid-stream", seed, size=192, frames=60)
        enters = scene.needles[0].plan.appear_frame
        assert 15 <= enters <= 40
        assert not any(f.truth.needle_visible for f in frames[:enters])
        assert all(f.truth.tip_px is None for f in frames[:enters])
        assert frames[enters].truth.needle_visible and frames[-1].truth.needle_visible


def test_two_needles_have_one_other_and_three_have_two():
    _, frames = _frames("two-needles", seed=1, size=384, frames=6)
    assert all(f.truth.needle_visible and len(f.truth.others) == 1 for f in frames)
    _, frames = _frames("three-needles", seed=1, size=1024, frames=2)
    assert all(len(f.truth.others) == 2 for f in frames)


def test_only_one_needle_moves_at_a_time():
    for name in ("three-needles", "mixed-mbb", "mixed-everything"):
        for seed in (1, 2, 3):
            scene = stream(CONDITIONS[name], seed, 128, 2).scene
            plans = [n.plan for n in scene.needles]
            for f in range(1, scene.condition.frames):
                moving = [p for p in plans if p.present(f - 1) and p.state(f) != p.state(f - 1)]
                assert len(moving) <= 1, (name, seed, f)


def test_mirror_flips_the_frame_and_the_truth():
    condition = replace(CONDITIONS["two-needles"], mirror=False)
    plain = list(stream(condition, 3, 384, 3).frames())
    flipped = list(stream(replace(condition, mirror=True), 3, 384, 3).frames())
    n = 384
    for a, b in zip(plain, flipped, strict=True):
        assert np.array_equal(a.pixels[:, ::-1], b.pixels)
        assert np.array_equal(a.truth.clean[:, ::-1], b.truth.clean)
        assert b.truth.tip_px == pytest.approx((n - 1 - a.truth.tip_px[0], a.truth.tip_px[1]))
        assert b.truth.hub_px == pytest.approx((n - 1 - a.truth.hub_px[0], a.truth.hub_px[1]))
        for oa, ob in zip(a.truth.others, b.truth.others, strict=True):
            assert ob.tip_px == pytest.approx((n - 1 - oa.tip_px[0], oa.tip_px[1]))


def test_a_pedal_release_holds_the_last_image():
    _scene, frames = _frames("pedal-release", seed=2, size=128, frames=120)
    off = [i for i, f in enumerate(frames) if not f.beam_on]
    assert off and len(off) <= 30 and off[0] >= 5
    for i in off:
        held = next(f for f in reversed(frames[:i]) if f.beam_on)
        assert frames[i].exposure.beam_on is False
        assert np.array_equal(frames[i].pixels, held.pixels)
        assert frames[i].truth == held.truth
        assert frames[i].seq == i
    after = off[-1] + 1
    if after < len(frames):
        assert frames[after].beam_on
        assert not np.array_equal(frames[after].pixels, frames[off[-1]].pixels)


def _kwire_contrast(scene: Scene, clean: np.ndarray, shift_px: np.ndarray) -> float:
    """Mean darkness of the clean image along the K-wire moved by ``shift_px``."""
    points = scene.proj.project(scene.kwires_mm[0])
    a, b = points[0] + shift_px, points[1] + shift_px
    u = (b - a) / np.linalg.norm(b - a)
    line = a + np.linspace(0, float(np.linalg.norm(b - a)), 4000)[:, None] * u
    inside = scene.field.signed_distance(line[:, 0], line[:, 1]) > 8
    return float(np.mean(_line_contrast(clean, line[inside], np.array([-u[1], u[0]]), 6.0)))


def test_the_kwire_moves_only_with_the_anatomy():
    scene, frames = _frames("kwire", seed=2, size=256, frames=40)
    shifts = [scene.shift_px(f.seq) for f in frames]
    moved = max(range(len(frames)), key=lambda i: float(np.linalg.norm(shifts[i] - shifts[0])))
    assert np.linalg.norm(shifts[moved] - shifts[0]) > 3.0  # breathing moved the anatomy
    for i in (0, moved):
        clean = frames[i].truth.clean
        with_anatomy = _kwire_contrast(scene, clean, shifts[i])
        assert with_anatomy > 0.05  # the wire is where the anatomy took it ...
        other = shifts[moved] if i == 0 else shifts[0]
        assert _kwire_contrast(scene, clean, other) < 0.6 * with_anatomy  # ... not elsewhere


def test_a_recording_written_by_the_cli_replays_with_identical_pixels_and_truth(tmp_path):
    out = tmp_path / "rec"
    result = subprocess.run([sys.executable, "-m", "drivers.family", "--condition",
                             "two-needles", "--seed", "1", "--size", "384", "--frames", "5",
                             "--out", str(out)], capture_output=True, text=True, cwd=REPO,
                            timeout=240)
    assert result.returncode == 0, result.stderr
    replayed = read_all(open_source(f"replay:{out}?realtime=0"))
    _, rendered = _frames("two-needles", seed=1, size=384, frames=5)
    assert len(replayed) == len(rendered) == 5
    for a, b in zip(rendered, replayed, strict=True):
        assert np.array_equal(a.pixels, b.pixels)
        assert np.array_equal(a.truth.clean, b.truth.clean)
        assert (a.seq, a.t_s, a.pixel_spacing_mm, a.exposure) == (
            b.seq, b.t_s, b.pixel_spacing_mm, b.exposure)
        assert b.truth.needle_visible == a.truth.needle_visible
        assert b.truth.tip_px == pytest.approx(a.truth.tip_px)
        assert b.truth.hub_px == pytest.approx(a.truth.hub_px)
        assert len(b.truth.others) == len(a.truth.others) == 1
        assert b.truth.others[0].tip_px == pytest.approx(a.truth.others[0].tip_px)


def test_a_family_url_opens_through_the_registry():
    source = open_source("family://ap-basic?seed=3&size=128&frames=3&realtime=0")
    assert source.info.has_truth and source.info.shape == (128, 128)
    assert source.info.nominal_fps == 15.0
    frames = read_all(source)
    assert len(frames) == 3
    with pytest.raises(EndOfStream):
        source.read()
    no_clean = read_all(open_source("family://ap-basic?seed=3&size=128&frames=3&clean=0"))
    assert no_clean[0].truth.clean is None
    assert np.array_equal(no_clean[2].pixels, frames[2].pixels)


@pytest.mark.parametrize(("url", "words"), [
    ("family://no-such-condition", ("unknown condition", "ap-basic")),
    ("family://", ("expected family://CONDITION",)),
    ("family://ap-basic?seed=x", ("seed must be an integer",)),
    ("family://ap-basic?size=10", ("size must be an integer from 64",)),
    ("family://ap-basic?frames=0", ("frames must be an integer",)),
    ("family://ap-basic?realtime=2", ("realtime must be 0 or 1",)),
    ("family://ap-basic?colour=red", ("unknown option(s) colour", "expected seed")),
])
def test_bad_family_urls_are_refused_with_a_clear_line(url, words):
    with pytest.raises(SourceError) as info:
        open_source(url)
    message = str(info.value)
    assert "\n" not in message
    for word in words:
        assert word in message


def test_bad_input_on_the_command_lines_gives_one_line_and_status_2(tmp_path):
    assert_one_error_line(run_fluoro("bench", "--source", "family://nope"),
                          "family://nope", "unknown condition")

    def family(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "drivers.family", *args],
                              capture_output=True, text=True, cwd=REPO, timeout=120)

    assert_one_error_line(family("--condition", "nope", "--out", str(tmp_path / "a")),
                          "unknown condition 'nope'")
    assert_one_error_line(family("--condition", "ap-basic", "--size", "abc", "--out",
                                 str(tmp_path / "b")), "--size")
    assert_one_error_line(family("--condition", "ap-basic"), "--out")
    assert_one_error_line(family("--list", "--frobnicate"), "--frobnicate")
    listing = family("--list")
    assert listing.returncode == 0
    assert len(listing.stdout.splitlines()) == len(CONDITIONS)


def test_the_family_imports_nothing_from_the_simulator():
    package = REPO / "drivers" / "family"
    files = sorted(package.glob("*.py"))
    assert len(files) >= 8
    for path in files:
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                assert node.level == 0 or not (node.module or "").startswith("sim"), path
                names = [node.module or ""]
            else:
                continue
            for name in names:
                assert not (name == "drivers.sim" or name.startswith("drivers.sim.")), (
                    f"{Path(path).name} imports {name}")
