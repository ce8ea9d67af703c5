"""Mobile loudspeaker rounds: a unit plans them (e.g. "02 lượt/ngày vào các giờ cao điểm") and its staff record each
round they drive, from a phone at the roadside; `mobile_round_progress` says, per unit and local day, how many were
planned, how many were done and how many are missing, for the unit's pages and the reports.

A round counts for the day it started on (local, in the plan's zone) when it started inside one of that day's peak
windows; a day counts at most its planned number (three rounds on a day of two are two of two). A round outside the
peak windows, or on a day no plan covers, is kept as recorded but counts for nothing (`round_standing` says why).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from pydantic import AwareDatetime, ConfigDict, Field, field_validator, model_validator
from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from campaigns.access import Actor, not_found
from campaigns.audit import record_change
from campaigns.kinds import Role, SiteKind, default_peak_windows
from campaigns.models import MobileRound, MobileRoundPlan, Organisation, Site
from campaigns.windows import WeekSchedule
from signage.clock import Clock
from signage.config import DEFAULT_TIMEZONE
from signage.errors import Conflict, Invalid
from signage.text import NfcModel

# Who plans and records a unit's rounds (admins too, as everywhere): the people who drive them and their heads.
RECORDERS = (Role.staff, Role.manager, Role.head)
MAX_DURATION_MIN = 8 * 60  # a round longer than a working shift is a typing mistake
MAX_ROUNDS_PER_DAY = 12
MAX_PLAN_DAYS = 731
# A phone's clock may run a little ahead of the server's; a round further in the future has not been driven yet.
FUTURE_SLACK = timedelta(minutes=5)
MAX_ROUTE = MobileRound.__table__.c.route.type.length
MAX_NOTE = MobileRound.__table__.c.note.type.length
MAX_PLAN_NOTE = MobileRoundPlan.__table__.c.note.type.length
# A unit with no ward office: the streets' morning and evening peaks (campaigns/kinds.py's intersection hours).
STREET_PEAKS = SiteKind.intersection


class StartInFuture(Invalid):
    """A round recorded before it started (further ahead than a phone's clock may be off)."""


def _stripped(value: str | None) -> str | None:
    return (value.strip() or None) if value is not None else None


def _route_text(value: str) -> str:
    if not value.strip():
        raise ValueError("is empty: write the streets the round went along")
    return value.strip()


class PlanIn(NfcModel):
    """A unit's plan of rounds. Without `peak_windows`, the unit's ward office's peak windows (or the streets'
    morning and evening peaks, when it has none)."""

    model_config = ConfigDict(extra="forbid")
    organisation_id: str | None = None  # the user's own unit when not given
    rounds_per_day: Annotated[int, Field(ge=1, le=MAX_ROUNDS_PER_DAY)] = 2
    first_day: date
    last_day: date
    peak_windows: dict[str, list[str]] | None = None
    note: Annotated[str, Field(max_length=MAX_PLAN_NOTE)] | None = None

    @field_validator("note")
    @classmethod
    def _note(cls, value: str | None) -> str | None:
        return _stripped(value)

    @model_validator(mode="after")
    def _period(self) -> PlanIn:
        if self.last_day < self.first_day:
            raise ValueError(f"the plan ends ({self.last_day}) before it starts ({self.first_day})")
        if (self.last_day - self.first_day).days >= MAX_PLAN_DAYS:
            raise ValueError(f"a plan covers at most {MAX_PLAN_DAYS} days: make a new plan for the next period")
        return self


class RoundIn(NfcModel):
    """A round driven. Without `started_at` it started now (the phone's "Bắt đầu lượt")."""

    model_config = ConfigDict(extra="forbid")
    organisation_id: str | None = None  # the user's own unit when not given
    started_at: AwareDatetime | None = None
    duration_minutes: Annotated[int, Field(ge=1, le=MAX_DURATION_MIN)]
    route: Annotated[str, Field(min_length=1, max_length=MAX_ROUTE)]
    note: Annotated[str, Field(max_length=MAX_NOTE)] | None = None

    @field_validator("note")
    @classmethod
    def _note(cls, value: str | None) -> str | None:
        return _stripped(value)

    @field_validator("route")
    @classmethod
    def _route(cls, value: str) -> str:
        return _route_text(value)


class RoundChange(NfcModel):
    """A correction of a recorded round: the fields given replace the recorded ones."""

    model_config = ConfigDict(extra="forbid")
    started_at: AwareDatetime | None = None
    duration_minutes: Annotated[int, Field(ge=1, le=MAX_DURATION_MIN)] | None = None
    route: Annotated[str, Field(min_length=1, max_length=MAX_ROUTE)] | None = None
    note: Annotated[str, Field(max_length=MAX_NOTE)] | None = None

    @field_validator("route")
    @classmethod
    def _route(cls, value: str | None) -> str | None:
        return _route_text(value) if value is not None else None


# -- who may, and what they see -------------------------------------------------------------------------------

def may_record(actor: Actor) -> bool:
    return actor.has_role(*RECORDERS)


def require_recorder(actor: Actor, to: str) -> None:
    actor.require(*RECORDERS, to=to)


def unit_of(session: Session, actor: Actor, organisation_id: str | None) -> Organisation:
    """The unit named (the user's own when None), within the user's subtree: another unit's is NotFound."""
    wanted = organisation_id or actor.user.organisation_id
    unit = session.scalar(select(Organisation).where(Organisation.id == wanted,
                                                     Organisation.id.in_(actor.org_ids())))
    if unit is None:
        raise not_found("organisation", wanted)
    return unit


def visible_rounds(actor: Actor) -> Select:
    return select(MobileRound).where(MobileRound.organisation_id.in_(actor.org_ids()))


def visible_plans(actor: Actor) -> Select:
    return select(MobileRoundPlan).where(MobileRoundPlan.organisation_id.in_(actor.org_ids()))


def get_round(session: Session, actor: Actor, round_id: int) -> MobileRound:
    found = session.scalar(visible_rounds(actor).where(MobileRound.id == round_id))
    if found is None:
        raise not_found("mobile round", str(round_id))
    return found


def get_plan(session: Session, actor: Actor, plan_id: int) -> MobileRoundPlan:
    found = session.scalar(visible_plans(actor).where(MobileRoundPlan.id == plan_id))
    if found is None:
        raise not_found("mobile round plan", str(plan_id))
    return found


def rounds_of(session: Session, actor: Actor, organisation_id: str, first: date, last: date,
              timezone: str) -> list[MobileRound]:
    """The unit's recorded rounds that started on the local dates first..last, newest first."""
    unit = unit_of(session, actor, organisation_id)
    start, end = _local_span(first, last, timezone)
    return list(session.scalars(select(MobileRound).where(
        MobileRound.organisation_id == unit.id, MobileRound.started_at >= start, MobileRound.started_at < end)
        .order_by(MobileRound.started_at.desc(), MobileRound.id.desc())))


def plans_of(session: Session, actor: Actor, organisation_id: str) -> list[MobileRoundPlan]:
    unit = unit_of(session, actor, organisation_id)
    return list(session.scalars(select(MobileRoundPlan).where(MobileRoundPlan.organisation_id == unit.id)
                                .order_by(MobileRoundPlan.first_day.desc())))


def unit_timezone(session: Session, organisation_id: str) -> str:
    """The zone of the unit's ward office (or of any site it has); the city's when it has none."""
    return _unit_site_value(session, organisation_id, lambda site: site.timezone) or DEFAULT_TIMEZONE


def default_plan_windows(session: Session, organisation_id: str) -> WeekSchedule:
    """The unit's ward office's peak windows; the streets' morning and evening peaks when it has none."""
    return (_unit_site_value(session, organisation_id, Site.effective_peak_windows, ward_office_only=True)
            or default_peak_windows(STREET_PEAKS))


def _unit_site_value(session: Session, organisation_id: str, value, *, ward_office_only: bool = False) -> Any:
    sites = session.scalars(select(Site).where(Site.organisation_id == organisation_id, Site.retired_at.is_(None))
                            .order_by(Site.id)).all()
    ordered = sorted(sites, key=lambda site: site.kind is not SiteKind.ward_office)
    if ward_office_only:
        ordered = [site for site in ordered if site.kind is SiteKind.ward_office]
    return value(ordered[0]) if ordered else None


# -- plans ----------------------------------------------------------------------------------------------------

def plan_rounds(session: Session, actor: Actor, clock: Clock, data: PlanIn) -> MobileRoundPlan:
    """A unit's plan for a period; it may not overlap another plan of the unit (end that one first)."""
    require_recorder(actor, to="plan mobile rounds")
    unit = unit_of(session, actor, data.organisation_id)
    overlapping = session.scalar(select(MobileRoundPlan).where(
        MobileRoundPlan.organisation_id == unit.id, MobileRoundPlan.first_day <= data.last_day,
        MobileRoundPlan.last_day >= data.first_day))
    if overlapping is not None:
        raise Conflict(f"the unit already has a plan from {overlapping.first_day} to {overlapping.last_day}",
                       "delete that plan first, or plan for days it does not cover", plan_id=overlapping.id)
    windows = (WeekSchedule.from_spec(data.peak_windows) if data.peak_windows is not None
               else default_plan_windows(session, unit.id))
    if not any(windows.days):
        raise Invalid("the peak windows have no window on any day", "give at least one window, e.g. 06:00-08:30")
    plan = MobileRoundPlan(organisation_id=unit.id, rounds_per_day=data.rounds_per_day, first_day=data.first_day,
                           last_day=data.last_day, timezone=unit_timezone(session, unit.id),
                           peak_windows=windows.to_spec(), note=data.note, created_by=actor.username,
                           created_at=clock.now())
    session.add(plan)
    session.flush()
    record_change(session, actor, clock, action="plan", entity_kind="mobile_round_plan", entity_id=str(plan.id),
                  organisation_id=unit.id, after=_plan_facts(plan))
    return plan


def delete_plan(session: Session, actor: Actor, clock: Clock, plan_id: int) -> None:
    require_recorder(actor, to="delete a plan of mobile rounds")
    plan = get_plan(session, actor, plan_id)
    record_change(session, actor, clock, action="delete", entity_kind="mobile_round_plan", entity_id=str(plan.id),
                  organisation_id=plan.organisation_id, before=_plan_facts(plan))
    session.delete(plan)
    session.flush()


def _plan_facts(plan: MobileRoundPlan) -> dict[str, Any]:
    return {"rounds_per_day": plan.rounds_per_day, "first_day": plan.first_day.isoformat(),
            "last_day": plan.last_day.isoformat(), "timezone": plan.timezone, "peak_windows": plan.peak_windows,
            "note": plan.note}


# -- recorded rounds ------------------------------------------------------------------------------------------

def record_round(session: Session, actor: Actor, clock: Clock, data: RoundIn) -> MobileRound:
    """A round driven by the signed-in user's unit (or one under it), recorded by them."""
    require_recorder(actor, to="record mobile rounds")
    unit = unit_of(session, actor, data.organisation_id)
    now = clock.now()
    started = _checked_start(data.started_at or now, now)
    recorded = MobileRound(organisation_id=unit.id, started_at=started, duration_minutes=data.duration_minutes,
                           route=data.route, note=data.note, recorded_by=actor.username, recorded_at=now)
    session.add(recorded)
    session.flush()
    record_change(session, actor, clock, action="record", entity_kind="mobile_round", entity_id=str(recorded.id),
                  organisation_id=unit.id, after=_round_facts(recorded))
    return recorded


def correct_round(session: Session, actor: Actor, clock: Clock, round_id: int, change: RoundChange) -> MobileRound:
    """A wrong record corrected; the audit entry keeps what it said before."""
    require_recorder(actor, to="correct mobile rounds")
    found = get_round(session, actor, round_id)
    before = _round_facts(found)
    given = change.model_dump(exclude_unset=True)
    if "started_at" in given and change.started_at is not None:
        found.started_at = _checked_start(change.started_at, clock.now())
    if change.duration_minutes is not None:
        found.duration_minutes = change.duration_minutes
    if change.route is not None:
        found.route = change.route
    if "note" in given:
        found.note = _stripped(change.note)
    session.flush()
    record_change(session, actor, clock, action="correct", entity_kind="mobile_round", entity_id=str(found.id),
                  organisation_id=found.organisation_id, before=before, after=_round_facts(found))
    return found


def delete_round(session: Session, actor: Actor, clock: Clock, round_id: int) -> None:
    """A round recorded by mistake taken out; the audit entry keeps it."""
    require_recorder(actor, to="delete mobile rounds")
    found = get_round(session, actor, round_id)
    record_change(session, actor, clock, action="delete", entity_kind="mobile_round", entity_id=str(found.id),
                  organisation_id=found.organisation_id, before=_round_facts(found))
    session.delete(found)
    session.flush()


def _checked_start(started: datetime, now: datetime) -> datetime:
    if started - now > FUTURE_SLACK:
        raise StartInFuture(f"the round would start at {started.isoformat()}, after now",
                      "record a round once it has started: give the time it started, or none for now")
    return started


def _round_facts(recorded: MobileRound) -> dict[str, Any]:
    return {"started_at": recorded.started_at.isoformat(), "duration_minutes": recorded.duration_minutes,
            "route": recorded.route, "note": recorded.note, "recorded_by": recorded.recorded_by}


# -- progress -------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class MobileRoundDay:
    """One unit's local day: rounds planned, done (started in the day's peak windows, at most those planned),
    missed (the shortfall), and how many were recorded outside the peak windows (counted for nothing)."""

    organisation_id: str
    organisation_name: str
    day: date
    planned: int
    done: int
    missed: int
    outside_peak: int

    @property
    def compliant(self) -> bool:
        return self.missed == 0


@dataclass(frozen=True)
class MobileRoundUnit:
    organisation_id: str
    organisation_name: str
    days: tuple[MobileRoundDay, ...]
    planned: int
    done: int
    missed: int


@dataclass(frozen=True)
class MobileRoundProgress:
    """Per unit (by name) and day, and the totals over them; units without a plan in the period are not listed."""

    start: date
    end: date
    units: tuple[MobileRoundUnit, ...]
    planned: int
    done: int
    missed: int

    @property
    def days(self) -> tuple[MobileRoundDay, ...]:
        return tuple(day for unit in self.units for day in unit.days)


def mobile_round_progress(session: Session, organisation_ids: Collection[str] | Select, start: date,
                          end: date) -> MobileRoundProgress:
    """The rounds of the units `organisation_ids` (ids, or a select of them) on the local days start..end that a
    plan covers. The caller keeps to its scope: the units given are the units counted."""
    plans = session.execute(select(MobileRoundPlan, Organisation.name)
                            .join(Organisation, Organisation.id == MobileRoundPlan.organisation_id)
                            .where(MobileRoundPlan.organisation_id.in_(organisation_ids),
                                   MobileRoundPlan.first_day <= end, MobileRoundPlan.last_day >= start)).all()
    by_unit: dict[str, list[MobileRoundPlan]] = defaultdict(list)
    names: dict[str, str] = {}
    for plan, name in plans:
        by_unit[plan.organisation_id].append(plan)
        names[plan.organisation_id] = name
    zones = {plan.timezone for plan, _ in plans}
    spans = [_local_span(start, end, zone) for zone in zones]
    recorded: dict[str, list[datetime]] = defaultdict(list)
    if spans:
        lowest, highest = min(span[0] for span in spans), max(span[1] for span in spans)
        for unit_id, started in session.execute(select(MobileRound.organisation_id, MobileRound.started_at).where(
                MobileRound.organisation_id.in_(list(by_unit)), MobileRound.started_at >= lowest,
                MobileRound.started_at < highest)):
            recorded[unit_id].append(started)
    units = []
    for unit_id, unit_plans in by_unit.items():
        days = _unit_days(unit_id, names[unit_id], unit_plans, recorded[unit_id], start, end)
        units.append(MobileRoundUnit(unit_id, names[unit_id], days, sum(d.planned for d in days),
                                     sum(d.done for d in days), sum(d.missed for d in days)))
    units.sort(key=lambda unit: (unit.organisation_name, unit.organisation_id))
    return MobileRoundProgress(start, end, tuple(units), sum(u.planned for u in units), sum(u.done for u in units),
                               sum(u.missed for u in units))


def _unit_days(unit_id: str, name: str, plans: list[MobileRoundPlan], started: Iterable[datetime], start: date,
               end: date) -> tuple[MobileRoundDay, ...]:
    in_peak: dict[date, int] = defaultdict(int)
    outside: dict[date, int] = defaultdict(int)
    for instant in started:
        day, counts = round_day(instant, plans)
        if day is not None:
            (in_peak if counts else outside)[day] += 1
    days = []
    for plan in sorted(plans, key=lambda p: p.first_day):
        windows = plan.effective_peak_windows()
        day = max(plan.first_day, start)
        while day <= min(plan.last_day, end):
            planned = plan.rounds_per_day if windows.on(day) else 0  # a day without peak hours asks for none
            done = min(in_peak[day], planned)
            days.append(MobileRoundDay(unit_id, name, day, planned, done, planned - done, outside[day]))
            day += timedelta(days=1)
    return tuple(days)


def round_day(started: datetime, plans: Iterable[MobileRoundPlan]) -> tuple[date | None, bool]:
    """The local day a round counts for under the unit's plans, and whether it counts (started inside a peak
    window of that day); (None, False) when no plan covers the day it started on."""
    for plan in plans:
        local = started.astimezone(ZoneInfo(plan.timezone))
        if plan.first_day <= local.date() <= plan.last_day:
            minute = local.hour * 60 + local.minute
            counts = any(w.start <= minute < w.end for w in plan.effective_peak_windows().on(local.date()))
            return local.date(), counts
    return None, False


def round_standing(session: Session, recorded: MobileRound, plans: Iterable[MobileRoundPlan] | None = None) -> str:
    """Why a recorded round counts or not: "counted", "outside_peak" or "unplanned" (no plan covers its day).
    `plans`: its unit's plans, when the caller has them already."""
    if plans is None:
        plans = session.scalars(select(MobileRoundPlan).where(
            MobileRoundPlan.organisation_id == recorded.organisation_id)).all()
    day, counts = round_day(recorded.started_at, plans)
    return "unplanned" if day is None else "counted" if counts else "outside_peak"


def _local_span(first: date, last: date, timezone: str) -> tuple[datetime, datetime]:
    zone = ZoneInfo(timezone)
    return (datetime.combine(first, datetime.min.time(), zone),
            datetime.combine(last + timedelta(days=1), datetime.min.time(), zone))


__all__ = ["MAX_DURATION_MIN", "MAX_ROUTE", "RECORDERS", "MobileRoundDay", "MobileRoundProgress", "MobileRoundUnit",
           "PlanIn", "RoundChange", "RoundIn", "StartInFuture", "correct_round", "default_plan_windows", "delete_plan",
           "delete_round", "get_plan", "get_round", "may_record", "mobile_round_progress", "plan_rounds", "plans_of",
           "record_round", "require_recorder", "round_day", "round_standing", "rounds_of", "unit_of", "unit_timezone"]
