"""Exporting a logged procedure as an RDSR, checked with dicom3tools and dcmtk, and read back;
imported procedures in the dose log (chain, verify, queries, patient history)."""

import math
import re
import shutil
import subprocess
from datetime import UTC, datetime, timedelta

import pydicom
import pytest
from conftest import log_frames, make_frames

from fluoro.doselog import DoseLog, ProcedureInfo, verify
from fluoro.errors import InputError
from fluoro.rdsr.codes import PSEUDONYM_ISSUER
from fluoro.rdsr.export import export_rdsr
from fluoro.rdsr.ingest import import_files, read_report

KEY = "e" * 32
T0 = datetime(2025, 3, 3, 9, 0, tzinfo=UTC)


def never_keyed(patient_id: str) -> str:
    raise AssertionError("an exported report carries the key already")


@pytest.fixture
def logged(tmp_path):
    """A dose log with one live procedure: two irradiation events and one lost pulse."""
    log = DoseLog.create_or_open(tmp_path / "dose.sqlite")
    uid = log.begin_procedure(ProcedureInfo(KEY, "L4-5 TFESI", room="Angio 2",
                                            device="Acme C-arm 9", started_utc=T0))
    acc = log_frames(log, make_frames("1111111x11110001111111111"))
    log.end_procedure(acc.totals())
    yield log, uid
    log.close()


def rel(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-15)


def test_exported_rdsr_holds_the_logged_totals_and_reads_back_the_same(logged, tmp_path):
    log, uid = logged
    summary = log.procedure(uid)
    out = export_rdsr(log, uid, tmp_path / "dose.dcm")
    ds = pydicom.dcmread(out)
    assert ds.SOPClassUID == "1.2.840.10008.5.1.4.1.1.88.67"
    assert ds.PatientID == KEY and ds.IssuerOfPatientID == PSEUDONYM_ISSUER
    assert str(ds.PatientName) == ""
    assert ds.ContentTemplateSequence[0].TemplateIdentifier == "10001"
    info, report = read_report(out, never_keyed)
    assert info.patient_key == KEY
    assert rel(report.stated("kar_total_mgy"), summary.kar_mgy)
    assert rel(report.stated("dap_total_gycm2"), summary.dap_gycm2)
    assert rel(report.stated("fluoro_kar_mgy"), summary.kar_mgy)
    assert rel(report.stated("fluoro_time_s"), summary.fluoro_time_s)
    assert report.stated("acquisition_dap_gycm2") == 0
    assert len(report.events) == summary.events == 2
    # the events (lost pulse's estimate included) add up to the totals
    assert rel(report.event_sums()["kar_mgy"], summary.kar_mgy)
    assert report.event_sums()["pulses"] == summary.pulses + summary.missing_pulses
    assert info.reference_point_code == "113860"
    assert {e.event_type for e in report.events} == {"fluoroscopy"}
    assert all(e.kvp == 80.0 and e.pulse_rate_hz == 15.0 and e.pulse_ms == 8.0
               for e in report.events)


def test_a_reference_point_other_than_iec_is_written_as_text(tmp_path):
    with DoseLog.create_or_open(tmp_path / "d.sqlite") as log:
        uid = log.begin_procedure(ProcedureInfo(None, reference_point="skin entrance, "
                                                "measured", reference_point_code=None))
        acc = log_frames(log, make_frames("111"))
        log.end_procedure(acc.totals())
        out = export_rdsr(log, uid, tmp_path / "x.dcm")
    info, _ = read_report(out, never_keyed)
    assert info.reference_point == "skin entrance, measured"
    assert info.reference_point_code is None and info.patient_key is None


def test_export_of_an_unknown_procedure_or_to_a_missing_folder(logged, tmp_path):
    log, uid = logged
    with pytest.raises(InputError, match=r"procedure 1\.2\.3: not in the dose log"):
        export_rdsr(log, "1.2.3", tmp_path / "x.dcm")
    with pytest.raises(InputError, match="does not exist"):
        export_rdsr(log, uid, tmp_path / "nope" / "x.dcm")


@pytest.mark.skipif(shutil.which("dciodvfy") is None,
                    reason="dciodvfy not installed (Debian package dicom3tools)")
def test_dciodvfy_finds_no_errors(logged, tmp_path):
    log, uid = logged
    out = export_rdsr(log, uid, tmp_path / "dose.dcm")
    result = subprocess.run(["dciodvfy", str(out)], capture_output=True, text=True, timeout=60)
    text = result.stdout + result.stderr
    assert "XRayRadiationDoseSR" in text
    assert not [line for line in text.splitlines() if line.startswith("Error")], text


@pytest.mark.skipif(shutil.which("dsrdump") is None,
                    reason="dsrdump not installed (Debian package dcmtk)")
def test_dsrdump_reads_it_and_shows_the_totals(logged, tmp_path):
    log, uid = logged
    summary = log.procedure(uid)
    out = export_rdsr(log, uid, tmp_path / "dose.dcm")
    result = subprocess.run(["dsrdump", str(out)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert not re.search(r"^[EF]: ", result.stderr, re.M), result.stderr
    text = result.stdout
    assert "X-Ray Radiation Dose SR Document" in text
    dap = re.search(r'"Dose Area Product Total"\)="([^"]+)" \(Gy\.m2', text)
    kar = re.search(r'"Dose \(RP\) Total"\)="([^"]+)" \(Gy,', text)
    time_s = re.search(r'"Total Fluoro Time"\)="([^"]+)" \(s,', text)
    assert dap and kar and time_s, text
    assert rel(float(dap.group(1)) * 1e4, summary.dap_gycm2)
    assert rel(float(kar.group(1)) * 1e3, summary.kar_mgy)
    assert rel(float(time_s.group(1)), summary.fluoro_time_s)
    assert text.count('"Irradiation Event X-Ray Data"') == 2


# -- imported procedures in the dose log ---------------------------------------------------

def test_imported_procedure_is_listed_with_its_stated_totals_and_the_chain_verifies(logged,
                                                                                  tmp_path):
    log, uid = logged
    live = log.procedure(uid)
    out = export_rdsr(log, uid, tmp_path / "dose.dcm")
    before = log.head()
    [(_, new_uid, head)] = import_files([out], log, never_keyed)
    assert head is not None and head.rows > before.rows
    procs = {p.procedure_uid: p for p in log.procedures()}
    imported = procs[new_uid]
    assert imported.source == "rdsr-import" and imported.is_imported
    assert procs[uid].source == "live" and not procs[uid].is_imported
    assert rel(imported.kar_mgy, live.kar_mgy) and rel(imported.dap_gycm2, live.dap_gycm2)
    assert imported.events == live.events and imported.complete
    assert imported.reported is not None and rel(imported.reported.kar_mgy, live.kar_mgy)
    assert log.pulses(new_uid) == [] and log.events(new_uid) == []  # no live rows
    assert log.imported(uid) is None and log.imported(new_uid) == imported.imported
    assert log.verify().ok and verify(log.path, head).ok
    # the patient's cumulative dose counts the imported procedure too
    history = log.patient_history(KEY, weeks=52, now=T0 + timedelta(days=1))
    assert history.procedures == 2
    assert rel(history.kar_mgy, 2 * live.kar_mgy)


def test_importing_the_same_report_twice_skips_it(logged, tmp_path):
    log, uid = logged
    out = export_rdsr(log, uid, tmp_path / "dose.dcm")
    first = import_files([out, out], log, never_keyed)
    assert first[0][2] is not None and first[1][2] is None
    head = log.head()
    assert import_files([out], log, never_keyed)[0][2] is None
    assert log.head() == head


def test_one_bad_file_imports_nothing(logged, tmp_path):
    log, uid = logged
    good = export_rdsr(log, uid, tmp_path / "good.dcm")
    bad = tmp_path / "bad.dcm"
    bad.write_bytes(good.read_bytes()[:-200])
    head = log.head()
    with pytest.raises(InputError, match=r"bad\.dcm: truncated"):
        import_files([good, bad], log, never_keyed)
    assert log.head() == head and len(log.procedures()) == 1


def test_reexport_of_an_imported_vendor_report_keeps_its_values(shared_data, tmp_path):
    source = shared_data / "rdsr" / "RF-RDSR-Philips_Allura.dcm"
    with DoseLog.create_or_open(tmp_path / "d.sqlite") as log:
        [(_, uid, _)] = import_files([source], log, lambda pid: KEY)
        out = export_rdsr(log, uid, tmp_path / "again.dcm")
        original = log.imported(uid)
    _, report = read_report(out, never_keyed)
    assert original is not None
    stated = {name: value for name, value in original.stated_totals().items()
              if value is not None}
    # the Allura file states fluoroscopy, acquisition and total dose: the loop checks those
    assert {"fluoro_dap_gycm2", "acquisition_dap_gycm2", "dap_total_gycm2",
            "kar_total_mgy"} <= set(stated), stated
    for name, value in stated.items():
        assert rel(report.stated(name), value), name
    assert [e.event_type for e in report.events] == [e.event_type for e in original.events]
    assert report.reference_point == original.reference_point


@pytest.mark.skipif(shutil.which("dsrdump") is None or shutil.which("dciodvfy") is None,
                    reason="dsrdump/dciodvfy not installed (Debian packages dcmtk, dicom3tools)")
def test_an_unfinished_procedure_with_non_ascii_names_exports_cleanly(tmp_path):
    with DoseLog.create_or_open(tmp_path / "d.sqlite") as log:
        uid = log.begin_procedure(ProcedureInfo(KEY, "Wirbelsäule L4–5", room="Saal Ü"))
        log_frames(log, make_frames("1111"))  # no end_procedure: the process was killed
        out = export_rdsr(log, uid, tmp_path / "partial.dcm")
    ds = pydicom.dcmread(out)
    assert ds.CompletionFlag == "COMPLETE" and ds.SpecificCharacterSet == "ISO_IR 192"
    assert ds.StudyDescription == "Wirbelsäule L4–5"
    comments = [i.TextValue for i in ds.ContentSequence
                if i.ConceptNameCodeSequence[0].CodeValue == "121106"]
    assert comments and "Partial record" in comments[0]
    check = subprocess.run(["dciodvfy", str(out)], capture_output=True, text=True, timeout=60)
    assert "Error" not in check.stdout + check.stderr, check.stderr
    dump = subprocess.run(["dsrdump", str(out)], capture_output=True, text=True, timeout=60)
    assert dump.returncode == 0 and "Completion Flag" not in dump.stderr, dump.stderr
    assert read_report(out, never_keyed)[0].procedure_name == "Wirbelsäule L4–5"
