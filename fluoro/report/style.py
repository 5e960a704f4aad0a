"""The report page's style sheet: neutral light and dark schemes, system fonts only."""

from __future__ import annotations

__all__ = ["CSS"]

CSS = """
:root { color-scheme: light dark;
  --bg: #f5f6f8; --card: #ffffff; --ink: #1c2230; --muted: #5b6473; --line: #dde1e7;
  --accent: #2b63d9; --accent-soft: rgba(43, 99, 217, 0.13); --bad: #c62828;
  --bad-soft: rgba(198, 40, 40, 0.10); --warn: #b26a00; --warn-soft: rgba(178, 106, 0, 0.12);
  --ok: #2e7d32; --ok-soft: rgba(46, 125, 50, 0.12); }
@media (prefers-color-scheme: dark) { :root {
  --bg: #12151a; --card: #1b2028; --ink: #e5e8ed; --muted: #9aa3b2; --line: #2e3541;
  --accent: #74a7ff; --accent-soft: rgba(116, 167, 255, 0.16); --bad: #ff6f6f;
  --bad-soft: rgba(255, 111, 111, 0.14); --warn: #f2b441; --warn-soft: rgba(242, 180, 65, 0.14);
  --ok: #65c982; --ok-soft: rgba(101, 201, 130, 0.14); } }
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--ink);
  font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", "DejaVu Sans",
        "Liberation Sans", sans-serif; }
main { max-width: 1120px; margin: 0 auto; padding: 28px 24px 48px; }
h1 { font-size: 28px; margin: 0 0 4px; letter-spacing: -0.01em; }
h2 { font-size: 19px; margin: 36px 0 4px; }
h3 { font-size: 16px; margin: 0; }
p.lead, .meta, .note { color: var(--muted); }
p.lead { margin: 0 0 18px; }
.note { font-size: 13px; margin: 4px 0 12px; }
.num, td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(118px, 1fr)); gap: 10px; }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 10px;
  padding: 12px 14px; }
.card .value { font-size: 24px; font-weight: 650; font-variant-numeric: tabular-nums; }
.card .label { color: var(--muted); font-size: 13px; }
.card.bad { border-color: var(--bad); background: var(--bad-soft); }
.card.bad .value { color: var(--bad); }
.card.warn { border-color: var(--warn); background: var(--warn-soft); }
.card.warn .value { color: var(--warn); }
table { width: 100%; border-collapse: collapse; background: var(--card); border-radius: 10px;
  overflow: hidden; border: 1px solid var(--line); font-size: 14px; }
th, td { padding: 7px 10px; border-bottom: 1px solid var(--line); text-align: left;
  vertical-align: top; }
th { font-size: 12px; text-transform: uppercase; letter-spacing: 0.04em; color: var(--muted);
  font-weight: 600; }
tr:last-child td { border-bottom: none; }
tr.flag td { background: var(--bad-soft); }
a { color: var(--accent); text-decoration: none; }
a:hover { text-decoration: underline; }
code, .key { font-family: ui-monospace, "DejaVu Sans Mono", "Liberation Mono", monospace;
  font-size: 12.5px; }
.badge { display: inline-block; padding: 1px 8px; border-radius: 999px; font-size: 12px;
  font-weight: 600; border: 1px solid currentColor; margin: 0 4px 2px 0; white-space: nowrap; }
.badge.bad { color: var(--bad); background: var(--bad-soft); }
.badge.warn { color: var(--warn); background: var(--warn-soft); }
.badge.ok { color: var(--ok); background: var(--ok-soft); }
.badge.info { color: var(--muted); }
.ratio { display: inline-block; height: 8px; border-radius: 4px; background: var(--bad);
  vertical-align: middle; margin-left: 6px; }
.panel { background: var(--card); border: 1px solid var(--line); border-radius: 10px;
  padding: 14px 16px; }
.procs { display: grid; gap: 16px; }
.proc { background: var(--card); border: 1px solid var(--line); border-radius: 10px;
  padding: 14px 16px; }
.proc.outlier { border-left: 4px solid var(--bad); }
.proc header { display: flex; flex-wrap: wrap; align-items: baseline; gap: 6px 12px;
  margin-bottom: 8px; }
.proc header .when { color: var(--muted); font-size: 13px; }
.proc .body { display: grid; grid-template-columns: minmax(0, 3fr) minmax(220px, 2fr);
  gap: 16px; }
dl.facts { display: grid; grid-template-columns: auto 1fr; gap: 2px 12px; margin: 0;
  font-size: 13.5px; }
dl.facts dt { color: var(--muted); }
dl.facts dd { margin: 0; font-variant-numeric: tabular-nums; }
ul.alarms { margin: 8px 0 0; padding-left: 18px; font-size: 13.5px; }
.empty { color: var(--muted); font-style: italic; padding: 24px 0; text-align: center; }
svg.chart { width: 100%; height: auto; display: block; font-size: 11px; }
svg .grid { stroke: var(--line); stroke-width: 1; }
svg .axis { stroke: var(--muted); stroke-width: 1; }
svg .tick, svg .axis-label { fill: var(--muted); }
svg .axis-label { font-size: 11px; }
svg .group-label { fill: var(--ink); font-size: 12px; }
svg .line { fill: none; stroke: var(--accent); stroke-width: 2.2; stroke-linejoin: round; }
svg .area { fill: var(--accent-soft); stroke: none; }
svg .beam { fill: var(--accent); opacity: 0.55; }
svg .alarm line { stroke: var(--warn); stroke-width: 1.3; stroke-dasharray: 4 3; }
svg .alarm circle { fill: var(--warn); stroke: var(--card); stroke-width: 1.5; }
svg .alarm text { fill: var(--warn); font-weight: 600; paint-order: stroke; stroke: var(--card);
  stroke-width: 3px; }
svg .alarm.unack line { stroke: var(--bad); }
svg .alarm.unack circle { fill: var(--card); stroke: var(--bad); stroke-width: 2.5; }
svg .alarm.unack text { fill: var(--bad); }
svg .bar { fill: var(--accent); opacity: 0.85; }
svg .bar.over { fill: var(--bad); opacity: 1; }
svg .drl { stroke: var(--ink); stroke-width: 1.6; stroke-dasharray: 6 4; }
svg .drl-label { fill: var(--ink); font-size: 11px; font-weight: 600; paint-order: stroke;
  stroke: var(--card); stroke-width: 3px; }
.legend { display: flex; flex-wrap: wrap; gap: 16px; font-size: 13px; color: var(--muted);
  margin-top: 6px; }
.legend i { display: inline-block; width: 12px; height: 12px; border-radius: 2px;
  vertical-align: -1px; margin-right: 5px; }
footer { margin-top: 40px; color: var(--muted); font-size: 12.5px; border-top: 1px solid
  var(--line); padding-top: 12px; }
@media (max-width: 760px) { .proc .body { grid-template-columns: 1fr; } }
@media print { body { background: #fff; } .proc { break-inside: avoid; } }
"""
