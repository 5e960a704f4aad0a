"""DICOM cine replay against the real third-party files in ../shared/data/xray and files we
write ourselves with pydicom."""

import time

import numpy as np
import pydicom
import pytest
from conftest import assert_one_error_line, read_all, run_fluoro
from pydicom.dataset import Dataset, FileMetaDataset
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


def _write(tmp_path, modality="RF", photometric="MONOCHROME1",
           sop_class="1.2.840.10008.5.1.4.1.1.12.2", size=8, **attrs):
    ds = pydicom.Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = sop_class
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
    ds.Modality = modality
    pixels = (np.arange(3 * size * size, dtype=np.uint16) % 4096).reshape(3, size, size)
    ds.Rows, ds.Columns, ds.NumberOfFrames = size, size, 3
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


def _item(**attrs):
    item = Dataset()
    for key, value in attrs.items():
        setattr(item, key, value)
    return item


def _group(**macros):
    """One functional-group item: each keyword a macro sequence holding one item."""
    return _item(**{name: [_item(**attrs)] for name, attrs in macros.items()})


ENHANCED_XA = "1.2.840.10008.5.1.4.1.1.12.1.1"


def test_enhanced_xa_per_frame_groups_give_each_frame_its_own_exposure_time_and_spacing(
        tmp_path):
    shared = _group(PixelMeasuresSequence={"PixelSpacing": [0.2, 0.2]},
                    XAXRFFrameCharacteristicsSequence={"DistanceSourceToIsocenter": 760.0})
    per_frame = [
        _group(FrameAcquisitionSequence={"KVP": 70 + 5 * i, "XRayTubeCurrentInmA": 10.0 + i},
               FrameContentSequence={"FrameAcquisitionDateTime": f"20240301101500.{stamp}"})
        for i, stamp in enumerate(["000000", "066667", "133333"])]
    per_frame[2].PixelMeasuresSequence = [_item(PixelSpacing=[0.25, 0.25])]
    path, _ = _write(tmp_path, modality="XA", sop_class=ENHANCED_XA,
                     SharedFunctionalGroupsSequence=[shared],
                     PerFrameFunctionalGroupsSequence=per_frame,
                     DistanceSourceToDetector="1200", AveragePulseWidth="6",
                     ImageAndFluoroscopyAreaDoseProduct="3.0", EntranceDoseInmGy="1.5",
                     FilterMaterial=["ALUMINUM", "COPPER"], FilterThicknessMinimum=["1.0", "0.2"])
    source = open_source(f"dicom:{path}?realtime=0")
    assert source.info.nominal_fps == pytest.approx(15, rel=1e-3)  # from the frame times
    frames = read_all(source)
    assert [f.t_s for f in frames] == pytest.approx([0, 0.066667, 0.133333])
    assert [(f.exposure.kvp, f.exposure.ma) for f in frames] == [(70, 10), (75, 11), (80, 12)]
    e = frames[1].exposure
    assert (e.pulse_ms, e.sid_mm, e.sirp_mm) == (6, 1200, 610)  # shared 760 mm - 150 mm
    assert e.filter_mm_cu == pytest.approx(0.2)
    assert e.dap_gycm2 == pytest.approx(0.1)  # 3 dGy·cm² = 0.3 Gy·cm² over 3 frames
    assert e.kar_mgy == pytest.approx(0.5)
    assert [f.pixel_spacing_mm for f in frames] == [(0.2, 0.2), (0.2, 0.2), (0.25, 0.25)]


def test_dose_in_a_frames_own_group_is_not_spread_and_looping_continues_the_clock(tmp_path):
    per_frame = [_group(FrameAcquisitionSequence={"KVP": 80, "XRayTubeCurrentInmA": 9.0},
                        XRayAcquisitionDoseSequence={"EntranceDoseInmGy": 0.3 + i})
                 for i in range(3)]
    path, _ = _write(tmp_path, modality="XA", sop_class=ENHANCED_XA,
                     PerFrameFunctionalGroupsSequence=per_frame, FrameTime="50")
    source = open_source(f"dicom:{path}?realtime=0&loop=1")
    frames = [source.read() for _ in range(5)]
    assert [f.exposure.kar_mgy for f in frames] == pytest.approx([0.3, 1.3, 2.3, 0.3, 1.3])
    assert [f.t_s for f in frames] == pytest.approx([0, 0.05, 0.1, 0.15, 0.2])
    assert frames[0].exposure.dap_gycm2 is None and frames[0].exposure.filter_mm_cu == 0


def test_legacy_xa_frame_time_vector_and_entrance_dose_in_dgy(tmp_path):
    path, _ = _write(tmp_path, KVP="75", XRayTubeCurrent="5", FrameTimeVector=[0, 100, 50],
                     EntranceDose=3, ImageAndFluoroscopyAreaDoseProduct="0.6",
                     PixelSpacing=[0.3, 0.3], ImagerPixelSpacing=[0.4, 0.4])
    frames = read_all(open_source(f"dicom:{path}?realtime=0"))
    assert [f.t_s for f in frames] == pytest.approx([0, 0.1, 0.15])
    assert frames[0].exposure.kar_mgy == pytest.approx(100)  # 3 dGy = 300 mGy over 3 frames
    assert frames[2].exposure.dap_gycm2 == pytest.approx(0.02)
    # no magnification factor: the calibrated Pixel Spacing wins over the detector's spacing
    assert frames[0].pixel_spacing_mm == (0.3, 0.3)


def _refused(path, *words):
    with pytest.raises(SourceError) as info:
        open_source(f"dicom:{path}?realtime=0")
    message = str(info.value)
    assert message.startswith(f"dicom:{path}?realtime=0: ") and "\n" not in message, message
    for word in words:
        assert word in message, message
    return message


@pytest.mark.parametrize("keep", [150, 250, 320, -380, -200, -1],
                         ids=["meta", "header", "before-pixels", "pixel-start", "mid-pixels",
                              "last-byte"])
def test_a_truncated_written_file_is_refused(tmp_path, keep):
    path, _ = _write(tmp_path)
    data = path.read_bytes()
    cut = tmp_path / "cut.dcm"
    cut.write_bytes(data[:keep])
    _refused(cut, "truncated")


@pytest.mark.parametrize("keep", [1000, 5000, 10720, 12000, 900000, -8])
def test_the_real_coronary_cine_truncated_is_refused(shared_data, tmp_path, keep):
    data = (shared_data / "xray" / "xa_coronary_cine_512.dcm").read_bytes()
    cut = tmp_path / "cut.dcm"
    cut.write_bytes(data[:keep])
    _refused(cut, "truncated")


def test_a_header_declaring_more_frames_than_the_pixel_data_holds_is_refused(tmp_path):
    path, _ = _write(tmp_path, NumberOfFrames=5)
    _refused(path, "truncated pixel data", "384 of the 640 bytes")


@pytest.mark.parametrize(("name", "marker"), [("xa_coronary_cine_512.dcm", b"\xff\xc0"),
                                              ("xa_cerebral_1024_jpll.dcm", b"\xff\xd8")],
                         ids=["jpeg-baseline-sof", "jpeg-lossless-soi"])
def test_a_corrupt_jpeg_stream_is_refused(shared_data, tmp_path, name, marker):
    data = bytearray((shared_data / "xray" / name).read_bytes())
    at = data.find(marker, data.find(b"\xff\xd8\xff"))
    data[at:at + 6] = bytes(6)  # the first frame's marker segment zeroed
    bad = tmp_path / "bad.dcm"
    bad.write_bytes(bytes(data))
    _refused(bad, "cannot decode the pixel data", "JPEG")


def test_fewer_compressed_frames_than_declared_is_refused(shared_data, tmp_path):
    ds = pydicom.dcmread(shared_data / "xray" / "xa_coronary_cine_512.dcm")
    ds.NumberOfFrames = 100
    path = tmp_path / "short.dcm"
    ds.save_as(path)
    _refused(path, "100 frames declared")


def test_fluoro_run_with_a_truncated_cine_exits_2_with_one_line(shared_data, tmp_path):
    data = (shared_data / "xray" / "xa_coronary_cine_512.dcm").read_bytes()
    cut = tmp_path / "cut.dcm"
    cut.write_bytes(data[:600000])
    result = run_fluoro("run", "--headless", "--source", f"dicom:{cut}", timeout=120)
    assert_one_error_line(result, f"dicom:{cut}", "truncated")


@pytest.mark.parametrize("syntax", ["RLELossless", "JPEG2000Lossless"])
def test_rle_and_jpeg2000_cine_decode_losslessly(tmp_path, syntax):
    import pydicom.uid

    path, pixels = _write(tmp_path, photometric="MONOCHROME2", size=64)
    ds = pydicom.dcmread(path)
    try:
        ds.compress(getattr(pydicom.uid, syntax))
    except Exception as exc:  # no encoder for this syntax installed
        pytest.skip(f"cannot encode {syntax} here: {exc}")
    ds.save_as(path)
    assert pydicom.dcmread(path).file_meta.TransferSyntaxUID == getattr(pydicom.uid, syntax)
    frames = read_all(open_source(f"dicom:{path}?realtime=0"))
    assert len(frames) == 3
    for frame, original in zip(frames, pixels, strict=True):
        assert np.array_equal(frame.pixels, original)
