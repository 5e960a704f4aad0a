"""Coded concepts and units of the X-Ray Radiation Dose SR, as named constants.

Concept codes are from DICOM PS3.16 (scheme ``DCM`` unless noted): the templates
TID 10001 "Projection X-Ray Radiation Dose", TID 1002 "Observer Context" (device observer,
TID 1004), TID 10002 "Accumulated X-Ray Dose", TID 10004 "Accumulated Fluoroscopy and Acquisition
Projection X-Ray Dose" and TID 10003 "Irradiation Event X-Ray Data" (with TID 10003B "Irradiation
Event X-Ray Source Data"). Units are UCUM codes (PS3.16 CID 7181 and the units of each template
row): DICOM RDSRs carry DAP in ``Gy.m2`` and Dose (RP) in ``Gy``.

Readers match a concept by its CodeValue and scheme, never by its CodeMeaning (vendors misspell
meanings: "Fluoro Dose(RP) Total"), and convert a value by its unit's CodeValue only (GE writes
the scheme ``UCM``; Siemens writes the non-standard ``Gym2``).
"""

from __future__ import annotations

from typing import NamedTuple

# SOP classes (PS3.4 Annex B) and the patient-ID issuer of the reports fluoro writes.
XRAY_RADIATION_DOSE_SR = "1.2.840.10008.5.1.4.1.1.88.67"
SR_SOP_CLASS_PREFIX = "1.2.840.10008.5.1.4.1.1.88."
# Issuer of Patient ID (0010,0021) of an exported report: its Patient ID is fluoro's
# pseudonymous key (fluoro.doselog.pseudonym), never a real ID, and an import keeps it.
PSEUDONYM_ISSUER = "FLUORO-PSEUDONYM"


class Code(NamedTuple):
    """One coded concept: (CodeValue, CodingSchemeDesignator, CodeMeaning)."""

    value: str
    scheme: str
    meaning: str

    def key(self) -> tuple[str, str]:
        return (self.value, self.scheme)


def dcm(value: str, meaning: str) -> Code:
    return Code(value, "DCM", meaning)


# -- document title and TID 10001 root -------------------------------------------------------
XRAY_RADIATION_DOSE_REPORT = dcm("113701", "X-Ray Radiation Dose Report")  # TID 10001 title
PROCEDURE_REPORTED = dcm("121058", "Procedure reported")
PROJECTION_XRAY = dcm("113704", "Projection X-Ray")
START_OF_XRAY_IRRADIATION = dcm("113809", "Start of X-Ray Irradiation")
END_OF_XRAY_IRRADIATION = dcm("113810", "End of X-Ray Irradiation")
SCOPE_OF_ACCUMULATION = dcm("113705", "Scope of Accumulation")
STUDY = dcm("113014", "Study")
STUDY_INSTANCE_UID = dcm("110180", "Study Instance UID")
SOURCE_OF_DOSE_INFORMATION = dcm("113854", "Source of Dose Information")
SYSTEM_CALCULATED = dcm("113940", "System Calculated")
COMMENT = dcm("121106", "Comment")
CT_ACCUMULATED_DOSE_DATA = dcm("113811", "CT Accumulated Dose Data")  # TID 10011 (CT): refused

# -- TID 1002 observer context, device observer (TID 1004) ----------------------------------
OBSERVER_TYPE = dcm("121005", "Observer Type")
DEVICE = dcm("121007", "Device")
DEVICE_OBSERVER_UID = dcm("121012", "Device Observer UID")
DEVICE_OBSERVER_NAME = dcm("121013", "Device Observer Name")
DEVICE_OBSERVER_MANUFACTURER = dcm("121014", "Device Observer Manufacturer")
DEVICE_OBSERVER_MODEL_NAME = dcm("121015", "Device Observer Model Name")
DEVICE_OBSERVER_SERIAL_NUMBER = dcm("121016", "Device Observer Serial Number")
DEVICE_OBSERVER_LOCATION = dcm("121017", "Device Observer Physical Location During Observation")

# -- TID 10002 / 10004 accumulated dose ------------------------------------------------------
ACCUMULATED_XRAY_DOSE_DATA = dcm("113702", "Accumulated X-Ray Dose Data")
ACQUISITION_PLANE = dcm("113764", "Acquisition Plane")
SINGLE_PLANE = dcm("113622", "Single Plane")
PLANE_A = dcm("113620", "Plane A")
PLANE_B = dcm("113621", "Plane B")
DOSE_AREA_PRODUCT_TOTAL = dcm("113722", "Dose Area Product Total")
DOSE_RP_TOTAL = dcm("113725", "Dose (RP) Total")
FLUORO_DOSE_AREA_PRODUCT_TOTAL = dcm("113726", "Fluoro Dose Area Product Total")
ACQUISITION_DOSE_AREA_PRODUCT_TOTAL = dcm("113727", "Acquisition Dose Area Product Total")
FLUORO_DOSE_RP_TOTAL = dcm("113728", "Fluoro Dose (RP) Total")
ACQUISITION_DOSE_RP_TOTAL = dcm("113729", "Acquisition Dose (RP) Total")
TOTAL_FLUORO_TIME = dcm("113730", "Total Fluoro Time")
TOTAL_NUMBER_OF_RADIOGRAPHIC_FRAMES = dcm("113731", "Total Number of Radiographic Frames")
TOTAL_ACQUISITION_TIME = dcm("113855", "Total Acquisition Time")
REFERENCE_POINT_DEFINITION = dcm("113780", "Reference Point Definition")
# CID 10025 "Irradiation Event Reference Point"
IEC_REFERENCE_POINT_CODE = dcm("113860", "15cm from Isocenter toward Source")
IMAGE_INPUT_30CM_CODE = dcm("113861", "30cm in Front of Image Input Surface")

# -- TID 10003 irradiation event ---------------------------------------------------------------
IRRADIATION_EVENT_XRAY_DATA = dcm("113706", "Irradiation Event X-Ray Data")
IRRADIATION_EVENT_TYPE = dcm("113721", "Irradiation Event Type")
# CID 10002 "Irradiation Event Type": fluoroscopy is SNOMED CT 44491008 (formerly SRT P5-06000).
# (DCM 113630 is "Continuous", a Fluoro Mode of CID 10004, not an event type.)
FLUOROSCOPY = Code("44491008", "SCT", "Fluoroscopy")
FLUOROSCOPY_SRT = Code("P5-06000", "SRT", "Fluoroscopy")
STATIONARY_ACQUISITION = dcm("113611", "Stationary Acquisition")
STEPPING_ACQUISITION = dcm("113612", "Stepping Acquisition")
ROTATIONAL_ACQUISITION = dcm("113613", "Rotational Acquisition")
IRRADIATION_EVENT_UID = dcm("113769", "Irradiation Event UID")
DATETIME_STARTED = dcm("111526", "DateTime Started")
ACQUISITION_PROTOCOL = dcm("125203", "Acquisition Protocol")
DOSE_AREA_PRODUCT = dcm("122130", "Dose Area Product")
DOSE_RP = dcm("113738", "Dose (RP)")
COLLIMATED_FIELD_AREA = dcm("113790", "Collimated Field Area")
FLUORO_MODE = dcm("113732", "Fluoro Mode")
CONTINUOUS = dcm("113630", "Continuous")
PULSED = dcm("113631", "Pulsed")
PULSE_RATE = dcm("113791", "Pulse Rate")
NUMBER_OF_PULSES = dcm("113768", "Number of Pulses")
IRRADIATION_DURATION = dcm("113742", "Irradiation Duration")
KVP = dcm("113733", "KVP")
XRAY_TUBE_CURRENT = dcm("113734", "X-Ray Tube Current")
PULSE_WIDTH = dcm("113793", "Pulse Width")
EXPOSURE_TIME = dcm("113824", "Exposure Time")
DISTANCE_SOURCE_TO_DETECTOR = dcm("113750", "Distance Source to Detector")
DISTANCE_SOURCE_TO_REFERENCE_POINT = dcm("113737", "Distance Source to Reference Point")

FLUOROSCOPY_TYPES = frozenset({FLUOROSCOPY.key(), FLUOROSCOPY_SRT.key()})
ACQUISITION_TYPES = frozenset({STATIONARY_ACQUISITION.key(), STEPPING_ACQUISITION.key(),
                               ROTATIONAL_ACQUISITION.key()})

# -- units (UCUM) ---------------------------------------------------------------------------------
UNIT_GY_M2 = Code("Gy.m2", "UCUM", "Gy.m2")
UNIT_GY = Code("Gy", "UCUM", "Gy")
UNIT_S = Code("s", "UCUM", "s")
UNIT_MS = Code("ms", "UCUM", "ms")
UNIT_KV = Code("kV", "UCUM", "kV")
UNIT_MA = Code("mA", "UCUM", "mA")
UNIT_M2 = Code("m2", "UCUM", "m2")
UNIT_MM = Code("mm", "UCUM", "mm")
UNIT_PULSE_PER_S = Code("{pulse}/s", "UCUM", "pulse/s")
UNIT_NONE = Code("1", "UCUM", "no units")

# Factor from a unit (by CodeValue, any scheme) to fluoro's canonical unit of each kind:
# DAP -> Gy·cm², dose -> mGy, time -> s, area -> cm², voltage -> kV, current -> mA,
# rate -> 1/s, count -> 1. "Gym2" is Siemens' non-standard spelling of Gy.m2.
UNITS_TO_CANONICAL: dict[str, dict[str, float]] = {
    "dap": {"Gy.m2": 1e4, "Gym2": 1e4, "Gy.m^2": 1e4, "dGy.m2": 1e3, "cGy.m2": 1e2,
            "mGy.m2": 10.0, "uGy.m2": 1e-2, "Gy.dm2": 1e2, "Gy.cm2": 1.0, "dGy.cm2": 0.1,
            "cGy.cm2": 1e-2, "mGy.cm2": 1e-3, "uGy.cm2": 1e-6},
    "dose": {"Gy": 1e3, "dGy": 1e2, "cGy": 10.0, "mGy": 1.0, "uGy": 1e-3},
    "time": {"s": 1.0, "ms": 1e-3, "us": 1e-6, "min": 60.0, "h": 3600.0},
    "area": {"m2": 1e4, "dm2": 1e2, "cm2": 1.0, "mm2": 1e-2},
    "voltage": {"kV": 1.0, "kVp": 1.0, "V": 1e-3},
    "current": {"mA": 1.0, "uA": 1e-3, "A": 1e3},
    "rate": {"{pulse}/s": 1.0, "{pulses}/s": 1.0, "pulse/s": 1.0, "pulses/s": 1.0, "/s": 1.0,
             "1/s": 1.0, "s-1": 1.0, "Hz": 1.0,
             "{pulse}/min": 1 / 60},
    "count": {"1": 1.0, "{pulse}": 1.0, "{pulses}": 1.0, "{frames}": 1.0, "{frame}": 1.0},
}

CANONICAL_UNIT = {"dap": "Gy·cm²", "dose": "mGy", "time": "s", "area": "cm²", "voltage": "kV",
                  "current": "mA", "rate": "1/s", "count": "1"}


def to_canonical(value: float, unit_code: str, kind: str) -> float | None:
    """``value`` in fluoro's canonical unit of ``kind`` (see ``UNITS_TO_CANONICAL``), or None
    when ``unit_code`` is not a unit of that kind."""
    factor = UNITS_TO_CANONICAL[kind].get(unit_code.strip())
    return None if factor is None else value * factor
