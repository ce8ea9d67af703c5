"""A screen's plan for one local day as a picture: an inline SVG timeline.

Drawn from the plan the player was sent (not from today's settings), so that it shows what the screen should be
playing: the operating hours and peak windows of that day as bands, each spot as a mark coloured by its
campaign, hour ticks in the plan's timezone (the site's), a legend, and the current time when it falls inside.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from markupsafe import Markup, escape

from campaigns.windows import MINUTES_PER_DAY, Window, window_instants
from signage.protocol import Plan, TimeSpan

PALETTE = ("#1565c0", "#2e7d32", "#6a1b9a", "#ef6c00", "#00838f", "#ad1457", "#4e342e", "#558b2f", "#283593",
           "#c62828")
WIDTH = 1000
LEFT = 110  # room for the row labels
RIGHT = 12
CHART = WIDTH - LEFT - RIGHT
MIN_MARK = 2.0  # a 30-second spot is a fraction of a unit wide: keep it visible


@dataclass(frozen=True)
class Mark:
    start: datetime
    end: datetime
    campaign_id: str
    spot_id: str


@dataclass(frozen=True)
class DayTimeline:
    day: date
    timezone: str
    day_start: datetime
    day_end: datetime
    operating: tuple[tuple[datetime, datetime], ...]
    peaks: tuple[tuple[datetime, datetime], ...]
    spots: tuple[Mark, ...]
    campaign_ids: tuple[str, ...]  # every campaign of the plan, in colour order

    def fraction(self, instant: datetime) -> float:
        total = (self.day_end - self.day_start).total_seconds()
        return min(max((instant - self.day_start).total_seconds() / total, 0.0), 1.0)

    def colour(self, campaign_id: str) -> str:
        return PALETTE[self.campaign_ids.index(campaign_id) % len(PALETTE)]


def day_timeline(plan: Plan, day: date) -> DayTimeline:
    """The part of `plan` that falls on the local date `day` in the plan's timezone."""
    day_start, day_end = window_instants(day, Window(0, MINUTES_PER_DAY), plan.timezone)

    def clipped(spans: list[TimeSpan]) -> tuple[tuple[datetime, datetime], ...]:
        return tuple((max(s.start, day_start), min(s.end, day_end)) for s in spans
                     if s.start < day_end and s.end > day_start)

    spots = tuple(Mark(s.start, s.end, s.campaign_id, s.spot_id) for s in plan.spots
                  if day_start <= s.start < day_end)
    return DayTimeline(day, plan.timezone, day_start, day_end, clipped(plan.operating_hours),
                       clipped(plan.peak_windows), spots, tuple(sorted({s.campaign_id for s in plan.spots})))


def _x(timeline: DayTimeline, instant: datetime) -> float:
    return LEFT + CHART * timeline.fraction(instant)


def _clock(instant: datetime, timezone: str) -> str:
    return instant.astimezone(ZoneInfo(timezone)).strftime("%H:%M:%S")


def timeline_svg(timeline: DayTimeline, campaign_names: Mapping[str, str], labels: Mapping[str, str],
                 now: datetime | None = None) -> Markup:
    """`labels` gives the words: "title", "operating", "peak", "spots", "legend_spots" (e.g. "spots"), "now"."""
    rows = {"operating": 26, "peak": 46, "spots": 66}
    bar = 16
    legend_top = 104
    shown = [c for c in timeline.campaign_ids if any(s.campaign_id == c for s in timeline.spots)]
    height = legend_top + 20 * max(len(shown), 1) + 6
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" id="timeline" class="timeline" viewBox="0 0 {WIDTH} {height}"'
             f' width="100%" role="img" aria-labelledby="timeline-title" font-family="system-ui, sans-serif"'
             f' font-size="12">',
             f'<title id="timeline-title">{escape(labels["title"])}</title>']
    # Hour ticks: a line every hour, a label every two.
    for hour in range(25):
        x = LEFT + CHART * hour / 24
        parts.append(f'<line class="tick" x1="{x:.1f}" y1="14" x2="{x:.1f}" y2="{rows["spots"] + 30}" '
                     f'stroke="#e0e0e0" stroke-width="1"/>')
        if hour % 2 == 0:
            parts.append(f'<text class="hour" x="{x:.1f}" y="11" text-anchor="middle" fill="#555">{hour:02d}</text>')
    for key in rows:
        parts.append(f'<text x="{LEFT - 6}" y="{rows[key] + 12}" text-anchor="end" fill="#333">'
                     f'{escape(labels[key])}</text>')
    for start, end in timeline.operating:
        parts.append(_band(timeline, start, end, rows["operating"], bar, "operating", "#cfd8dc", labels["operating"]))
    for start, end in timeline.peaks:
        parts.append(_band(timeline, start, end, rows["peak"], bar, "peak", "#ffcc80", labels["peak"]))
    for mark in timeline.spots:
        x = _x(timeline, mark.start)
        width = max(_x(timeline, mark.end) - x, MIN_MARK)
        name = campaign_names.get(mark.campaign_id, mark.campaign_id)
        parts.append(
            f'<rect class="spot" data-campaign="{escape(mark.campaign_id)}" data-start="'
            f'{_clock(mark.start, timeline.timezone)}" x="{x:.2f}" y="{rows["spots"]}" width="{width:.2f}" '
            f'height="{bar + 12}" fill="{timeline.colour(mark.campaign_id)}"><title>'
            f'{_clock(mark.start, timeline.timezone)}–{_clock(mark.end, timeline.timezone)} · {escape(name)}'
            f'</title></rect>')
    if now is not None and timeline.day_start <= now < timeline.day_end:
        x = _x(timeline, now)
        parts.append(f'<line id="timeline-now" x1="{x:.1f}" y1="16" x2="{x:.1f}" y2="{rows["spots"] + 32}" '
                     f'stroke="#b71c1c" stroke-width="2"><title>{escape(labels["now"])} '
                     f'{_clock(now, timeline.timezone)[:5]}</title></line>')
    for index, campaign_id in enumerate(shown):
        y = legend_top + 20 * index
        count = sum(1 for s in timeline.spots if s.campaign_id == campaign_id)
        name = campaign_names.get(campaign_id, campaign_id)
        parts.append(f'<g class="legend" data-campaign="{escape(campaign_id)}"><rect x="{LEFT}" y="{y}" width="14" '
                     f'height="14" fill="{timeline.colour(campaign_id)}"/><text x="{LEFT + 20}" y="{y + 11}" '
                     f'fill="#222">{escape(name)} ({count} {escape(labels["legend_spots"])})</text></g>')
    parts.append("</svg>")
    return Markup("".join(parts))


def _band(timeline: DayTimeline, start: datetime, end: datetime, y: int, height: int, kind: str, fill: str,
          label: str) -> str:
    x = _x(timeline, start)
    width = max(_x(timeline, end) - x, MIN_MARK)
    span = f"{_clock(start, timeline.timezone)[:5]}–{_clock(end, timeline.timezone)[:5]}"
    if end == timeline.day_end:
        span = span[:6] + "24:00"
    return (f'<rect class="{kind}" x="{x:.2f}" y="{y}" width="{width:.2f}" height="{height}" fill="{fill}">'
            f'<title>{escape(label)} {span}</title></rect>')
