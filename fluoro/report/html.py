"""The dose report as one self-contained HTML page (no scripts, fonts or network; SVG plots).

Order: a summary header, the outliers against local DRLs (ICRP Publication 135), DAP per
procedure against its reference level, patients' cumulative dose over the window (NCRP Report
168 notification level), rooms, then every procedure with its cumulative Ka,r over time and its
alarms on the time line.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from html import escape

from fluoro.report.data import (
    NCRP_NOTIFICATION_DAP_GYCM2,
    NCRP_NOTIFICATION_KAR_MGY,
    ProcedureRow,
    Report,
)
from fluoro.report.drl import QUANTITIES, Exceedance
from fluoro.report.style import CSS
from fluoro.report.svg import AlarmMark, Bar, BarGroup, cumulative_kar_svg, dap_against_drl_svg
from fluoro.report.timeline import TimeLine

__all__ = ["render_html"]

TimeLineOf = Callable[[ProcedureRow], TimeLine]


def _utc(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment else "—"


def _utc_s(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def _clock(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes}:{secs:02d}"


def _key(patient_key: str | None) -> str:
    if patient_key is None:
        return '<span class="meta">none (phantom / QA)</span>'
    return f'<span class="key" title="{escape(patient_key)}">{escape(patient_key[:8])}…</span>'


def _name(row: ProcedureRow) -> str:
    return escape(row.summary.procedure_name or "unnamed procedure")


def _anchor(row: ProcedureRow) -> str:
    return f"p-{escape(row.uid)}"


def _exceeded(e: Exceedance) -> str:
    label, unit = QUANTITIES[e.quantity]
    value = _clock(e.value) + " min:s" if e.quantity == "fluoro_time_s" else f"{e.value:.3g} {unit}"
    level = _clock(e.level) if e.quantity == "fluoro_time_s" else f"{e.level:.3g}"
    return f"{label} {value} (DRL {level}, ×{e.ratio:.2f})"


def _card(value: str, label: str, tone: str = "") -> str:
    return (f'<div class="card {tone}"><div class="value">{value}</div>'
            f'<div class="label">{label}</div></div>')


def _header(report: Report) -> str:
    rows, f = report.procedures, report.filters
    imported = sum(1 for r in rows if r.summary.is_imported)
    incomplete = sum(1 for r in rows if not r.summary.complete)
    unack = sum(r.unacknowledged for r in rows)
    notified = sum(1 for p in report.patients if p.notification)
    window = [f"since {_utc(f.since_utc)}" if f.since_utc else "",
              f"before {_utc(f.until_utc)}" if f.until_utc else "",
              f"room {escape(f.room)}" if f.room else "",
              f"patient {escape(f.patient_key[:8])}…" if f.patient_key else ""]
    chosen = ", ".join(w for w in window if w) or "all procedures"
    span = (f"{_utc(rows[0].summary.started_utc)} – {_utc(rows[-1].summary.started_utc)}"
            if rows else "no procedures")
    cards = [
        _card(str(len(rows)), f"procedures ({imported} imported)"),
        _card(str(len(report.patients)), "patients"),
        _card(str(len(report.rooms)), "rooms"),
        _card(str(len(report.outliers)), "above their DRL", "bad" if report.outliers else ""),
        _card(str(notified), f"patients at NCRP 168 level ({f.weeks:g} wk)",
              "warn" if notified else ""),
        _card(str(unack), "alarms not acknowledged", "bad" if unack else ""),
        _card(str(incomplete), "incomplete procedures", "warn" if incomplete else ""),
        _card(f"{sum(r.summary.dap_gycm2 for r in rows):.3g}", "DAP in all, Gy·cm²"),
    ]
    return (f'<header><h1>Fluoroscopy dose report</h1>'
            f'<p class="lead">{escape(span)} · {escape(chosen)} · log '
            f'<code>{escape(report.dose_log)}</code> · generated {_utc(report.generated_utc)}'
            f'</p><div class="cards">{"".join(cards)}</div></header>')


def _outliers(report: Report) -> str:
    head = ('<h2 id="outliers">Outliers against local diagnostic reference levels</h2>'
            f'<p class="note">Reference levels: {escape(report.drl.source)}. A procedure above '
            'its DRL is one to review (patient size, complexity, technique), not a dose limit '
            '(ICRP Publication 135).</p>')
    if not report.outliers:
        return head + '<div class="panel empty">No procedure is above its reference level.</div>'
    body = []
    for r in report.outliers:
        worst = max(e.ratio for e in r.above_drl)
        width = min(worst - 1.0, 2.0) * 60 + 6
        body.append(
            f'<tr><td><a href="#{_anchor(r)}">{_name(r)}</a><br>'
            f'<span class="meta">{_utc(r.summary.started_utc)}</span></td>'
            f'<td>{escape(r.room)}</td><td>{_key(r.summary.patient_key)}</td>'
            f'<td>{escape(r.drl.name if r.drl else "")}</td>'
            f'<td>{"<br>".join(_exceeded(e) for e in r.above_drl)}</td>'
            f'<td class="num">×{worst:.2f}<span class="ratio" style="width:{width:.0f}px">'
            f'</span></td></tr>')
    return (head + '<table><thead><tr><th>procedure</th><th>room</th><th>patient</th>'
            '<th>reference type</th><th>above the DRL</th><th class="num">worst</th></tr>'
            f'</thead><tbody>{"".join(body)}</tbody></table>')


def _dap_chart(report: Report) -> str:
    head = '<h2 id="dap">DAP per procedure against its reference level</h2>'
    if not report.procedures:
        return head + '<div class="panel empty">No procedures.</div>'
    order = [e.name for e in report.drl.entries]
    if report.drl.default is not None:
        order.append(report.drl.default.name)
    groups: dict[str, list[ProcedureRow]] = {}
    for r in report.procedures:
        groups.setdefault(r.drl.name if r.drl else "no reference level", []).append(r)
    bar_groups = []
    for name in sorted(groups, key=lambda n: order.index(n) if n in order else len(order)):
        members = groups[name]
        level = members[0].drl.dap_gycm2 if members[0].drl else None
        bars = tuple(Bar(r.summary.dap_gycm2,
                         f"{r.summary.procedure_name or 'unnamed'}, {_utc(r.summary.started_utc)}"
                         f", {r.room}: DAP {r.summary.dap_gycm2:.3g} Gy·cm²"
                         + (f" (DRL {level:.3g})" if level else ""),
                         any(e.quantity == "dap_gycm2" for e in r.above_drl)) for r in members)
        bar_groups.append(BarGroup(name, level, bars))
    svg = dap_against_drl_svg(bar_groups, "DAP of each procedure (Gy·cm²) grouped by procedure "
                                          "type, with each type's DRL as a dashed line")
    return (head + '<p class="note">One bar per procedure, in start order within its type; the '
            'dashed line is the type\'s DRL.</p>'
            f'<div class="panel">{svg}<div class="legend"><span><i style="background:'
            'var(--accent)"></i>DAP at or below the DRL</span><span><i style="background:'
            'var(--bad)"></i>DAP above the DRL</span><span><i style="border-top:2px dashed '
            'var(--ink);height:0;border-radius:0"></i>DRL</span></div></div>')


def _patients(report: Report) -> str:
    weeks = report.filters.weeks
    head = (f'<h2 id="patients">Patients: cumulative dose over {weeks:g} weeks</h2>'
            f'<p class="note">Largest sum over any {weeks:g}-week window ending at one of the '
            'patient\'s procedures here, counting every procedure of theirs in the log. NCRP '
            f'Report 168 notification level: Ka,r {NCRP_NOTIFICATION_KAR_MGY / 1000:g} Gy or '
            f'DAP {NCRP_NOTIFICATION_DAP_GYCM2:g} Gy·cm².</p>')
    if not report.patients:
        return head + '<div class="panel empty">No procedures with a patient key.</div>'
    body = []
    for p in report.patients:
        flag = (f'<span class="badge warn">notification {_utc(p.notified_utc)}</span>'
                if p.notification else '<span class="badge ok">below</span>')
        body.append(f'<tr class="{"flag" if p.notification else ""}"><td>{_key(p.patient_key)}'
                    f'</td><td class="num">{p.procedures}</td><td class="num">{p.kar_mgy:.4g}</td>'
                    f'<td class="num">{p.dap_gycm2:.4g}</td><td class="num">{p.peak_kar_mgy:.4g}'
                    f'</td><td class="num">{p.peak_dap_gycm2:.4g}</td><td class="num">'
                    f'{p.peak_procedures}</td><td>{flag}</td></tr>')
    return (head + '<table><thead><tr><th>patient</th><th class="num">procedures</th>'
            '<th class="num">Ka,r mGy</th><th class="num">DAP Gy·cm²</th>'
            f'<th class="num">{weeks:g}-wk Ka,r mGy</th><th class="num">{weeks:g}-wk DAP</th>'
            '<th class="num">in window</th><th>NCRP 168</th></tr></thead>'
            f'<tbody>{"".join(body)}</tbody></table>')


def _rooms(report: Report) -> str:
    head = '<h2 id="rooms">Rooms</h2>'
    if not report.rooms:
        return head + '<div class="panel empty">No procedures.</div>'
    body = "".join(
        f'<tr><td>{escape(r.room)}</td><td class="num">{r.procedures}</td>'
        f'<td class="num">{r.dap_median_gycm2:.3g}</td><td class="num">{r.dap_p75_gycm2:.3g}</td>'
        f'<td class="num">{_clock(r.fluoro_time_median_s)}</td>'
        f'<td class="num">{_clock(r.fluoro_time_p75_s)}</td>'
        f'<td class="num">{r.kar_median_mgy:.3g}</td></tr>' for r in report.rooms)
    return (head + '<p class="note">Medians are what ICRP 135 compares with a DRL; the 75th '
            'percentiles are candidates for local DRLs.</p><table><thead><tr><th>room</th>'
            '<th class="num">procedures</th><th class="num">median DAP Gy·cm²</th>'
            '<th class="num">p75 DAP Gy·cm²</th><th class="num">median fluoro min:s</th>'
            '<th class="num">p75 fluoro min:s</th><th class="num">median Ka,r mGy</th></tr>'
            f'</thead><tbody>{body}</tbody></table>')


def _alarm_marks(row: ProcedureRow) -> list[AlarmMark]:
    marks = []
    for a in row.alarms:
        acks = "; ".join(f"acknowledged by {k.user} at {_utc_s(k.wall_time_utc)}"
                         for k in a.acks)
        detail = f"{a.message} (at {_clock(a.t_s)}, {_utc_s(a.wall_time_utc)}); " + (
            acks or "NOT acknowledged")
        label = a.message if len(a.message) <= 26 else a.message[:25] + "…"
        marks.append(AlarmMark(a.t_s, label, detail, bool(a.acks)))
    return marks


def _procedure(row: ProcedureRow, line: TimeLine) -> str:
    p = row.summary
    badges = ['<span class="badge ok">complete</span>' if p.complete else
              '<span class="badge bad">INCOMPLETE</span>']
    if p.is_imported:
        badges.append('<span class="badge info">RDSR import</span>')
    badges += [f'<span class="badge bad">{escape(_exceeded(e))}</span>' for e in row.above_drl]
    if row.notification:
        badges.append('<span class="badge warn">patient at NCRP 168 level</span>')
    if line.points:
        title = (f"Cumulative Ka,r of {p.procedure_name or 'the procedure'} over time: "
                 f"{p.kar_mgy:.3g} mGy, {len(row.alarms)} alarm(s)")
        plot = cumulative_kar_svg(line.points, _alarm_marks(row), line.events, title,
                                  row.drl.kar_mgy if row.drl else None)
    else:
        plot = f'<div class="empty">{escape(line.note)}</div>'
    if p.is_imported and line.points:
        plot += ('<p class="note">From the imported report\'s irradiation events (RDSR): time '
                 'from the first event\'s start; no pulse record.</p>')
    drl = row.drl
    facts = [("patient", _key(p.patient_key)), ("room", escape(row.room)),
             ("operator", escape(p.info.operator or "—")), ("device", escape(p.info.device or "—")),
             ("dose from", escape(row.dose_source)),
             ("pulses", "not recorded (RDSR)" if p.is_imported else f"{p.pulses}" + (
                 f" ({p.missing_pulses} missing)" if p.missing_pulses else "")),
             ("events", str(p.events)), ("fluoro time", f"{_clock(p.fluoro_time_s)} min:s"),
             ("Ka,r", f"{p.kar_mgy:.4g} mGy"), ("DAP", f"{p.dap_gycm2:.4g} Gy·cm²"),
             ("DRL type", escape(drl.name) if drl else "none")]
    if p.patient_key is not None:
        facts.append(("patient window", f"{row.window_kar_mgy:.4g} mGy, "
                      f"{row.window_dap_gycm2:.4g} Gy·cm² ({row.window_procedures} proc.)"))
    dl = "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in facts)
    alarms = "".join(
        f"<li>{_clock(a.t_s)} — {escape(a.message)}: " + (
            ", ".join(f"acknowledged by {escape(k.user)} at {_utc_s(k.wall_time_utc)}"
                      for k in a.acks) or '<strong style="color:var(--bad)">not acknowledged'
                                          '</strong>') + "</li>" for a in row.alarms)
    alarms = f'<ul class="alarms">{alarms}</ul>' if alarms else '<p class="note">No alarms.</p>'
    cls = "proc outlier" if row.above_drl else "proc"
    return (f'<article class="{cls}" id="{_anchor(row)}"><header><h3>{_name(row)}</h3>'
            f'<span class="when">{_utc(p.started_utc)} · {escape(row.room)}</span>'
            f'{"".join(badges)}</header><div class="body"><div>{plot}{alarms}</div>'
            f'<dl class="facts">{dl}</dl></div></article>')


def render_html(report: Report, timeline_of: TimeLineOf) -> str:
    """The whole page. ``timeline_of(row)`` gives each procedure's cumulative Ka,r curve (see
    ``fluoro.report.timeline.timeline``)."""
    procs = "".join(_procedure(r, timeline_of(r)) for r in report.procedures)
    procs = procs or '<div class="panel empty">No procedures match the filters.</div>'
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<title>Fluoroscopy dose report</title><style>{CSS}</style></head><body><main>'
        f'{_header(report)}{_outliers(report)}{_dap_chart(report)}{_patients(report)}'
        f'{_rooms(report)}<h2 id="procedures">Procedures</h2>'
        '<p class="note">Cumulative Ka,r (mGy) at the reference point over the source clock; '
        'the strip under the axis marks irradiation events; alarms are marked on the time line '
        '(filled: acknowledged, hollow red: not).</p>'
        f'<div class="procs">{procs}</div>'
        '<footer>Ka,r: air kerma at the patient entrance reference point (IEC 60601-2-43), mGy. '
        'DAP: air-kerma–area product, Gy·cm². Fluoro time: beam-on time (21 CFR 1020.32(h)). '
        'Cumulative notification: NCRP Report 168 (2010), Section 5. Reference levels: ICRP '
        'Publication 135 (2017). Generated by fluoro.</footer></main></body></html>\n')
