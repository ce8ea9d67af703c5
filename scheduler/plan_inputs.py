"""From the database to the planner's inputs: screens with their site's hours, campaigns with resolved targets."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from campaigns.kinds import CampaignStatus
from campaigns.models import Campaign, CampaignCreative, FrequencyOverride, Screen, Site
from campaigns.scope import organisation_paths
from campaigns.windows import WeekSchedule
from scheduler.planner import PlanCampaign, PlanCreative, PlanOverride, PlanScreen, resolve_targets
from signage.clock import local_date

# Drafts and campaigns awaiting approval are not planned; ended ones fall outside the dates anyway.
PLANNED_STATUSES = (CampaignStatus.scheduled, CampaignStatus.active, CampaignStatus.ended)
HORIZON_DAYS = 3  # plans cover today and the next two local days


@dataclass(frozen=True)
class PlanningInputs:
    screens: tuple[PlanScreen, ...]
    campaigns: tuple[PlanCampaign, ...]

    @property
    def timezones(self) -> frozenset[str]:
        return frozenset(screen.timezone for screen in self.screens)


def load_planning_inputs(session: Session, campaign_ids: set[str] | None = None) -> PlanningInputs:
    """Every enabled screen, and the planned campaigns (or just `campaign_ids`, whatever their status)."""
    paths = organisation_paths(session)
    sites = {site.id: site for site in session.scalars(select(Site))}
    hours = {site_id: (site.effective_operating_hours(), site.effective_peak_windows())
             for site_id, site in sites.items()}
    screens = []
    for screen in session.scalars(select(Screen).where(Screen.enabled.is_(True))
                                  .options(selectinload(Screen.groups)).order_by(Screen.id)):
        site = sites[screen.site_id]
        operating, peaks = hours[site.id]
        screens.append(PlanScreen(
            id=screen.id, kind=screen.kind, site_id=site.id, site_kind=site.kind, timezone=site.timezone,
            organisation_path=paths[site.organisation_id], operating_hours=operating, peak_windows=peaks,
            group_ids=frozenset(g.id for g in screen.groups),
        ))

    query = select(Campaign).options(
        selectinload(Campaign.creatives).selectinload(CampaignCreative.media),
        selectinload(Campaign.targets), selectinload(Campaign.overrides),
    ).order_by(Campaign.id)
    if campaign_ids is None:
        query = query.where(Campaign.status.in_(PLANNED_STATUSES))
    else:
        query = query.where(Campaign.id.in_(campaign_ids))
    campaigns = [_plan_campaign(c, paths) for c in session.scalars(query)]
    return PlanningInputs(tuple(screens), tuple(campaigns))


def plan_override(override: FrequencyOverride, paths: Mapping[str, str]) -> PlanOverride:
    """A stored override as the planner takes it: on an organisation's subtree (by its path) or on one site."""
    if override.organisation_id:
        return PlanOverride(override.plays_per_day, organisation_path=paths[override.organisation_id])
    return PlanOverride(override.plays_per_day, site_id=override.site_id)


def _plan_campaign(campaign: Campaign, paths: dict[str, str]) -> PlanCampaign:
    creatives = tuple(PlanCreative(sha256=c.media_sha256, kind=c.media.kind, mime=c.media.mime,
                                   bytes=c.media.bytes, duration_ms=c.duration_ms) for c in campaign.creatives)
    overrides = tuple(plan_override(o, paths) for o in campaign.overrides)
    explicit = WeekSchedule.from_spec(campaign.explicit_windows) if campaign.explicit_windows else None
    return PlanCampaign(
        id=campaign.id, organisation_path=paths[campaign.organisation_id], start_date=campaign.start_date,
        end_date=campaign.end_date, creatives=creatives, plays_per_day=campaign.plays_per_day,
        window_policy=campaign.window_policy, explicit_windows=explicit, priority=campaign.priority,
        overrides=overrides, **resolve_targets([(t.kind, t.ref) for t in campaign.targets], paths),
    )


def planning_horizon(timezones: frozenset[str], now: datetime, days: int = HORIZON_DAYS) -> tuple[date, int]:
    """The first local day and the number of days that cover today and the next `days - 1` days in every zone."""
    if not timezones:
        today = now.date()
        return today, days
    todays = sorted(local_date(now, zone) for zone in timezones)
    first, last = todays[0], todays[-1]
    return first, days + (last - first).days


__all__ = ["HORIZON_DAYS", "PlanningInputs", "load_planning_inputs", "plan_override", "planning_horizon"]
