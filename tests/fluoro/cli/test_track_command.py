"""``fluoro track`` through its functions (``fluoro.cli.track``): images in, JSON out, bad
input named."""

import argparse
import json
import math

import cv2
import numpy as np
import pydicom
import pytest
from needle_scene import render
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from fluoro.cli.track import add_track_parser, cmd_track, detect_file, load_image
from fluoro.errors import InputError

TIP, HUB = (300.3, 200.7), (120.2, 390.5)


@pytest.fixture(scope="module")
def needle_image():
    return np.clip(render(tip=TIP, hub=HUB, noise=0.02), 0, 4095).astype(np.uint16)


def _parse(*argv):
    parser = argparse.ArgumentParser(prog="fluoro")
    add_track_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(["track", *argv])


def test_a_16_bit_png_gives_the_needle_as_json(tmp_path, needle_image, capsys):
    path = tmp_path / "frame.png"
    assert cv2.imwrite(str(path), needle_image)
    assert cmd_track(_parse(str(path), "--json")) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) == {"detected", "confidence", "tip_px", "hub_px", "angle_deg"}
    assert out["detected"] and math.dist(out["tip_px"], TIP) < 1.0
    assert abs(out["angle_deg"] - math.degrees(math.atan2(TIP[1] - HUB[1], TIP[0] - HUB[0])) % 360
               ) < 0.2


def test_an_8_bit_tiff_works_and_says_the_spacing_is_unknown(tmp_path, needle_image, capsys):
    path = tmp_path / "frame.tiff"
    assert cv2.imwrite(str(path), (needle_image / 16).astype(np.uint8))
    assert cmd_track(_parse(str(path))) == 0
    captured = capsys.readouterr()
    assert "needle tip" in captured.out and "1 mm" in captured.err


def test_dicom_pixel_spacing_is_used(tmp_path, needle_image):
    path = tmp_path / "frame.dcm"
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.12.1"  # X-Ray Angiographic
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset(str(path), {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.Modality = "XA"
    ds.Rows, ds.Columns = needle_image.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.ImagerPixelSpacing = [0.25, 0.25]
    ds.PixelData = needle_image.tobytes()
    ds.save_as(str(path), enforce_file_format=True)
    pixels, spacing = load_image(path)
    assert spacing == (0.25, 0.25) and pixels.dtype == np.uint16
    result, used, known = detect_file(path)
    assert known and used == (0.25, 0.25)
    assert result.detected and math.dist(result.tip_px, TIP) < 1.0
    assert pydicom.dcmread(str(path)).Modality == "XA"


def test_an_image_without_a_needle_is_reported_as_such(tmp_path, capsys):
    path = tmp_path / "empty.png"
    cv2.imwrite(str(path), np.clip(render(needle=False), 0, 65535).astype(np.uint16))
    assert cmd_track(_parse(str(path), "--json")) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["detected"] is False and out["tip_px"] is None and out["angle_deg"] is None


@pytest.mark.parametrize("content, words", [
    (None, ["missing.png", "no such file"]),
    (b"this is not an image", ["junk.png", "not a readable image"]),
    (b"\0" * 128 + b"DICM" + b"\1\2\3", ["junk.png", "not a readable DICOM"]),
])
def test_bad_input_raises_an_input_error_naming_the_file(tmp_path, content, words):
    path = tmp_path / ("missing.png" if content is None else "junk.png")
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(InputError) as err:
        load_image(path)
    message = str(err.value)
    assert "\n" not in message
    for word in words:
        assert word in message
