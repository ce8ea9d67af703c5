"""The capacity check: can every targeted screen-day take a campaign's spots, beside what is already planned?

Run when campaigns are saved or imported. By default a shortfall refuses the save; asked
explicitly, the campaign is saved with its shortfall recorded, and reports show it as "no capacity".
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

from sqlalchemy import delete
from sqlalchemy.orm import Session

from campaigns.campaign_file import import_campaigns, read_campaign_file
from campaigns.fleet_file import ImportReport
from campaigns.yaml_source import FileRejected, YamlDocument
from media.store import MediaStore
from scheduler.models import RecordedShortfall
from scheduler.plan_inputs import load_planning_inputs
from scheduler.planner import NO_CAPACITY, SiteShortfall, capacity_shortfalls, plan_fleet
from signage.clock import Clock, local_today

SHORTFALL_FIX = ("lower plays_per_day, widen the campaign's windows, target fewer screens, or save it anyway "
                 "with the shortfall recorded (--allow-shortfall)")


@dataclass(frozen=True)
class CapacityCheck:
    """Shortfalls over the local days `first_day`..`last_day` (None when no day was left to check);
    `runs_beyond` says the campaigns go on past `last_day`, which was not checked."""

    shortfalls: list[SiteShortfall]
    first_day: date | None = None
    last_day: date | None = None
    runs_beyond: bool = False


def check_capacity(session: Session, campaign_ids: set[str], today: date, now: datetime) -> list[SiteShortfall]:
    """Shortfalls of these campaigns from `today` (or their start) to their end, with every other planned
    campaign in place. Days already past are not checked: nothing can be planned there any more."""
    return check_capacity_within(session, campaign_ids, today, now).shortfalls


def check_capacity_within(session: Session, campaign_ids: set[str], today: date, now: datetime,
                          max_days: int | None = None) -> CapacityCheck:
    """`check_capacity`, looking at most `max_days` days ahead: planning a campaign of many years would
    keep an interactive preview waiting for seconds, and its far days change before they come anyway."""
    inputs = load_planning_inputs(session)
    wanted = {c.id for c in inputs.campaigns} | campaign_ids
    inputs = load_planning_inputs(session, campaign_ids=wanted)
    mine = [c for c in inputs.campaigns if c.id in campaign_ids]
    if not mine:
        return CapacityCheck([])
    first = max(today - timedelta(days=1), min(c.start_date for c in mine))  # a zone behind ours may be a day back
    end = max(c.end_date for c in mine)
    last = end if max_days is None or (end - first).days < max_days else first + timedelta(days=max_days - 1)
    if last < first:
        return CapacityCheck([])
    result = plan_fleet(inputs.screens, inputs.campaigns, first, (last - first).days + 1, now)
    # A screen that can play none of the creatives (a speaker, for a campaign without audio) is left out
    # rather than counted short: there is no way to target by screen kind, and nothing to make room for.
    shortfalls = [s for s in capacity_shortfalls(result, campaign_ids) if s.reason == NO_CAPACITY]
    return CapacityCheck(shortfalls, first, last, last < end)


def record_shortfalls(session: Session, campaign_ids: set[str], shortfalls: list[SiteShortfall],
                      now: datetime) -> None:
    session.execute(delete(RecordedShortfall).where(RecordedShortfall.campaign_id.in_(campaign_ids)))
    session.add_all(RecordedShortfall(campaign_id=s.campaign_id, site_id=s.site_id, date=s.date, reason=s.reason,
                                      screens=s.screens, missing=s.missing, recorded_at=now) for s in shortfalls)
    session.flush()


def import_campaigns_checked(session: Session, path: Path, store: MediaStore, clock: Clock, timezone: str,
                             allow_shortfall: bool = False, transform=None) -> tuple[ImportReport,
                                                                                     list[SiteShortfall]]:
    """Import a campaign file and check its capacity in the caller's transaction.

    A shortfall raises FileRejected naming each campaign, site, day and the spots missing (so the
    caller's transaction rolls back), unless `allow_shortfall`, when it is recorded instead.
    """
    report = import_campaigns(session, path, store, clock, timezone, transform=transform)
    document, parsed = read_campaign_file(path)
    ids = {c.id for c in parsed.campaigns}
    shortfalls = check_capacity(session, ids, local_today(clock, timezone), clock.now())
    if shortfalls and not allow_shortfall:
        raise FileRejected(document.filename, _problems(document, [c.id for c in parsed.campaigns], shortfalls))
    record_shortfalls(session, ids, shortfalls, clock.now())
    return report, shortfalls


def _problems(document: YamlDocument, order: list[str], shortfalls: list[SiteShortfall]):
    for shortfall in shortfalls:
        index = order.index(shortfall.campaign_id)
        yield document.problem(
            ("campaigns", index),
            f"{shortfall.campaign_id}: {shortfall.missing} spots cannot be planned at site {shortfall.site_id} on "
            f"{shortfall.date} ({shortfall.reason}, on {shortfall.screens} screens)", SHORTFALL_FIX)


__all__ = ["CapacityCheck", "check_capacity", "check_capacity_within", "import_campaigns_checked", "record_shortfalls"]
