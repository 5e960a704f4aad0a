"""Reading vendors' X-Ray Radiation Dose SRs: the values OpenREM's tests assert, the quirks of
real files, units by code, and refusing what is not a complete projection dose report."""

import math
from pathlib import Path

import pydicom
import pytest
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import generate_uid

from fluoro.doselog import ImportedEvent, ImportedPlane, ImportedProcedure, ProcedureInfo
from fluoro.errors import InputError
from fluoro.rdsr import codes as c
from fluoro.rdsr.codes import PSEUDONYM_ISSUER
from fluoro.rdsr.content import CONTAINS, HAS_CONCEPT_MOD, code, container, num, text
from fluoro.rdsr.export import build_dataset
from fluoro.rdsr.ingest import read_report

KEY = "c" * 32


def key_of(patient_id: str) -> str:
    return KEY


def close(value: float | None, expected: float, rel: float = 1e-4) -> bool:
    """Within 0.01 %."""
    return value is not None and math.isclose(value, expected, rel_tol=rel, abs_tol=1e-12)


@pytest.fixture
def rdsr(shared_data) -> Path:
    return shared_data / "rdsr"


def test_siemens_zee_values_openrem_asserts(rdsr):
    info, report = read_report(rdsr / "RF-RDSR-Siemens-Zee.dcm", key_of)
    stated = report.stated_totals()
    assert close(stated["dap_total_gycm2"], 1.6e-5 * 1e4)  # Gy·m² ("Gym2") -> Gy·cm²
    assert close(stated["kar_total_mgy"], 0.00252 * 1e3)
    assert close(stated["fluoro_time_s"], 28.0)
    assert stated["acquisition_dap_gycm2"] == 0 and stated["acquisition_kar_mgy"] == 0
    assert len(report.events) == 8 and len(report.planes) == 1
    assert info.reference_point_code == "113860"
    assert info.reference_point == "15cm from Isocenter toward Source"
    assert info.device.startswith("Siemens AXIOM-Artis")
    assert info.patient_key == KEY  # never the Patient ID itself


def test_philips_allura_values_openrem_asserts(rdsr):
    info, report = read_report(rdsr / "RF-RDSR-Philips_Allura.dcm", key_of)
    s = report.stated_totals()
    assert close(s["fluoro_dap_gycm2"], 10.558274 / 100)  # cGy·cm² -> Gy·cm²
    assert close(s["fluoro_kar_mgy"], 0.000293081169 * 1e3)
    assert close(s["fluoro_time_s"], 13.00)
    assert close(s["acquisition_dap_gycm2"], 143.010366 / 100)
    assert close(s["acquisition_kar_mgy"], 0.003978199182 * 1e3)
    assert close(s["acquisition_time_s"], 14.75)
    assert close(s["dap_total_gycm2"], 153.568640 / 100)
    assert close(s["kar_total_mgy"], 0.004271280351 * 1e3)
    # model only in the observer context; reference point as free text
    assert report.model == "Allura Xper"
    assert info.reference_point_code is None and "BeamIsocenter" in info.reference_point
    assert [e.event_type for e in report.events] == ["fluoroscopy", "acquisition", "acquisition"]


def test_ge_values_openrem_asserts(rdsr):
    info, report = read_report(rdsr / "RF-RDSR-GE.dcm", key_of)
    s = report.stated_totals()
    assert close(s["fluoro_dap_gycm2"], 0.00024126 * 1e4)
    assert close(s["fluoro_kar_mgy"], 0.01173170 * 1e3)
    assert s["acquisition_dap_gycm2"] == 0 and s["acquisition_kar_mgy"] == 0
    assert close(s["fluoro_time_s"], 72.46)
    assert len(report.events) == 8 and len(report.planes) == 1
    event4 = report.events[3]
    assert close(event4.dap_gycm2, 4.334e-5 * 1e4)
    assert close(event4.kar_mgy, 0.00210763 * 1e3)
    assert close(event4.field_area_cm2, 0.041968 * 1e4)
    # stated only on the events: 113861, and the accumulated container states none
    assert info.reference_point_code == "113861"
    # Timezone Offset From UTC written "UTC-04:00": understood, so start is 17:26:23 UTC
    assert report.time_zone_stated and info.started_utc.utcoffset().total_seconds() == -4 * 3600


def test_event_sums_are_kept_beside_stated_totals_never_replacing_them(rdsr):
    _, report = read_report(rdsr / "RF-RDSR-Siemens-Zee.dcm", key_of)
    assert close(report.stated("kar_total_mgy"), 2.52)
    assert close(report.event_sums()["kar_mgy"], 2.49)  # the file's events add up to less
    kar, _dap, _t, origin = report.summary_totals()
    assert kar == report.stated("kar_total_mgy") and origin == "stated"


def test_ge_num_items_without_a_measured_value_read_as_not_stated(rdsr):
    ds = pydicom.dcmread(rdsr / "RF-RDSR-GE.dcm")
    empty = [i for i in _walk(ds) if i.get("ValueType") == "NUM"
             and not i.get("MeasuredValueSequence")]
    assert empty, "the GE file has NUM items without a value (the quirk under test)"
    _, report = read_report(rdsr / "RF-RDSR-GE.dcm", key_of)
    assert all(e.dap_gycm2 is not None for e in report.events)


def _walk(item: Dataset):
    for child in item.get("ContentSequence") or ():
        yield child
        yield from _walk(child)


# -- synthetic reports: units, quirks, planes ----------------------------------------------

def _plane(name: str, **values) -> ImportedPlane:
    fields = dict(dap_total_gycm2=None, kar_total_mgy=None, fluoro_dap_gycm2=None,
                  fluoro_kar_mgy=None, fluoro_time_s=None, acquisition_dap_gycm2=None,
                  acquisition_kar_mgy=None, acquisition_time_s=None, radiographic_frames=None,
                  reference_point="15cm from Isocenter toward Source",
                  reference_point_code="113860")
    fields.update(values)
    return ImportedPlane(name, **fields)


def _event(index: int, dap: float, kar: float) -> ImportedEvent:
    return ImportedEvent(index, None, "20250303090000", "fluoroscopy", "44491008^SCT", "A", "",
                         dap, kar, 300.0, 80.0, 8.0, 15.0, 10.0, 8.0, 0.7, None, None)


def _write(tmp_path: Path, ds: Dataset, name: str = "x.dcm") -> Path:
    path = tmp_path / name
    ds.save_as(path, enforce_file_format=True)
    return path


def _report(planes, events=()) -> ImportedProcedure:
    return ImportedProcedure("", "", "", "Acme", "C-arm 9", "", "room 1", "", "COMPLETE", None,
                             True, "15cm from Isocenter toward Source", "113860", tuple(planes),
                             tuple(events))


def _info(**kw) -> ProcedureInfo:
    return ProcedureInfo(kw.pop("patient_key", KEY), "test", procedure_uid=generate_uid(), **kw)


def test_two_planes_are_summed_and_counted(tmp_path):
    planes = [_plane("A", dap_total_gycm2=2.0, kar_total_mgy=10.0, fluoro_time_s=60.0),
              _plane("B", dap_total_gycm2=1.5, kar_total_mgy=7.0, fluoro_time_s=30.0)]
    path = _write(tmp_path, build_dataset(_info(), _report(planes, [_event(1, 1.0, 5.0)])))
    _, report = read_report(path, key_of)
    assert [p.plane for p in report.planes] == ["A", "B"]
    assert close(report.stated("dap_total_gycm2"), 3.5)
    assert close(report.stated("kar_total_mgy"), 17.0)
    assert close(report.stated("fluoro_time_s"), 90.0)


@pytest.mark.parametrize(("unit", "value", "dap_gycm2"), [
    ("Gy.m2", 1.5e-4, 1.5), ("Gym2", 1.5e-4, 1.5), ("dGy.cm2", 15.0, 1.5),
    ("cGy.cm2", 150.0, 1.5), ("Gy.cm2", 1.5, 1.5), ("mGy.cm2", 1500.0, 1.5),
    ("uGy.m2", 150.0, 1.5)])
def test_dap_converted_by_the_unit_code(tmp_path, unit, value, dap_gycm2):
    path = _write(tmp_path, _hand_made([num(CONTAINS, c.DOSE_AREA_PRODUCT_TOTAL, value,
                                            c.Code(unit, "UCUM", "whatever"))]))
    _, report = read_report(path, key_of)
    assert close(report.stated("dap_total_gycm2"), dap_gycm2)


@pytest.mark.parametrize(("unit", "value"), [("Gy", 0.0025), ("mGy", 2.5), ("dGy", 0.025),
                                             ("cGy", 0.25)])
def test_dose_rp_converted_by_the_unit_code(tmp_path, unit, value):
    path = _write(tmp_path, _hand_made([num(CONTAINS, c.DOSE_RP_TOTAL, value,
                                            c.Code(unit, "UCM", unit))]))
    _, report = read_report(path, key_of)
    assert close(report.stated("kar_total_mgy"), 2.5)


@pytest.mark.parametrize(("unit", "value"), [("s", 90.0), ("ms", 90000.0), ("min", 1.5)])
def test_time_converted_by_the_unit_code(tmp_path, unit, value):
    path = _write(tmp_path, _hand_made([num(CONTAINS, c.TOTAL_FLUORO_TIME, value,
                                            c.Code(unit, "UCUM", unit))]))
    _, report = read_report(path, key_of)
    assert close(report.stated("fluoro_time_s"), 90.0)


def test_an_unknown_dose_unit_is_refused_not_guessed(tmp_path):
    path = _write(tmp_path, _hand_made([num(CONTAINS, c.DOSE_AREA_PRODUCT_TOTAL, 1.0,
                                            c.Code("furlong", "UCUM", "furlong"))]))
    with pytest.raises(InputError, match=r"Dose Area Product Total.*'furlong'") as err:
        read_report(path, key_of)
    assert "\n" not in str(err.value)


def test_quirks_empty_values_text_reference_point_no_template_model_only_in_context(tmp_path):
    empty = num(CONTAINS, c.DOSE_RP_TOTAL, 1.0, c.UNIT_GY)
    del empty.MeasuredValueSequence
    blank = num(CONTAINS, c.TOTAL_FLUORO_TIME, 1.0, c.UNIT_S)
    blank.MeasuredValueSequence[0].NumericValue = ""
    misspelt = num(CONTAINS, c.Code("113728", "DCM", "Fluoro Dose(RP) Total"), 0.002, c.UNIT_GY)
    ds = _hand_made([empty, blank, misspelt,
                     num(CONTAINS, c.DOSE_AREA_PRODUCT_TOTAL, 2e-5, c.UNIT_GY_M2),
                     text(CONTAINS, c.REFERENCE_POINT_DEFINITION, "15cm below BeamIsocenter")],
                    model_in_context="Model X")
    del ds.ContentTemplateSequence
    info, report = read_report(_write(tmp_path, ds), key_of)
    plane = report.planes[0]
    assert plane.kar_total_mgy is None and plane.fluoro_time_s is None
    assert close(plane.fluoro_kar_mgy, 2.0)  # matched by code, whatever the meaning says
    assert info.reference_point == "15cm below BeamIsocenter"
    assert info.reference_point_code is None
    assert report.model == "Model X" and "Model X" in info.device


def test_a_report_written_by_fluoro_keeps_its_pseudonymous_key(tmp_path):
    ds = _hand_made([num(CONTAINS, c.DOSE_AREA_PRODUCT_TOTAL, 2e-5, c.UNIT_GY_M2)])
    ds.PatientID, ds.IssuerOfPatientID = "d" * 32, PSEUDONYM_ISSUER
    info, _ = read_report(_write(tmp_path, ds), key_of)
    assert info.patient_key == "d" * 32
    ds.IssuerOfPatientID = "HOSPITAL"
    info, _ = read_report(_write(tmp_path, ds, "y.dcm"), key_of)
    assert info.patient_key == KEY  # a real ID is keyed, never stored


def _hand_made(accumulated: list[Dataset], model_in_context: str | None = None) -> Dataset:
    """A minimal dose report: one accumulated container holding ``accumulated``."""
    report = _report([_plane("A")])
    ds = build_dataset(_info(), report)
    ds.ManufacturerModelName = ""
    items = [i for i in ds.ContentSequence
             if i.ConceptNameCodeSequence[0].CodeValue not in ("113702", "121015")]
    if model_in_context:
        items.insert(1, text("HAS OBS CONTEXT", c.DEVICE_OBSERVER_MODEL_NAME, model_in_context))
    items.insert(2, container(CONTAINS, c.ACCUMULATED_XRAY_DOSE_DATA, [
        code(HAS_CONCEPT_MOD, c.ACQUISITION_PLANE, c.SINGLE_PLANE), *accumulated]))
    ds.ContentSequence = Sequence(items)
    return ds


# -- refusing what is not a complete projection dose report -------------------------------------

def test_not_a_dicom_file(tmp_path):
    path = tmp_path / "notes.dcm"
    path.write_text("not DICOM at all\n" * 20)
    with pytest.raises(InputError, match=r"notes\.dcm: not a DICOM file"):
        read_report(path, key_of)


def test_a_dicom_that_is_not_a_structured_report(tmp_path):
    ds = Dataset()
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.7"  # Secondary Capture
    ds.SOPInstanceUID = generate_uid()
    ds.PatientID = "x"
    path = tmp_path / "sc.dcm"
    ds.save_as(path, implicit_vr=True, little_endian=True)  # a bare data set, no preamble
    with pytest.raises(InputError, match=r"sc.dcm: not a structured report \(SOP class "
                                         r"1\.2\.840\.10008\.5\.1\.4\.1\.1\.7"):
        read_report(path, key_of)
    with_meta = tmp_path / "sc-meta.dcm"
    ds.save_as(with_meta, implicit_vr=True, little_endian=True, enforce_file_format=True)
    with pytest.raises(InputError, match=r"not a structured report \(SOP class 1\.2\.840"):
        read_report(with_meta, key_of)


def test_a_structured_report_that_is_not_a_dose_report(tmp_path):
    ds = build_dataset(_info(), _report([_plane("A")]))
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.88.33"
    ds.ConceptNameCodeSequence[0].CodeValue = "18748-4"
    ds.ConceptNameCodeSequence[0].CodingSchemeDesignator = "LN"
    ds.ConceptNameCodeSequence[0].CodeMeaning = "Diagnostic Imaging Report"
    with pytest.raises(InputError, match="not an X-ray radiation dose report"):
        read_report(_write(tmp_path, ds), key_of)


def test_a_truncated_file_is_refused_wherever_it_is_cut(tmp_path):
    report = _report([_plane("A", dap_total_gycm2=1.0)], [_event(i, 0.1, 1.0)
                                                           for i in range(1, 6)])
    whole = _write(tmp_path, build_dataset(_info(), report)).read_bytes()
    for cut in range(400, len(whole) - 1, max(1, len(whole) // 40)):
        path = tmp_path / "cut.dcm"
        path.write_bytes(whole[:cut])
        with pytest.raises(InputError, match=r"cut\.dcm: (truncated|incomplete)"):
            read_report(path, key_of)


def test_a_ct_dose_report_is_refused(tmp_path):
    ds = _hand_made([num(CONTAINS, c.DOSE_AREA_PRODUCT_TOTAL, 2e-5, c.UNIT_GY_M2)])
    ds.ContentSequence[0].ConceptCodeSequence[0].CodeValue = "P5-08000"
    ds.ContentSequence[0].ConceptCodeSequence[0].CodingSchemeDesignator = "SRT"
    with pytest.raises(InputError, match="CT radiation dose report"):
        read_report(_write(tmp_path, ds), key_of)


def test_a_dose_report_without_dose_content_is_refused(tmp_path):
    ds = build_dataset(_info(), _report([]))
    with pytest.raises(InputError, match=r"no accumulated dose \(TID 10002\)"):
        read_report(_write(tmp_path, ds), key_of)


def test_totals_missing_are_summed_from_stated_parts_and_say_so(tmp_path):
    path = _write(tmp_path, _hand_made([
        num(CONTAINS, c.FLUORO_DOSE_RP_TOTAL, 0.002, c.UNIT_GY),
        num(CONTAINS, c.ACQUISITION_DOSE_RP_TOTAL, 0.003, c.UNIT_GY),
        num(CONTAINS, c.DOSE_AREA_PRODUCT_TOTAL, 2e-5, c.UNIT_GY_M2)]))
    _, report = read_report(path, key_of)
    kar, dap, _time, origin = report.summary_totals()
    assert close(kar, 5.0) and close(dap, 0.2) and origin != "stated"
