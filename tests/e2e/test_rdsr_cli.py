"""``fluoro dose import-rdsr`` and ``export-rdsr`` as a user runs them: the vendors' reports
reproduce the values OpenREM asserts, a simulated procedure exports to a valid RDSR that reads
back with the same totals, and bad files are refused with one line, importing nothing."""

import json
import math
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from conftest import assert_one_error_line, run_fluoro
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

FAST_SIM = "sim://spine?size=256&realtime=0"


def report(db: Path) -> dict:
    result = run_fluoro("dose", "report", "--db", str(db), "--json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def close(value, expected: float, rel: float = 1e-4) -> bool:
    """Within 0.01 %."""
    return value is not None and math.isclose(value, expected, rel_tol=rel, abs_tol=1e-12)


@pytest.fixture
def vendor_db(shared_data, tmp_path) -> dict[str, dict]:
    """The three vendor RDSRs imported in one command; procedures by file name."""
    db = tmp_path / "imported.sqlite"
    files = sorted((shared_data / "rdsr").glob("*.dcm"))
    result = run_fluoro("dose", "import-rdsr", *map(str, files), "--db", str(db))
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("imported as procedure") == 3, result.stdout
    verified = run_fluoro("dose", "verify", "--db", str(db))
    assert verified.returncode == 0, verified.stdout + verified.stderr
    return {p["rdsr"]["file_name"]: p for p in report(db)["procedures"]}


def test_siemens_zee_as_openrem_reads_it(vendor_db):
    p = vendor_db["RF-RDSR-Siemens-Zee.dcm"]
    assert p["source"] == "rdsr-import" and p["imported"] is True
    assert close(p["dap_gycm2"], 0.16) and close(p["kar_mgy"], 2.52)
    assert p["events"] == 8 and p["plane_count"] == 1
    assert close(p["fluoro_time_s"], 28.0)
    assert p["acquisition_dap_gycm2"] == 0 and p["acquisition_kar_mgy"] == 0
    assert p["reference_point_code"] == "113860"
    assert p["reference_point"] == "15cm from Isocenter toward Source"
    assert len(p["irradiation_events"]) == 8
    assert p["patient_key"] and p["patient_key"] != "098765"  # pseudonymised


def test_philips_allura_as_openrem_reads_it(vendor_db):
    p = vendor_db["RF-RDSR-Philips_Allura.dcm"]
    assert close(p["fluoro_dap_gycm2"], 10.558274 / 100)
    assert close(p["fluoro_kar_mgy"], 0.000293081169 * 1e3)
    assert close(p["fluoro_time_s"], 13.00)
    assert close(p["acquisition_dap_gycm2"], 143.010366 / 100)
    assert close(p["acquisition_kar_mgy"], 0.003978199182 * 1e3)
    assert close(p["acquisition_time_s"], 14.75)
    assert close(p["dap_gycm2"], 153.568640 / 100)
    assert close(p["kar_mgy"], 0.004271280351 * 1e3)
    assert p["rdsr"]["model"] == "Allura Xper"
    assert p["reference_point_code"] is None and "BeamIsocenter" in p["reference_point"]


def test_ge_as_openrem_reads_it(vendor_db):
    p = vendor_db["RF-RDSR-GE.dcm"]
    assert close(p["fluoro_dap_gycm2"], 0.00024126 * 1e4)
    assert close(p["fluoro_kar_mgy"], 0.01173170 * 1e3)
    assert p["acquisition_dap_gycm2"] == 0 and p["acquisition_kar_mgy"] == 0
    assert p["events"] == 8 and p["plane_count"] == 1
    assert close(p["fluoro_time_s"], 72.46)
    event4 = p["irradiation_events"][3]
    assert close(event4["dap_gycm2"], 4.334e-5 * 1e4)
    assert close(event4["kar_mgy"], 0.00210763 * 1e3)
    assert close(event4["field_area_cm2"], 0.041968 * 1e4)
    assert p["reference_point_code"] == "113861"
    # stated totals and per-event sums are both reported
    assert close(p["stated"]["dap_total_gycm2"], 2.4126)
    assert close(p["event_sums"]["dap_gycm2"], 2.4125)


@pytest.mark.slow
def test_simulated_procedure_exports_validates_and_round_trips(tmp_path):
    db = tmp_path / "live.sqlite"
    ran = run_fluoro("run", "--headless", "--frames", "90", "--source", FAST_SIM,
                     "--dose-log", str(db), "--patient", "MRN-0042", "--procedure", "L5-S1")
    assert ran.returncode == 0, ran.stderr
    [live] = report(db)["procedures"]
    out = tmp_path / "live.dcm"
    exported = run_fluoro("dose", "export-rdsr", "--db", str(db), "--procedure",
                          live["procedure_uid"], "--out", str(out))
    assert exported.returncode == 0, exported.stderr
    assert out.is_file() and str(out) in exported.stdout
    if shutil.which("dciodvfy"):
        check = subprocess.run(["dciodvfy", str(out)], capture_output=True, text=True,
                               timeout=60)
        lines = (check.stdout + check.stderr).splitlines()
        assert not [x for x in lines if x.startswith("Error")], lines
    if shutil.which("dsrdump"):
        dump = subprocess.run(["dsrdump", str(out)], capture_output=True, text=True, timeout=60)
        assert dump.returncode == 0, dump.stderr
        kar = re.search(r'"Dose \(RP\) Total"\)="([^"]+)"', dump.stdout)
        assert kar and close(float(kar.group(1)) * 1e3, live["kar_mgy"], 1e-9), dump.stdout
    back = tmp_path / "back.sqlite"
    imported = run_fluoro("dose", "import-rdsr", str(out), "--db", str(back))
    assert imported.returncode == 0, imported.stderr
    [again] = report(back)["procedures"]
    assert again["imported"] and again["patient_key"] == live["patient_key"]
    for name in ("kar_mgy", "dap_gycm2", "fluoro_time_s"):
        assert close(again[name], live[name], 1e-9), name
    assert again["events"] == live["events"]
    assert again["reference_point_code"] == "113860"


def test_export_of_an_unknown_procedure_is_one_line(tmp_path):
    db = tmp_path / "d.sqlite"
    created = run_fluoro("dose", "import-rdsr", str(_sr(tmp_path)), "--db", str(db))
    assert created.returncode == 0, created.stderr
    result = run_fluoro("dose", "export-rdsr", "--db", str(db), "--procedure", "1.2.3",
                        "--out", str(tmp_path / "x.dcm"))
    assert_one_error_line(result, "1.2.3", "not in the dose log")


# -- bad input ---------------------------------------------------------------------------------

def _sr(tmp_path: Path) -> Path:
    """A valid little dose report written by fluoro's own exporter."""
    from fluoro.doselog import ImportedPlane, ImportedProcedure, ProcedureInfo
    from fluoro.rdsr.export import build_dataset

    plane = ImportedPlane("single", 1.0, 5.0, 1.0, 5.0, 30.0, 0.0, 0.0, 0.0, 0.0,
                          "15cm from Isocenter toward Source", "113860")
    report_ = ImportedProcedure("", "", "", "Acme", "C9", "", "room", "", "COMPLETE", None, True,
                                "15cm from Isocenter toward Source", "113860", (plane,))
    path = tmp_path / "good.dcm"
    build_dataset(ProcedureInfo(None, "t", procedure_uid=generate_uid()),
                  report_).save_as(path, enforce_file_format=True)
    return path


def _not_sr(tmp_path: Path) -> Path:
    ds = Dataset()
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.12.1"  # X-Ray Angiographic Image
    ds.SOPInstanceUID = generate_uid()
    ds.Modality = "XA"
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    path = tmp_path / "xa.dcm"
    ds.save_as(path, enforce_file_format=True)
    return path


def _not_dose(tmp_path: Path) -> Path:
    import pydicom

    ds = pydicom.dcmread(_sr(tmp_path))
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.88.22"
    title = ds.ConceptNameCodeSequence[0]
    title.CodeValue, title.CodingSchemeDesignator, title.CodeMeaning = (
        "18748-4", "LN", "Diagnostic Imaging Report")
    path = tmp_path / "report.dcm"
    ds.save_as(path, enforce_file_format=True)
    return path


def _truncated(tmp_path: Path) -> Path:
    path = tmp_path / "cut.dcm"
    path.write_bytes(_sr(tmp_path).read_bytes()[:-150])
    return path


def _text(tmp_path: Path) -> Path:
    path = tmp_path / "readme.dcm"
    path.write_text("this is not DICOM\n")
    return path


@pytest.mark.parametrize(("make", "words"), [
    (_not_sr, ("xa.dcm", "not a structured report (SOP class 1.2.840.10008.5.1.4.1.1.12.1")),
    (_not_dose, ("report.dcm", "not an X-ray radiation dose report")),
    (_truncated, ("cut.dcm", "truncated")),
    (_text, ("readme.dcm", "not a DICOM file")),
])
def test_bad_file_is_one_line_and_nothing_is_imported(tmp_path, make, words):
    db = tmp_path / "d.sqlite"
    first = run_fluoro("dose", "import-rdsr", str(_sr(tmp_path)), "--db", str(db))
    assert first.returncode == 0, first.stderr
    rows_before = run_fluoro("dose", "verify", "--db", str(db)).stdout
    bad = make(tmp_path)
    good = _sr(tmp_path).rename(tmp_path / "another.dcm")  # a fresh SOP Instance UID
    result = run_fluoro("dose", "import-rdsr", str(good), str(bad), "--db", str(db))
    assert_one_error_line(result, *words)
    assert run_fluoro("dose", "verify", "--db", str(db)).stdout == rows_before
    assert len(report(db)["procedures"]) == 1


def test_a_bad_file_does_not_even_create_the_log(tmp_path):
    db = tmp_path / "never.sqlite"
    result = run_fluoro("dose", "import-rdsr", str(_sr(tmp_path)), str(_text(tmp_path)),
                        "--db", str(db))
    assert_one_error_line(result, "readme.dcm", "not a DICOM file")
    assert not db.exists()
