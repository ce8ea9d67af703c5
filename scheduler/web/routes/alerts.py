"""Alerts over HTTP: the JSON API (/api/v1/alerts...) and the staff pages (the list, the form, the detail page with
approval, stop and the delivery table).

Thin: each route reads its input, calls campaigns/alerts.py, commits, and only then hands the alert to the
dispatcher (`request.app.state.alerts`, None when the server runs without a broker), so that no player hears of
an alert the database does not hold. The domain's errors become problem+json (API: scheduler/web/problems.py) or
the same page again with the message (web).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import RedirectResponse
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import and_, case, func, select
from sqlalchemy.orm import Session, selectinload
from starlette.datastructures import FormData

from campaigns import alerts as alert_rules
from campaigns import workflow
from campaigns.access import Actor
from campaigns.alerts import PHASES, AlertIn, Phase, alert_phase, alert_screens, describe_alert, find_alert
from campaigns.audit import full_names
from campaigns.kinds import AlertKind, AlertSeverity, AlertStatus, MediaKind, Role, ScreenKind
from campaigns.models import Alert, AuditEntry, Screen
from campaigns.schema_types import SLUG_PATTERN
from campaigns.scope import organisation_paths
from media.store import MediaStore
from scheduler.alert_delivery import ENDINGS
from scheduler.alert_dispatch import AlertDispatcher
from scheduler.models import AlertDelivery
from scheduler.web.auth import ActorDep, PageActorDep
from scheduler.web.bodies import ReviewBody, TargetCountOut, TargetsBody
from scheduler.web.deps import ClockDep, LanguageDep, SessionDep, SettingsDep, render
from scheduler.web.formats import datetime_text
from scheduler.web.forms import FormDep
from scheduler.web.i18n import N_, translate
from scheduler.web.pagination import Page, PageDep, PageParams, paginate
from scheduler.web.problems import describe_validation_errors, page_not_found, status_of
from signage.errors import Invalid, NotFound, Refused
from signage.protocol import MAX_ALERT_TEXT
from signage.text import NfcModel

log = logging.getLogger("signage.alerts")

api = APIRouter(prefix="/api/v1", tags=["alerts"])
pages = APIRouter(include_in_schema=False)

DeliveryState = Literal["waiting", "showing", "ended", "not acknowledged"]
DELIVERY_STATES: tuple[DeliveryState, ...] = ("waiting", "showing", "ended", "not acknowledged")
LIVE_PHASES = ("scheduled", "active")  # phases in which deliveries change by themselves
STOPPABLE = ("pending", "scheduled", "active")
STOPPERS = (*workflow.EDITORS, *alert_rules.APPROVERS, Role.manager)
DURATIONS_MIN = (15, 30, 60, 120, 240, 480, 1440)
DEFAULT_DURATION_MIN = 60
TARGET_FIELDS = ("organisations", "sites", "screens")  # what the form offers; the API takes every target kind


# -- API models ---------------------------------------------------------------------------------------------


class AlertOut(BaseModel):
    id: str
    organisation_id: str = Field(description="the issuing unit")
    title: str
    text: str
    severity: AlertSeverity
    kind: AlertKind
    media: str | None = Field(description="sha256 of the library item a media alert shows")
    spoken: str | None = Field(None, description="sha256 of a text alert's words read aloud for the loudspeakers "
                                                 "among its targets (Ogg Vorbis); null when none is targeted, or "
                                                 "when the server could not make it: the speakers then do not get it")
    starts_at: datetime
    expires_at: datetime
    targets: dict[str, list[str]]
    status: AlertStatus
    phase: Phase = Field(description="from the status and the clock: pending, rejected, scheduled, active, ended, "
                                     "stopped")
    created_by: str
    created_at: datetime
    approved_by: str | None
    approved_at: datetime | None
    review_note: str | None
    stopped_by: str | None
    stopped_at: datetime | None


class DeliverySummary(BaseModel):
    sent: int = Field(description="screens the alert's command went to")
    started: int = Field(description="screens whose player said it showed the alert")
    ended: int = Field(description="screens whose player said the alert is over there")
    outcomes: dict[str, int] = Field(description="the ended ones by outcome: completed, interrupted, failed")
    states: dict[DeliveryState, int] = Field(description="screens sent to, by the delivery table's state word")


class AlertDetail(AlertOut):
    screens: int = Field(description="enabled screens the targets hit now")
    delivery: DeliverySummary


class DeliveryOut(BaseModel):
    screen_id: str
    screen_name: str | None = Field(description="null when the screen was removed from the fleet since")
    site_id: str | None
    site_name: str | None
    sent_at: datetime | None
    sends: int
    stop_sent_at: datetime | None
    started_at: datetime | None
    ended_at: datetime | None
    outcome: str | None
    reason: str | None
    state: DeliveryState = Field(description="waiting: sent, not shown yet; showing: the player said it started; "
                                             "ended: the player said it is over; not acknowledged: the alert is over "
                                             "and the player never said it showed it")


class StopBody(NfcModel):
    model_config = ConfigDict(extra="forbid")
    reason: str | None = Field(None, max_length=workflow.MAX_NOTE)


class TargetCountBody(NfcModel):
    model_config = ConfigDict(extra="forbid")
    organisation_id: str | None = Field(None, max_length=63, description="the issuing unit; default the caller's")
    targets: TargetsBody


# -- the alert and its deliveries, as answered ---------------------------------------------------------------


def delivery_state(delivery: AlertDelivery, phase: Phase) -> DeliveryState:
    if delivery.ended_at is not None:
        return "ended"
    if delivery.started_at is not None:
        return "showing"
    return "waiting" if phase in LIVE_PHASES else "not acknowledged"


def delivery_summary(session: Session, alert: Alert, phase: Phase) -> DeliverySummary:
    """Counted by the database: a city-wide alert has a row per screen."""
    row = AlertDelivery

    def rows_where(condition):
        return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)

    sent, started, ended, showing, silent = session.execute(
        select(func.count(row.sent_at), func.count(row.started_at), func.count(row.ended_at),
               rows_where(and_(row.started_at.is_not(None), row.ended_at.is_(None))),
               rows_where(and_(row.started_at.is_(None), row.ended_at.is_(None))))
        .where(row.alert_id == alert.id)).one()
    outcomes = dict.fromkeys(ENDINGS, 0)
    outcomes.update(session.execute(select(row.outcome, func.count()).where(
        row.alert_id == alert.id, row.outcome.is_not(None)).group_by(row.outcome)).all())
    states = dict.fromkeys(DELIVERY_STATES, 0)
    states.update({"showing": showing, "ended": ended,
                   "waiting" if phase in LIVE_PHASES else "not acknowledged": silent})
    return DeliverySummary(sent=sent, started=started, ended=ended, outcomes=outcomes, states=states)


def alert_detail(session: Session, alert: Alert, now: datetime) -> AlertDetail:
    described = describe_alert(alert, now)
    return AlertDetail(**described, screens=len(alert_screens(session, alert)),
                       delivery=delivery_summary(session, alert, described["phase"]))


def delivery_rows(session: Session, alert: Alert, deliveries: Iterable[AlertDelivery],
                  now: datetime) -> list[DeliveryOut]:
    deliveries = list(deliveries)
    screens = {s.id: s for s in session.scalars(select(Screen).where(
        Screen.id.in_([d.screen_id for d in deliveries])).options(selectinload(Screen.site)))}
    phase = alert_phase(alert, now)
    rows = []
    for d in deliveries:
        screen = screens.get(d.screen_id)
        rows.append(DeliveryOut(
            screen_id=d.screen_id, screen_name=screen.name if screen else None,
            site_id=screen.site_id if screen else None, site_name=screen.site.name if screen else None,
            sent_at=d.sent_at, sends=d.sends or 0, stop_sent_at=d.stop_sent_at, started_at=d.started_at,
            ended_at=d.ended_at, outcome=d.outcome, reason=d.reason, state=delivery_state(d, phase)))
    return rows


def deliveries_query(alert: Alert):
    return select(AlertDelivery).where(AlertDelivery.alert_id == alert.id).order_by(AlertDelivery.screen_id)


def dispatch(request: Request, send: Callable[[AlertDispatcher], int]) -> None:
    """Hands a committed change to the players, when the server has a broker. A failure here loses nothing: the
    alert is saved, and the dispatcher's resend job sends what never went out, so the caller is not failed."""
    dispatcher: AlertDispatcher | None = getattr(request.app.state, "alerts", None)
    if dispatcher is None:
        return
    try:
        send(dispatcher)
    except Exception:
        log.exception("sending an alert's commands failed; the resend job sends them again")


# -- API routes ---------------------------------------------------------------------------------------------

AlertId = Annotated[str, PathParam(max_length=200, description="an alert id")]


@api.get("/alerts", response_model=Page[AlertOut])
def list_alerts(actor: ActorDep, session: SessionDep, clock: ClockDep, page: PageDep,
                phase: Annotated[Phase | None, Query(description="pending, rejected, scheduled, active, ended, "
                                                                 "stopped")] = None,
                severity: AlertSeverity | None = None,
                organisation_id: Annotated[str | None, Query(max_length=63, pattern=SLUG_PATTERN,
                                                             description="that unit's subtree")] = None,
                ) -> Page[AlertOut]:
    """The alerts of the caller's subtree, newest start first."""
    now = clock.now()
    query = alert_rules.alerts_query(session, actor, phase=phase, organisation_id=organisation_id,
                                     severity=severity, now=now)
    return paginate(session, query, page, lambda alert: AlertOut(**describe_alert(alert, now)))


@api.post("/alerts/targets/count", response_model=TargetCountOut)
def count_alert_targets(body: TargetCountBody, actor: ActorDep, session: SessionDep) -> TargetCountOut:
    """How many enabled screens a text, image or video alert issued by `organisation_id` with these targets would
    show on now (the form's live count), at how many sites; `speakers`: the loudspeakers among the targets, which
    play only sound alerts. Targets outside the issuer: 422."""
    targets = body.targets.model_dump()
    hit = workflow.count_targets(session, actor, body.organisation_id, targets)  # checks issuer and targets
    # A probe of the alert, never saved, so that the count follows the alerts' own rule of which screens show one.
    probe = Alert(organisation_id=hit.organisation_id, targets=targets)
    showing = alert_screens(session, probe) if hit.screens else []
    return TargetCountOut(organisation_id=hit.organisation_id, screens=len(showing),
                          sites=len({screen.site_id for screen in showing}), speakers=hit.speakers)


@api.post("/alerts", response_model=AlertDetail, status_code=201)
def create_alert(body: AlertIn, request: Request, actor: ActorDep, session: SessionDep,
                 clock: ClockDep, settings: SettingsDep) -> AlertDetail:
    """Issue an alert (staff, heads of unit) for screens of the issuing unit's subtree: sent at once, or pending
    when the unit requires its head's approval."""
    alert = alert_rules.create_alert(session, actor, clock, body, MediaStore(settings.media_dir))
    session.commit()
    if alert.status is AlertStatus.approved:
        dispatch(request, lambda dispatcher: dispatcher.publish(alert.id))
    return alert_detail(session, alert, clock.now())


@api.get("/alerts/{alert_id}", response_model=AlertDetail)
def get_alert(alert_id: AlertId, actor: ActorDep, session: SessionDep, clock: ClockDep) -> AlertDetail:
    alert = find_alert(session, actor, alert_id)
    return alert_detail(session, alert, clock.now())


@api.get("/alerts/{alert_id}/deliveries", response_model=Page[DeliveryOut])
def list_deliveries(alert_id: AlertId, actor: ActorDep, session: SessionDep, clock: ClockDep,
                    page: PageDep) -> Page[DeliveryOut]:
    """Screen by screen: when the command went, and what the player acknowledged; by screen id."""
    alert = find_alert(session, actor, alert_id)
    listed = paginate(session, deliveries_query(alert), page, lambda delivery: delivery)
    return Page(items=delivery_rows(session, alert, listed.items, clock.now()), total=listed.total,
                limit=listed.limit, offset=listed.offset)


@api.post("/alerts/{alert_id}/approve", response_model=AlertDetail)
def approve_alert(alert_id: AlertId, request: Request, actor: ActorDep, session: SessionDep, clock: ClockDep,
                  body: ReviewBody | None = None) -> AlertDetail:
    """The head of the issuing unit approves a pending alert: it goes out at once (or at its start)."""
    alert = alert_rules.approve_alert(session, actor, clock, alert_id, body.note if body else None)
    session.commit()
    dispatch(request, lambda dispatcher: dispatcher.publish(alert.id))
    return alert_detail(session, alert, clock.now())


@api.post("/alerts/{alert_id}/reject", response_model=AlertDetail)
def reject_alert(alert_id: AlertId, body: ReviewBody, actor: ActorDep, session: SessionDep,
                 clock: ClockDep) -> AlertDetail:
    """The head of the issuing unit rejects a pending alert, with a note saying why (required)."""
    alert = alert_rules.reject_alert(session, actor, clock, alert_id, body.note)
    session.commit()
    return alert_detail(session, alert, clock.now())


@api.post("/alerts/{alert_id}/stop", response_model=AlertDetail)
def stop_alert(alert_id: AlertId, request: Request, actor: ActorDep, session: SessionDep, clock: ClockDep,
               body: StopBody | None = None) -> AlertDetail:
    """Takes a pending, scheduled or active alert off every screen now; an ended one is a conflict (409)."""
    alert = alert_rules.stop_alert(session, actor, clock, alert_id, body.reason if body else None)
    session.commit()
    dispatch(request, lambda dispatcher: dispatcher.stop(alert.id))
    return alert_detail(session, alert, clock.now())


# -- pages --------------------------------------------------------------------------------------------------

DONE = {"created", "pending", "approved", "rejected", "stopped"}
ROWS_PER_PAGE = 200


def _with_status(response, status: int):
    response.status_code = status
    return response


def _redirect(path: str) -> RedirectResponse:
    return RedirectResponse(path, status_code=303)


def _page_alert(session: Session, actor: Actor, alert_id: str) -> Alert:
    try:
        return find_alert(session, actor, alert_id)
    except NotFound as exc:
        raise page_not_found(exc) from None


def alert_times(timezone: str, language: str) -> Callable[[datetime | None], str]:
    """Times of an alert page (and of the regular messages' list), in the server's zone (the pages name it once)."""
    return lambda instant: datetime_text(instant, timezone, language, seconds=False) if instant else "—"


def _may_issue(actor: Actor) -> bool:
    return actor.has_role(*workflow.EDITORS)


@pages.get("/alerts")
def alerts_page(request: Request, session: SessionDep, clock: ClockDep, settings: SettingsDep, actor: PageActorDep,
                language: LanguageDep, phase: str | None = None, severity: str | None = None,
                org: Annotated[str | None, Query(max_length=63)] = None,
                offset: Annotated[int, Query(ge=0, le=10**9)] = 0):
    now = clock.now()
    chosen_phase = phase if phase in PHASES else None
    chosen_severity = AlertSeverity(severity) if severity in AlertSeverity.__members__ else None
    organisations = workflow.owner_choices(session, actor)
    within = next((o.id for o in organisations if o.id == org), None)
    query = alert_rules.alerts_query(session, actor, phase=chosen_phase, organisation_id=within,
                                     severity=chosen_severity, now=now)
    found = paginate(session, query, PageParams(limit=50, offset=offset), lambda alert: alert)
    filters = {"phase": chosen_phase or "", "severity": chosen_severity.value if chosen_severity else "",
               "org": within or ""}

    def link(**changes: Any) -> str:
        query = {key: value for key, value in {**filters, **changes}.items() if value}
        return f"/alerts?{urlencode(query)}" if query else "/alerts"

    return render(request, "alerts.html", {
        "page": found, "phases": PHASES, "filters": filters, "organisations": organisations, "link": link,
        "severities": [s.value for s in AlertSeverity],
        "phase_of": lambda alert: alert_phase(alert, now), "local_time": alert_times(settings.timezone, language),
        "can_create": _may_issue(actor), "depth_of": lambda o: o.path.count("/") - actor.org_path.count("/"),
    }, language, actor)


@dataclass(frozen=True)
class FormChoices:
    owners: list[Any]
    choices: workflow.TargetChoices
    paths: dict[str, str]
    library: list[Any]


def _form_choices(session: Session, actor: Actor) -> FormChoices:
    """Everything of the user's subtree; the page narrows it to the chosen issuing unit's subtree as it changes."""
    return FormChoices(
        owners=workflow.owner_choices(session, actor),
        choices=workflow.target_choices(session, actor.user.organisation_id),
        paths=organisation_paths(session),
        library=[asset for asset in workflow.media_choices(session, actor)
                 if asset.kind in (MediaKind.video, MediaKind.image)])


def _form_values(form: FormData | None, actor: Actor, now: datetime, timezone: str) -> dict[str, Any]:
    if form is not None:
        values: dict[str, Any] = {key: form.get(key) for key in form}
        for kind in TARGET_FIELDS:
            values[kind] = form.getlist(kind)
        return values
    local_now = now.astimezone(ZoneInfo(timezone)).strftime("%Y-%m-%dT%H:%M")
    return {"severity": AlertSeverity.info.value, "kind": AlertKind.text.value, "start": "now",
            "starts_at": local_now, "duration": str(DEFAULT_DURATION_MIN), "expires_at": "",
            "organisation_id": actor.user.organisation_id, **{kind: [] for kind in TARGET_FIELDS}}


def alert_form(request: Request, session: Session, actor: Actor, clock, timezone: str, language: str, *,
               form: FormData | None = None, error: str | None = None, status: int = 200, regular: bool = False):
    """The form of a new alert; with `regular`, the regular messages' form (/messages/new): the same fields, the
    severity `info` fixed."""
    choices = _form_choices(session, actor)
    return _with_status(render(request, "alert_form.html", {
        "values": _form_values(form, actor, clock.now(), timezone), "error": error, "owners": choices.owners,
        "choices": choices.choices, "paths": choices.paths, "library": choices.library,
        "durations": DURATIONS_MIN, "max_text": MAX_ALERT_TEXT, "timezone": timezone,
        "severities": [s.value for s in AlertSeverity], "regular": regular,
        "needs_approval": {o.id for o in choices.owners if o.alerts_need_approval}
        if not actor.has_role(*alert_rules.APPROVERS) else set(),
    }, language, actor), status)


def _local_instant(text: str | None, timezone: str, what: str) -> datetime:
    try:
        naive = datetime.fromisoformat((text or "").strip())
    except ValueError:
        raise Invalid(f"the {what} {text!r} is not a date and time", f"pick the {what} in the calendar, e.g. "
                                                                     "20/08/2024 10:30") from None
    return naive.replace(tzinfo=ZoneInfo(timezone)) if naive.tzinfo is None else naive


def alert_from_form(form: FormData, now: datetime, timezone: str) -> AlertIn:
    """The form's fields as the API's body: local times in `timezone`; the expiry as a time or a duration counted
    from the (effective) start."""
    starts = _local_instant(form.get("starts_at"), timezone, "start") if form.get("start") == "at" else None
    duration = form.get("duration") or str(DEFAULT_DURATION_MIN)
    if duration == "until":
        expires = _local_instant(form.get("expires_at"), timezone, "expiry")
    elif duration.isdigit() and int(duration) in DURATIONS_MIN:
        start = max(starts or now, now)
        if start - now > alert_rules.MAX_LEAD:  # checked here too: the year 9999 has no hour after its last
            raise Invalid(f"the alert would start on {start.date()}, more than a year ahead", "start it within a year")
        expires = start + timedelta(minutes=int(duration))
    else:
        raise Invalid(f"the duration {duration!r} is not one of the choices", "choose one from the list")
    kind = form.get("kind") or AlertKind.text.value
    try:
        return AlertIn(
            title=form.get("title") or "", text=form.get("text") or "",
            severity=form.get("severity") or AlertSeverity.info.value, kind=kind,
            media=(form.get("media") or None) if kind == AlertKind.media.value else None,
            starts_at=starts, expires_at=expires, organisation_id=form.get("organisation_id") or None,
            targets={kind: refs for kind in TARGET_FIELDS if (refs := [ref for ref in form.getlist(kind) if ref])})
    except ValidationError as exc:
        problems = describe_validation_errors(exc.errors())
        raise Invalid("; ".join(f"{p['field']}: {p['problem']}" for p in problems),
                      "correct these fields and send the form again") from None


@pages.get("/alerts/new")
def new_alert_page(request: Request, session: SessionDep, clock: ClockDep, settings: SettingsDep,
                   actor: PageActorDep, language: LanguageDep):
    require_issuer(actor)
    return alert_form(request, session, actor, clock, settings.timezone, language)


def require_issuer(actor: Actor) -> None:
    if not _may_issue(actor):
        raise HTTPException(403, "your role may not issue alerts; it takes a staff or head of unit account")


@pages.post("/alerts/new")
def create_alert_form(request: Request, session: SessionDep, clock: ClockDep, settings: SettingsDep,
                      actor: PageActorDep, language: LanguageDep, form: FormDep):
    return issue_from_form(request, session, actor, clock, settings, language, form)


def issue_from_form(request: Request, session: Session, actor: Actor, clock, settings, language: str,
                    form: FormData, *, regular: bool = False):
    """Issues the alert a form describes: to its page when done, or the form again with the error; with `regular`,
    a regular message (severity info, whatever the form says), then back to the regular messages' page."""
    try:
        data = alert_from_form(form, clock.now(), settings.timezone)
        if regular:
            data = data.model_copy(update={"severity": AlertSeverity.info})
        if data.severity is AlertSeverity.urgent and form.get("confirm_urgent") != "yes":
            return alert_form(request, session, actor, clock, settings.timezone, language, form=form,
                              error=translate("alert.urgent.unconfirmed", language), status=422)
        alert = alert_rules.create_alert(session, actor, clock, data, MediaStore(settings.media_dir))
    except Refused as exc:
        session.rollback()
        return alert_form(request, session, actor, clock, settings.timezone, language, form=form, error=str(exc),
                          status=status_of(exc), regular=regular)
    session.commit()
    if alert.status is AlertStatus.approved:
        dispatch(request, lambda dispatcher: dispatcher.publish(alert.id))
    done = "created" if alert.status is AlertStatus.approved else "pending"
    return _redirect(f"/messages?done={done}&alert={alert.id}" if regular else f"/alerts/{alert.id}?done={done}")


# The audit trail's actions in words (campaigns/alerts.py records them).
AUDIT_WORDS = {"create": N_("audit.alert.create"), "approve": N_("audit.alert.approve"),
               "reject": N_("audit.alert.reject"), "stop": N_("audit.alert.stop")}


def _detail(request: Request, session: Session, actor: Actor, clock, timezone: str, language: str, alert: Alert, *,
            offset: int = 0, error: str | None = None, status: int = 200, done: str | None = None):
    now = clock.now()
    phase = alert_phase(alert, now)
    listed = paginate(session, deliveries_query(alert), PageParams(limit=ROWS_PER_PAGE, offset=offset),
                      lambda delivery: delivery)
    audit = list(session.scalars(select(AuditEntry).where(AuditEntry.entity_kind == alert_rules.ALERT,
                                                          AuditEntry.entity_id == alert.id)
                                 .order_by(AuditEntry.at.desc(), AuditEntry.id.desc()).limit(200)))
    people = full_names(session, [alert.created_by, alert.approved_by, alert.stopped_by,
                                  *(entry.username for entry in audit)])
    return _with_status(render(request, "alert_detail.html", {
        "alert": alert, "phase": phase, "live": phase in LIVE_PHASES, "error": error, "done": done,
        # A text alert's loudspeakers are told apart (they hear it read aloud), as the form's live count does.
        "screens": sum(1 for screen in alert_screens(session, alert)
                       if alert.kind is not AlertKind.text or screen.kind is not ScreenKind.speaker),
        "summary": delivery_summary(session, alert, phase),
        "speakers": alert_rules.targeted_speakers(session, alert) if alert.kind is AlertKind.text else 0,
        "rows": delivery_rows(session, alert, listed.items, now), "rows_page": listed,
        "may_review": phase == "pending" and actor.has_role(*alert_rules.APPROVERS),
        "may_stop": phase in STOPPABLE and actor.has_role(*STOPPERS),
        "audit": audit, "people": people, "audit_words": AUDIT_WORDS, "local_time": alert_times(timezone, language),
        "timezone": timezone,
    }, language, actor), status)


@pages.get("/alerts/{alert_id}")
def alert_page(request: Request, alert_id: str, session: SessionDep, clock: ClockDep, settings: SettingsDep,
               actor: PageActorDep, language: LanguageDep, done: str | None = None,
               offset: Annotated[int, Query(ge=0, le=10**9)] = 0):
    alert = _page_alert(session, actor, alert_id)
    return _detail(request, session, actor, clock, settings.timezone, language, alert, offset=offset,
                   done=done if done in DONE else None)


def _act(request: Request, session: Session, actor: Actor, clock, timezone: str, language: str, alert_id: str,
         action: Callable[[Alert], Alert], done: str, send: Callable[[AlertDispatcher, str], int] | None = None):
    """Runs a workflow action from a form: to the detail page when done, the same page with the error if not."""
    alert = _page_alert(session, actor, alert_id)
    try:
        action(alert)
    except Refused as exc:
        session.rollback()
        return _detail(request, session, actor, clock, timezone, language, alert, error=str(exc),
                       status=status_of(exc))
    session.commit()
    if send is not None:
        dispatch(request, lambda dispatcher: send(dispatcher, alert.id))
    return _redirect(f"/alerts/{alert.id}?done={done}")


@pages.post("/alerts/{alert_id}/approve")
def approve_form(request: Request, alert_id: str, session: SessionDep, clock: ClockDep, settings: SettingsDep,
                 actor: PageActorDep, language: LanguageDep, form: FormDep):
    return _act(request, session, actor, clock, settings.timezone, language, alert_id,
                lambda a: alert_rules.approve_alert(session, actor, clock, a.id, form.get("note")), "approved",
                AlertDispatcher.publish)


@pages.post("/alerts/{alert_id}/reject")
def reject_form(request: Request, alert_id: str, session: SessionDep, clock: ClockDep, settings: SettingsDep,
                actor: PageActorDep, language: LanguageDep, form: FormDep):
    return _act(request, session, actor, clock, settings.timezone, language, alert_id,
                lambda a: alert_rules.reject_alert(session, actor, clock, a.id, form.get("note")), "rejected")


@pages.post("/alerts/{alert_id}/stop")
def stop_form(request: Request, alert_id: str, session: SessionDep, clock: ClockDep, settings: SettingsDep,
              actor: PageActorDep, language: LanguageDep, form: FormDep):
    return _act(request, session, actor, clock, settings.timezone, language, alert_id,
                lambda a: alert_rules.stop_alert(session, actor, clock, a.id, form.get("reason")), "stopped",
                AlertDispatcher.stop)


__all__ = ["alert_detail", "alert_form", "alert_from_form", "alert_times", "api", "delivery_rows", "delivery_state",
           "issue_from_form", "pages", "require_issuer"]
