"""DICOM cine replay against the real third-party files in ../shared/data/xray and files we
write ourselves with pydicom."""

import time

import numpy as np
import pydicom
import pytest
from conftest import read_all
from pydicom.dataset import FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from drivers import open_source
from fluoro.errors import SourceError


def test_real_coronary_cine_plays_all_frames_at_its_frame_time(shared_data):
    path = shared_data / "xray" / "xa_coronary_cine_512.dcm"
    source = open_source(f"dicom:{path}?realtime=0")
    assert source.info.nominal_fps == pytest.approx(1000 / 33)
    frames = read_all(source)
    assert len(frames) == 96
    assert frames[0].shape == (512, 512) and frames[0].pixels.dtype == np.uint16
    assert [f.seq for f in frames] == list(range(96))
    assert frames[1].t_s == pytest.approx(0.033)
    assert not frames[0].pixels.flags.writeable
    # real motion: consecutive frames differ, and the data is not blank
    assert frames[0].pixels.std() > 10 and np.abs(
        frames[10].pixels.astype(int) - frames[0].pixels).mean() > 1


def test_real_jpeg_lossless_1024_secondary_capture_with_modality_xa(shared_data):
    path = shared_data / "xray" / "xa_cerebral_1024_jpll.dcm"
    source = open_source(f"dicom:{path}?realtime=0")
    (frame,) = read_all(source)
    assert frame.shape == (1024, 1024)
    assert 256 < int(frame.pixels.max()) < 1024  # 10 of 16 bits stored, not cut to 8 bits


def test_realtime_paces_at_the_frame_time(shared_data):
    path = shared_data / "xray" / "xa_coronary_cine_512.dcm"
    source = open_source(f"dicom:{path}")
    t0 = time.monotonic()
    got = 0
    while got < 4:
        got += source.read(0.5) is not None
    assert time.monotonic() - t0 >= 3 * 0.033 * 0.9


def _write(tmp_path, modality="RF", photometric="MONOCHROME1", **attrs):
    ds = pydicom.Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.12.2"
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
    ds.Modality = modality
    pixels = np.arange(3 * 8 * 8, dtype=np.uint16).reshape(3, 8, 8)
    ds.Rows, ds.Columns, ds.NumberOfFrames = 8, 8, 3
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, photometric
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.PixelData = pixels.tobytes()
    for key, value in attrs.items():
        setattr(ds, key, value)
    path = tmp_path / "cine.dcm"
    ds.save_as(path, enforce_file_format=True)
    return path, pixels


def test_monochrome1_is_inverted_and_header_technique_becomes_exposure(tmp_path):
    path, pixels = _write(tmp_path, KVP="81", XRayTubeCurrent="12", AveragePulseWidth="8",
                          DistanceSourceToDetector="1100", DistanceSourceToIsocenter=750.0,
                          ImagerPixelSpacing=[0.3, 0.3],
                          EstimatedRadiographicMagnificationFactor="1.5", CineRate="10")
    source = open_source(f"dicom:{path}?realtime=0")
    frames = read_all(source)
    assert len(frames) == 3
    assert int(frames[0].pixels[0, 0]) == int(pixels.max())  # darkest stored value is brightest
    e = frames[0].exposure
    assert (e.kvp, e.ma, e.pulse_ms, e.sid_mm, e.sirp_mm) == (81, 12, 8, 1100, 600)
    assert frames[0].pixel_spacing_mm == pytest.approx((0.2, 0.2))
    assert source.info.nominal_fps == 10


@pytest.mark.parametrize(
    ("make", "words"),
    [
        (lambda tmp: tmp / "missing.dcm", ["no such file"]),
        (lambda tmp: (tmp / "text.dcm").write_text("hello") and tmp / "text.dcm", ["not a DICOM"]),
        (lambda tmp: _write(tmp, modality="CT")[0], ["Modality", "CT"]),
    ],
    ids=["missing", "not-dicom", "ct"],
)
def test_bad_files_are_refused_with_a_clear_reason(tmp_path, make, words):
    path = make(tmp_path)
    with pytest.raises(SourceError) as info:
        open_source(f"dicom:{path}")
    for word in words:
        assert word in str(info.value)
    assert str(path) in str(info.value)


def test_unknown_parameter_is_refused(tmp_path):
    path, _ = _write(tmp_path)
    with pytest.raises(SourceError, match="speed"):
        open_source(f"dicom:{path}?speed=2")
