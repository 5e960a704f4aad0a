"""The dose report's selection and aggregation on a synthetic clinic log (built directly with
``DoseLog``, deterministic, in about a second): filters, per-patient windows, per-room statistics,
DRL outliers, dose sources.

``build_clinic_log`` is also used by ``tests/e2e/test_report_cli.py`` (loaded by path).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from conftest import make_exposure

from fluoro.dose.accumulator import DoseGap, DoseTotals, PulseDose
from fluoro.doselog import DoseLog, ImportedEvent, ImportedPlane, ImportedProcedure, ProcedureInfo
from fluoro.report.data import (
    ReportFilter,
    build_report,
    dose_source,
    percentile,
)
from fluoro.report.drl import load_drl_table

T0 = datetime(2025, 3, 3, 8, 0, tzinfo=UTC)
ROOMS = ("OR 1", "OR 2", "Pain clinic")
NAMES = ("L5-S1 TFESI", "Lumbar facet injection L4-5", "Interlaminar epidural L5-S1",
         "SI joint injection right", "Vertebroplasty T12")


def patient(i: int) -> str:
    """Pseudonymous key of test patient ``i`` (32 hex digits)."""
    return hashlib.md5(f"patient-{i}".encode()).hexdigest()


@dataclass(frozen=True)
class Planned:
    """One synthetic live procedure: ``events`` pedal presses of ``pulses`` pulses each at
    15 pulses/s, every pulse ``kar_mgy`` / ``dap_gycm2``."""

    day: int
    room: str
    name: str
    patient: int | None
    events: int
    pulses: int
    kar_mgy: float
    dap_gycm2: float
    measured: bool = False
    alarms: tuple[tuple[str, float, str, str | None], ...] = ()  # key, t_s, message, acked by
    gap: bool = False


def plan() -> list[Planned]:
    """25 live procedures over 9 weeks, 3 rooms, 8 patients (one of them a phantom run), with two
    DAP outliers, one fluoro-time outlier and a patient who reaches the NCRP 168 level."""
    planned = []
    for i in range(21):
        name = NAMES[i % 4]
        planned.append(Planned(day=3 * i, room=ROOMS[i % 3], name=name, patient=i % 7,
                               events=3 + i % 3, pulses=60 + 7 * (i % 5),
                               kar_mgy=0.02 + 0.002 * (i % 4), dap_gycm2=0.0035 + 0.0004 * (i % 3),
                               measured=i % 6 == 0))
    # outliers: DAP 4.4 Gy·cm² on a TFESI (DRL 2.5); 108 s of fluoro on a facet block (DRL 75 s);
    # the vertebroplasties (default DRL 5 Gy·cm²) below
    planned[4] = Planned(day=12, room="OR 2", name="L4-5 TFESI", patient=4, events=4, pulses=110,
                         kar_mgy=0.05, dap_gycm2=0.01,
                         alarms=(("dap-4", 20.0, "DAP 2 Gy·cm² reached", "Dr Okafor"),
                                 ("dap-4b", 27.0, "DAP 4 Gy·cm² reached", None)))
    planned[9] = Planned(day=27, room="Pain clinic", name="Lumbar facet injection L3-4",
                         patient=2, events=6, pulses=270, kar_mgy=0.004, dap_gycm2=0.0012,
                         alarms=(("time-9", 60.0, "fluoro time 1 min", "RN Patel"),), gap=True)
    # patient 7: three vertebroplasties 2 weeks apart, 1.2 Gy each: NCRP 168 at the third
    for k in range(3):
        planned.append(Planned(day=30 + 14 * k, room="OR 1", name="Vertebroplasty T12",
                               patient=7, events=5, pulses=240, kar_mgy=1.0, dap_gycm2=0.02,
                               alarms=((f"kar-v{k}", 40.0, "Ka,r 500 mGy", "Dr Okafor"),)))
    planned.append(Planned(day=61, room="OR 2", name="QA phantom", patient=None, events=1,
                           pulses=30, kar_mgy=0.01, dap_gycm2=0.001))
    return planned


class ManualClock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


def _record(log: DoseLog, clock: ManualClock, p: Planned, index: int, *, end: bool = True) -> str:
    start = T0 + timedelta(days=p.day, hours=index % 5)
    clock.now = start
    uid = log.begin_procedure(ProcedureInfo(
        patient(p.patient) if p.patient is not None else None, p.name, operator="Dr Okafor",
        room=p.room, device="C-arm 1", started_utc=start, procedure_uid=f"2.25.{1000 + index}"))
    seq, t_s = 0, 2.0
    totals = dict(kar=0.0, dap=0.0, time=0.0, pulses=0, missing=0)
    pending = sorted(p.alarms, key=lambda a: a[1])
    for event in range(1, p.events + 1):
        for _ in range(p.pulses):
            if p.gap and event == 2 and seq % p.pulses == 5:
                log.append(DoseGap(seq, 2, t_s, event, 2 * p.kar_mgy, 2 * p.dap_gycm2, 2 / 15))
                seq, t_s = seq + 2, t_s + 2 / 15
                totals["missing"] += 2
                totals["kar"] += 2 * p.kar_mgy
                totals["dap"] += 2 * p.dap_gycm2
                continue
            log.append(PulseDose(seq, t_s, event, p.kar_mgy, p.dap_gycm2, p.kar_mgy,
                                 p.dap_gycm2, p.measured, 1 / 15, make_exposure()))
            totals["kar"] += p.kar_mgy
            totals["dap"] += p.dap_gycm2
            totals["time"] += 1 / 15
            totals["pulses"] += 1
            seq, t_s = seq + 1, t_s + 1 / 15
            while pending and pending[0][1] <= t_s:
                key, at, message, user = pending.pop(0)
                clock.now = start + timedelta(seconds=at)
                log.log_alarm(key, "kar_mgy", 1.0, totals["kar"], at, message)
                if user is not None:
                    log.log_ack(key, user)
        t_s += 4.0  # between pedal presses
    if end:
        log.end_procedure(DoseTotals(totals["kar"], totals["dap"], totals["time"],
                                     pulses=totals["pulses"], missing_pulses=totals["missing"],
                                     events=p.events))
    return uid


def _imported_report() -> ImportedProcedure:
    plane = ImportedPlane("Single Plane", 1.9, 14.0, 1.1, 9.0, 48.0, 0.8, 5.0, 6.0, 4.0,
                          None, None)
    events = tuple(ImportedEvent(i, None, f"20250415{9 + i // 3:02d}{10 * (i % 3):02d}00",
                                 "fluoroscopy", "P5-06000^SRT", "Single Plane", "spine",
                                 0.35, 2.8, 120.0, 80.0, 4.0, 15.0, None, None, 9.6, None, None)
                   for i in range(5))
    return ImportedProcedure("2.25.999", "2.25.998", "vendor.dcm", "Acme", "C-arm 9", "", "",
                             "", "COMPLETE", "20250415090000", True,
                             "15cm from Isocenter toward Source", "113860", (plane,), events)


def build_clinic_log(path: Path) -> Path:
    """The synthetic clinic: 25 live procedures + 1 imported + 1 incomplete (see ``plan``)."""
    clock = ManualClock()
    with DoseLog.create_or_open(path, synchronous="NORMAL", clock=clock) as log:
        planned = plan()
        for index, p in enumerate(planned):
            _record(log, clock, p, index)
        log.import_procedure(ProcedureInfo(patient(3), "Transforaminal epidural L4",
                                           room="OR 2", device="Acme C-arm 9",
                                           started_utc=datetime(2025, 4, 15, 9, tzinfo=UTC),
                                           procedure_uid="2.25.999"), _imported_report())
        _record(log, clock, Planned(day=62, room="OR 1", name="L5-S1 TFESI", patient=5, events=2,
                                    pulses=40, kar_mgy=0.02, dap_gycm2=0.004), 99, end=False)
    return path


@pytest.fixture(scope="module")
def clinic(tmp_path_factory) -> Path:
    return build_clinic_log(tmp_path_factory.mktemp("clinic") / "dose.sqlite")


def _report(path: Path, **filters):
    with DoseLog.open_readonly(path) as log:
        return build_report(log, ReportFilter(**filters), load_drl_table())


def test_the_clinic_log_has_what_the_acceptance_asks(clinic):
    report = _report(clinic)
    assert len(report.procedures) == 27
    assert {r.room for r in report.procedures} == set(ROOMS)
    assert len(report.patients) == 8  # the phantom run has no patient key
    assert [r.uid for r in report.procedures if not r.summary.complete] == ["2.25.1099"]


@pytest.mark.parametrize(("filters", "expected"), [
    ({"since_utc": T0 + timedelta(days=60)}, {"2.25.1020", "2.25.1024", "2.25.1099"}),
    ({"until_utc": T0 + timedelta(days=3)}, {"2.25.1000"}),
    ({"since_utc": T0 + timedelta(days=3), "until_utc": T0 + timedelta(days=7)},
     {"2.25.1001", "2.25.1002"}),
    ({"room": "pain CLINIC", "until_utc": T0 + timedelta(days=20)},
     {"2.25.1002", "2.25.1005"}),
    ({"patient_key": patient(7)}, {"2.25.1021", "2.25.1022", "2.25.1023"}),
])
def test_filters_select_by_start_time_room_and_patient(clinic, filters, expected):
    assert {r.uid for r in _report(clinic, **filters).procedures} == expected


def test_since_is_inclusive_and_until_exclusive(clinic):
    start = T0 + timedelta(days=3, hours=1)  # procedure 1 starts exactly here
    assert {r.uid for r in _report(clinic, since_utc=start,
                                   until_utc=start + timedelta(hours=1)).procedures} == {
        "2.25.1001"}
    assert _report(clinic, until_utc=start, since_utc=start - timedelta(hours=1)).procedures == []


def test_patient_window_sums_cross_the_ncrp_level_at_the_third_procedure(clinic):
    report = _report(clinic, patient_key=patient(7))
    windows = [(r.window_procedures, round(r.window_kar_mgy), r.notification)
               for r in report.procedures]
    # 240 pulses x 5 events x 1 mGy each time
    assert windows == [(1, 1200, False), (2, 2400, False), (3, 3600, True)]
    (row,) = report.patients
    assert row.notification and row.notified_uid == "2.25.1023"
    assert round(row.peak_kar_mgy) == 3600 and row.peak_procedures == 3
    # with a 3-week window only two procedures are ever inside: 2400 mGy, below the level
    (short,) = _report(clinic, patient_key=patient(7), weeks=3).patients
    assert not short.notification and round(short.peak_kar_mgy) == 2400


def test_patient_window_counts_procedures_before_since_and_in_other_rooms(clinic):
    late = _report(clinic, since_utc=T0 + timedelta(days=58), patient_key=patient(7))
    (row,) = late.procedures
    assert row.window_procedures == 3 and row.notification  # the earlier two count
    (prow,) = late.patients
    assert prow.procedures == 1 and round(prow.kar_mgy) == 1200


def test_per_room_median_and_p75(clinic):
    report = _report(clinic)
    for room in report.rooms:
        daps = sorted(r.summary.dap_gycm2 for r in report.procedures if r.room == room.room)
        times = [r.summary.fluoro_time_s for r in report.procedures if r.room == room.room]
        assert room.procedures == len(daps)
        assert room.dap_median_gycm2 == pytest.approx(percentile(daps, 50))
        assert room.dap_p75_gycm2 == pytest.approx(percentile(daps, 75))
        assert room.fluoro_time_p75_s == pytest.approx(percentile(times, 75))
    assert [r.room for r in report.rooms] == ["OR 1", "OR 2", "Pain clinic"]


def test_percentile_interpolates_like_numpy():
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5
    assert percentile([4.0, 1.0, 3.0, 2.0], 75) == 3.25
    assert percentile([7.0], 75) == 7.0 and percentile([], 50) == 0.0


def test_outliers_above_their_drl_largest_first(clinic):
    report = _report(clinic)
    outliers = {r.uid: {e.quantity for e in r.above_drl} for r in report.outliers}
    assert outliers["2.25.1004"] == {"dap_gycm2"}  # 4.4 Gy·cm² against 2.5; 29 s
    assert outliers["2.25.1009"] == {"fluoro_time_s"}  # 6 x 270 pulses / 15 = 108 s
    vertebro = next(r for r in report.procedures if r.uid == "2.25.1021")
    assert vertebro.drl is not None and vertebro.drl.name.startswith("Other")
    assert outliers["2.25.1021"] == {"dap_gycm2"}  # 24 Gy·cm² against the default 5
    assert report.outliers[0].uid == max(report.outliers,
                                         key=lambda r: max(e.ratio for e in r.above_drl)).uid
    assert all(r.uid in outliers for r in report.procedures if r.above_drl)


def test_dose_sources(clinic):
    report = _report(clinic)
    by_uid = {r.uid: r for r in report.procedures}
    assert by_uid["2.25.1000"].dose_source == "measured"
    assert by_uid["2.25.1001"].dose_source == "modelled"
    assert by_uid["2.25.999"].dose_source == "stated (RDSR)"
    assert by_uid["2.25.999"].summary.source == "rdsr-import"
    assert by_uid["2.25.1004"].unacknowledged == 1
    assert [a.acks[0].user for a in by_uid["2.25.1004"].alarms if a.acks] == ["Dr Okafor"]


def test_dose_source_of_a_partly_measured_procedure(clinic):
    with DoseLog.open_readonly(clinic) as log:
        summary = log.procedure("2.25.1001")
    from dataclasses import replace

    mixed = replace(summary, measured_pulses=summary.pulses // 2)
    assert dose_source(mixed) == f"mixed ({summary.pulses // 2} of {summary.pulses} pulses " \
                                 "measured)"
    assert dose_source(summary, meter_readings=3) == "modelled, DAP meter"
