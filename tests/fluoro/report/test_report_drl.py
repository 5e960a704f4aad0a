"""Local diagnostic reference levels: the shipped table, matching names, site files."""

from __future__ import annotations

import pytest

from fluoro.errors import InputError
from fluoro.report.drl import DEFAULT_DRL_SOURCE, DrlTable, load_drl_table, parse_drl_table


@pytest.fixture(scope="module")
def shipped() -> DrlTable:
    return load_drl_table()


@pytest.mark.parametrize(("name", "expected"), [
    ("L5-S1 TFESI", "Lumbar transforaminal"),
    ("lumbar TRANSFORAMINAL epidural steroid injection", "Lumbar transforaminal"),
    ("Interlaminar epidural L5-S1", "Interlaminar"),
    ("Caudal epidural", "Interlaminar"),
    ("Facets L4-5 bilateral", "Facet joint"),
    ("Medial branch block L3-5", "Facet joint"),
    ("SI joint injection right", "Sacroiliac"),
    ("Vertebroplasty T12", "Other"),
    ("", "Other"),
    ("Surface marking", "Other"),  # "rfa" only matches at the start of a word
])
def test_shipped_table_matches_names_case_insensitively(shipped, name, expected):
    entry = shipped.match(name)
    assert entry is not None and entry.name.startswith(expected)


def test_shipped_levels_sit_above_the_published_medians(shipped):
    """Kim et al. 2014: lumbar TFESI median 0.68 Gy·cm², 29 s; the DRLs are above both."""
    assert shipped.source == DEFAULT_DRL_SOURCE
    tfesi = shipped.match("TFESI")
    assert tfesi is not None and tfesi.dap_gycm2 == 2.5 and tfesi.fluoro_time_s == 60.0
    assert shipped.default is not None
    for entry in (*shipped.entries, shipped.default):
        assert entry.levels(), entry.name


def test_exceedances_are_strictly_above(shipped):
    tfesi = shipped.match("TFESI")
    found = DrlTable.exceedances(tfesi, {"dap_gycm2": 2.5, "fluoro_time_s": 61.0, "kar_mgy": 1e6})
    assert [(e.quantity, e.level) for e in found] == [("fluoro_time_s", 60.0)]  # no Ka,r level
    assert found[0].ratio == pytest.approx(61 / 60)
    assert DrlTable.exceedances(None, {"dap_gycm2": 100.0}) == []


def test_first_matching_entry_wins_and_without_default_nothing_matches():
    table = parse_drl_table('[[procedure]]\nname = "A"\npatterns = ["injection"]\n'
                            'kar_mgy = 10\n[[procedure]]\nname = "B"\npatterns = ["facet"]\n'
                            'dap_gycm2 = 1\n', "site.toml")
    assert table.match("facet injection").name == "A"
    assert table.match("facet block").name == "B"
    assert table.match("vertebroplasty") is None


@pytest.mark.parametrize(("text", "words"), [
    ("[[procedure]]\nname = 'x'\npatterns = ['x']\ndap_gycm2 = 0\n", ["dap_gycm2", "positive"]),
    ("[[procedure]]\nname = 'x'\npatterns = []\ndap_gycm2 = 1\n", ["patterns"]),
    ("[[procedure]]\nname = 'x'\npatterns = ['x']\n", ["at least one level"]),
    ("[[procedure]]\nname = 'x'\npatterns = ['x']\ndap_gy = 1\n", ["unknown key", "dap_gy"]),
    ("[default]\npatterns = ['x']\ndap_gycm2 = 1\n", ["default", "patterns"]),
    ("[levels]\n", ["unknown table", "levels"]),
    ("", ["no reference levels"]),
    ("[[procedure]\n", ["not a valid TOML"]),
])
def test_bad_site_files_are_refused_naming_the_key(text, words):
    with pytest.raises(InputError) as caught:
        parse_drl_table(text, "site-drl.toml")
    for word in ["site-drl.toml", *words]:
        assert word in str(caught.value)


def test_missing_site_file(tmp_path):
    with pytest.raises(InputError, match="not found"):
        load_drl_table(tmp_path / "absent.toml")
