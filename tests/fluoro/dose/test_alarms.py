import math
import time

import pytest

from fluoro.dose.accumulator import DoseTotals
from fluoro.dose.alarms import (
    MAX_LEVELS_PER_UPDATE,
    Acknowledgement,
    AlarmConfig,
    AlarmEngine,
    AlarmLevel,
)
from fluoro.dose.siteconfig import load_site_config
from fluoro.errors import InputError

DEFAULTS = load_site_config(None).alarms


def _totals(kar_mgy: float = 0.0, dap_gycm2: float = 0.0, fluoro_time_s: float = 0.0):
    return DoseTotals(kar_mgy=kar_mgy, dap_gycm2=dap_gycm2, fluoro_time_s=fluoro_time_s)


def _keys(alarms) -> list[str]:
    return [a.key for a in alarms]


# -- 21 CFR 1020.32(h)(2)(ii): the 5-minute fluoroscopy time signal ----------------------------

def test_five_minute_signal_fires_once_at_300_s_and_again_at_600_s():
    engine = AlarmEngine(DEFAULTS)
    assert engine.update(_totals(fluoro_time_s=299.9), 10.0) == []
    [signal] = engine.update(_totals(fluoro_time_s=300.0), 11.0)
    assert signal.key == "fluoro_time_signal@300s"
    assert (signal.kind, signal.severity, signal.requires_ack) == ("signal", "info", True)
    assert (signal.quantity, signal.threshold, signal.value, signal.t_s) == (
        "fluoro_time_s", 300.0, 300.0, 11.0)
    assert "1020.32(h)(2)" in signal.citation
    assert "5 min" in signal.message
    assert engine.update(_totals(fluoro_time_s=300.0), 12.0) == []
    assert engine.update(_totals(fluoro_time_s=599.9), 13.0) == []
    assert _keys(engine.update(_totals(fluoro_time_s=600.0), 14.0)) == ["fluoro_time_signal@600s"]


def test_signal_stays_active_until_acknowledged_and_the_user_is_recorded():
    engine = AlarmEngine(DEFAULTS)
    engine.update(_totals(fluoro_time_s=301.0), 1.0)
    for t_s in (2.0, 3.0, 4.0):  # more pulses, beam still on: still sounding, not raised again
        assert engine.update(_totals(fluoro_time_s=301.0 + t_s), t_s) == []
        assert _keys(engine.active()) == ["fluoro_time_signal@300s"]
    acks = engine.acknowledge("fluoro_time_signal@300s", "Dr. Ada Reyes", 1_700_000_000.0)
    assert acks == [Acknowledgement("fluoro_time_signal@300s", "Dr. Ada Reyes", 1_700_000_000.0)]
    assert engine.active() == []
    assert engine.acknowledgements() == acks
    assert engine.acknowledge("fluoro_time_signal@300s", "Dr. Ada Reyes") == []  # already reset
    assert engine.update(_totals(fluoro_time_s=450.0), 5.0) == []
    assert _keys(engine.update(_totals(fluoro_time_s=600.0), 6.0)) == ["fluoro_time_signal@600s"]
    assert _keys(engine.raised()) == ["fluoro_time_signal@300s", "fluoro_time_signal@600s"]


def test_signal_fires_on_the_pulse_that_completes_five_minutes_of_summed_pulse_intervals():
    engine = AlarmEngine(DEFAULTS)
    fluoro_time_s, fired_at = 0.0, []
    for pulse in range(1, 4502):  # 15 pulses/s: pulse 4500 ends the 5th minute
        fluoro_time_s += 1 / 15
        if engine.update(_totals(fluoro_time_s=fluoro_time_s), pulse / 15):
            fired_at.append(pulse)
    assert fired_at == [4500]


# -- NCRP Report No. 168 notification levels and SRDL --------------------------------------------

@pytest.mark.parametrize(("quantity", "short", "unit", "levels"), [
    ("kar_mgy", "kar", "mGy", (3000, 4000, 5000, 6000)),
    ("dap_gycm2", "dap", "Gycm2", (300, 400, 500, 600)),
    ("fluoro_time_s", "fluoro_time", "s", (1800, 2700, 3600, 4500)),
])
def test_ncrp_levels_fire_once_each_at_the_right_cumulative_value(quantity, short, unit, levels):
    first, second, srdl, third = levels
    engine = AlarmEngine(DEFAULTS)
    expected = {
        first: [f"ncrp_notification_{short}@{first}{unit}"],
        second: [f"ncrp_notification_{short}@{second}{unit}"],
        srdl: [f"ncrp_notification_{short}@{srdl}{unit}", f"ncrp_srdl_{short}@{srdl}{unit}"],
        third: [f"ncrp_notification_{short}@{third}{unit}"],
    }

    def fired(value: float, t_s: float) -> list[str]:
        alarms = engine.update(_totals(**{quantity: value}), t_s)
        assert all(a.value == value and a.t_s == t_s for a in alarms)
        return [a.key for a in alarms if a.kind != "signal"]

    for threshold in levels:
        assert fired(threshold - 0.5, 1.0) == []
        assert fired(threshold, 2.0) == expected[threshold]
        for later in (threshold, threshold + 0.5, threshold - 1.0):  # same, higher, a dip
            assert fired(later, 3.0) == []
    kinds = {a.key: (a.kind, a.severity) for a in engine.raised()}
    assert kinds[f"ncrp_notification_{short}@{first}{unit}"] == ("notification", "warning")
    assert kinds[f"ncrp_srdl_{short}@{srdl}{unit}"] == ("srdl", "critical")


def test_notification_message_threshold_value_and_citation():
    engine = AlarmEngine(DEFAULTS)
    [alarm] = engine.update(_totals(kar_mgy=3012.4), 42.0)
    assert alarm.key == "ncrp_notification_kar@3000mGy"
    assert alarm.message == "NCRP 168 notification: Ka,r 3000 mGy reached (3012 mGy)"
    assert (alarm.threshold, alarm.value, alarm.t_s) == (3000.0, 3012.4, 42.0)
    assert alarm.requires_ack
    assert "NCRP Report No. 168" in alarm.citation
    [dap] = engine.update(_totals(kar_mgy=3012.4, dap_gycm2=301.2), 43.0)
    assert dap.message == "NCRP 168 notification: DAP 300 Gy·cm² reached (301 Gy·cm²)"


def test_srdl_message_asks_for_follow_up():
    engine = AlarmEngine(DEFAULTS)
    engine.update(_totals(kar_mgy=4999.0), 1.0)
    alarms = engine.update(_totals(kar_mgy=5003.0), 2.0)
    assert _keys(alarms) == ["ncrp_notification_kar@5000mGy", "ncrp_srdl_kar@5000mGy"]
    assert alarms[1].message.startswith(
        "NCRP 168 substantial radiation dose level: Ka,r 5000 mGy reached (5003 mGy)")
    assert "follow-up" in alarms[1].message


def test_a_jump_across_several_levels_fires_all_of_them_in_ascending_order():
    engine = AlarmEngine(DEFAULTS)
    alarms = engine.update(_totals(kar_mgy=5500.0, dap_gycm2=420.0, fluoro_time_s=1850.0), 7.0)
    assert _keys(alarms) == [
        "ncrp_notification_kar@3000mGy",
        "ncrp_notification_kar@4000mGy",
        "ncrp_notification_kar@5000mGy",
        "ncrp_srdl_kar@5000mGy",
        "ncrp_notification_dap@300Gycm2",
        "ncrp_notification_dap@400Gycm2",
        *(f"fluoro_time_signal@{s}s" for s in (300, 600, 900, 1200, 1500, 1800)),
        "ncrp_notification_fluoro_time@1800s",
    ]
    assert all(a.value in (5500.0, 420.0, 1850.0) and a.t_s == 7.0 for a in alarms)
    assert engine.update(_totals(kar_mgy=5500.0, dap_gycm2=420.0, fluoro_time_s=1850.0), 8) == []
    assert _keys(engine.active()) == _keys(alarms)


def test_values_going_down_and_up_again_never_repeat_an_alarm():
    engine = AlarmEngine(DEFAULTS)
    engine.update(_totals(kar_mgy=3500.0), 1.0)
    assert engine.update(_totals(kar_mgy=0.0), 2.0) == []
    assert engine.update(_totals(kar_mgy=3500.0), 3.0) == []
    assert _keys(engine.raised()) == ["ncrp_notification_kar@3000mGy"]


def test_non_finite_values_raise_nothing_and_do_not_hang():
    engine = AlarmEngine(DEFAULTS)
    assert engine.update(_totals(kar_mgy=math.inf, dap_gycm2=math.nan), 1.0) == []
    assert _keys(engine.update(_totals(kar_mgy=3000.0), 2.0)) == ["ncrp_notification_kar@3000mGy"]


def test_an_absurd_jump_is_spread_over_updates_with_every_level_still_raised_once():
    engine = AlarmEngine(AlarmConfig((AlarmLevel("notification", "kar_mgy", 1.0, 1.0),)))
    huge = _totals(kar_mgy=MAX_LEVELS_PER_UPDATE * 2.5)
    counts = [len(engine.update(huge, float(t))) for t in range(4)]
    assert counts == [MAX_LEVELS_PER_UPDATE, MAX_LEVELS_PER_UPDATE, MAX_LEVELS_PER_UPDATE // 2, 0]
    keys = _keys(engine.raised())
    assert len(set(keys)) == len(keys) == MAX_LEVELS_PER_UPDATE * 2.5


# -- pregnant patient ------------------------------------------------------------------------------

def test_pregnant_mode_adds_its_lower_levels_to_the_ncrp_ones():
    pregnant, standard = AlarmEngine(DEFAULTS, pregnant=True), AlarmEngine(DEFAULTS)
    assert pregnant.pregnant and not standard.pregnant
    assert pregnant.update(_totals(kar_mgy=49.9), 1.0) == []
    [notify] = pregnant.update(_totals(kar_mgy=50.0), 2.0)
    assert notify.key == "pregnancy_notification_kar@50mGy"
    assert (notify.kind, notify.severity, notify.requires_ack) == (
        "pregnancy_notification", "warning", True)
    alarms = pregnant.update(_totals(kar_mgy=100.0, dap_gycm2=5.0), 3.0)
    assert _keys(alarms) == ["pregnancy_notification_kar@100mGy", "pregnancy_consult_kar@100mGy",
                             "pregnancy_notification_dap@5Gycm2"]
    assert alarms[1].severity == "critical"
    assert "physicist" in alarms[1].message
    assert standard.update(_totals(kar_mgy=100.0, dap_gycm2=5.0), 3.0) == []
    # the NCRP levels still apply to a pregnant patient (her skin)
    fired = _keys(pregnant.update(_totals(kar_mgy=3000.0, dap_gycm2=5.0), 4.0))
    assert "ncrp_notification_kar@3000mGy" in fired
    assert "pregnancy_notification_kar@3000mGy" in fired


# -- acknowledgement -------------------------------------------------------------------------------

def test_acknowledge_all_clears_every_active_alarm_in_order_and_stamps_the_wall_clock():
    engine = AlarmEngine(DEFAULTS)
    raised = engine.update(_totals(kar_mgy=4100.0, fluoro_time_s=310.0), 1.0)
    before = time.time()
    acks = engine.acknowledge(None, "  Sam Okafor  ")
    assert [a.key for a in acks] == _keys(raised)
    assert {a.user for a in acks} == {"Sam Okafor"}
    assert all(before <= a.t_wall_s <= time.time() for a in acks)
    assert engine.active() == []
    assert engine.acknowledge(None, "Sam Okafor") == []
    assert _keys(engine.raised()) == _keys(raised)


@pytest.mark.parametrize("user", ["", "   ", None])
def test_acknowledge_without_a_user_name_is_refused(user):
    engine = AlarmEngine(DEFAULTS)
    engine.update(_totals(fluoro_time_s=300.0), 1.0)
    with pytest.raises(InputError, match="user"):
        engine.acknowledge("fluoro_time_signal@300s", user)
    assert _keys(engine.active()) == ["fluoro_time_signal@300s"]


def test_acknowledging_an_alarm_never_raised_is_refused():
    engine = AlarmEngine(DEFAULTS)
    with pytest.raises(InputError, match="ncrp_notification_kar@3000mGy"):
        engine.acknowledge("ncrp_notification_kar@3000mGy", "Dr. Reyes")


def test_alarms_that_need_no_acknowledgement_are_never_active():
    config = AlarmConfig((AlarmLevel("notification", "dap_gycm2", 10.0, 10.0,
                                     requires_ack=False),))
    engine = AlarmEngine(config)
    [alarm] = engine.update(_totals(dap_gycm2=12.0), 1.0)
    assert not alarm.requires_ack
    assert engine.active() == []
    assert _keys(engine.raised()) == ["ncrp_notification_dap@10Gycm2"]
    assert engine.acknowledge(alarm.key, "Dr. Reyes") == []


# -- display helpers and levels --------------------------------------------------------------------

def test_next_levels_shows_the_next_threshold_per_quantity():
    engine = AlarmEngine(DEFAULTS)
    assert engine.next_levels() == {"kar_mgy": 3000.0, "dap_gycm2": 300.0, "fluoro_time_s": 300.0}
    engine.update(_totals(kar_mgy=5000.0, fluoro_time_s=300.0), 1.0)
    assert engine.next_levels() == {"kar_mgy": 6000.0, "dap_gycm2": 300.0, "fluoro_time_s": 600.0}
    once = AlarmEngine(AlarmConfig((AlarmLevel("srdl", "kar_mgy", 5000.0),)))
    once.update(_totals(kar_mgy=5000.0), 1.0)
    assert once.next_levels() == {}


def test_alarm_level_refuses_nonsense():
    with pytest.raises(ValueError, match="first"):
        AlarmLevel("notification", "kar_mgy", -1.0)
    with pytest.raises(ValueError, match="step"):
        AlarmLevel("notification", "kar_mgy", 1.0, 0.0)
    with pytest.raises(ValueError, match="quantity"):
        AlarmLevel("notification", "kar", 1.0)
    with pytest.raises(ValueError, match="reset"):
        AlarmLevel("signal", "fluoro_time_s", 300.0, 300.0, requires_ack=False)
