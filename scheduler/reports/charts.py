"""The reports' charts as self-contained SVG: no scripts, no external fonts or links, an accessible <title> and
<desc>; drawn in a viewBox so that they scale down to a phone and print sharp in the PDF.

Each function is pure: figures in, a `Chart` out. Colours follow the compliance thresholds used everywhere in the
reports: at or above the target green, from 80 % of it amber, below red; grey where there is no figure.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from html import escape

from scheduler.reports.table import Chart
from scheduler.web.formats import date_text, number_text, percent_text
from scheduler.web.i18n import translate

GREEN, AMBER, RED, GREY = "#2e7d32", "#f9a825", "#c62828", "#bdbdbd"
BAR, PEAK = "#1565c0", "#ffe0b2"
_INK, _MUTED, _GRID = "#222222", "#666666", "#e0e0e0"
_FONT = "'Noto Sans', 'DejaVu Sans', Roboto, 'Segoe UI', Arial, sans-serif"
_WIDTH = 480  # viewBox units; the text sizes below stay readable when a phone scales it to its width
NEAR = 0.8  # share of the target from which a figure is amber rather than red


def threshold_colour(value: float | None, target: float = 1.0) -> str:
    if value is None:
        return GREY
    if value >= target - 1e-9:
        return GREEN
    if value >= NEAR * target - 1e-9:
        return AMBER
    return RED


def _svg(kind: str, width: float, height: float, title: str, desc: str, body: list[str]) -> str:
    ident = "chart-" + hashlib.sha1("".join([kind, title, desc, *body]).encode()).hexdigest()[:10]
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width:g} {height:g}" width="{width:g}" '
            f'height="{height:g}" role="img" aria-labelledby="{ident}-title {ident}-desc" class="chart chart-{kind}" '
            f'font-family="{_FONT}" font-size="12" fill="{_INK}" style="max-width:100%;height:auto">'
            f'<title id="{ident}-title">{escape(title)}</title><desc id="{ident}-desc">{escape(desc)}</desc>'
            + "".join(body) + "</svg>")


def count_ticks(largest: int, ticks: int = 4) -> list[int]:
    """The gridlines of an axis of counts from 0 to at least `largest`: whole numbers a nice step apart (1, 2 or 5
    times a power of ten, never below 1), about `ticks` of them above zero, the last at or above `largest`."""
    largest = max(int(math.ceil(largest)), 1)
    raw = largest / ticks
    power = 10 ** max(math.floor(math.log10(raw)), 0) if raw >= 1 else 1
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    return list(range(0, step * math.ceil(largest / step) + 1, step))


def _text(x: float, y: float, text: str, *, anchor: str = "start", size: int | None = None, css: str = "",
          fill: str | None = None, weight: str | None = None) -> str:
    attributes = f'x="{x:.1f}" y="{y:.1f}"'
    if anchor != "start":
        attributes += f' text-anchor="{anchor}"'
    if size:
        attributes += f' font-size="{size}"'
    if fill:
        attributes += f' fill="{fill}"'
    if weight:
        attributes += f' font-weight="{weight}"'
    if css:
        attributes += f' class="{css}"'
    return f"<text {attributes}>{escape(text)}</text>"


def _legend(x: float, y: float, entries: Sequence[tuple[str, str]]) -> list[str]:
    body = []
    for colour, label in entries:
        body.append(f'<rect class="legend" x="{x:.1f}" y="{y - 9:.1f}" width="10" height="10" fill="{colour}" '
                    f'stroke="#999" stroke-width="0.5"/>')
        body.append(_text(x + 14, y, label, size=11))
        x += 14 + 6.6 * len(label) + 14
    return body


def _empty(kind: str, caption: str, language: str) -> Chart:
    nothing = translate("chart.nothing", language)
    body = [_text(_WIDTH / 2, 44, nothing, anchor="middle", size=13, fill=_MUTED)]
    return Chart(caption=caption, svg=_svg(kind, _WIDTH, 80, caption, nothing, body))


def _clock(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _peak_spans(windows: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    """Windows as spans inside one day; a window over midnight (end before start) is split in two."""
    spans = []
    for start, end in windows:
        if not (0 <= start <= 1440 and 0 <= end <= 1440):
            raise ValueError(f"a peak window is given in minutes from midnight (0–1440); got {start}–{end}")
        if end > start:
            spans.append((start, end))
        elif end < start:
            spans += [(start, 1440), (0, end)]
    return spans


def delivery_by_hour(counts_by_hour: Sequence[int], peak_windows: Sequence[tuple[int, int]], caption: str,
                     *, language: str = "vi") -> Chart:
    """Bars of plays per hour of the day, with the peak windows (minutes from midnight) shaded behind them: the
    windows of the sites the plays come from (one kind of site a chart, see compliance.plays_by_hour)."""
    if len(counts_by_hour) != 24:
        raise ValueError(f"counts_by_hour needs 24 figures, one per hour 0–23; got {len(counts_by_hour)}")
    t = lambda key: translate(key, language)  # noqa: E731
    left, right, top, bottom = 44, 10, 30, 40
    height = 250
    plot_w, plot_h = _WIDTH - left - right, height - top - bottom
    slot = plot_w / 24
    ticks = count_ticks(max(counts_by_hour))
    y_max = ticks[-1]
    base = top + plot_h

    body = _legend(left, 16, [(BAR, t("chart.plays_per_hour")), (PEAK, t("chart.peak_windows"))])
    spans = _peak_spans(peak_windows)
    for start, end in spans:
        body.append(f'<rect class="peak" data-start="{start}" data-end="{end}" x="{left + start / 60 * slot:.2f}" '
                    f'y="{top}" width="{(end - start) / 60 * slot:.2f}" height="{plot_h}" fill="{PEAK}">'
                    f'<title>{escape(t("chart.peak_windows"))}: {_clock(start)}–{_clock(end)}</title></rect>')
    for tick in ticks:
        y = base - tick / y_max * plot_h
        body.append(f'<line x1="{left}" x2="{_WIDTH - right}" y1="{y:.1f}" y2="{y:.1f}" stroke="{_GRID}"/>')
        body.append(_text(left - 5, y + 4, number_text(tick, language), anchor="end", size=11, fill=_MUTED,
                          css="tick"))
    unit = t("chart.plays_unit")
    for hour, count in enumerate(counts_by_hour):
        bar_h = count / y_max * plot_h
        x = left + hour * slot + slot * 0.15
        body.append(f'<rect class="bar" data-hour="{hour}" data-value="{count}" x="{x:.2f}" y="{base - bar_h:.2f}" '
                    f'width="{slot * 0.7:.2f}" height="{bar_h:.2f}" fill="{BAR}"><title>{hour:02d}:00–'
                    f'{(hour + 1) % 24:02d}:00: {number_text(count, language)} {escape(unit)}</title></rect>')
    body.append(f'<line x1="{left}" x2="{_WIDTH - right}" y1="{base}" y2="{base}" stroke="{_MUTED}"/>')
    for hour in range(0, 25, 3):
        body.append(_text(left + hour * slot, base + 14, f"{hour:02d}", anchor="middle", size=11, fill=_MUTED))
    body.append(_text(left + plot_w / 2, height - 6, t("chart.hour_of_day"), anchor="middle", size=11, fill=_MUTED))

    busiest = max(range(24), key=lambda h: counts_by_hour[h])
    desc = t("chart.total_plays").format(total=number_text(sum(counts_by_hour), language),
                                         hour=f"{busiest:02d}:00–{(busiest + 1) % 24:02d}:00",
                                         count=number_text(counts_by_hour[busiest], language))
    desc += " " + (f"{t('chart.peak_windows')}: " + ", ".join(f"{_clock(s)}–{_clock(e)}" for s, e in peak_windows)
                   + "." if peak_windows else t("chart.no_peak"))
    return Chart(caption=caption, svg=_svg("delivery-by-hour", _WIDTH, height, caption, desc, body))


def _threshold_legend(language: str) -> list[tuple[str, str]]:
    t = lambda key: translate(key, language)  # noqa: E731
    return [(GREEN, t("chart.met")), (AMBER, t("chart.near")), (RED, t("chart.short"))]


def compliance_by_day(points: Sequence[tuple[date, float | None]], target: float = 1.0, caption: str = "",
                      *, language: str = "vi") -> Chart:
    """Bars of compliance per day (fractions, 1.0 = 100 %), coloured by threshold, with the target's line."""
    if not points:
        return _empty("compliance-by-day", caption, language)
    t = lambda key: translate(key, language)  # noqa: E731
    left, right, top, bottom = 44, 10, 30, 26
    height = 240
    plot_w, plot_h = _WIDTH - left - right, height - top - bottom
    slot = plot_w / len(points)
    values = [v for _, v in points if v is not None]
    top_value = max([target, *values])
    y_max = 0.25 * math.ceil(top_value * 1.05 / 0.25)
    base = top + plot_h

    body = _legend(left, 16, _threshold_legend(language))
    tick = 0.0
    while tick <= y_max + 1e-9:
        y = base - tick / y_max * plot_h
        body.append(f'<line x1="{left}" x2="{_WIDTH - right}" y1="{y:.1f}" y2="{y:.1f}" stroke="{_GRID}"/>')
        whole = round(tick * 100)
        body.append(_text(left - 5, y + 4, f"{whole} %" if language == "vi" else f"{whole}%", anchor="end", size=11,
                          fill=_MUTED))
        tick += 0.5 if y_max > 1.5 else 0.25
    no_data = t("chart.no_data")
    for index, (day, value) in enumerate(points):
        x = left + index * slot + slot * 0.15
        label = date_text(day, language)
        if value is None:
            body.append(f'<rect class="no-data" data-day="{day.isoformat()}" x="{x:.2f}" y="{base - 2}" '
                        f'width="{slot * 0.7:.2f}" height="2" fill="{GREY}"><title>{label}: {escape(no_data)}'
                        f'</title></rect>')
            continue
        bar_h = value / y_max * plot_h
        body.append(f'<rect class="bar" data-day="{day.isoformat()}" data-value="{value!r}" x="{x:.2f}" '
                    f'y="{base - bar_h:.2f}" width="{slot * 0.7:.2f}" height="{bar_h:.2f}" '
                    f'fill="{threshold_colour(value, target)}"><title>{label}: {percent_text(value, language)}'
                    f'</title></rect>')
    target_y = base - target / y_max * plot_h
    body.append(f'<line class="target" x1="{left}" x2="{_WIDTH - right}" y1="{target_y:.1f}" y2="{target_y:.1f}" '
                f'stroke="{_INK}" stroke-width="1.2" stroke-dasharray="5 3"/>')
    body.append(_text(_WIDTH - right - 2, target_y - 4, t("chart.target") + " " + percent_text(target, language),
                      anchor="end", size=11, weight="bold"))
    body.append(f'<line x1="{left}" x2="{_WIDTH - right}" y1="{base}" y2="{base}" stroke="{_MUTED}"/>')
    every = max(1, math.ceil(len(points) / 8))
    for index in range(0, len(points), every):
        day = points[index][0]
        body.append(_text(left + (index + 0.5) * slot, base + 14, day.strftime("%d/%m"), anchor="middle", size=11,
                          fill=_MUTED))

    lowest = min(values) if values else None
    desc = t("chart.days_summary").format(
        met=sum(v >= target - 1e-9 for v in values), days=len(points), target=percent_text(target, language),
        lowest=percent_text(lowest, language) if lowest is not None else no_data)
    return Chart(caption=caption, svg=_svg("compliance-by-day", _WIDTH, height, caption, desc, body))


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"


@dataclass(frozen=True)
class _UnitBars:
    """What differs between the charts of one horizontal bar per unit: the scale, the figures, the colours, the
    reference line (a target, a limit), and what a unit without a figure shows."""

    name: str
    legend: list[tuple[str, str]]
    x_max: float
    shown: Callable[[float], str]
    colour: Callable[[float], str]
    missing: Callable[[str, float, float], str]  # (unit, x, y) -> the SVG element in place of its bar
    line_at: float
    line_attributes: str  # class and data of the reference line
    line_label: str


def _unit_bars(rows: Sequence[tuple[str, float | None]], caption: str, desc: str, bars: _UnitBars) -> Chart:
    label_w, right, top, row_h = 160, 64, 28, 24
    height = top + row_h * len(rows) + 22
    bar_left = label_w + 6
    bar_w = _WIDTH - bar_left - right
    body = _legend(bar_left, 16, bars.legend)
    line_x = bar_left + bars.line_at / bars.x_max * bar_w
    for index, (name, value) in enumerate(rows):
        y = top + index * row_h
        body.append(f'<text x="{label_w:.1f}" y="{y + row_h / 2 + 4:.1f}" text-anchor="end" font-size="11" '
                    f'class="unit"><title>{escape(name)}</title>{escape(_shorten(name, 22))}</text>')
        if value is None:
            body.append(bars.missing(name, bar_left + 4, y + row_h / 2 + 4))
            continue
        width = value / bars.x_max * bar_w
        shown = bars.shown(value)
        body.append(f'<rect class="bar" data-unit="{escape(name)}" data-value="{value!r}" x="{bar_left}" '
                    f'y="{y + 4}" width="{width:.2f}" height="{row_h - 8}" fill="{bars.colour(value)}">'
                    f'<title>{escape(name)}: {escape(shown)}</title></rect>')
        label_x = bar_left + width + 4
        if label_x - 4 < line_x < label_x + 6.6 * len(shown):  # the reference line would strike the figure out
            label_x = line_x + 4
        body.append(_text(label_x, y + row_h / 2 + 4, shown, size=11, css="value"))
    bottom = top + row_h * len(rows)
    body.append(f'<line {bars.line_attributes} x1="{line_x:.1f}" x2="{line_x:.1f}" y1="{top}" y2="{bottom}" '
                f'stroke="{_INK}" stroke-width="1.2" stroke-dasharray="5 3"/>')
    body.append(_text(line_x, bottom + 14, bars.line_label, anchor="middle", size=11, weight="bold"))
    return Chart(caption=caption, svg=_svg(bars.name, _WIDTH, height, caption, desc, body))


def compliance_by_unit(rows: Sequence[tuple[str, float | None]], caption: str = "", *, target: float = 1.0,
                       language: str = "vi") -> Chart:
    """Horizontal bars of compliance per district or unit, in the order given, coloured by threshold, each with
    its percentage printed."""
    if not rows:
        return _empty("compliance-by-unit", caption, language)
    t = lambda key: translate(key, language)  # noqa: E731
    values = [v for _, v in rows if v is not None]
    no_data = t("chart.no_data")
    desc = t("chart.units_summary").format(met=sum(v >= target - 1e-9 for v in values), units=len(rows),
                                           target=percent_text(target, language))
    return _unit_bars(rows, caption, desc, _UnitBars(
        name="compliance-by-unit", legend=_threshold_legend(language), x_max=max([target, *values]),
        shown=lambda value: percent_text(value, language), colour=lambda value: threshold_colour(value, target),
        missing=lambda name, x, y: _text(x, y, "— " + no_data, size=11, fill=_MUTED, css="value"),
        line_at=target, line_attributes='class="target"',
        line_label=t("chart.target") + " " + percent_text(target, language)))


def days_since_by_unit(rows: Sequence[tuple[str, float | None]], caption: str = "", *, limit: float = 3.0,
                       language: str = "vi") -> Chart:
    """Horizontal bars of days (e.g. since a unit's last message) per unit, in the order given, red over `limit`
    and green within it, each with its figure printed, and the limit's line; None reads "no message yet" and
    counts as over the limit."""
    if not rows:
        return _empty("days-since-by-unit", caption, language)
    t = lambda key: translate(key, language)  # noqa: E731
    values = [v for _, v in rows if v is not None]
    limit_text = number_text(limit, language, 0 if float(limit).is_integer() else 1)
    never = t("chart.never")
    over = sum(1 for _, v in rows if v is None or v > limit + 1e-9)
    desc = t("chart.days_summary_units").format(over=over, units=len(rows), limit=limit_text)
    return _unit_bars(rows, caption, desc, _UnitBars(
        name="days-since-by-unit",
        legend=[(GREEN, t("chart.within_limit").format(limit=limit_text)),
                (RED, t("chart.over_limit").format(limit=limit_text))],
        x_max=max([limit * 1.25, *values]) or 1.0,
        shown=lambda value: t("chart.days_value").format(days=number_text(value, language, 1)),
        colour=lambda value: RED if value > limit + 1e-9 else GREEN,
        missing=lambda name, x, y: (f'<text x="{x:.1f}" y="{y:.1f}" font-size="11" fill="{RED}" class="never" '
                                    f'data-unit="{escape(name)}">— {escape(never)}</text>'),
        line_at=limit, line_attributes=f'class="limit" data-value="{limit!r}"',
        line_label=t("chart.days_limit").format(limit=limit_text)))
