"""The delivery ledger: per screen, campaign and local date, what was required, planned and delivered, and why
a short screen-day fell short (docs/design.md §4).

Three writers keep it, each in the transaction of the work it describes:
- storing plans sets `required` and `planned` (and `plan_reason` when planned < required) for the days the new
  plan covers;
- proof-of-play ingest adds the play counts (scheduler/ingest.py), and player statuses mark the days a player was
  heard (`PlayerDay`);
- the nightly close (`close_days`) names the cause of each short day that has ended in its screen's timezone;
  plays that arrive for a day already closed (a player back after days out of reach) count all the same, and
  ingest names that day's cause again (`reassess_closed_days`).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from campaigns.models import Screen, Site
from scheduler import planner
from scheduler.models import DeliveryRollup, PlayerDay
from scheduler.planner import PlanningResult

# Why a screen-day fell short, in the words reports use (docs/design.md §4 and issue 7).
OFFLINE = "offline"  # the player was not running (all day, or at the moments of the missed spots)
NO_PLAN = "no_plan"  # the player ran but had no plan confirmed
MEDIA_MISSING = "media_missing"
PLAYBACK_ERROR = "playback_error"
NO_CAPACITY = "no_capacity"  # the planner could not place every required spot
NO_PLAYABLE_CREATIVE = "no_playable_creative"  # nothing the screen can play (e.g. only audio for an LCD)
CAUSES = (OFFLINE, NO_PLAN, MEDIA_MISSING, PLAYBACK_ERROR, NO_CAPACITY, NO_PLAYABLE_CREATIVE)
_PLAN_CAUSES = {planner.NO_CAPACITY: NO_CAPACITY, planner.NO_PLAYABLE_CREATIVE: NO_PLAYABLE_CREATIVE}


def dialect_insert(session: Session, table):
    module = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    return module.insert(table)


def record_plan_figures(session: Session, result: PlanningResult, player_ids: Collection[str]) -> int:
    """Required and planned spots of the new plans of `player_ids`, for every day those plans cover.

    A campaign that no longer reaches a screen on a covered day is set to 0 required and 0 planned there (its
    plays, if any, stay counted). Closed days are history and are left alone."""
    wanted = set(player_ids)
    if not wanted:
        return 0
    rows = list(result.summary_of(sorted(wanted)))
    days = {result.first_day.fromordinal(result.first_day.toordinal() + i) for i in range(result.days)}
    session.execute(update(DeliveryRollup)
                    .where(DeliveryRollup.screen_id.in_(wanted), DeliveryRollup.local_date.in_(days),
                           DeliveryRollup.closed.is_(False))
                    .values(required=0, planned=0, plan_reason=None)
                    .execution_options(synchronize_session=False))
    if rows:
        statement = dialect_insert(session, DeliveryRollup)
        statement = statement.on_conflict_do_update(
            index_elements=["screen_id", "campaign_id", "local_date"],
            set_={"required": statement.excluded.required, "planned": statement.excluded.planned,
                  "plan_reason": statement.excluded.plan_reason},
            where=DeliveryRollup.closed.is_(False),
        )
        zero = {"completed_in_peak": 0, "completed_total": 0, "makegoods": 0, "interrupted": 0, "failed": 0,
                "missed": 0, "media_missing": 0, "closed": False}
        session.execute(statement, [{"screen_id": r.screen_id, "campaign_id": r.campaign_id, "local_date": r.date,
                                     "required": r.required, "planned": r.planned,
                                     "plan_reason": r.reason if r.planned < r.required else None, **zero}
                                    for r in rows])
    return len(rows)


def note_heartbeats(session: Session, beats: Mapping[tuple[str, date], tuple[int, bool]], now: datetime) -> None:
    """Online statuses heard at `now`: (player id, its local date) -> (how many, whether any said it had a plan)."""
    if not beats:
        return
    statement = dialect_insert(session, PlayerDay)
    statement = statement.on_conflict_do_update(
        index_elements=["player_id", "local_date"],
        set_={"heartbeats": PlayerDay.heartbeats + statement.excluded.heartbeats,
              "last_seen": statement.excluded.last_seen,
              "had_plan": PlayerDay.had_plan | statement.excluded.had_plan},
    )
    session.execute(statement, [{"player_id": player_id, "local_date": day, "heartbeats": count, "first_seen": now,
                                 "last_seen": now, "had_plan": had_plan}
                                for (player_id, day), (count, had_plan) in sorted(beats.items())])


@dataclass(frozen=True)
class DayFigures:
    required: int
    planned: int
    plan_reason: str | None
    delivered: int  # completed spots and make-goods inside peak windows: what counts (docs/design.md §4)
    attempts: int  # every reported attempt of the day, whatever its outcome
    failed: int
    media_missing: int
    heartbeats: int
    had_plan: bool


def shortfall_cause(figures: DayFigures) -> str | None:
    """Why a screen-day delivered less than required; None when it did not."""
    if figures.delivered >= figures.required:
        return None
    if figures.delivered >= figures.planned:
        return _PLAN_CAUSES.get(figures.plan_reason or "", NO_CAPACITY)
    if figures.attempts == 0 and figures.heartbeats == 0:
        return OFFLINE
    if figures.attempts == 0 and not figures.had_plan:
        return NO_PLAN
    if figures.media_missing:
        return MEDIA_MISSING
    if figures.failed > figures.media_missing:
        return PLAYBACK_ERROR
    return OFFLINE


def figures_of(row: DeliveryRollup, day: PlayerDay | None) -> DayFigures:
    return DayFigures(required=row.required, planned=row.planned, plan_reason=row.plan_reason,
                      delivered=row.completed_in_peak,
                      attempts=row.completed_total + row.interrupted + row.failed + row.missed,
                      failed=row.failed, media_missing=row.media_missing,
                      heartbeats=day.heartbeats if day else 0, had_plan=day.had_plan if day else False)


def reassess_closed_days(session: Session, keys: Collection[tuple[str, str, date]]) -> int:
    """Name again the cause of the closed screen-days among `keys` (screen, campaign, local date) whose plays
    arrived after the close: a player out of reach for days sends its journal when it comes back, and its days
    must then say what it delivered, not "offline". Called by ingest in the transaction that counted the plays;
    returns how many closed days it looked at."""
    wanted = set(keys)
    if not wanted:
        return 0
    rows = session.scalars(select(DeliveryRollup).where(
        DeliveryRollup.closed.is_(True),
        DeliveryRollup.screen_id.in_({screen for screen, _, _ in wanted}),
        DeliveryRollup.local_date.in_({day for _, _, day in wanted}))
        .execution_options(populate_existing=True))
    seen = 0
    for row in rows:
        if (row.screen_id, row.campaign_id, row.local_date) not in wanted:
            continue
        row.cause = shortfall_cause(figures_of(row, session.get(PlayerDay, (row.screen_id, row.local_date))))
        seen += 1
    session.flush()
    return seen


def close_days(session: Session, now: datetime) -> int:
    """Close every open screen-day that has ended in its screen's timezone, naming the cause of any shortfall.
    Returns how many were closed. Safe to run again: closed days are not touched."""
    zones = dict(session.execute(select(Screen.id, Site.timezone).join(Site, Screen.site_id == Site.id)).all())
    today_in = {zone: now.astimezone(ZoneInfo(zone)).date() for zone in set(zones.values())}
    latest_today = max(today_in.values(), default=now.date())
    open_rows = session.scalars(select(DeliveryRollup).where(DeliveryRollup.closed.is_(False),
                                                             DeliveryRollup.local_date < latest_today))
    closed = 0
    for row in open_rows:
        zone = zones.get(row.screen_id)
        if zone is None or row.local_date >= today_in[zone]:
            continue
        day = session.get(PlayerDay, (row.screen_id, row.local_date))
        row.cause = shortfall_cause(figures_of(row, day))
        row.closed = True
        closed += 1
    session.flush()
    return closed
