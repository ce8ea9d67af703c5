"""Planner benchmark: a generated fleet of 10,000 screens on 1,000 sites, 50 campaigns, 3 days.

    .venv/bin/python bench/planner.py                 # 1,000 and 10,000 screens, each in its own process
    .venv/bin/python bench/planner.py --screens 10000 # one size, in this process

Per size it prints the wall time of planning (plan_fleet), of writing every player's plan as canonical JSON
(what the CLI writes and the MQTT bridge signs), of the summary and capacity check, plans per second, the peak
of traced Python allocations (tracemalloc, in a second, traced run) and the process's max RSS. The fleet is
the same for a given seed; the 1,000-screen fleet is the first 1,000 screens (about 100 sites) of the other.
"""

from __future__ import annotations

import argparse
import hashlib
import random
import resource
import subprocess
import sys
import time
import tracemalloc
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from campaigns.kinds import (  # noqa: E402
    MediaKind,
    ScreenKind,
    SiteKind,
    WindowPolicy,
    default_operating_hours,
    default_peak_windows,
)
from campaigns.windows import WeekSchedule, Window  # noqa: E402
from scheduler.planner import (  # noqa: E402
    PlanCampaign,
    PlanCreative,
    PlanOverride,
    PlanScreen,
    capacity_shortfalls,
    plan_fleet,
)

FIRST_DAY = date(2024, 8, 20)
DAYS = 3
GENERATED_AT = datetime(2024, 8, 19, 17, 5, tzinfo=UTC)
SITES = 1000
SCREENS = 10_000
CAMPAIGNS = 50
# Site kinds by share of the fleet, and the organisation level that runs them.
KIND_MIX = [
    (SiteKind.ward_office, 0.35, "ward"), (SiteKind.bus, 0.15, "transport"), (SiteKind.bus_station, 0.03, "transport"),
    (SiteKind.bus_stop, 0.07, "transport"), (SiteKind.intersection, 0.08, "district"),
    (SiteKind.hospital, 0.07, "health"), (SiteKind.school, 0.10, "education"), (SiteKind.mall, 0.05, "district"),
    (SiteKind.apartment, 0.05, "ward"), (SiteKind.office, 0.03, "district"), (SiteKind.airport, 0.01, "airport"),
    (SiteKind.railway_station, 0.01, "railway"),
]


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _shifted(schedule: WeekSchedule, minutes: int) -> WeekSchedule:
    """The schedule moved by some minutes, clipped to the day: a site that tuned its kind's defaults."""
    days = []
    for windows in schedule.days:
        moved = []
        for w in windows:
            start, end = max(0, w.start + minutes), min(24 * 60, w.end + minutes)
            if start < end:
                moved.append(Window(start, end))
        days.append(tuple(moved))
    return WeekSchedule(tuple(days))


def make_fleet(rng: random.Random) -> tuple[list[PlanScreen], dict[str, list[str]]]:
    """Screens of 1,000 sites under a city of 30 districts × 10 wards, departments and transport partners."""
    districts = [f"/hn/d{d:02d}/" for d in range(30)]
    wards = [f"{d}w{w:02d}/" for d in districts for w in range(10)]
    units = {"ward": wards, "district": districts, "transport": ["/hn/transerco/"], "health": ["/hn/soyt/"],
             "education": ["/hn/sogddt/"], "airport": ["/hn/acv/"], "railway": ["/hn/vr/"]}
    kinds = [k for k, _, _ in KIND_MIX]
    weights = [w for _, w, _ in KIND_MIX]
    level = {k: lvl for k, _, lvl in KIND_MIX}
    screens: list[PlanScreen] = []
    sites_by_org: dict[str, list[str]] = {}
    counts = _screen_counts(rng)
    for site_index in range(SITES):
        kind = rng.choices(kinds, weights)[0]
        org = rng.choice(units[level[kind]])
        operating, peak = default_operating_hours(kind), default_peak_windows(kind)
        if rng.random() < 0.2:
            peak = _shifted(peak, rng.choice([-30, -15, 15, 30]))
            peak = WeekSchedule(tuple(tuple(w for w in day if any(o.contains(w) for o in op))
                                      for day, op in zip(peak.days, operating.days, strict=True)))
        timezone = "Asia/Bangkok" if rng.random() < 0.02 else "Asia/Ho_Chi_Minh"
        site_id = f"site-{site_index:04d}"
        sites_by_org.setdefault(org, []).append(site_id)
        for n in range(counts[site_index]):
            screen_kind = ScreenKind.speaker if n == 0 and rng.random() < 0.3 else rng.choice(
                [ScreenKind.lcd, ScreenKind.led])
            groups = frozenset({f"grp-{site_index % 40:02d}"}) if n == 1 and rng.random() < 0.2 else frozenset()
            screens.append(PlanScreen(f"{site_id}-{n:03d}", screen_kind, site_id, kind, timezone, org,
                                      operating, peak, groups))
    return screens, sites_by_org


def _screen_counts(rng: random.Random) -> list[int]:
    """Between 1 and 19 screens a site, 10,000 in all."""
    counts = [rng.randint(1, 19) for _ in range(SITES)]
    while sum(counts) != SCREENS:
        i = rng.randrange(SITES)
        if sum(counts) > SCREENS and counts[i] > 1:
            counts[i] -= 1
        elif sum(counts) < SCREENS and counts[i] < 19:
            counts[i] += 1
    return counts


def make_campaigns(rng: random.Random, sites_by_org: dict[str, list[str]]) -> list[PlanCampaign]:
    all_sites = sorted(s for sites in sites_by_org.values() for s in sites)
    districts = [f"/hn/d{d:02d}/" for d in range(30)]
    campaigns = []
    for n in range(CAMPAIGNS):
        creatives = [PlanCreative(_sha(f"c{n}-video"), MediaKind.video, "video/mp4", 8_000_000,
                                  rng.choice([15_000, 20_000, 30_000, 45_000]))]
        if rng.random() < 0.5:
            creatives.append(PlanCreative(_sha(f"c{n}-image"), MediaKind.image, "image/png", 400_000,
                                          rng.choice([10_000, 15_000])))
        if rng.random() < 0.4:
            creatives.append(PlanCreative(_sha(f"c{n}-audio"), MediaKind.audio, "audio/mpeg", 500_000,
                                          rng.choice([20_000, 30_000])))
        targets: dict = {}
        style = n % 10
        if n < 3:
            targets["target_org_paths"] = frozenset({"/hn/"})
        elif style in (0, 1, 2):
            targets["target_org_paths"] = frozenset(rng.sample(districts, rng.randint(1, 5)))
        elif style in (3, 4):
            targets["target_site_kinds"] = frozenset(rng.sample([k for k, _, _ in KIND_MIX], rng.randint(1, 3)))
        elif style in (5, 6):
            targets["target_sites"] = frozenset(rng.sample(all_sites, rng.randint(5, 60)))
        elif style == 7:
            targets["target_groups"] = frozenset(f"grp-{g:02d}" for g in rng.sample(range(40), 5))
            targets["target_org_paths"] = frozenset({rng.choice(["/hn/soyt/", "/hn/sogddt/"])})
        else:
            targets["target_org_paths"] = frozenset({rng.choice(["/hn/transerco/", "/hn/acv/", "/hn/vr/"])})
        rate = 10 if n < 3 else rng.randint(5, 20)
        policy = WindowPolicy.peak
        explicit = None
        if n % 17 == 5:
            policy = WindowPolicy.operating
        elif n % 17 == 9:
            policy = WindowPolicy.explicit
            explicit = WeekSchedule.from_spec({"daily": ["09:00-11:00", "13:00-15:00"]})
        overrides = ()
        if n < 3 or rng.random() < 0.2:
            overrides = (PlanOverride(rate + 5, organisation_path=rng.choice(districts)),
                         PlanOverride(rate + 3, site_id=rng.choice(all_sites)))
        start = FIRST_DAY - timedelta(days=rng.randint(0, 30))
        end = FIRST_DAY + timedelta(days=rng.choice([1, 2, 30, 60]))
        campaigns.append(PlanCampaign(f"camp-{n:02d}", "/hn/", start, end, tuple(creatives), rate, policy, explicit,
                                      rng.choice([0, 0, 5, 10]), overrides=overrides, **targets))
    return campaigns


def fleet(screen_count: int) -> tuple[list[PlanScreen], list[PlanCampaign]]:
    rng = random.Random(20240820)
    screens, sites_by_org = make_fleet(rng)
    campaigns = make_campaigns(rng, sites_by_org)
    return screens[:screen_count], campaigns


def run(screen_count: int) -> None:
    screens, campaigns = fleet(screen_count)

    started = time.perf_counter()
    result = plan_fleet(screens, campaigns, FIRST_DAY, DAYS, GENERATED_AT)
    planned = time.perf_counter()
    size = spots = 0
    for player_id in result.player_ids:
        body = result.plan_json(player_id)
        size += len(body)
        spots += body.count(b'"spot_id"')
    written = time.perf_counter()
    rows = result.summary
    short = capacity_shortfalls(result)
    summarised = time.perf_counter()
    sample = result.player_ids[:: max(1, len(result.player_ids) // 100)]
    for player_id in sample:
        result.plan(player_id)  # the fast JSON must parse and validate as a Plan
    validated = time.perf_counter()

    tracemalloc.start()
    traced = plan_fleet(screens, campaigns, FIRST_DAY, DAYS, GENERATED_AT)
    for player_id in traced.player_ids:
        traced.plan_json(player_id)
    _ = traced.summary
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    max_rss_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    total = summarised - started
    print(f"== {len(screens):,} screens on {len({s.site_id for s in screens}):,} sites, {len(campaigns)} campaigns, "
          f"{DAYS} days")
    print(f"  placements computed     {result.placement_count:,} (day layouts {result.layouts_computed:,})")
    print(f"  spots                   {spots:,} ({spots / len(screens):.0f} a screen), "
          f"plan JSON {size / 2**20:.0f} MiB")
    reasons = Counter(row.reason for row in rows if row.shortfall)
    print(f"  summary rows            {len(rows):,}, site-day shortfalls {len(short):,} "
          f"({', '.join(f'{reason}: {n:,} screen-days' for reason, n in sorted(reasons.items())) or 'none'})")
    print(f"  plan_fleet              {planned - started:6.2f} s")
    print(f"  canonical JSON, all     {written - planned:6.2f} s")
    print(f"  summary + capacity      {summarised - written:6.2f} s")
    print(f"  total                   {total:6.2f} s  -> {len(screens) / total:,.0f} plans/s "
          f"({len(screens) / (planned - started):,.0f} plans/s for plan_fleet alone)")
    print(f"  Plan model, {len(sample)} plans  {validated - summarised:6.2f} s "
          f"({(validated - summarised) / len(sample) * 1000:.1f} ms a plan)")
    print(f"  tracemalloc peak        {peak / 2**20:6.0f} MiB")
    print(f"  max RSS                 {max_rss_kib / 1024:6.0f} MiB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--screens", type=int, help="one fleet size, run in this process")
    args = parser.parse_args()
    if args.screens:
        run(args.screens)
        return
    for count in (1_000, 10_000):
        subprocess.run([sys.executable, __file__, "--screens", str(count)], check=True)


if __name__ == "__main__":
    main()
