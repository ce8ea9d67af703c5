"""Regular messages ("Tin thường xuyên") as their own section: each unit's rhythm (its interval, last regular
message, due date and state: campaigns/message_rhythm.py) for the user's subtree, its regular messages, the form of
a new one (the alerts' form and domain function, severity info: scheduler/web/routes/alerts.py), and each unit's
interval for those who may set it. The JSON API: GET /api/v1/message-rhythm; the interval itself is set with
PATCH /api/v1/organisations/{id} (scheduler/web/routes/fleet.py).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse
from pydantic import BaseModel, Field
from sqlalchemy import select

from campaigns import alerts as alert_rules
from campaigns import workflow
from campaigns.kinds import AlertSeverity
from campaigns.message_rhythm import (
    MAX_INTERVAL_DAYS,
    MIN_INTERVAL_DAYS,
    RhythmState,
    UnitRhythm,
    may_set_message_interval,
    set_message_interval,
    unit_rhythms,
)
from campaigns.models import Organisation
from scheduler.web.auth import ActorDep, PageActorDep
from scheduler.web.deps import ClockDep, LanguageDep, SessionDep, SettingsDep, render
from scheduler.web.forms import FormDep
from scheduler.web.i18n import N_
from scheduler.web.pagination import PageParams, paginate
from scheduler.web.problems import status_of
from scheduler.web.routes.alerts import alert_form, alert_times, issue_from_form, require_issuer
from signage.errors import Invalid, Refused

api = APIRouter(prefix="/api/v1", tags=["message rhythm"])
pages = APIRouter(include_in_schema=False)

MESSAGES_PER_PAGE = 50
STATE_WORDS = {"late": N_("rhythm.state.late"), "at_risk": N_("rhythm.state.at_risk"),
               "on_track": N_("rhythm.state.on_track")}  # also the cadence report's words (reports/columns.py)
DONE = {"created": N_("rhythm.done.created"), "pending": N_("rhythm.done.pending"),
        "interval": N_("rhythm.done.interval")}


class UnitRhythmOut(BaseModel):
    organisation_id: str
    name: str
    parent_id: str | None
    own_interval_days: int | None = Field(description="the unit's own; null: inherited")
    interval_days: int = Field(description="in effect: its own, its nearest ancestor's, else the server's")
    last_message: datetime | None = Field(description="its last regular message that went out")
    due_by: datetime | None = Field(description="when it goes late if it sends nothing; null: it never sent one")
    state: RhythmState = Field(description="late, at_risk (due within a day), on_track")

    @classmethod
    def of(cls, unit: UnitRhythm) -> UnitRhythmOut:
        return cls(organisation_id=unit.organisation_id, name=unit.name, parent_id=unit.parent_id,
                   own_interval_days=unit.own_interval_days, interval_days=unit.interval_days,
                   last_message=unit.last_message, due_by=unit.due_by, state=unit.state)


@api.get("/message-rhythm", response_model=list[UnitRhythmOut])
def message_rhythm(actor: ActorDep, session: SessionDep, clock: ClockDep,
                   settings: SettingsDep) -> list[UnitRhythmOut]:
    """Each unit of your subtree that holds screens: late first, then at risk, then on track."""
    return [UnitRhythmOut.of(unit) for unit in
            unit_rhythms(session, actor.org_path, clock.now(), settings.message_interval_days)]


# -- pages --------------------------------------------------------------------------------------------------


def _page(request: Request, session, actor, clock, settings, language: str, *, offset: int = 0,
          done: str | None = None, error: str | None = None, status: int = 200):
    now = clock.now()
    units = unit_rhythms(session, actor.org_path, now, settings.message_interval_days)
    settable = {org.id for org in session.scalars(select(Organisation).where(
        Organisation.id.in_([unit.organisation_id for unit in units]))) if may_set_message_interval(actor, org)}
    query = alert_rules.alerts_query(session, actor, severity=AlertSeverity.info, now=now)
    found = paginate(session, query, PageParams(limit=MESSAGES_PER_PAGE, offset=offset), lambda alert: alert)
    response = render(request, "messages.html", {
        "units": units, "settable": settable, "page": found, "state_words": STATE_WORDS,
        "phase_of": lambda alert: alert_rules.alert_phase(alert, now), "done": DONE.get(done or ""),
        "local_time": alert_times(settings.timezone, language),
        "link": lambda offset=0: f"/messages?offset={offset}" if offset else "/messages",
        "error": error, "can_create": actor.has_role(*workflow.EDITORS), "min_days": MIN_INTERVAL_DAYS,
        "max_days": MAX_INTERVAL_DAYS, "default_days": settings.message_interval_days,
    }, language, actor)
    response.status_code = status
    return response


@pages.get("/messages")
def messages_page(request: Request, session: SessionDep, clock: ClockDep, settings: SettingsDep,
                  actor: PageActorDep, language: LanguageDep, done: str | None = None,
                  offset: Annotated[int, Query(ge=0, le=10**9)] = 0):
    return _page(request, session, actor, clock, settings, language, offset=offset, done=done)


@pages.get("/messages/new")
def new_message_page(request: Request, session: SessionDep, clock: ClockDep, settings: SettingsDep,
                     actor: PageActorDep, language: LanguageDep):
    require_issuer(actor)
    return alert_form(request, session, actor, clock, settings.timezone, language, regular=True)


@pages.post("/messages/new")
def create_message_form(request: Request, session: SessionDep, clock: ClockDep, settings: SettingsDep,
                        actor: PageActorDep, language: LanguageDep, form: FormDep):
    return issue_from_form(request, session, actor, clock, settings, language, form, regular=True)


def _days(text: str | None) -> int | None:
    text = (text or "").strip()
    if not text:
        return None  # inherit
    if not text.isdigit():
        raise Invalid(f"the interval {text!r} is not a whole number of days",
                      f"give {MIN_INTERVAL_DAYS} to {MAX_INTERVAL_DAYS}, or leave it empty to inherit")
    return int(text)


@pages.post("/messages/interval")
def set_interval_form(request: Request, session: SessionDep, clock: ClockDep, settings: SettingsDep,
                      actor: PageActorDep, language: LanguageDep, form: FormDep):
    """A unit's interval from the page's form; another unit's answers 404, a value out of bounds 422."""
    try:
        set_message_interval(session, actor, clock, str(form.get("organisation_id") or ""),
                             _days(form.get("days")))
    except Refused as exc:
        session.rollback()
        return _page(request, session, actor, clock, settings, language, error=str(exc), status=status_of(exc))
    session.commit()
    return RedirectResponse("/messages?done=interval", status_code=303)


__all__ = ["api", "pages"]
