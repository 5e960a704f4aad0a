"""Reading a DICOM file that should be an X-Ray Radiation Dose SR, refusing anything else.

``read_dose_sr(path)`` returns the pydicom dataset of a projection X-ray dose report, or raises
``InputError`` with one line naming the file and what it is instead: not a DICOM file, a
truncated or damaged file, a DICOM that is not a structured report (its SOP class named), a
structured report that is not an X-ray radiation dose report, a CT dose report (TID 10011).

pydicom stops quietly at the end of a file cut inside a sequence (it returns the items read so
far), which would import a report without its last events; so ``check_complete`` first walks
the file's byte structure (PS3.5 section 7: element headers, defined lengths, item and sequence
delimiters) and refuses a file that ends before its last element or delimiter.
"""

from __future__ import annotations

import struct
from pathlib import Path

import pydicom
from pydicom.dataset import Dataset, FileDataset
from pydicom.errors import InvalidDicomError

from fluoro.errors import InputError
from fluoro.rdsr import codes

IMPLICIT_VR_LITTLE_ENDIAN = "1.2.840.10008.1.2"
EXPLICIT_VR_BIG_ENDIAN = "1.2.840.10008.1.2.2"
DEFLATED = ("1.2.840.10008.1.2.1.99", "1.2.840.10008.1.2.8.1")
UNDEFINED = 0xFFFFFFFF
_LONG_VRS = {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT",
             b"UV"}
_ITEM, _ITEM_END, _SEQUENCE_END = 0xFFFEE000, 0xFFFEE00D, 0xFFFEE0DD


class _Truncated(Exception):
    pass


class _Walker:
    """Walks DICOM elements in ``raw`` from an offset; raises ``_Truncated`` past the end."""

    def __init__(self, raw: bytes, explicit: bool, little: bool) -> None:
        self.raw, self.explicit, self.order = raw, explicit, "<" if little else ">"

    def _take(self, at: int, size: int) -> bytes:
        if at + size > len(self.raw):
            raise _Truncated
        return self.raw[at:at + size]

    def _header(self, at: int) -> tuple[int, bytes | None, int, int]:
        """(tag, VR or None, value length, offset of the value) of the element at ``at``."""
        group, element = struct.unpack(self.order + "HH", self._take(at, 4))
        tag = (group << 16) | element
        if group == 0xFFFE or not self.explicit:
            (length,) = struct.unpack(self.order + "I", self._take(at + 4, 4))
            return tag, None, length, at + 8
        vr = self._take(at + 4, 2)
        if vr in _LONG_VRS:
            (length,) = struct.unpack(self.order + "I", self._take(at + 8, 4))
            return tag, vr, length, at + 12
        (length,) = struct.unpack(self.order + "H", self._take(at + 6, 2))
        return tag, vr, length, at + 8

    def elements(self, at: int, end: int | None, stop_tag: int | None = None) -> int:
        """Walk elements from ``at`` to ``end`` (None: to the end of the data, or up to the
        delimiter ``stop_tag``); returns the offset after the last one."""
        while (end is None and at < len(self.raw)) or (end is not None and at < end):
            tag, _vr, length, value_at = self._header(at)
            if tag == stop_tag:
                return value_at
            if length == UNDEFINED:
                at = self._items(value_at)
            else:
                self._take(value_at, length)
                at = value_at + length
        if stop_tag is not None:
            raise _Truncated  # ran out of data before the delimiter
        return at

    def _items(self, at: int) -> int:
        """Items of an undefined-length sequence (or encapsulated fragments) up to its
        delimiter; returns the offset after the delimiter."""
        while True:
            tag, _vr, length, value_at = self._header(at)
            if tag == _SEQUENCE_END:
                return value_at
            if tag != _ITEM:
                raise _Truncated
            if length == UNDEFINED:
                at = self.elements(value_at, None, stop_tag=_ITEM_END)
            else:
                self._take(value_at, length)
                at = value_at + length


def check_complete(raw: bytes, transfer_syntax: str, dataset_offset: int) -> bool:
    """Whether the data set from ``dataset_offset`` ends where its structure says it does (no
    element, item or sequence cut off by the end of the file)."""
    if transfer_syntax in DEFLATED:
        return True  # compressed: pydicom's inflate reports a cut stream itself
    walker = _Walker(raw, transfer_syntax != IMPLICIT_VR_LITTLE_ENDIAN,
                     transfer_syntax != EXPLICIT_VR_BIG_ENDIAN)
    try:
        walker.elements(dataset_offset, None)
    except (_Truncated, struct.error):
        return False
    return True


def _meta_end(raw: bytes) -> int:
    """Offset of the data set: after the preamble and the file meta group (group 0002)."""
    at = 132 if raw[128:132] == b"DICM" else 0
    walker = _Walker(raw, True, True)
    while at + 4 <= len(raw) and struct.unpack("<H", raw[at:at + 2])[0] == 0x0002:
        _tag, _vr, length, value_at = walker._header(at)
        walker._take(value_at, length)  # a value cut off by the end of the file
        at = value_at + length
    if at >= len(raw):
        raise _Truncated  # nothing after the file meta information
    return at


def read_dataset(path: Path) -> FileDataset:
    """The whole DICOM file at ``path``, checked complete; ``InputError`` if it is not one."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a folder; expected a DICOM file") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror}") from None
    not_dicom = InputError(f"{path}: not a DICOM file (no DICM prefix and no DICOM data set); "
                           "expected an X-Ray Radiation Dose SR")
    try:
        try:
            ds = pydicom.dcmread(path)
        except InvalidDicomError:  # no preamble: a bare data set is DICOM too, if it has a class
            ds = pydicom.dcmread(path, force=True)
            if "SOPClassUID" not in ds:
                raise not_dicom from None
    except InputError:
        raise
    except Exception as exc:  # pydicom raises many kinds on a damaged file
        raise InputError(f"{path}: truncated or damaged DICOM file ({type(exc).__name__}: "
                         f"{str(exc).splitlines()[0] if str(exc) else 'unreadable'})") from None
    syntax = str(getattr(ds.file_meta, "TransferSyntaxUID", "") or "")
    if not syntax:
        implicit, little = ds.original_encoding
        syntax = (IMPLICIT_VR_LITTLE_ENDIAN if implicit else
                  "1.2.840.10008.1.2.1" if little else EXPLICIT_VR_BIG_ENDIAN)
    try:
        complete = check_complete(raw, syntax, _meta_end(raw))
    except (_Truncated, struct.error):
        complete = False
    if not complete:
        raise InputError(f"{path}: truncated DICOM file (it ends inside an element or sequence; "
                         f"{len(raw)} bytes)")
    return ds


def is_dose_report(ds: Dataset) -> bool:
    """A root container titled X-Ray Radiation Dose Report (DCM 113701, TID 10001)."""
    title = ds.get("ConceptNameCodeSequence")
    if not title:
        return False
    return (title[0].get("CodeValue"), title[0].get("CodingSchemeDesignator")) == \
        codes.XRAY_RADIATION_DOSE_REPORT.key()


def read_dose_sr(path: Path) -> FileDataset:
    """The dataset of a projection X-ray dose report at ``path`` (see the module docstring)."""
    ds = read_dataset(path)
    sop_class = str(ds.get("SOPClassUID", "") or getattr(ds.file_meta, "MediaStorageSOPClassUID",
                                                            ""))
    if not sop_class.startswith(codes.SR_SOP_CLASS_PREFIX):
        name = getattr(pydicom.uid.UID(sop_class), "name", "") if sop_class else ""
        named = f"{sop_class} {name}".strip() if name and name != sop_class else sop_class
        raise InputError(f"{path}: not a structured report (SOP class {named or 'missing'}); "
                         "expected an X-Ray Radiation Dose SR")
    if "ConceptNameCodeSequence" not in ds and "ContentSequence" not in ds:
        raise InputError(f"{path}: incomplete structured report (no document title and no "
                         "content; truncated?)")
    if sop_class != codes.XRAY_RADIATION_DOSE_SR and not is_dose_report(ds):
        raise InputError(f"{path}: a structured report but not an X-ray radiation dose report "
                         f"(SOP class {sop_class}, document title {_title(ds)})")
    if not is_dose_report(ds):
        raise InputError(f"{path}: not an X-ray radiation dose report (document title "
                         f"{_title(ds)}; expected 113701 X-Ray Radiation Dose Report)")
    if "ContentSequence" not in ds:
        raise InputError(f"{path}: dose report without content (no Content Sequence)")
    return ds


def _title(ds: Dataset) -> str:
    title = ds.get("ConceptNameCodeSequence")
    if not title:
        return "missing"
    item = title[0]
    return (f"{item.get('CodeValue', '?')}^{item.get('CodingSchemeDesignator', '?')} "
            f"{item.get('CodeMeaning', '')!r}")
