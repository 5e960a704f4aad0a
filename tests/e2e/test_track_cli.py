"""``fluoro track IMAGE [--json]`` as a user runs it (a real ``python -m fluoro`` process)."""

import json
import math

import cv2
import numpy as np
from conftest import assert_one_error_line, run_fluoro

TIP, HUB = (310.4, 220.6), (100.2, 400.3)


def _needle_png(path):
    """A 16-bit PNG: bright background, a 4.6 px steel shaft entering the image from its
    lower-left edge through HUB to TIP (as a needle is seen: its hub outside the field), some
    noise."""
    yy, xx = np.mgrid[0:512, 0:512].astype(np.float64)
    ux, uy = TIP[0] - HUB[0], TIP[1] - HUB[1]
    length = math.hypot(ux, uy)
    ux, uy = ux / length, uy / length
    along = (xx - HUB[0]) * ux + (yy - HUB[1]) * uy
    across = np.abs(-(xx - HUB[0]) * uy + (yy - HUB[1]) * ux)
    chord = np.sqrt(np.clip(1.0 - (across / 2.3) ** 2, 0.0, 1.0))
    inside = np.clip(length - along + 0.5, 0.0, 1.0)  # from the image edge to the tip
    image = 2000.0 * np.exp(-1.08 * chord * inside)
    image = cv2.GaussianBlur(image.astype(np.float32), (0, 0), 0.8)
    image += np.random.default_rng(3).normal(0.0, 40.0, image.shape)
    assert cv2.imwrite(str(path), np.clip(image, 0, 65535).astype(np.uint16))


def test_track_prints_the_needle_as_json(tmp_path):
    path = tmp_path / "needle.png"
    _needle_png(path)
    result = run_fluoro("track", str(path), "--json")
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    assert out["detected"] is True and 0.0 < out["confidence"] <= 1.0
    assert math.dist(out["tip_px"], TIP) < 1.0
    expected_deg = math.degrees(math.atan2(TIP[1] - HUB[1], TIP[0] - HUB[0])) % 360.0
    assert abs(out["angle_deg"] - expected_deg) < 0.3
    assert "1 mm" in result.stderr  # a PNG has no pixel spacing, and the user is told


def test_track_prints_a_readable_line_without_json(tmp_path):
    path = tmp_path / "needle.png"
    _needle_png(path)
    result = run_fluoro("track", str(path))
    assert result.returncode == 0, result.stderr
    assert "needle tip" in result.stdout and "angle" in result.stdout
    assert "judged on its shape alone" in result.stdout  # one image shows no motion


def test_a_missing_file_is_one_line_and_status_2(tmp_path):
    result = run_fluoro("track", str(tmp_path / "nothing.png"))
    assert_one_error_line(result, "nothing.png", "no such file")


def test_a_file_that_is_not_an_image_is_one_line_and_status_2(tmp_path):
    path = tmp_path / "notes.png"
    path.write_text("not pixels\n")
    result = run_fluoro("track", str(path), "--json")
    assert_one_error_line(result, "notes.png", "not a readable image")
