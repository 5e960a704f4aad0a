"""The simulated C-arm (``sim://spine``): determinism, frame contract, truth, noise, faults."""

from __future__ import annotations

import itertools
import time

import cv2
import numpy as np
import pytest

from drivers.registry import open_source
from drivers.sim import SimConfig, SimulatedCArm, open_sim
from drivers.sim.geometry import Geometry
from drivers.sim.hardware import hardware_primitives
from drivers.sim.scene import breathing_margin_rows
from fluoro.dose.model import pulse_dap_gycm2, pulse_kar_mgy
from fluoro.errors import SourceError
from fluoro.frame import EndOfStream, Frame, FrameSource
from fluoro.imaging.preview import save_png

FAST = "realtime=0&size=256"


def frames(url: str, n: int) -> list[Frame]:
    with open_sim(url) as sim:
        return [sim.read() for _ in range(n)]


def first_event(frames_: list[Frame]) -> list[Frame]:
    """Frames up to and including the first beam-off (pedal release) frame."""
    out = []
    for f in frames_:
        out.append(f)
        if not f.exposure.beam_on:
            return out
    raise AssertionError("no pedal release in these frames")


@pytest.fixture(scope="module")
def stream() -> list[Frame]:
    """A few hundred frames of the default scenario: scout, insertion, redirect, target."""
    return frames(f"sim://spine?{FAST}&seed=3", 420)


def test_same_seed_same_pixels_other_seed_differs():
    a = frames(f"sim://spine?{FAST}&seed=5&clean=0", 6)
    b = frames(f"sim://spine?{FAST}&seed=5&clean=0", 6)
    c = frames(f"sim://spine?{FAST}&seed=6&clean=0", 6)
    for fa, fb in zip(a, b, strict=True):
        assert fa.seq == fb.seq and fa.t_s == fb.t_s
        np.testing.assert_array_equal(fa.pixels, fb.pixels)
    assert not np.array_equal(a[-1].pixels, c[-1].pixels)


def test_frame_contract(stream):
    f = stream[50]
    assert f.pixels.dtype == np.uint16 and f.pixels.shape == (256, 256)
    assert not f.pixels.flags.writeable
    with pytest.raises(ValueError):
        f.pixels[0, 0] = 1
    assert all(int(g.pixels.max()) <= 4095 for g in stream)
    assert f.pixel_spacing_mm == pytest.approx((1.0, 1.0))
    assert f.truth.clean.dtype == np.float32 and f.truth.clean.shape == (256, 256)
    assert not f.truth.clean.flags.writeable
    seqs = [g.seq for g in stream]
    assert seqs == list(range(len(stream)))  # nothing lost by default
    times = [g.t_s for g in stream]
    assert all(t1 > t0 for t0, t1 in itertools.pairwise(times))
    hosts = [g.t_host_ns for g in stream]
    assert hosts == sorted(hosts)


def test_soft_tissue_level_and_bone_darker(stream):
    clean = stream[20].truth.clean  # scout, ABC settled
    centre = clean[96:160, 96:160]
    assert 1200 < np.median(clean[clean > 1000]) < 2600
    # the spine (centre columns) is darker than the paraspinal soft tissue
    assert np.median(centre[:, 28:36]) < 0.9 * np.median(clean[96:160, 200:216])


def test_needle_absent_in_scout_then_tip_moves_inside_image(stream):
    scout = first_event(stream)
    assert all(not f.truth.needle_visible and f.truth.tip_px is None for f in scout)
    later = [f for f in stream[len(scout) :] if f.exposure.beam_on]
    tips = [f.truth.tip_px for f in later if f.truth.needle_visible]
    assert len(tips) > 0.8 * len(later)
    for x, y in tips:
        assert 0 <= x <= 255 and 0 <= y <= 255
    travel = np.hypot(*(np.array(tips[-1]) - np.array(tips[0])))
    assert travel > 10  # pixels: the needle advanced towards its target


def test_needle_darkens_its_own_pixels(stream):
    f = next(f for f in reversed(stream) if f.truth.needle_visible and f.truth.hub_px)
    clean = f.truth.clean
    tip = np.array(f.truth.tip_px)
    hub = np.array(f.truth.hub_px)
    axis = (tip - hub) / np.linalg.norm(tip - hub)
    normal = np.array([-axis[1], axis[0]])
    ratios = []
    for t in np.linspace(0.1, 0.9, 9):
        p = tip + t * (hub - tip) * 0.6  # the inserted part, between tip and skin
        on = clean[round(p[1]), round(p[0])]
        off = [clean[round(q[1]), round(q[0])] for q in (p + 4 * normal, p - 4 * normal)]
        ratios.append(on / np.mean(off))
    assert np.median(ratios) < 0.85


def test_pedal_release_frames_hold_last_image_without_dose(stream):
    releases = [i for i, f in enumerate(stream) if not f.exposure.beam_on]
    assert len(releases) >= 3
    for i in releases:
        f, before = stream[i], stream[i - 1]
        assert f.truth.kar_mgy == 0.0 and f.truth.dap_gycm2 == 0.0
        assert f.exposure.ma == 0.0
        np.testing.assert_array_equal(f.pixels, before.pixels)
        assert f.truth.tip_px == before.truth.tip_px
    # the off gap is real time: the next pulse comes at least a second later
    i = releases[0]
    assert stream[i + 1].t_s - stream[i].t_s >= 1.0


def test_truth_dose_is_the_dose_model_times_calib():
    with open_sim(f"sim://spine?{FAST}&calib=1.25&clean=0") as sim:
        for _ in range(20):
            f = sim.read()
            e = f.exposure
            if e.beam_on:
                assert f.truth.kar_mgy == pytest.approx(pulse_kar_mgy(e, 1.25))
                assert f.truth.dap_gycm2 == pytest.approx(pulse_dap_gycm2(e, 1.25))
                assert 70 <= e.kvp <= 95 and 0 < e.ma <= 20 and 3 <= e.pulse_ms <= 15
                assert e.pulse_rate_hz == 15
        totals = sim.dose_totals()
    assert totals.pulses == 20 and totals.kar_mgy > 0


def test_dose_rate_is_clinical_at_defaults(stream):
    on = [f for f in stream[40:] if f.exposure.beam_on]
    kar_per_min = np.mean([f.truth.kar_mgy for f in on]) * 15 * 60
    dap_per_min = np.mean([f.truth.dap_gycm2 for f in on]) * 15 * 60
    assert 5 < kar_per_min < 25  # mGy/min, lumbar spine on a mobile C-arm
    assert 0.5 < dap_per_min < 3  # Gy·cm²/min


def test_lost_frames_skip_sequence_numbers():
    got = frames(f"sim://spine?{FAST}&lose=0.3&clean=0&seed=2", 60)
    seqs = [f.seq for f in got]
    assert seqs == sorted(set(seqs))
    gaps = np.diff(seqs)
    assert (gaps > 1).sum() >= 5
    assert seqs[-1] >= 60 + 5


def test_no_needle_scenario_never_shows_a_needle():
    for f in frames(f"sim://spine?{FAST}&scenario=no-needle&clean=0", 150):
        assert not f.truth.needle_visible and f.truth.tip_px is None and f.truth.hub_px is None


def test_fusion_hardware_is_dark_straight_metal_but_not_the_needle():
    hw = frames(f"sim://spine?{FAST}&scenario=fusion-hardware", 3)
    plain = frames(f"sim://spine?{FAST}&scenario=no-needle", 3)
    assert all(not f.truth.needle_visible for f in hw)  # scout: rods and screws only
    geometry = Geometry(256, 0.0, breathing_margin_rows(256))
    rods = hardware_primitives(geometry).rods()
    # the longitudinal rods: long, nearly vertical segments
    long_rods = [
        r for r in rods if abs(r[3] - r[1]) > 20 and abs(r[2] - r[0]) < 0.3 * abs(r[3] - r[1])
    ]
    assert len(long_rods) >= 2
    for r in long_rods:
        rows = np.linspace(r[1], r[3], 8)[2:-2] - geometry.margin_rows
        cols = np.interp(rows + geometry.margin_rows, [r[1], r[3]], [r[0], r[2]])
        on = [hw[0].truth.clean[round(y), round(x)] for x, y in zip(cols, rows, strict=True)]
        ref = [plain[0].truth.clean[round(y), round(x)] for x, y in zip(cols, rows, strict=True)]
        assert np.max(np.array(on) / np.array(ref)) < 0.5


def _flat_soft_tissue(clean: np.ndarray) -> np.ndarray:
    smooth = cv2.GaussianBlur(clean, (0, 0), 2.0)
    lap = np.abs(cv2.Laplacian(smooth, cv2.CV_32F, ksize=3))
    mask = (clean > 600) & (clean < 3500) & (lap < np.percentile(lap, 40))
    mask[:12] = mask[-12:] = False
    mask[:, :12] = mask[:, -12:] = False
    return mask


@pytest.mark.parametrize("quanta", [8, 40, 200])
def test_noise_is_poisson_like_and_scales_with_quanta(quanta):
    with open_sim(f"sim://spine?{FAST}&scenario=no-needle&quanta={quanta}") as sim:
        f = sim.read()  # the first pulse of an event: no detector lag
        det = sim.detector
    clean = f.truth.clean.astype(np.float64)
    mask = _flat_soft_tissue(f.truth.clean)
    assert mask.sum() > 5000
    resid = f.pixels.astype(np.float64) - clean
    lam = det.to_quanta(clean)
    expected_var = np.array([det.noise_variance_dn(v, with_lag=False) for v in lam[mask]])
    assert abs(resid[mask].mean()) < 0.05 * np.sqrt(expected_var.mean())
    assert np.mean(resid[mask] ** 2 / expected_var) == pytest.approx(1.0, abs=0.1)


def test_relative_noise_falls_with_quanta():
    def relative_noise(quanta: float) -> float:
        with open_sim(f"sim://spine?{FAST}&scenario=no-needle&quanta={quanta}") as sim:
            f = sim.read()
            offset = sim.detector.offset_dn
        mask = _flat_soft_tissue(f.truth.clean)
        resid = f.pixels[mask] - f.truth.clean[mask]
        return float(resid.std() / (f.truth.clean[mask] - offset).mean())

    low, high = relative_noise(10), relative_noise(160)
    assert high < 0.5 * low  # 16× the quanta: a quarter of the relative noise, ideally


@pytest.mark.parametrize(
    ("query", "name"),
    [
        ("fps=abc", "fps"),
        ("fps=0", "fps"),
        ("fps=61", "fps"),
        ("size=100", "size"),
        ("size=1.5", "size"),
        ("quanta=-1", "quanta"),
        ("scenario=knee", "scenario"),
        ("view=lateral", "view"),
        ("realtime=2", "realtime"),
        ("frames=-1", "frames"),
        ("lose=1.5", "lose"),
        ("clean=yes", "clean"),
        ("calib=0", "calib"),
        ("seed=x", "seed"),
        ("colour=red", "colour"),
        ("fps=15&fps=30", "fps"),
    ],
)
def test_bad_parameters_name_url_and_parameter(query, name):
    url = f"sim://spine?{query}"
    with pytest.raises(SourceError) as info:
        open_sim(url)
    message = str(info.value)
    assert url in message and name in message and "\n" not in message


@pytest.mark.parametrize("url", ["sim://knee", "sim://spine/extra?size=256", "video://spine"])
def test_bad_host_or_path(url):
    with pytest.raises(SourceError, match="sim://"):
        open_sim(url)


def test_config_validation_and_url_round_trip():
    with pytest.raises(ValueError, match="fps"):
        SimConfig(fps=0)
    cfg = SimConfig(size=256, fps=7.5, scenario="no-needle", realtime=False, frames=4)
    assert open_sim(cfg.url()).config == cfg


def test_frames_limit_ends_stream():
    with open_source(f"sim://spine?{FAST}&frames=5&clean=0") as src:
        assert isinstance(src, FrameSource) and isinstance(src, SimulatedCArm)
        assert src.info.has_truth and src.info.shape == (256, 256)
        assert src.info.nominal_fps == 15
        got = [src.read() for _ in range(5)]
        assert all(f is not None for f in got)
        with pytest.raises(EndOfStream):
            src.read()
        with pytest.raises(EndOfStream):
            src.read()
    assert len(list(open_sim(f"sim://spine?{FAST}&frames=0"))) == 0


def test_realtime_paces_frames():
    with open_sim("sim://spine?size=128&fps=15&clean=0") as sim:
        start = time.monotonic()
        got = [sim.read(timeout_s=1.0) for _ in range(3)]
        elapsed = time.monotonic() - start
    assert all(f is not None for f in got)
    assert elapsed >= 0.12  # pulses at 0, 1/15 and 2/15 s


def test_realtime_read_times_out_with_none():
    with open_sim("sim://spine?size=128&fps=1&clean=0") as sim:
        assert sim.read(timeout_s=1.0) is not None
        assert sim.read(timeout_s=0.02) is None  # the next pulse is a second away
        assert sim.read(timeout_s=2.0).seq == 1  # the pending frame is not lost


def test_oblique_view_differs_and_has_a_needle():
    ap = frames(f"sim://spine?{FAST}&seed=3", 120)
    ob = frames(f"sim://spine?{FAST}&seed=3&view=oblique", 120)
    assert not np.array_equal(ap[0].truth.clean, ob[0].truth.clean)
    assert any(f.truth.needle_visible for f in ob)


def test_save_png_writes_8bit_preview(tmp_path, stream):
    path = tmp_path / "frame.png"
    save_png(stream[-1].pixels, path)
    img = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    assert img.dtype == np.uint8 and img.shape == (256, 256)
    assert img.max() > 200 and img.min() < 30  # windowed, collimator blades dark
