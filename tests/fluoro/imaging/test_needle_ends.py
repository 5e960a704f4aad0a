"""Where a measured needle begins and ends: the shaft seen inside its hub, a dark dash in line
beyond the tip, a bent shaft, and lines that are the walls or edges of something wider.

Frames come from ``tests/needle_scene.py`` (drawn by code of its own, not the simulator), at
0.25 mm/px: the needle is ~4.6 px wide, its ferrule 28 px long.
"""

import math

import numpy as np
import pytest
from needle_scene import render

from fluoro.imaging import _needle_kernels as k
from fluoro.imaging.needle import NeedleTracker, _paired
from fluoro.imaging.needle_detect import NeedleScale, Segment, measure

SPACING = (0.25, 0.25)
SCALE = NeedleScale.for_spacing(0.25)
TIP, HUB = (300.3, 200.7), (120.2, 390.5)


def _unit(a, b):
    n = math.dist(a, b)
    return ((b[0] - a[0]) / n, (b[1] - a[1]) / n)


def test_a_shaft_seen_on_inside_its_hub_has_its_hub_at_the_ferrule():
    # the shaft goes on 45 mm behind the shaft-hub junction (through the ferrule, inside a
    # plastic hub that does not show): the hub is the junction, not the luer end
    result = NeedleTracker().detect(render(inner_px=180.0), SPACING)
    assert result.detected
    assert math.dist(result.tip_px, TIP) < 1.5
    assert math.dist(result.hub_px, HUB) < 4.0
    ux, uy = _unit(HUB, TIP)
    assert math.cos(math.radians(result.angle_deg)) * ux + math.sin(
        math.radians(result.angle_deg)) * uy > 0.999


def test_the_part_of_a_shaft_inside_its_hub_measured_alone_is_no_needle():
    # a line from the luer end up to the ferrule, with the long shaft going on beyond the
    # ferrule: a "needle" whose hub is mid-shaft (it would point backwards, out of the patient)
    image = render(inner_px=180.0)
    u = _unit(HUB, TIP)
    luer = (HUB[0] - 180.0 * u[0], HUB[1] - 180.0 * u[1])
    inward = (-u[0], -u[1])  # from the ferrule toward the luer end, along the inner part
    margin = 4.0 / 0.25
    seg = measure(image, HUB, inward, -margin, math.dist(HUB, luer) + margin, 8.0, SCALE,
                  extend=0)
    assert seg is None
    # the same call on a needle whose hub holds no shaft beyond the ferrule finds that
    # needle's own inner part absent, and the needle itself is measured from its tip
    whole = measure(image, TIP, (-u[0], -u[1]), -margin, 400.0, 8.0, SCALE, extend=2)
    assert whole is not None and math.dist(whole.tip, TIP) < 1.5


def test_a_dark_dash_in_line_beyond_the_tip_is_not_taken_for_the_shaft():
    u = _unit(HUB, TIP)
    # 3.5 mm of nothing, then a 5 mm dash (a short piece of something else in line; a
    # longer one would be taken for the shaft going on across an edge of bone)
    start = (TIP[0] + 14.0 * u[0], TIP[1] + 14.0 * u[1])
    end = (TIP[0] + 34.0 * u[0], TIP[1] + 34.0 * u[1])
    result = NeedleTracker().detect(render(rods=[(start, end, 2.3)]), SPACING)
    assert result.detected
    assert math.dist(result.tip_px, TIP) < 1.5


def test_a_bent_needle_is_traced_to_its_tip():
    # 2.5 mm of sag over a 130 mm shaft: a straight fit leaves the shaft well before the tip
    tip, hub = (580.0, 70.0), (60.0, 560.0)
    image = render(shape=(640, 640), tip=tip, hub=hub, sag_px=10.0)
    result = NeedleTracker().detect(image, SPACING)
    assert result.detected
    assert math.dist(result.tip_px, tip) < 2.0
    # the direction at the tip is the arc's tangent there, not the chord's
    chord = math.degrees(math.atan2(tip[1] - hub[1], tip[0] - hub[0]))
    tangent = chord + math.degrees(math.atan(4.0 * 10.0 / math.dist(tip, hub)))
    assert abs((result.angle_deg - tangent + 180.0) % 360.0 - 180.0) < 1.0


def _seg(hub, tip):
    return Segment(tip, hub, _unit(hub, tip), 0.3, 0.2, 100, 0.1, False, 0.9)


def test_lines_side_by_side_are_the_edges_of_one_object():
    px_mm = 4.0  # px per mm at 0.25 mm/px
    a = _seg((100.0, 100.0), (300.0, 100.0))
    wall = _seg((110.0, 100.0 + 6.0 * px_mm), (290.0, 100.0 + 6.0 * px_mm))  # 6 mm beside
    assert _paired(a, wall, SCALE) and _paired(wall, a, SCALE)
    reversed_wall = _seg((290.0, 124.0), (110.0, 124.0))  # either way round
    assert _paired(a, reversed_wall, SCALE)
    # not a pair: another needle 20 mm away, a crossing line, a short line beside a long
    # one, a line in line with it beyond its tip
    assert not _paired(a, _seg((100.0, 180.0), (300.0, 180.0)), SCALE)
    assert not _paired(a, _seg((150.0, 60.0), (250.0, 140.0)), SCALE)
    assert not _paired(a, _seg((280.0, 120.0), (320.0, 120.0)), SCALE)
    assert not _paired(a, _seg((320.0, 101.0), (500.0, 101.0)), SCALE)


@pytest.mark.parametrize("n", [40, 300])
def test_the_centre_fit_finds_a_line_among_outliers(n):
    rng = np.random.default_rng(n)
    t = np.arange(n, dtype=float)
    s_c = 0.8 + 0.01 * t + rng.normal(0.0, 0.1, n)
    c_c = np.full(n, 0.3)
    wild = rng.random(n) < 0.2
    s_c[wild] += rng.choice([-1, 1], wild.sum()) * rng.uniform(3.0, 6.0, wild.sum())
    c_c[rng.random(n) < 0.1] = np.nan  # rows without a measurement
    n_ok = int(np.count_nonzero(c_c >= 0.12))
    pick = np.random.default_rng(0).integers(0, n_ok, size=(2, 64))
    inliers = np.empty(n, np.bool_)
    a, b, rms, count = k.fit_centres(s_c, c_c, 0.12, pick[0], pick[1], 8.0, inliers)
    assert count > 0.6 * n and not inliers[wild].any()
    assert a == pytest.approx(0.8, abs=0.1) and b == pytest.approx(0.01, abs=0.002)
    assert rms < 0.2
