"""Mobile loudspeaker rounds (campaigns/mobile_rounds.py): the phone page ward staff record a round from at the
roadside ("Bắt đầu lượt" now, or the time it started), the unit's plan and its days so far; the JSON API under
/api/v1/mobile-rounds."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import RedirectResponse
from pydantic import BaseModel, ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from campaigns import mobile_rounds as rules
from campaigns.access import Actor
from campaigns.audit import full_names
from campaigns.models import MobileRound, MobileRoundPlan, Organisation
from scheduler.web.auth import ActorDep, PageActorDep
from scheduler.web.deps import ClockDep, LanguageDep, RowId, SessionDep, render
from scheduler.web.forms import FormDep
from scheduler.web.i18n import N_, translate
from scheduler.web.pagination import Page, PageDep, paginate
from scheduler.web.problems import describe_validation_errors, page_not_found, status_of
from signage.clock import local_today
from signage.errors import Invalid, NotFound, Refused

pages = APIRouter(include_in_schema=False)
api = APIRouter(prefix="/api/v1", tags=["mobile rounds"])

RECENT_DAYS = 7  # the page lists the rounds of the last week
DURATIONS_MIN = (30, 45, 60, 90, 120)
STANDING_WORDS = {"counted": N_("mobile.standing.counted"), "outside_peak": N_("mobile.standing.outside_peak"),
                  "unplanned": N_("mobile.standing.unplanned")}
DONE_WORDS = {"recorded": N_("mobile.done.recorded"), "corrected": N_("mobile.done.corrected"),
              "deleted": N_("mobile.done.deleted"), "planned": N_("mobile.done.planned")}
FromQuery = Annotated[date | None, Query(alias="from", description="first local date (default: 7 days ago)")]
ToQuery = Annotated[date | None, Query(alias="to", description="last local date (default: today)")]


class RoundOut(BaseModel):
    id: int
    organisation_id: str
    organisation: str
    started_at: datetime
    duration_minutes: int
    route: str
    note: str | None
    recorded_by: str  # the user name, for tools
    recorded_by_name: str  # their full name, for people
    recorded_at: datetime
    standing: str  # counted | outside_peak (kept, not counted) | unplanned (no plan covers its day)

    @classmethod
    def of(cls, session: Session, recorded: MobileRound, names: dict[str, str] | None = None,
           plans: list[MobileRoundPlan] | None = None) -> RoundOut:
        """`names` and `plans` (the round's unit's), when the caller has them for a list."""
        names = names if names is not None else full_names(session, [recorded.recorded_by])
        return cls(id=recorded.id, organisation_id=recorded.organisation_id, organisation=recorded.organisation.name,
                   started_at=recorded.started_at, duration_minutes=recorded.duration_minutes, route=recorded.route,
                   note=recorded.note, recorded_by=recorded.recorded_by,
                   recorded_by_name=names.get(recorded.recorded_by, recorded.recorded_by),
                   recorded_at=recorded.recorded_at, standing=rules.round_standing(session, recorded, plans))


class PlanOut(BaseModel):
    id: int
    organisation_id: str
    organisation: str
    rounds_per_day: int
    first_day: date
    last_day: date
    timezone: str
    peak_windows: dict[str, list[str]]
    note: str | None
    created_by: str
    created_at: datetime

    @classmethod
    def of(cls, plan: MobileRoundPlan) -> PlanOut:
        return cls(id=plan.id, organisation_id=plan.organisation_id, organisation=plan.organisation.name,
                   rounds_per_day=plan.rounds_per_day, first_day=plan.first_day, last_day=plan.last_day,
                   timezone=plan.timezone, peak_windows=plan.peak_windows, note=plan.note, created_by=plan.created_by,
                   created_at=plan.created_at)


class DayOut(BaseModel):
    organisation_id: str
    organisation: str
    date: date
    planned: int
    done: int
    missed: int
    outside_peak: int
    compliant: bool


class ProgressOut(BaseModel):
    first: date
    last: date
    planned: int
    done: int
    missed: int
    days: list[DayOut]


def _period(clock, timezone: str, first: date | None, last: date | None) -> tuple[date, date]:
    last = last or local_today(clock, timezone)
    first = first or last - timedelta(days=RECENT_DAYS - 1)
    if last < first:
        raise Invalid(f"the period ends ({last}) before it starts ({first})", "give 'to' on or after 'from'")
    if (last - first).days > 366:
        raise Invalid("the period is longer than a year", "ask for at most 366 days at a time")
    return first, last


def progress_of(session: Session, actor: Actor, organisation_id: str | None, first: date,
                last: date) -> rules.MobileRoundProgress:
    unit = rules.unit_of(session, actor, organisation_id)
    subtree = select(Organisation.id).where(Organisation.path.startswith(unit.path, autoescape=True))
    return rules.mobile_round_progress(session, subtree, first, last)


# -- the API ----------------------------------------------------------------------------------------------------

@api.get("/mobile-rounds/plans", response_model=Page[PlanOut])
def list_plans(actor: ActorDep, session: SessionDep, page: PageDep) -> Page[PlanOut]:
    """The plans of mobile rounds of your unit and the units under it, newest period first."""
    query = rules.visible_plans(actor).order_by(MobileRoundPlan.first_day.desc(), MobileRoundPlan.id.desc())
    return paginate(session, query, page, PlanOut.of)


@api.post("/mobile-rounds/plans", response_model=PlanOut, status_code=201)
def create_plan(body: rules.PlanIn, actor: ActorDep, session: SessionDep, clock: ClockDep) -> PlanOut:
    """Plan a unit's rounds (staff, managers and heads of the unit): rounds a day, from and to (local dates), the
    peak windows they must start in (default: the unit's ward office's)."""
    plan = rules.plan_rounds(session, actor, clock, body)
    session.commit()
    return PlanOut.of(plan)


@api.delete("/mobile-rounds/plans/{plan_id}", status_code=204)
def remove_plan(plan_id: RowId, actor: ActorDep, session: SessionDep, clock: ClockDep) -> None:
    rules.delete_plan(session, actor, clock, plan_id)
    session.commit()


@api.get("/mobile-rounds/progress", response_model=ProgressOut)
def round_progress(actor: ActorDep, session: SessionDep, clock: ClockDep, request: Request,
                   organisation_id: str | None = None, first: FromQuery = None, last: ToQuery = None) -> ProgressOut:
    """Per unit (yours and those under it, or the one named) and local day: rounds planned, done in the peak windows
    (at most those planned) and missed."""
    first, last = _period(clock, request.app.state.settings.timezone, first, last)
    shown = progress_of(session, actor, organisation_id, first, last)
    return ProgressOut(first=first, last=last, planned=shown.planned, done=shown.done, missed=shown.missed,
                       days=[DayOut(organisation_id=d.organisation_id, organisation=d.organisation_name, date=d.day,
                                    planned=d.planned, done=d.done, missed=d.missed, outside_peak=d.outside_peak,
                                    compliant=d.compliant) for d in shown.days])


@api.get("/mobile-rounds", response_model=Page[RoundOut])
def list_rounds(actor: ActorDep, session: SessionDep, page: PageDep) -> Page[RoundOut]:
    """The rounds recorded by your unit and the units under it, newest first."""
    query = rules.visible_rounds(actor).order_by(MobileRound.started_at.desc(), MobileRound.id.desc())
    return paginate(session, query, page, lambda recorded: RoundOut.of(session, recorded))


@api.post("/mobile-rounds", response_model=RoundOut, status_code=201)
def create_round(body: rules.RoundIn, actor: ActorDep, session: SessionDep, clock: ClockDep) -> RoundOut:
    """Record a round (you are who recorded it): when it started (now if not given; not in the future), how long it
    took, the route. A round outside the day's peak windows is kept but does not count."""
    recorded = rules.record_round(session, actor, clock, body)
    session.commit()
    return RoundOut.of(session, recorded)


@api.get("/mobile-rounds/{round_id}", response_model=RoundOut)
def get_round(round_id: RowId, actor: ActorDep, session: SessionDep) -> RoundOut:
    return RoundOut.of(session, rules.get_round(session, actor, round_id))


@api.patch("/mobile-rounds/{round_id}", response_model=RoundOut)
def correct_round(round_id: RowId, body: rules.RoundChange, actor: ActorDep, session: SessionDep,
                  clock: ClockDep) -> RoundOut:
    """Correct a wrong record; the audit log keeps what it said."""
    recorded = rules.correct_round(session, actor, clock, round_id, body)
    session.commit()
    return RoundOut.of(session, recorded)


@api.delete("/mobile-rounds/{round_id}", status_code=204)
def delete_round(round_id: RowId, actor: ActorDep, session: SessionDep, clock: ClockDep) -> None:
    """Take out a round recorded by mistake; the audit log keeps it."""
    rules.delete_round(session, actor, clock, round_id)
    session.commit()


# -- the phone page ---------------------------------------------------------------------------------------------

def _local_instant(text: str | None, timezone: str) -> datetime:
    try:
        naive = datetime.fromisoformat((text or "").strip())
    except ValueError:
        raise Invalid(f"the start {text!r} is not a date and time", "pick the time the round started, e.g. "
                                                                    "20/08/2024 08:30") from None
    return naive.replace(tzinfo=ZoneInfo(timezone)) if naive.tzinfo is None else naive


def _validated(model, fields: dict[str, Any]):
    try:
        return model(**fields)
    except ValidationError as exc:
        problems = describe_validation_errors(exc.errors())
        raise Invalid("; ".join(f"{p['field']}: {p['problem']}" for p in problems),
                      "correct these fields and send the form again") from None


def round_from_form(form: FormData, timezone: str) -> rules.RoundIn:
    """The form's fields as the API's body: "now" (the big button) or the local time it started."""
    started = _local_instant(form.get("started_at"), timezone) if form.get("when") == "at" else None
    return _validated(rules.RoundIn, {"organisation_id": form.get("organisation_id") or None, "started_at": started,
                                      "duration_minutes": form.get("duration_minutes") or "0",
                                      "route": form.get("route") or "", "note": form.get("note") or None})


def plan_from_form(form: FormData) -> rules.PlanIn:
    return _validated(rules.PlanIn, {"organisation_id": form.get("organisation_id") or None,
                                     "rounds_per_day": form.get("rounds_per_day") or "0",
                                     "first_day": form.get("first_day") or "", "last_day": form.get("last_day") or "",
                                     "note": form.get("note") or None})


def _page(request: Request, session: Session, actor: Actor, clock, language: str, organisation_id: str | None, *,
          form: FormData | None = None, error: str | None = None, done: str | None = None, status: int = 200):
    if not rules.may_record(actor):
        raise HTTPException(403, "your role may not record mobile rounds; it takes a staff, manager or head account")
    try:
        unit = rules.unit_of(session, actor, organisation_id)
    except NotFound as exc:
        raise page_not_found(exc) from None
    timezone = rules.unit_timezone(session, unit.id)
    today = local_today(clock, timezone)
    first = today - timedelta(days=RECENT_DAYS - 1)
    rounds = rules.rounds_of(session, actor, unit.id, first, today, timezone)
    names = full_names(session, [r.recorded_by for r in rounds])
    shown = rules.mobile_round_progress(session, [unit.id], first, today)
    days = {d.day: d for d in shown.days}
    plans = rules.plans_of(session, actor, unit.id)
    current = next((p for p in plans if p.first_day <= today <= p.last_day), None)
    windows = (current.effective_peak_windows() if current else rules.default_plan_windows(session, unit.id)).on(today)
    units = session.scalars(select(Organisation).where(Organisation.id.in_(actor.org_ids()))
                            .order_by(Organisation.path)).all()
    now_local = clock.now().astimezone(ZoneInfo(timezone))
    values = {"when": "now", "started_at": now_local.strftime("%Y-%m-%dT%H:%M"), "duration_minutes": "45",
              "route": "", "note": "", "rounds_per_day": "2", "first_day": today.isoformat(),
              "last_day": today.replace(month=12, day=31).isoformat()}
    if form is not None:
        values.update({key: form.get(key) or "" for key in values if key in form})
    response = render(request, "mobile_rounds.html", {
        "unit": unit, "units": units, "timezone": timezone, "today": days.get(today), "today_date": today,
        "days": [days[d] for d in sorted(days, reverse=True)], "rounds": [RoundOut.of(session, r, names, plans)
                                                                        for r in rounds],
        "plan": current, "plans": plans, "windows": windows, "values": values, "error": error, "done": done,
        "durations": DURATIONS_MIN, "standing_words": STANDING_WORDS, "done_words": DONE_WORDS,
        "max_route": rules.MAX_ROUTE,
        "max_duration": rules.MAX_DURATION_MIN,
        "local_input": lambda instant: instant.astimezone(ZoneInfo(timezone)).strftime("%Y-%m-%dT%H:%M")},
        language, actor)
    response.status_code = status
    return response


def _back(unit_id: str, done: str) -> RedirectResponse:
    return RedirectResponse(f"/mobile-rounds?organisation_id={unit_id}&done={done}", status_code=303)


@pages.get("/mobile-rounds")
def mobile_rounds_page(request: Request, session: SessionDep, clock: ClockDep, actor: PageActorDep,
                       language: LanguageDep, organisation_id: str | None = None, done: str | None = None):
    return _page(request, session, actor, clock, language, organisation_id,
                 done=done if done in DONE_WORDS else None)


@pages.post("/mobile-rounds")
def record_from_page(request: Request, session: SessionDep, clock: ClockDep, actor: PageActorDep,
                     language: LanguageDep, form: FormDep):
    organisation_id = form.get("organisation_id") or None
    try:
        unit = rules.unit_of(session, actor, organisation_id)
        recorded = rules.record_round(session, actor, clock, round_from_form(form, rules.unit_timezone(session,
                                                                                                    unit.id)))
    except Refused as exc:
        session.rollback()
        error = translate("mobile.error.future", language) if isinstance(exc, rules.StartInFuture) else str(exc)
        return _page(request, session, actor, clock, language, organisation_id, form=form, error=error,
                     status=status_of(exc))
    session.commit()
    return _back(recorded.organisation_id, "recorded")


@pages.post("/mobile-rounds/plans")
def plan_from_page(request: Request, session: SessionDep, clock: ClockDep, actor: PageActorDep,
                   language: LanguageDep, form: FormDep):
    organisation_id = form.get("organisation_id") or None
    try:
        plan = rules.plan_rounds(session, actor, clock, plan_from_form(form))
    except Refused as exc:
        session.rollback()
        return _page(request, session, actor, clock, language, organisation_id, form=form, error=str(exc),
                     status=status_of(exc))
    session.commit()
    return _back(plan.organisation_id, "planned")


@pages.post("/mobile-rounds/{round_id}/correct")
def correct_from_page(request: Request, round_id: RowId, session: SessionDep, clock: ClockDep, actor: PageActorDep,
                      language: LanguageDep, form: FormDep):
    try:
        unit_id = rules.get_round(session, actor, round_id).organisation_id
    except NotFound as exc:
        raise page_not_found(exc) from None
    try:
        started = _local_instant(form.get("started_at"), rules.unit_timezone(session, unit_id))
        change = _validated(rules.RoundChange, {"started_at": started, "duration_minutes": form.get(
            "duration_minutes") or "0", "route": form.get("route") or "", "note": form.get("note") or None})
        rules.correct_round(session, actor, clock, round_id, change)
    except Refused as exc:
        session.rollback()
        error = translate("mobile.error.future", language) if isinstance(exc, rules.StartInFuture) else str(exc)
        return _page(request, session, actor, clock, language, unit_id, error=error, status=status_of(exc))
    session.commit()
    return _back(unit_id, "corrected")


@pages.post("/mobile-rounds/{round_id}/delete")
def delete_from_page(round_id: RowId, session: SessionDep, clock: ClockDep, actor: PageActorDep):
    try:
        unit_id = rules.get_round(session, actor, round_id).organisation_id
        rules.delete_round(session, actor, clock, round_id)
    except NotFound as exc:
        raise page_not_found(exc) from None
    session.commit()
    return _back(unit_id, "deleted")


__all__ = ["api", "pages"]
