"""Plans as files: `signage plan` writes one <player_id>.json per player and a summary.json.

Plans can come from the database or straight from a fleet and a campaign file: a what-if that touches no database,
the files read into the planner's inputs with the imports' own checks (campaigns/fleet_document.py,
campaigns/campaign_document.py) and mapped by the same functions as stored rows (scheduler/plan_inputs.py).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable
from datetime import date, datetime
from pathlib import Path
from typing import Any

from campaigns.campaign_document import (
    CampaignIn,
    ProbedCreative,
    campaign_status,
    checked_creatives,
    read_campaign_file,
)
from campaigns.fleet_document import KnownFleet, checked_fleet, organisation_parents, owning_organisations
from campaigns.org_paths import materialised_paths
from campaigns.yaml_source import YamlDocument
from media.probe_cache import ProbeCache
from scheduler.plan_inputs import (
    PLANNED_STATUSES,
    PlanningInputs,
    plan_campaign,
    plan_override,
    plan_screen,
    plan_site,
)
from scheduler.planner import PlanCampaign, PlanCreative, PlanningResult, capacity_shortfalls
from signage.clock import Clock, local_today


def inputs_from_files(fleet_file: Path, campaign_file: Path, clock: Clock, timezone: str,
                      probe_cache: ProbeCache) -> PlanningInputs:
    """Planning inputs from files alone, as importing them into an empty database and loading that would give.
    Raises FileRejected as the imports do; media are probed through `probe_cache`, which is saved."""
    nothing_stored = KnownFleet()
    fleet = checked_fleet(YamlDocument.load(fleet_file), nothing_stored)
    paths = materialised_paths(organisation_parents(fleet, nothing_stored))
    sites = {site.id: plan_site(site.id, site.kind, site.timezone or timezone, paths[site.organisation],
                                site.operating_hours, site.peak_windows, site.international_audience)
             for site in fleet.sites}
    screens = tuple(plan_screen(screen.id, screen.kind, sites[screen.site], screen.groups,
                                width=screen.size[0], height=screen.size[1], orientation=screen.orientation)
                    for screen in sorted(fleet.screens, key=lambda screen: screen.id)
                    if screen.enabled and screen.retired_at is None)

    document, campaigns = read_campaign_file(campaign_file)
    try:
        creatives = checked_creatives(document, campaigns, campaign_file.parent, paths, owning_organisations(fleet),
                                      probe_cache.probe)
    finally:
        probe_cache.save()
    today = local_today(clock, timezone)
    planned = sorted((c for c in campaigns.campaigns if campaign_status(c, today) in PLANNED_STATUSES),
                     key=lambda campaign: campaign.id)
    return PlanningInputs(screens, tuple(_plan_campaign(c, creatives[c.id], paths, probe_cache) for c in planned))


def _plan_campaign(campaign: CampaignIn, creatives: list[ProbedCreative], paths: dict[str, str],
                   probe_cache: ProbeCache) -> PlanCampaign:
    return plan_campaign(
        campaign.id, organisation_id=campaign.organisation, start_date=campaign.start_date,
        end_date=campaign.end_date, plays_per_day=campaign.plays_per_day, window_policy=campaign.window,
        explicit_windows=campaign.windows, priority=campaign.priority,
        creatives=(_plan_creative(c, *probe_cache.content(c.source)) for c in creatives),
        targets=campaign.targets.rows(), overrides=(plan_override(o, paths) for o in campaign.overrides), paths=paths,
    )


def _plan_creative(creative: ProbedCreative, sha256: str, size: int) -> PlanCreative:
    return PlanCreative(sha256=sha256, kind=creative.probed.kind, mime=creative.probed.mime, bytes=size,
                        duration_ms=creative.duration_ms, slot=creative.slot, language=creative.language,
                        width=creative.probed.width, height=creative.probed.height)


def summary_document(result: PlanningResult, generated_at: datetime) -> dict[str, Any]:
    totals: dict[str, dict[str, Any]] = defaultdict(lambda: {"screens": set(), "screen_days": 0, "required": 0,
                                                             "planned": 0, "shortfall": 0})
    rows = []
    for row in result.summary:
        total = totals[row.campaign_id]
        total["screens"].add(row.screen_id)
        total["screen_days"] += 1
        total["required"] += row.required
        total["planned"] += row.planned
        total["shortfall"] += row.shortfall
        rows.append({"campaign_id": row.campaign_id, "screen_id": row.screen_id, "site_id": row.site_id,
                     "date": row.date.isoformat(), "required": row.required, "planned": row.planned,
                     "shortfall": row.shortfall, "reason": row.reason})
    return {
        "schema": "signage.plan-summary/1",
        "generated_at": generated_at.isoformat(),
        "first_day": result.first_day.isoformat(),
        "days": result.days,
        "players": len(result.player_ids),
        "campaigns": [{"campaign_id": cid, **{k: (len(v) if k == "screens" else v) for k, v in t.items()}}
                      for cid, t in sorted(totals.items())],
        "shortfalls": [{"campaign_id": s.campaign_id, "site_id": s.site_id, "date": s.date.isoformat(),
                        "reason": s.reason, "screens": s.screens, "missing": s.missing}
                       for s in capacity_shortfalls(result)],
        "rows": rows,
    }


def write_plan_files(result: PlanningResult, out_dir: Path, generated_at: datetime,
                     advance: Callable[[], None] = lambda: None) -> dict[str, Any]:
    """Write every plan (its canonical JSON, as signed and sent) and summary.json; returns the summary."""
    out_dir.mkdir(parents=True, exist_ok=True)
    for player_id in result.player_ids:
        (out_dir / f"{player_id}.json").write_bytes(result.plan_json(player_id))
        advance()
    summary = summary_document(result, generated_at)
    (out_dir / "summary.json").write_text(json.dumps(summary, ensure_ascii=False, indent=1), encoding="utf-8")
    return summary


def parse_day(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a date; write it as YYYY-MM-DD, e.g. 2024-08-20") from None
