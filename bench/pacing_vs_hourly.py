"""Our peak-window plans against hourly pacing, on the planner benchmark's fleet.

    .venv/bin/python bench/pacing_vs_hourly.py [--screens 1000] [--days 3]

Hourly pacing is what Xibo documents for its ad campaigns: each hour schedules the daily target ÷ 24
plays, catching up when behind (plays due by the end of the hour = target × elapsed ÷ 24, less those
achieved). It is measured twice:
- over the whole day, as an ad campaign is set up by default;
- confined to the site's peak dayparts, as a careful Xibo user would schedule the campaign into dayparts
  matching each site's peak windows: the day's target is paced over the daypart hours only.
Screens are assumed to run only in their operating hours, and both pacers are given every play they ask
for (no other campaign competes with them), which favours them. For each campaign and screen-day all
three are measured inside the day's peak windows taken as one timeline of length W:
- reach: the share of screen-days whose plays inside peak windows reach the required r;
- spacing: the largest gap between consecutive plays on that timeline, the two ends counted double,
  in units of W/r (1.0 is perfectly even; larger means a stretch of the peak with no play).
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import statistics
import sys
import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from campaigns.kinds import WindowPolicy  # noqa: E402
from campaigns.windows import Window  # noqa: E402
from scheduler.planner import PlanCampaign, PlanScreen, plan_fleet  # noqa: E402

_spec = importlib.util.spec_from_file_location("bench_planner", Path(__file__).with_name("planner.py"))
bench_planner = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench_planner)


@dataclass
class Measure:
    reached: int = 0
    screen_days: int = 0
    in_peak_plays: int = 0
    total_plays: int = 0
    gaps: list[float] | None = None

    def __post_init__(self) -> None:
        self.gaps = []


def peak_offset(minute: float, windows: tuple[Window, ...]) -> float | None:
    """A time of day (minutes) as an offset on the concatenated peak timeline, None outside the peaks."""
    offset = 0.0
    for window in windows:
        if window.start <= minute < window.end:
            return offset + minute - window.start
        offset += window.minutes
    return None


def largest_gap(offsets: list[float], length: float, required: int) -> float:
    if not offsets:
        return float(required)  # the whole peak without a play: W, in units of W/r
    offsets = sorted(offsets)
    gaps = [2 * offsets[0], 2 * (length - offsets[-1])]
    gaps += [b - a for a, b in zip(offsets, offsets[1:], strict=False)]
    return max(gaps) / (length / required)


def hourly_pacing_minutes(required: int, open_windows: tuple[Window, ...], whole_day: bool = True) -> list[float]:
    """Play times (minutes after midnight) that hourly pacing gives a screen scheduled in `open_windows`.

    With `whole_day`, each of the 24 hours is due target ÷ 24 (Xibo's ad pacing over a day); otherwise the
    target is paced over the hours that `open_windows` touch (a campaign scheduled into dayparts)."""
    hours = [hour for hour in range(24)
             if any(w.start < hour * 60 + 60 and hour * 60 < w.end for w in open_windows)]
    paced_over = 24 if whole_day else len(hours)
    plays: list[float] = []
    for hour in hours:
        hour_start, hour_end = hour * 60, hour * 60 + 60
        open_parts = [(max(w.start, hour_start), min(w.end, hour_end)) for w in open_windows
                      if w.start < hour_end and hour_start < w.end]
        elapsed = hour + 1 if whole_day else hours.index(hour) + 1
        due = math.ceil(required * elapsed / paced_over - len(plays) - 1e-9)
        if due <= 0:
            continue
        open_minutes = sum(b - a for a, b in open_parts)
        for k in range(due):
            at = (k + 0.5) * open_minutes / due
            for a, b in open_parts:
                if at < b - a:
                    plays.append(a + at)
                    break
                at -= b - a
    return plays


def within(windows: tuple[Window, ...], bounds: tuple[Window, ...]) -> tuple[Window, ...]:
    """The parts of `windows` inside `bounds` (peak dayparts on a screen that is switched on)."""
    return tuple(Window(max(w.start, b.start), min(w.end, b.end)) for w in windows for b in bounds
                 if w.start < b.end and b.start < w.end)


def measure(screens: list[PlanScreen], campaigns: list[PlanCampaign], first_day: date, days: int,
            generated_at: datetime) -> tuple[Measure, Measure, Measure]:
    result = plan_fleet(screens, campaigns, first_day, days, generated_at)
    by_id = {c.id: c for c in campaigns}
    ours, hourly, dayparts = Measure(), Measure(), Measure()
    for screen in screens:
        zone = ZoneInfo(screen.timezone)
        plan = result.plan(screen.id)
        starts: dict[tuple[str, date], list[float]] = {}
        for spot in plan.spots:
            local = spot.start.astimezone(zone)
            starts.setdefault((spot.campaign_id, local.date()), []).append(local.hour * 60 + local.minute
                                                                           + local.second / 60)
        for day_index in range(days):
            day = first_day + timedelta(days=day_index)
            peaks, operating = screen.peak_windows.on(day), screen.operating_hours.on(day)
            length = sum(w.minutes for w in peaks)
            if not length:
                continue
            for campaign in campaigns:
                if campaign.window_policy is not WindowPolicy.peak:
                    continue  # measured against peak windows: only campaigns that ask for them
                if not (campaign.active_on(day) and campaign.targets(screen)
                        and any(screen.can_play(c.kind) for c in campaign.creatives)):
                    continue
                required = by_id[campaign.id].required_plays(screen)
                for sample, minutes in ((ours, starts.get((campaign.id, day), [])),
                                        (hourly, hourly_pacing_minutes(required, operating)),
                                        (dayparts, hourly_pacing_minutes(required, within(peaks, operating),
                                                                         whole_day=False))):
                    offsets = [o for o in (peak_offset(m, peaks) for m in minutes) if o is not None]
                    sample.screen_days += 1
                    sample.total_plays += len(minutes)
                    sample.in_peak_plays += len(offsets)
                    sample.reached += len(offsets) >= required
                    sample.gaps.append(largest_gap(offsets, length, required))
    return ours, hourly, dayparts


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--screens", type=int, default=1000)
    parser.add_argument("--days", type=int, default=bench_planner.DAYS)
    args = parser.parse_args()
    screens, campaigns = bench_planner.fleet(args.screens)
    started = time.perf_counter()
    samples = measure(screens, campaigns, bench_planner.FIRST_DAY, args.days, bench_planner.GENERATED_AT)
    ours = samples[0]
    peak_campaigns = sum(c.window_policy is WindowPolicy.peak for c in campaigns)
    print(f"fleet: {len(screens)} screens, {len(campaigns)} campaigns ({peak_campaigns} in peak windows, measured), "
          f"{args.days} days from "
          f"{bench_planner.FIRST_DAY}; {ours.screen_days} campaign screen-days with peak windows "
          f"(measured in {time.perf_counter() - started:.1f} s)")
    rows = [
        ("screen-days reaching r in peaks", lambda m: f"{100 * m.reached / m.screen_days:.1f} %"),
        ("plays per screen-day, in peaks", lambda m: f"{m.in_peak_plays / m.screen_days:.2f}"),
        ("plays per screen-day, in total", lambda m: f"{m.total_plays / m.screen_days:.2f}"),
        ("largest gap / (W/r), median", lambda m: f"{statistics.median(m.gaps):.2f}"),
        ("largest gap / (W/r), p95", lambda m: f"{percentile(m.gaps, 0.95):.2f}"),
        ("largest gap / (W/r), max", lambda m: f"{max(m.gaps):.2f}"),
        ("screen-days with gap ≤ 1.5 W/r", lambda m: f"{100 * sum(g <= 1.5 for g in m.gaps) / len(m.gaps):.1f} %"),
    ]
    print(f"{'':34}{'our plans':>14}{'hourly, all day':>18}{'hourly, peak dayparts':>24}")
    for label, shown in rows:
        print(f"{label:34}" + "".join(f"{shown(m):>{w}}" for m, w in zip(samples, (14, 18, 24), strict=True)))


if __name__ == "__main__":
    main()
