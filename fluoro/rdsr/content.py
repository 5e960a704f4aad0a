"""Building SR content items (DICOM PS3.3 C.17.3 SR Document Content) with pydicom.

Small constructors for the value types a dose report uses: CONTAINER, CODE, NUM, TEXT, UIDREF,
DATETIME. Relationship types are the PS3.3 names (``CONTAINS``, ``HAS CONCEPT MOD``,
``HAS OBS CONTEXT``, ``HAS PROPERTIES``). Numbers are written as DS (at most 16 characters,
``pydicom.valuerep.format_number_as_ds``: about 12 significant digits).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime

from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.valuerep import format_number_as_ds

from fluoro.dicomtime import dicom_datetime
from fluoro.rdsr.codes import Code

CONTAINS = "CONTAINS"
HAS_CONCEPT_MOD = "HAS CONCEPT MOD"
HAS_OBS_CONTEXT = "HAS OBS CONTEXT"
HAS_PROPERTIES = "HAS PROPERTIES"


def code_item(code: Code) -> Dataset:
    """A Code Sequence item (PS3.3 Table 8.8-1): value, scheme, meaning."""
    item = Dataset()
    item.CodeValue = code.value
    item.CodingSchemeDesignator = code.scheme
    item.CodeMeaning = code.meaning
    return item


def _item(relationship: str, value_type: str, concept: Code) -> Dataset:
    item = Dataset()
    item.RelationshipType = relationship
    item.ValueType = value_type
    item.ConceptNameCodeSequence = Sequence([code_item(concept)])
    return item


def container(relationship: str, concept: Code, children: Iterable[Dataset]) -> Dataset:
    item = _item(relationship, "CONTAINER", concept)
    item.ContinuityOfContent = "SEPARATE"
    item.ContentSequence = Sequence(list(children))
    return item


def code(relationship: str, concept: Code, value: Code,
         children: Iterable[Dataset] = ()) -> Dataset:
    item = _item(relationship, "CODE", concept)
    item.ConceptCodeSequence = Sequence([code_item(value)])
    children = list(children)
    if children:
        item.ContentSequence = Sequence(children)
    return item


def num(relationship: str, concept: Code, value: float, unit: Code) -> Dataset:
    """A NUM item: ``value`` already in ``unit`` (a UCUM code)."""
    item = _item(relationship, "NUM", concept)
    measured = Dataset()
    measured.MeasurementUnitsCodeSequence = Sequence([code_item(unit)])
    measured.NumericValue = format_number_as_ds(float(value))
    item.MeasuredValueSequence = Sequence([measured])
    return item


def text(relationship: str, concept: Code, value: str) -> Dataset:
    item = _item(relationship, "TEXT", concept)
    item.TextValue = value
    return item


def uidref(relationship: str, concept: Code, value: str) -> Dataset:
    item = _item(relationship, "UIDREF", concept)
    item.UID = value
    return item


def datetime_item(relationship: str, concept: Code, moment: datetime) -> Dataset:
    item = _item(relationship, "DATETIME", concept)
    item.DateTime = dicom_datetime(moment)
    return item


def uid_from(*parts: str) -> str:
    """A stable DICOM UID (``2.25.<int>``, PS3.5 B.2) derived from ``parts``."""
    return f"2.25.{uuid.uuid5(uuid.NAMESPACE_OID, '|'.join(parts)).int}"
