"""The planner's inputs: screens with their site's hours, campaigns with resolved targets.

Read from the database here, or from a fleet and a campaign file (scheduler/plan_files.py); both go through the
same functions below (`plan_site`, `plan_screen`, `plan_campaign`, `plan_override`) to the planner's dataclasses.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from campaigns.kinds import (
    CampaignStatus,
    Orientation,
    ScreenKind,
    SiteKind,
    WindowPolicy,
    effective_international_audience,
    effective_operating_hours,
    effective_peak_windows,
)
from campaigns.windows import WeekSchedule
from scheduler.planner import PlanCampaign, PlanCreative, PlanOverride, PlanScreen, resolve_targets
from signage.clock import local_date

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from campaigns.models import Campaign, FrequencyOverride

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


@dataclass(frozen=True)
class PlanSite:
    """What a site gives each of its screens in the plan: its place in the organisations, its zone and hours, and
    whether its audience is international."""

    id: str
    kind: SiteKind
    timezone: str
    organisation_path: str
    operating_hours: WeekSchedule
    peak_windows: WeekSchedule
    international_audience: bool = False


def plan_site(site_id: str, kind: SiteKind, timezone: str, organisation_path: str,
              operating_hours: dict[str, Any] | None, peak_windows: dict[str, Any] | None,
              international_audience: bool | None = None) -> PlanSite:
    """A site's stored (or filed) schedules and audience, None for its kind's defaults, as its screens are planned."""
    return PlanSite(site_id, kind, timezone, organisation_path, effective_operating_hours(kind, operating_hours),
                    effective_peak_windows(kind, peak_windows),
                    effective_international_audience(kind, international_audience))


def plan_screen(screen_id: str, kind: ScreenKind, site: PlanSite, group_ids: Iterable[str], *,
                width: int | None = None, height: int | None = None,
                orientation: Orientation | None = None) -> PlanScreen:
    return PlanScreen(id=screen_id, kind=kind, site_id=site.id, site_kind=site.kind, timezone=site.timezone,
                      organisation_path=site.organisation_path, operating_hours=site.operating_hours,
                      peak_windows=site.peak_windows, group_ids=frozenset(group_ids), width=width, height=height,
                      orientation=orientation, international_audience=site.international_audience)


def plan_override(override: FrequencyOverride, paths: Mapping[str, str]) -> PlanOverride:
    """A stored override (or a file's, campaigns.campaign_document.OverrideIn) as the planner takes it: on an
    organisation's subtree (by its path) or on one site."""
    if override.organisation_id:
        return PlanOverride(override.plays_per_day, organisation_path=paths[override.organisation_id])
    return PlanOverride(override.plays_per_day, site_id=override.site_id)


def plan_campaign(campaign_id: str, *, organisation_id: str, start_date: date, end_date: date, plays_per_day: int,
                  window_policy: WindowPolicy, explicit_windows: dict[str, Any] | None, priority: int,
                  creatives: Iterable[PlanCreative], targets: Iterable[tuple[str, str]],
                  overrides: Iterable[PlanOverride], paths: Mapping[str, str]) -> PlanCampaign:
    """A campaign's stored (or filed) terms as the planner takes them: `targets` as stored (kind, ref) rows,
    organisations by their paths."""
    return PlanCampaign(
        id=campaign_id, organisation_path=paths[organisation_id], start_date=start_date, end_date=end_date,
        creatives=tuple(creatives), plays_per_day=plays_per_day, window_policy=window_policy,
        explicit_windows=WeekSchedule.from_spec(explicit_windows) if explicit_windows else None, priority=priority,
        overrides=tuple(overrides), **resolve_targets(targets, paths),
    )


def load_planning_inputs(session: Session, campaign_ids: set[str] | None = None) -> PlanningInputs:
    """Every screen in service (enabled, not retired), and the planned campaigns (or just `campaign_ids`, whatever
    their status)."""
    # Imported here, not above: a what-if from files plans without loading the ORM (a fifth of `signage plan`'s time).
    from sqlalchemy import select
    from sqlalchemy.orm import selectinload

    from campaigns.models import Campaign, CampaignCreative, Screen, Site
    from campaigns.scope import organisation_paths

    paths = organisation_paths(session)
    sites = {site.id: plan_site(site.id, site.kind, site.timezone, paths[site.organisation_id], site.operating_hours,
                                site.peak_windows, site.international_audience)
             for site in session.scalars(select(Site))}
    screens = tuple(plan_screen(screen.id, screen.kind, sites[screen.site_id], (g.id for g in screen.groups),
                                width=screen.width, height=screen.height, orientation=screen.orientation)
                    for screen in session.scalars(select(Screen).where(Screen.in_service)
                                                  .options(selectinload(Screen.groups)).order_by(Screen.id)))

    query = select(Campaign).options(
        selectinload(Campaign.creatives).selectinload(CampaignCreative.media),
        selectinload(Campaign.targets), selectinload(Campaign.overrides),
    ).order_by(Campaign.id)
    if campaign_ids is None:
        query = query.where(Campaign.status.in_(PLANNED_STATUSES))
    else:
        query = query.where(Campaign.id.in_(campaign_ids))
    campaigns = [_plan_campaign(c, paths) for c in session.scalars(query)]
    return PlanningInputs(screens, tuple(campaigns))


def _plan_campaign(campaign: Campaign, paths: dict[str, str]) -> PlanCampaign:
    return plan_campaign(
        campaign.id, organisation_id=campaign.organisation_id, start_date=campaign.start_date,
        end_date=campaign.end_date, plays_per_day=campaign.plays_per_day, window_policy=campaign.window_policy,
        explicit_windows=campaign.explicit_windows, priority=campaign.priority,
        creatives=(PlanCreative(sha256=c.media_sha256, kind=c.media.kind, mime=c.media.mime, bytes=c.media.bytes,
                                duration_ms=c.duration_ms, slot=c.slot, language=c.language, width=c.media.width,
                                height=c.media.height) for c in campaign.creatives),
        targets=((t.kind, t.ref) for t in campaign.targets),
        overrides=(plan_override(o, paths) for o in campaign.overrides), paths=paths,
    )


def planning_horizon(timezones: frozenset[str], now: datetime, days: int = HORIZON_DAYS) -> tuple[date, int]:
    """The first local day and the number of days that cover today and the next `days - 1` days in every zone."""
    if not timezones:
        today = now.date()
        return today, days
    todays = sorted(local_date(now, zone) for zone in timezones)
    first, last = todays[0], todays[-1]
    return first, days + (last - first).days


__all__ = ["HORIZON_DAYS", "PLANNED_STATUSES", "PlanSite", "PlanningInputs", "load_planning_inputs", "plan_campaign",
           "plan_override", "plan_screen", "plan_site", "planning_horizon"]
