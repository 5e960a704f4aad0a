"""The report's page and plots, without a browser: structure, escaping, self-containment."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from fluoro.doselog import ImportedProcedure, ProcedureInfo, ProcedureSummary
from fluoro.report.data import ProcedureRow, Report, ReportFilter, patient_rows, room_rows
from fluoro.report.drl import DrlTable, load_drl_table
from fluoro.report.html import render_html
from fluoro.report.svg import (
    AlarmMark,
    Bar,
    BarGroup,
    cumulative_kar_svg,
    dap_against_drl_svg,
    nice_ticks,
    time_ticks,
)
from fluoro.report.timeline import TimeLine

T0 = datetime(2025, 3, 3, 8, 0, tzinfo=UTC)


def test_nice_ticks_cover_the_top_with_round_steps():
    assert nice_ticks(4.4) == [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
    assert nice_ticks(3600 * 1.05, 4) == [0.0, 1000.0, 2000.0, 3000.0, 4000.0]
    assert nice_ticks(0.0) == [0.0, 1.0]
    assert time_ticks(32.0) == [0.0, 10.0, 20.0, 30.0, 40.0]
    assert time_ticks(4300.0)[1] == 900.0  # 15 min steps over an hour and more


def test_cumulative_plot_has_the_curve_alarms_and_titles():
    svg = cumulative_kar_svg([(0.0, 0.0), (10.0, 5.0), (20.0, 12.0)],
                             [AlarmMark(12.0, "Ka,r 6 mGy", "Ka,r passed 6 mGy; ack <RSO>", True),
                              AlarmMark(18.0, "DAP", "not acknowledged", False)],
                             [(0.0, 10.0), (15.0, 20.0)], "Cumulative Ka,r & alarms",
                             drl_kar_mgy=10.0)
    assert svg.startswith('<svg class="chart"') and svg.endswith("</svg>")
    assert "<title>Cumulative Ka,r &amp; alarms</title>" in svg
    assert re.search(r'<path class="line" d="M[\d.]+,[\d.]+ [\d.]+,[\d.]+ [\d.]+,[\d.]+"', svg)
    assert svg.count('<g class="alarm">') == 1 and svg.count('<g class="alarm unack">') == 1
    assert "ack &lt;RSO&gt;" in svg and svg.count('class="beam"') == 2
    assert '<line class="drl"' in svg


def test_dap_chart_has_one_bar_per_procedure_and_a_drl_line_per_type():
    groups = [BarGroup("TFESI", 2.5, (Bar(1.0, "a", False), Bar(4.0, "b", True))),
              BarGroup("no reference level", None, (Bar(0.5, "c", False),))]
    svg = dap_against_drl_svg(groups, "DAP against DRL")
    assert svg.count('<rect class="bar"') == 2 and svg.count('<rect class="bar over"') == 1
    assert svg.count('<line class="drl"') == 1 and "DRL 2.5" in svg


def _summary(name: str, **changes) -> ProcedureSummary:
    info = ProcedureInfo("a" * 32, name, room="OR <1>", started_utc=T0, procedure_uid="2.25.1")
    summary = ProcedureSummary(info, "2.25.1", "a" * 32, name, T0, None, 10, 0, 0, 1, 3.0,
                               500.0, 3.0, 0, False)
    return replace(summary, **changes)


def _report(rows: list[ProcedureRow], drl: DrlTable) -> Report:
    return Report("/logs/<dose>.sqlite", ReportFilter(), drl, rows, patient_rows(rows),
                  room_rows(rows))


def test_page_escapes_text_and_has_no_scripts_or_external_resources():
    drl = load_drl_table()
    name = "<script>alert(1)</script> TFESI"
    entry = drl.match(name)
    row = ProcedureRow(_summary(name), (), "modelled", False, entry,
                       tuple(drl.exceedances(entry, {"dap_gycm2": 3.0})))
    page = render_html(_report([row], drl),
                       lambda r: TimeLine(((0.0, 0.0), (3.0, 500.0)), ((0.0, 3.0),)))
    assert "<script" not in page and "&lt;script&gt;" in page and "OR &lt;1&gt;" in page
    assert "INCOMPLETE" in page and "above their DRL" in page
    assert not re.search(r'(src|href)="(?!#)', page)
    assert page.index('id="outliers"') < page.index('id="dap"') < page.index('id="patients"')


def test_a_procedure_without_a_time_line_says_why():
    drl = load_drl_table()
    imported = ImportedProcedure("1.2", "1.3", "x.dcm", "Acme", "C", "", "", "", "COMPLETE",
                                 None, False, "ref", None, ())
    row = ProcedureRow(_summary("TFESI", imported=imported, source="rdsr-import"), (),
                       "stated (RDSR)", False, drl.match("TFESI"), ())
    page = render_html(_report([row], drl), lambda r: TimeLine((), (), "no events: totals only"))
    assert "no events: totals only" in page and "RDSR import" in page


@pytest.mark.parametrize("rows", [[]])
def test_an_empty_selection_still_makes_a_page(rows):
    page = render_html(_report(rows, load_drl_table()), lambda r: TimeLine((), ()))
    assert "No procedures match the filters." in page and page.rstrip().endswith("</html>")
