"""Frequency overrides: a head of unit raises a campaign's plays per day on the screens of their unit (an
organisation subtree) or of one of its sites, never below the campaign's own rate, and says why.

The planner takes the highest rate that covers a screen (docs/design.md §4: r = max(plays_per_day, overrides)). Every
change goes to the audit log with the values before and after, filed under the unit it concerns, so that a
ward's head sees the trail of their own overrides on a campaign of the city.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from sqlalchemy import ColumnElement, Select, func, or_, select, true
from sqlalchemy.orm import Session, aliased

from campaigns.access import Actor, subtree_ids
from campaigns.audit import record_change
from campaigns.campaign_file import OverrideIn
from campaigns.models import Campaign, FrequencyOverride, Organisation, Site, User
from campaigns.scope import is_within, organisation_paths, owning_organisation
from campaigns.workflow import (
    APPROVED,
    OVERRIDE,
    CampaignDraft,
    campaign_screens,
    capacity,
    checked,
    file_form,
    find_campaign,
    may_override,
    plain_text,
)
from scheduler.capacity import record_shortfalls
from scheduler.plan_inputs import plan_override
from scheduler.planner import PlanOverride, raised_rate
from signage.clock import Clock
from signage.errors import Invalid, NotFound

REASON_LIMIT = 255  # the campaign file's limit for an override's reason


def describe_override(override: FrequencyOverride) -> dict[str, Any]:
    return {"id": override.id, "organisation_id": override.organisation_id, "site_id": override.site_id,
            "plays_per_day": override.plays_per_day, "reason": override.reason, "set_by": override.set_by,
            "set_at": override.set_at.isoformat()}


def _unit_of(session: Session, override: FrequencyOverride) -> str | None:
    if override.organisation_id is not None:
        return override.organisation_id
    return owning_organisation(session, "site", override.site_id)


def _seen_by(actor: Actor):
    return _seen_within(actor.org_path)


@lru_cache(maxsize=4096)
def _seen_within(org_path: str):
    # Made once per unit: building the expression cost more than running it (bench/list_routes.py).
    ids = subtree_ids(org_path)
    return or_(FrequencyOverride.organisation_id.in_(ids),
               FrequencyOverride.site_id.in_(select(Site.id).where(Site.organisation_id.in_(ids))))


def overrides_query(session: Session, actor: Actor, campaign_id: str) -> Select:
    """The campaign's overrides on the user's unit's screens (all of them, for the campaign's own unit)."""
    find_campaign(session, actor, campaign_id)
    return (select(FrequencyOverride).where(FrequencyOverride.campaign_id == campaign_id, _seen_by(actor))
            .order_by(FrequencyOverride.id))


@dataclass(frozen=True)
class NamedOverride:
    """An override with its place and author by name, as people read it."""

    row: FrequencyOverride
    place_name: str  # the unit's or the site's name
    place_path: str  # the organisation path of the unit, or of the site's unit
    set_by_name: str  # the author's full name; the user name when no such user is left

    def as_planned(self) -> PlanOverride:
        return plan_override(self.row, {self.row.organisation_id: self.place_path} if self.row.organisation_id
                             else {})


@dataclass(frozen=True)
class UnitRate:
    """What the screens of an override's place get: the planner's rate there (`raised_rate`; a unit above may
    have raised it further than the place's own override), and the override that gives it."""

    override: NamedOverride  # the place's own
    plays_per_day: int
    raised_by: NamedOverride  # this override, or a unit above's
    seen: bool = True  # False: a unit above the user's raised the rate of the user's own screens, not theirs to list


def unit_rates(session: Session, actor: Actor, campaigns: Iterable[Campaign]) -> dict[str, list[UnitRate]]:
    """The overrides the user sees on a page of campaigns, by campaign id, each with the rate its place's screens
    get, in one query: all the overrides of a campaign the user's unit owns, only those on the user's screens of a
    higher unit's (whose rate a unit above the user's may give). When a unit above raised the user's own unit's
    screens and the user's unit has no override of its own, that override comes last, not `seen`."""
    campaigns = list(campaigns)
    owned = {c.id for c in campaigns if is_within(c.organisation.path, actor.org_path)}
    seen = (FrequencyOverride.campaign_id.in_(owned) if len(owned) == len(campaigns)
            else or_(FrequencyOverride.campaign_id.in_(owned), _seen_by(actor)))
    rates, named = _place_rates(session, campaigns, seen)
    for campaign in campaigns:
        if campaign.id in owned or any(r.override.row.organisation_id == actor.user.organisation_id
                                       for r in rates[campaign.id]):
            continue
        planned = [(n.as_planned(), n) for n in named[campaign.id]]
        rate, raiser = raised_rate(campaign.plays_per_day, (p for p, _ in planned), actor.org_path)
        if raiser is not None:
            above = next(n for p, n in planned if p is raiser)
            rates[campaign.id].append(UnitRate(above, rate, above, seen=False))
    return rates


def all_unit_rates(session: Session, campaigns: Iterable[Campaign]) -> dict[str, list[UnitRate]]:
    """`unit_rates` of every override, for the operator's command line, which sees the whole fleet."""
    return _place_rates(session, list(campaigns), true())[0]


def _named_overrides() -> Select:
    """Overrides with their place's name and path and their author's full name. Made once (below): building it,
    with its two aliases' column proxies, cost more than running it (bench/list_routes.py)."""
    place_unit, site_unit = aliased(Organisation), aliased(Organisation)
    return (select(FrequencyOverride, func.coalesce(place_unit.name, Site.name),
                   func.coalesce(place_unit.path, site_unit.path),
                   func.coalesce(User.full_name, FrequencyOverride.set_by))
            .outerjoin(place_unit, place_unit.id == FrequencyOverride.organisation_id)
            .outerjoin(Site, Site.id == FrequencyOverride.site_id)
            .outerjoin(site_unit, site_unit.id == Site.organisation_id)
            .outerjoin(User, User.username == FrequencyOverride.set_by))


_NAMED_OVERRIDES = _named_overrides()


def _place_rates(session: Session, campaigns: list[Campaign], seen: ColumnElement[bool],
                 ) -> tuple[dict[str, list[UnitRate]], dict[str, list[NamedOverride]]]:
    """The rate of each `seen` override's place, by campaign id, and every override of the campaigns by name."""
    rates: dict[str, list[UnitRate]] = {campaign.id: [] for campaign in campaigns}
    named: dict[str, list[NamedOverride]] = {campaign.id: [] for campaign in campaigns}
    if not campaigns:
        return rates, named
    rows = session.execute(_NAMED_OVERRIDES.add_columns(seen).where(FrequencyOverride.campaign_id.in_(list(rates)))
                           .order_by(FrequencyOverride.id))
    shown: list[NamedOverride] = []
    for row, place_name, place_path, author, is_seen in rows:
        named[row.campaign_id].append(NamedOverride(row, place_name, place_path, author))
        if is_seen:
            shown.append(named[row.campaign_id][-1])
    plays = {campaign.id: campaign.plays_per_day for campaign in campaigns}
    planned = {campaign_id: [(n.as_planned(), n) for n in overrides] for campaign_id, overrides in named.items()}
    for own in shown:
        campaign_id = own.row.campaign_id
        rate, raiser = raised_rate(plays[campaign_id], (p for p, _ in planned[campaign_id]), own.place_path,
                                   own.row.site_id)
        rates[campaign_id].append(UnitRate(own, rate, next((n for p, n in planned[campaign_id] if p is raiser), own)))
    return rates, named


def override_places(session: Session, actor: Actor, campaign: Campaign) -> tuple[list[Organisation], list[Site]]:
    """Where the user may raise the campaign's frequency: the units and sites of their subtree (and the
    campaign owner's) on whose screens the campaign plays."""
    screens = campaign_screens(session, campaign)
    owner_path = session.scalar(select(Organisation.path).where(Organisation.id == campaign.organisation_id))
    orgs = [org for org in session.scalars(select(Organisation).where(Organisation.id.in_(actor.org_ids()))
                                           .order_by(Organisation.path))
            if is_within(org.path, owner_path) and any(is_within(s.organisation_path, org.path) for s in screens)]
    hit_sites = {s.site_id for s in screens}
    sites = [site for site in session.scalars(select(Site).where(Site.organisation_id.in_(actor.org_ids()))
                                              .order_by(Site.name)) if site.id in hit_sites]
    return orgs, sites


def set_override(session: Session, actor: Actor, clock: Clock, timezone: str, campaign_id: str, *,
                 organisation_id: str | None = None, site_id: str | None = None, plays_per_day: int,
                 reason: str) -> FrequencyOverride:
    """Raise the campaign's rate on one unit's or one site's screens (changing that place's override if it has
    one). The place must be within the user's unit, and the campaign must play on some of its screens."""
    campaign, owned = find_campaign(session, actor, campaign_id)
    may_override(actor, campaign, owned)
    reason = plain_text(reason, "reason", required=True, limit=REASON_LIMIT)
    spec = checked(OverrideIn, {"organisation": organisation_id, "site": site_id, "plays_per_day": plays_per_day,
                                "by": actor.username, "reason": reason})
    kind, ref = ("organisation", spec.organisation) if spec.organisation is not None else ("site", spec.site)
    paths = organisation_paths(session)
    unit = owning_organisation(session, kind, ref)
    if unit is None or not is_within(paths[unit], actor.org_path):
        raise Invalid(f"there is no {kind} {ref!r} within your unit {actor.user.organisation_id}",
                      "raise the frequency only on your own unit's screens: your organisation, one below it, or "
                      "one of their sites")
    screens = campaign_screens(session, campaign)
    if not any(is_within(s.organisation_path, paths[ref]) if kind == "organisation" else s.site_id == ref
               for s in screens):
        raise Invalid(f"the campaign plays on no screen of the {kind} {ref!r}",
                      "choose a unit or site among the campaign's targets")
    existing = next((o for o in campaign.overrides
                     if (o.organisation_id, o.site_id) == (spec.organisation, spec.site)), None)
    proposed = {"organisation": spec.organisation, "site": spec.site, "plays_per_day": spec.plays_per_day,
                "by": actor.username, "reason": spec.reason}
    others = [o for o in file_form(campaign)["overrides"]
              if (o["organisation"], o["site"]) != (spec.organisation, spec.site)]
    checked(CampaignDraft, file_form(campaign) | {"overrides": [*others, proposed]})  # never below the rate
    if existing is not None and (existing.plays_per_day, existing.reason) == (spec.plays_per_day, spec.reason):
        return existing
    before = describe_override(existing) if existing is not None else None
    now = clock.now()
    row = existing or FrequencyOverride(organisation_id=spec.organisation, site_id=spec.site)
    row.plays_per_day, row.reason, row.set_by, row.set_at = spec.plays_per_day, spec.reason, actor.username, now
    if existing is None:
        campaign.overrides.append(row)
    campaign.updated_at = now
    session.flush()
    record_change(session, actor, clock, action="override.change" if before else "override.set",
                  entity_kind=OVERRIDE, entity_id=campaign.id, organisation_id=unit, before=before,
                  after=describe_override(row))
    _recheck(session, campaign, clock, timezone)
    return row


def remove_override(session: Session, actor: Actor, clock: Clock, timezone: str, campaign_id: str,
                    override_id: int) -> None:
    """Take a head's raise away: the unit's screens go back to the campaign's own rate."""
    campaign, owned = find_campaign(session, actor, campaign_id)
    may_override(actor, campaign, owned)
    override = next((o for o in campaign.overrides if o.id == override_id), None)
    unit = _unit_of(session, override) if override is not None else None
    if unit is None or not actor.sees_organisation(session, unit):
        raise NotFound("override", str(override_id))
    before = describe_override(override)
    campaign.overrides.remove(override)
    campaign.updated_at = clock.now()
    session.flush()
    record_change(session, actor, clock, action="override.remove", entity_kind=OVERRIDE, entity_id=campaign.id,
                  organisation_id=unit, before=before, after=None)
    _recheck(session, campaign, clock, timezone)


def _recheck(session: Session, campaign: Campaign, clock: Clock, timezone: str) -> None:
    # A raised rate may not fit where the campaign's own did: record what the planner cannot place, as on save.
    if campaign.status in APPROVED:
        record_shortfalls(session, {campaign.id}, capacity(session, campaign, clock, timezone).shortfalls,
                          clock.now())


__all__ = ["NamedOverride", "UnitRate", "all_unit_rates", "describe_override", "override_places", "overrides_query",
           "remove_override", "set_override", "unit_rates"]
