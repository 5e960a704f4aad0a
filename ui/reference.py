"""Reference images in, snapshots out: DICOM, PNG and TIFF files for the live window."""

from __future__ import annotations

import datetime
from pathlib import Path

import cv2
import numpy as np
from PySide6 import QtGui

from fluoro.dicomtime import da_tm

SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"


def load_reference_image(path: Path) -> np.ndarray:
    """A grey image from a DICOM file (first frame; MONOCHROME1 inverted) or a PNG/TIFF.

    Raises ``ValueError`` naming the file and what was expected."""
    if not path.is_file():
        raise ValueError(f"{path}: no such file")
    if path.suffix.lower() in (".dcm", ".dicom", "") or _is_dicom(path):
        import pydicom

        try:
            ds = pydicom.dcmread(path)
            pixels = ds.pixel_array
        except Exception as exc:
            raise ValueError(f"{path}: not a readable DICOM image ({exc})") from None
        if pixels.ndim == 3 and str(ds.get("PhotometricInterpretation", "")).startswith("MONO"):
            pixels = pixels[0]
        if str(ds.get("PhotometricInterpretation", "")) == "MONOCHROME1":
            pixels = pixels.max() - pixels
    else:
        pixels = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if pixels is None:
            raise ValueError(f"{path}: not an image (expected DICOM, PNG or TIFF)")
        if pixels.ndim == 3:
            pixels = cv2.cvtColor(pixels, cv2.COLOR_BGR2GRAY)
    if pixels.ndim != 2:
        raise ValueError(f"{path}: expected a grey-scale image, got shape {pixels.shape}")
    return np.ascontiguousarray(pixels.astype(np.float32))


def _is_dicom(path: Path) -> bool:
    with path.open("rb") as file:
        head = file.read(132)
    return head[128:132] == b"DICM"


def write_snapshot(view: QtGui.QPixmap, image: np.ndarray | None, stem: Path) -> list[Path]:
    """Save the live view as shown (overlay included) as PNG, and the image itself as a DICOM
    Secondary Capture (PS3.3 A.8) when there is one. Returns the paths written."""
    stem.parent.mkdir(parents=True, exist_ok=True)
    png = stem.with_suffix(".png")
    if not view.save(str(png)):
        raise OSError(f"{png}: could not write the snapshot")
    paths = [png]
    if image is not None:
        paths.append(_secondary_capture(image, stem.with_suffix(".dcm")))
    return paths


def _secondary_capture(image: np.ndarray, path: Path) -> Path:
    import pydicom
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    pixels = np.clip(np.rint(image), 0, 65535).astype(np.uint16)
    ds = pydicom.Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = SECONDARY_CAPTURE
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.SOPClassUID, ds.SOPInstanceUID = SECONDARY_CAPTURE, ds.file_meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    now = datetime.datetime.now()
    ds.ContentDate, ds.ContentTime = da_tm(now)
    ds.Modality, ds.ConversionType = "XA", "WSD"
    ds.ImageType = ["DERIVED", "SECONDARY"]
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    ds.PixelData = pixels.tobytes()
    ds.save_as(path, enforce_file_format=True)
    return path
