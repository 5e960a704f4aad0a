"""The report's plots as inline SVG text, drawn in Python (no scripts, no external files).

Colours come from CSS classes (``line``, ``area``, ``alarm``, ``bar``, ``over``, ``drl``, ...)
that the page styles for light and dark schemes; every mark has an SVG ``<title>`` so a screen
reader (or a mouse pointer) gets the numbers. Units: time s, Ka,r mGy, DAP Gy·cm².
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

__all__ = ["AlarmMark", "Bar", "BarGroup", "cumulative_kar_svg", "dap_against_drl_svg",
           "nice_ticks", "time_ticks"]


@dataclass(frozen=True, slots=True)
class AlarmMark:
    """An alarm on the time line: source time ``t_s`` (s), a short ``label``, the full
    ``detail`` (message and acknowledgements) and whether it was acknowledged."""

    t_s: float
    label: str
    detail: str
    acknowledged: bool


@dataclass(frozen=True, slots=True)
class Bar:
    """One procedure's DAP (Gy·cm²) and its tooltip; ``over``: above its DRL."""

    dap_gycm2: float
    title: str
    over: bool


@dataclass(frozen=True, slots=True)
class BarGroup:
    """Procedures of one DRL type and that type's DAP reference level (Gy·cm², or None)."""

    name: str
    drl_dap_gycm2: float | None
    bars: tuple[Bar, ...]


def nice_ticks(top: float, count: int = 5) -> list[float]:
    """Round tick values from 0 to at least ``top`` (1, 2, 2.5 or 5 times a power of ten)."""
    if not math.isfinite(top) or top <= 0:
        return [0.0, 1.0]
    raw = top / count
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw)
    n = math.ceil(top / step - 1e-9)
    return [round(i * step, 10) for i in range(n + 1)]


_TIME_STEPS_S = (1, 2, 5, 10, 15, 20, 30, 60, 120, 300, 600, 900, 1200, 1800, 3600, 7200,
                 10800, 21600, 43200, 86400)


def time_ticks(span_s: float, count: int = 6) -> list[float]:
    """Tick values (s) from 0 covering ``span_s`` at a clock-friendly step (1 s ... 1 day)."""
    raw = max(span_s, 1.0) / count
    step = next((s for s in _TIME_STEPS_S if s >= raw), _TIME_STEPS_S[-1])
    return [float(i * step) for i in range(math.ceil(span_s / step - 1e-9) + 1)] or [0.0, 1.0]


def _num(value: float) -> str:
    """A tick label: no trailing zeros, at most 3 significant digits below 1000."""
    if value == 0:
        return "0"
    return f"{value:.0f}" if abs(value) >= 1000 else f"{value:.3g}"


def _clock(t_s: float, span_s: float = 0.0) -> str:
    """``12 s``, ``4:05`` (min:s) or ``1:02:05`` (h:min:s); on an axis of ``span_s`` seconds
    every label of that axis uses the same form."""
    hours, rest = divmod(round(t_s), 3600)
    minutes, seconds = divmod(rest, 60)
    if hours or span_s >= 3600:
        return f"{hours}:{minutes:02d}:{seconds:02d}"
    return f"{minutes}:{seconds:02d}" if minutes or span_s >= 60 else f"{seconds} s"


def _f(value: float) -> str:
    return f"{value:.1f}"


def cumulative_kar_svg(points: Sequence[tuple[float, float]], alarms: Sequence[AlarmMark],
                       events: Sequence[tuple[float, float]], title: str,
                       drl_kar_mgy: float | None = None, width: int = 680,
                       height: int = 240) -> str:
    """Cumulative Ka,r (mGy) over source time (s) as a line over a shaded area, irradiation
    events as a strip under the axis, alarms as labelled markers on the time line.

    ``points``: (t_s, cumulative Ka,r mGy), in time order; ``events``: (start_s, end_s).
    """
    left, right, top, bottom = 58, 18, 34, 46
    plot_w, plot_h = width - left - right, height - top - bottom
    t_end = max([t for t, _ in points] + [a.t_s for a in alarms] + [e for _, e in events]
                + [1.0])
    t_start = min([t for t, _ in points] + [a.t_s for a in alarms] + [0.0])
    x_ticks = time_ticks(t_end - t_start, 6)
    x_span = x_ticks[-1] or 1.0
    k_top = max([k for _, k in points] + [drl_kar_mgy or 0.0, 1e-6])
    y_ticks = nice_ticks(k_top * 1.05, 4)
    y_span = y_ticks[-1] or 1.0

    def x(t: float) -> float:
        return left + (t - t_start) / x_span * plot_w

    def y(k: float) -> float:
        return top + plot_h - k / y_span * plot_h

    out = [f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
           f'xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>']
    for v in y_ticks:
        out.append(f'<line class="grid" x1="{left}" x2="{left + plot_w}" y1="{_f(y(v))}" '
                   f'y2="{_f(y(v))}"/><text class="tick" x="{left - 6}" y="{_f(y(v) + 4)}" '
                   f'text-anchor="end">{_num(v)}</text>')
    for i, v in enumerate(x_ticks):
        anchor = "end" if i == len(x_ticks) - 1 and i else "middle"
        out.append(f'<text class="tick" x="{_f(x(t_start + v))}" y="{top + plot_h + 28}" '
                   f'text-anchor="{anchor}">{_clock(t_start + v, x_span)}</text>')
    out.append(f'<text class="axis-label" x="{left - 44}" y="{top - 14}">Ka,r mGy</text>'
               f'<line class="axis" x1="{left}" x2="{left + plot_w}" y1="{top + plot_h}" '
               f'y2="{top + plot_h}"/>')
    for start, end in events:  # beam-on strip just under the axis
        w = max(x(end) - x(start), 1.5)
        out.append(f'<rect class="beam" x="{_f(x(start))}" y="{top + plot_h + 4}" '
                   f'width="{_f(w)}" height="6"><title>irradiation event '
                   f'{_clock(start)}–{_clock(end)}</title></rect>')
    if drl_kar_mgy is not None:
        out.append(f'<line class="drl" x1="{left}" x2="{left + plot_w}" y1="{_f(y(drl_kar_mgy))}"'
                   f' y2="{_f(y(drl_kar_mgy))}"><title>DRL Ka,r {_num(drl_kar_mgy)} mGy</title>'
                   f'</line>')
    if points:
        line = " ".join(f"{_f(x(t))},{_f(y(k))}" for t, k in points)
        first_x, last_x = x(points[0][0]), x(points[-1][0])
        out.append(f'<path class="area" d="M{_f(first_x)},{_f(y(0))} L{line} '
                   f'L{_f(last_x)},{_f(y(0))} Z"/>')
        out.append(f'<path class="line" d="M{line}"><title>cumulative Ka,r: '
                   f'{points[-1][1]:.3g} mGy after {_clock(points[-1][0])}</title></path>')
    placed: list[float] = []  # label rows: stagger labels that would overlap
    for alarm in alarms:
        ax = x(alarm.t_s)
        level = next((k for t, k in reversed(points) if t <= alarm.t_s), 0.0) if points else 0.0
        row = sum(1 for px in placed if abs(px - ax) < 120) % 2
        placed.append(ax)
        state = "alarm" if alarm.acknowledged else "alarm unack"
        label_x = min(max(ax, left + 4), left + plot_w - 4)
        anchor = "end" if ax > left + plot_w * 0.7 else "start"
        out.append(f'<g class="{state}"><title>{escape(alarm.detail)}</title>'
                   f'<line x1="{_f(ax)}" x2="{_f(ax)}" y1="{top - 4 + row * 12}" '
                   f'y2="{top + plot_h}"/>'
                   f'<circle cx="{_f(ax)}" cy="{_f(y(level))}" r="4.5"/>'
                   f'<text x="{_f(label_x + (-5 if anchor == "end" else 5))}" '
                   f'y="{top - 6 + row * 12}" text-anchor="{anchor}">{escape(alarm.label)}</text>'
                   f'</g>')
    out.append("</svg>")
    return "".join(out)


def dap_against_drl_svg(groups: Sequence[BarGroup], title: str, width: int = 1040,
                        height: int = 280) -> str:
    """DAP (Gy·cm²) of each procedure as a bar, one panel per procedure type with its own
    scale (so a type with large DAPs does not flatten the others) and the type's DRL as a
    dashed line across the panel; bars above it use the ``over`` class."""
    top, bottom, axis_w, gap, min_w = 26, 52, 40, 16, 120
    plot_h = height - top - bottom
    free = width - len(groups) * (axis_w + gap) + gap
    total = sum(len(g.bars) for g in groups) or 1
    widths = [max(min_w, free * len(g.bars) / total) for g in groups]
    shrink = free / sum(widths) if widths else 1.0
    widths = [w * shrink for w in widths]
    out = [f'<svg class="chart" viewBox="0 0 {width} {height}" role="img" '
           f'xmlns="http://www.w3.org/2000/svg"><title>{escape(title)}</title>'
           f'<text class="axis-label" x="0" y="{top - 12}">DAP Gy·cm²</text>']
    cursor = 0.0
    for group, panel_w in zip(groups, widths, strict=True):
        left = cursor + axis_w
        d_top = max([b.dap_gycm2 for b in group.bars] + [group.drl_dap_gycm2 or 0.0, 1e-6])
        ticks = nice_ticks(d_top * 1.12, 4)
        span = ticks[-1] or 1.0

        def y(v: float, span: float = span) -> float:
            return top + plot_h - v / span * plot_h

        out.append(f'<g class="group"><title>{escape(group.name)}: {len(group.bars)} '
                   f'procedure(s)</title>')
        for v in ticks:
            out.append(f'<line class="grid" x1="{_f(left)}" x2="{_f(left + panel_w)}" '
                       f'y1="{_f(y(v))}" y2="{_f(y(v))}"/><text class="tick" x="{_f(left - 5)}" '
                       f'y="{_f(y(v) + 4)}" text-anchor="end">{_num(v)}</text>')
        out.append(f'<line class="axis" x1="{_f(left)}" x2="{_f(left + panel_w)}" '
                   f'y1="{top + plot_h}" y2="{top + plot_h}"/>')
        slot_w = panel_w / max(len(group.bars), 1)
        bar_w = min(slot_w * 0.64, 28.0)
        for i, bar in enumerate(group.bars):
            bx = left + (i + 0.5) * slot_w - bar_w / 2
            h = max(top + plot_h - y(bar.dap_gycm2), 1.5)
            cls = "bar over" if bar.over else "bar"
            out.append(f'<rect class="{cls}" x="{_f(bx)}" y="{_f(top + plot_h - h)}" '
                       f'width="{_f(bar_w)}" height="{_f(h)}" rx="1.5">'
                       f'<title>{escape(bar.title)}</title></rect>')
        if group.drl_dap_gycm2 is not None:
            dy = y(group.drl_dap_gycm2)
            out.append(f'<line class="drl" x1="{_f(left)}" x2="{_f(left + panel_w)}" '
                       f'y1="{_f(dy)}" y2="{_f(dy)}"><title>DRL {escape(group.name)}: '
                       f'{_num(group.drl_dap_gycm2)} Gy·cm²</title></line>'
                       f'<text class="drl-label" x="{_f(left + panel_w)}" y="{_f(dy - 5)}" '
                       f'text-anchor="end">DRL {_num(group.drl_dap_gycm2)}</text>')
        chars = int(panel_w / 6.6)
        label = group.name if len(group.name) <= chars else group.name[:chars - 1] + "…"
        out.append(f'<text class="group-label" x="{_f(left + panel_w / 2)}" '
                   f'y="{top + plot_h + 20}" text-anchor="middle">{escape(label)}</text>'
                   f'<text class="tick" x="{_f(left + panel_w / 2)}" y="{top + plot_h + 36}" '
                   f'text-anchor="middle">n = {len(group.bars)}</text></g>')
        cursor = left + panel_w + gap
    out.append("</svg>")
    return "".join(out)
