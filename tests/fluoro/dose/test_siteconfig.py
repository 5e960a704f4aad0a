import dataclasses
import tomllib
from pathlib import Path

import pytest

from fluoro.dose.accumulator import DoseTotals
from fluoro.dose.alarms import AlarmEngine
from fluoro.dose.siteconfig import SiteConfig, default_site_toml, load_site_config
from fluoro.errors import InputError


def _write(tmp_path: Path, text: str, name: str = "room3.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def _levels(levels) -> set[tuple[str, str, float, float | None]]:
    return {(lv.kind, lv.quantity, lv.first, lv.step) for lv in levels}


def test_shipped_defaults_are_the_documented_values():
    config = load_site_config(None)
    assert isinstance(config, SiteConfig)
    assert config.room_factor == 1.0
    assert config.reference_point == "15 cm from isocenter toward source (IEC 60601-2-43)"
    assert config.history_weeks == 12
    assert config.measured_model_tolerance == 0.35
    assert "shipped defaults" in config.source
    assert _levels(config.alarms.levels) == {
        ("signal", "fluoro_time_s", 300.0, 300.0),  # 21 CFR 1020.32(h)(2)(ii)
        ("notification", "kar_mgy", 3000.0, 1000.0),  # NCRP Report No. 168
        ("notification", "dap_gycm2", 300.0, 100.0),
        ("notification", "fluoro_time_s", 1800.0, 900.0),
        ("srdl", "kar_mgy", 5000.0, None),
        ("srdl", "dap_gycm2", 500.0, None),
        ("srdl", "fluoro_time_s", 3600.0, None),
    }
    assert _levels(config.alarms.pregnancy_levels) == {
        ("pregnancy_notification", "kar_mgy", 50.0, 50.0),
        ("pregnancy_notification", "dap_gycm2", 5.0, 5.0),
        ("pregnancy_consult", "kar_mgy", 100.0, None),
        ("pregnancy_consult", "dap_gycm2", 10.0, None),
    }
    assert all(lv.requires_ack for lv in config.alarms.levels + config.alarms.pregnancy_levels)


def test_shipped_file_is_toml_that_cites_its_sources():
    text = default_site_toml()
    tomllib.loads(text)
    for source in ("21 CFR 1020.32(h)(2)(ii)", "NCRP Report No. 168", "21 CFR 1020.32(k)",
                   "IEC 60601-2-43", "ICRP Publication 84"):
        assert source in text


def test_a_site_file_overrides_only_the_keys_it_sets(tmp_path):
    path = _write(tmp_path, """
[site]
room = "IR suite 3"
room_factor = 0.87

[alarms.ncrp_notification]
kar_first_mgy = 2000
kar_step_mgy = 500

[alarms.fluoro_time_signal]
interval_min = 2.5
""")
    config = load_site_config(path)
    assert (config.room, config.room_factor, config.source) == ("IR suite 3", 0.87, str(path))
    assert config.device == load_site_config().device
    assert config.history_weeks == 12
    engine = AlarmEngine(config.alarms)
    assert engine.update(DoseTotals(kar_mgy=1999.0), 1.0) == []
    keys = [a.key for a in engine.update(DoseTotals(kar_mgy=2600.0, fluoro_time_s=150.0), 2.0)]
    assert keys == ["ncrp_notification_kar@2000mGy", "ncrp_notification_kar@2500mGy",
                    "fluoro_time_signal@150s"]
    assert engine.next_levels() == {"kar_mgy": 3000.0, "dap_gycm2": 300.0,
                                    "fluoro_time_s": 300.0}


def test_an_empty_site_file_gives_the_defaults(tmp_path):
    path = _write(tmp_path, "# nothing changed\n")
    assert dataclasses.replace(load_site_config(path), source="x") == dataclasses.replace(
        load_site_config(None), source="x")
    assert load_site_config(str(path)).source == str(path)


def test_pregnancy_fluoroscopy_time_levels_can_be_added(tmp_path):
    path = _write(tmp_path, """
[alarms.pregnancy_notification]
fluoro_time_first_min = 10
[alarms.pregnancy_consult]
fluoro_time_min = 20
requires_ack = false
""")
    config = load_site_config(path)
    assert ("pregnancy_notification", "fluoro_time_s", 600.0, None) in _levels(
        config.alarms.pregnancy_levels)
    engine = AlarmEngine(config.alarms, pregnant=True)
    alarms = engine.update(DoseTotals(fluoro_time_s=1200.0), 1.0)
    pregnancy = [a for a in alarms if a.kind.startswith("pregnancy")]
    assert [a.key for a in pregnancy] == ["pregnancy_notification_fluoro_time@600s",
                                         "pregnancy_consult_fluoro_time@1200s"]
    assert not pregnancy[1].requires_ack
    assert "20 min" in pregnancy[1].message


@pytest.mark.parametrize(("text", "key", "expected"), [
    ("[alarms.ncrp_notification]\nkar_frist_mgy = 3000\n",
     "alarms.ncrp_notification.kar_frist_mgy", "unknown key"),
    ("[alarm.ncrp_notification]\nkar_first_mgy = 3000\n", "alarm", "unknown key"),
    ("[site]\ncolour = 'blue'\n", "site.colour", "unknown key"),
    ("alarms = 3\n", "alarms", "expected a table"),
    ("[alarms.ncrp_notification]\nkar_first_mgy = -3000\n",
     "alarms.ncrp_notification.kar_first_mgy", "positive number (mGy)"),
    ("[alarms.ncrp_srdl]\ndap_gycm2 = 0\n", "alarms.ncrp_srdl.dap_gycm2", "positive number"),
    ("[alarms.ncrp_srdl]\nfluoro_time_min = nan\n", "alarms.ncrp_srdl.fluoro_time_min",
     "positive number (minutes)"),
    ("[alarms.ncrp_srdl]\nkar_mgy = inf\n", "alarms.ncrp_srdl.kar_mgy", "positive number"),
    ("[alarms.ncrp_srdl]\nkar_mgy = '5000'\n", "alarms.ncrp_srdl.kar_mgy", "positive number"),
    ("[alarms.ncrp_srdl]\nkar_mgy = true\n", "alarms.ncrp_srdl.kar_mgy", "positive number"),
    ("[alarms.fluoro_time_signal]\ninterval_min = -5\n",
     "alarms.fluoro_time_signal.interval_min", "positive number"),
    ("[alarms.fluoro_time_signal]\nrequires_ack = false\n",
     "alarms.fluoro_time_signal.requires_ack", "unknown key"),
    ("[alarms.ncrp_srdl]\nrequires_ack = 'yes'\n", "alarms.ncrp_srdl.requires_ack",
     "true or false"),
    ("[site]\nroom = ''\n", "site.room", "non-empty string"),
    ("[site]\ndevice = 3\n", "site.device", "non-empty string"),
    ("[site]\nhistory_weeks = 12.5\n", "site.history_weeks", "whole number of weeks"),
    ("[site]\nhistory_weeks = 0\n", "site.history_weeks", "whole number of weeks"),
    ("[site]\nmeasured_model_tolerance = 35\n", "site.measured_model_tolerance", "at most 1"),
    ("[site]\nroom_factor = -1.0\n", "site.room_factor", "positive number"),
    # notification levels must start below the substantial level they lead up to
    ("[alarms.ncrp_notification]\nkar_first_mgy = 6000\n",
     "alarms.ncrp_notification.kar_first_mgy", "below alarms.ncrp_srdl.kar_mgy = 5000"),
    ("[alarms.ncrp_srdl]\nfluoro_time_min = 30\n",
     "alarms.ncrp_notification.fluoro_time_first_min",
     "below alarms.ncrp_srdl.fluoro_time_min = 30"),
    ("[alarms.pregnancy_consult]\nkar_mgy = 40\n",
     "alarms.pregnancy_notification.kar_first_mgy", "below alarms.pregnancy_consult.kar_mgy"),
    ("[alarms.pregnancy_notification]\nfluoro_time_step_min = 5\n",
     "alarms.pregnancy_notification.fluoro_time_step_min", "fluoro_time_first_min too"),
])
def test_bad_values_name_the_file_the_key_and_what_was_expected(tmp_path, text, key, expected):
    path = _write(tmp_path, text)
    with pytest.raises(InputError) as caught:
        load_site_config(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: {key}: ")
    assert expected in message
    assert "\n" not in message


def test_a_file_that_is_not_toml_is_refused(tmp_path):
    path = _write(tmp_path, "kar_first_mgy: 3000  # YAML, not TOML\n", "site.yaml")
    with pytest.raises(InputError, match="not a valid TOML file") as caught:
        load_site_config(path)
    assert str(caught.value).startswith(f"{path}: ")
    binary = tmp_path / "site.bin"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(InputError, match="UTF-8"):
        load_site_config(binary)


def test_a_missing_or_unreadable_file_is_refused(tmp_path):
    missing = tmp_path / "nowhere" / "site.toml"
    with pytest.raises(InputError, match="not found") as caught:
        load_site_config(missing)
    assert str(caught.value).startswith(str(missing))
    with pytest.raises(InputError, match="cannot read"):
        load_site_config(tmp_path)  # a directory
