"""Reporting rounds (campaigns/reporting_rounds.py): the asking unit opens rounds and sees who submitted, who is
late and the totals, and exports them (XLSX, CSV, PDF by the reports' writers); each reporting unit sees its open
rounds with their deadline, the system's figures already filled, types the rest, saves a draft and submits; its
head approves or returns it where the series asks. Thin routes: the domain checks who may and writes the audit."""

from __future__ import annotations

import io
import re
import unicodedata
from datetime import date, datetime, time, timedelta
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import AwareDatetime, BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from campaigns import reporting_rounds as rules
from campaigns.access import Actor
from campaigns.audit import full_names
from campaigns.kinds import FieldKind, ReportFigure, SubmissionStatus
from campaigns.models import Organisation, ReportRound, ReportSeries
from scheduler.reports.exports import iter_csv, write_pdf, write_xlsx
from scheduler.reports.round_report import STATE_WORDS, round_report, row_state
from scheduler.web.auth import ActorDep, PageActorDep
from scheduler.web.deps import ClockDep, LanguageDep, RowId, SessionDep, SettingsDep, render
from scheduler.web.forms import FormDep
from scheduler.web.i18n import N_, translate
from scheduler.web.problems import status_of
from signage.errors import Invalid, Refused
from signage.text import NfcModel

pages = APIRouter(include_in_schema=False)
api = APIRouter(prefix="/api/v1", tags=["rounds"])

EXPORT_TYPES = {"xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                "csv": "text/csv; charset=utf-8", "pdf": "application/pdf"}
ExportFormat = Literal["xlsx", "csv", "pdf"]
FIGURE_WORDS = {figure.value: N_(f"rounds.figure.{figure.value}") for figure in ReportFigure}
BUILT_KEYS = (N_("rounds.figure.screens"), N_("rounds.figure.required_plays"), N_("rounds.figure.delivered_plays"),
              N_("rounds.figure.compliance"), N_("rounds.figure.regular_messages"),
              N_("rounds.figure.urgent_alerts"), N_("rounds.figure.mobile_rounds_planned"),
              N_("rounds.figure.mobile_rounds_done"), N_("rounds.kind.integer"), N_("rounds.kind.number"),
              N_("rounds.kind.percent"), N_("rounds.kind.text"), N_("rounds.kind.yes_no"), N_("rounds.done.opened"),
              N_("rounds.done.saved"), N_("rounds.done.submitted"), N_("rounds.done.approved"),
              N_("rounds.done.returned"))
DONE = ("opened", "saved", "submitted", "approved", "returned")
TYPED_KINDS = [kind.value for kind in FieldKind if kind is not FieldKind.figure]
FIELD_ROWS = 3  # typed fields on the page's form (more through the API or the rounds file)


# -- JSON --------------------------------------------------------------------------------------------------------

class RoundOut(BaseModel):
    id: int
    series_id: str
    series_name: str
    organisation_id: str  # the asking unit
    name: str
    period_start: date
    period_end: date
    deadline: datetime
    asking: bool  # the caller's unit asks (or sits above the asking unit): it sees every unit's report
    state: str | None  # the caller's own unit's state when it reports to the round

    @classmethod
    def of(cls, round_: ReportRound, asking: bool, state: str | None) -> RoundOut:
        return cls(id=round_.id, series_id=round_.series_id, series_name=round_.series.name,
                   organisation_id=round_.series.organisation_id, name=round_.name,
                   period_start=round_.period_start, period_end=round_.period_end, deadline=round_.deadline,
                   asking=asking, state=state)


class UnitOut(BaseModel):
    organisation_id: str
    name: str
    state: str  # approved | submitted | late | not_due
    late_submission: bool
    submitted_at: datetime | None
    values: dict[str, Any]  # by field key: typed values and the figures frozen at submission


class OverviewOut(BaseModel):
    round: RoundOut
    fields: list[dict[str, Any]]
    units: list[UnitOut]
    totals: dict[str, Any]
    counted: int


class SubmissionOut(BaseModel):
    round_id: int
    organisation_id: str
    state: str
    status: str | None  # draft | submitted | approved | returned; None before the first save
    values: dict[str, Any]
    figures: dict[str, Any]  # live before submission, frozen after
    return_note: str | None
    submitted_at: datetime | None


class SeriesCreate(NfcModel, extra="forbid"):
    organisation_id: str
    series: rules.SeriesIn


class RoundCreate(NfcModel, extra="forbid"):
    series_id: str
    name: str
    period_start: date
    period_end: date
    deadline: AwareDatetime


class SubmissionIn(NfcModel, extra="forbid"):
    values: dict[str, Any]
    submit: bool = False


class ReviewIn(NfcModel, extra="forbid"):
    note: str | None = None


def _state_of(session: Session, actor: Actor, round_: ReportRound, now: datetime) -> str | None:
    if not rules.is_reporting(actor, round_):
        return None
    return rules.unit_state(round_, rules.own_submissions(session, actor, [round_.id]).get(round_.id), now)


def _submission_out(view: rules.UnitView) -> SubmissionOut:
    s = view.submission
    return SubmissionOut(round_id=view.round.id, organisation_id=view.organisation_id, state=view.state,
                         status=s.status.value if s else None, values=dict(s.values) if s else {},
                         figures=dict(view.figures), return_note=s.return_note if s else None,
                         submitted_at=s.submitted_at if s else None)


def _overview_out(session: Session, actor: Actor, overview: rules.RoundOverview) -> OverviewOut:
    return OverviewOut(
        round=RoundOut.of(overview.round, True, None), fields=[rules.field_json(f) for f in overview.fields],
        units=[UnitOut(organisation_id=u.organisation_id, name=u.name, state=u.state,
                       late_submission=u.late_submission,
                       submitted_at=u.submission.submitted_at if u.submission else None, values=u.values)
               for u in overview.units],
        totals=overview.totals, counted=overview.counted)


@api.get("/rounds", response_model=list[RoundOut])
def list_rounds(actor: ActorDep, session: SessionDep, clock: ClockDep) -> list[RoundOut]:
    """The rounds you see: those your unit asks for (or one below it), and those your unit reports to."""
    now = clock.now()
    return [RoundOut.of(r, rules.is_owner_side(actor, r), _state_of(session, actor, r, now))
            for r in rules.rounds_for(session, actor)]


@api.post("/rounds/series", status_code=201)
def create_series(body: SeriesCreate, actor: ActorDep, session: SessionDep, clock: ClockDep) -> dict[str, Any]:
    """A report series of your unit (or one below it): its form's fields, and whether heads approve."""
    series = rules.create_series(session, actor, clock, body.organisation_id, body.series)
    session.commit()
    return rules.series_json(series)


@api.post("/rounds", status_code=201, response_model=RoundOut)
def open_round(body: RoundCreate, actor: ActorDep, session: SessionDep, clock: ClockDep) -> RoundOut:
    """A new round of a series: the period it reports on and its deadline."""
    round_ = rules.add_round(session, actor, clock, body.series_id, rules.checked(rules.RoundIn, body.model_dump(
        exclude={"series_id"})))
    session.commit()
    return RoundOut.of(round_, True, None)


@api.get("/rounds/{reporting_round_id}")
def get_round(reporting_round_id: RowId, actor: ActorDep, session: SessionDep, clock: ClockDep,
              settings: SettingsDep) -> OverviewOut | SubmissionOut:
    """The asking unit: every reporting unit's state and values, and the totals. A reporting unit: its own
    submission, with the system's figures."""
    round_ = rules.get_round(session, actor, reporting_round_id)
    if rules.is_owner_side(actor, round_):
        return _overview_out(session, actor, rules.round_overview(session, actor, reporting_round_id, clock.now()))
    return _submission_out(rules.unit_view(session, actor, reporting_round_id, clock.now(), settings.timezone))


@api.put("/rounds/{reporting_round_id}/submission", response_model=SubmissionOut)
def put_submission(reporting_round_id: RowId, body: SubmissionIn, actor: ActorDep, session: SessionDep, clock: ClockDep,
                   settings: SettingsDep) -> SubmissionOut:
    """Your unit's report: saved as a draft, or submitted (`submit: true`; required fields then needed)."""
    rules.save_submission(session, actor, clock, reporting_round_id, body.values, submit=body.submit,
                          timezone=settings.timezone)
    session.commit()
    return _submission_out(rules.unit_view(session, actor, reporting_round_id, clock.now(), settings.timezone))


@api.post("/rounds/{reporting_round_id}/submission/approve", response_model=SubmissionOut)
def approve_submission(reporting_round_id: RowId, actor: ActorDep, session: SessionDep, clock: ClockDep,
                       settings: SettingsDep) -> SubmissionOut:
    rules.review_submission(session, actor, clock, reporting_round_id, approve=True)
    session.commit()
    return _submission_out(rules.unit_view(session, actor, reporting_round_id, clock.now(), settings.timezone))


@api.post("/rounds/{reporting_round_id}/submission/return", response_model=SubmissionOut)
def return_submission(reporting_round_id: RowId, body: ReviewIn, actor: ActorDep, session: SessionDep, clock: ClockDep,
                      settings: SettingsDep) -> SubmissionOut:
    rules.review_submission(session, actor, clock, reporting_round_id, approve=False, note=body.note)
    session.commit()
    return _submission_out(rules.unit_view(session, actor, reporting_round_id, clock.now(), settings.timezone))


def export(session: Session, actor: Actor, reporting_round_id: int, fmt: str, now: datetime, language: str,
           timezone: str) -> Response:
    overview = rules.round_overview(session, actor, reporting_round_id, now)
    people = full_names(session, [u.submission.submitted_by for u in overview.units if u.submission])
    report = round_report(overview, now, language, timezone, people)
    buffer = io.BytesIO()
    if fmt == "csv":
        buffer.write(b"".join(iter_csv(report)))
    elif fmt == "pdf":
        write_pdf(report, buffer)
    else:
        write_xlsx(report, buffer)
    name = f"bao-cao-{overview.series.id}-{_slug(overview.round.name)}.{fmt}"
    return Response(buffer.getvalue(), media_type=EXPORT_TYPES[fmt],
                    headers={"Content-Disposition": f'attachment; filename="{name}"'})


def _slug(text: str) -> str:
    plain = unicodedata.normalize("NFKD", text.replace("đ", "d").replace("Đ", "D")).encode("ascii", "ignore")
    return re.sub(r"[^a-z0-9]+", "-", plain.decode().lower()).strip("-") or "round"


@api.get("/rounds/{reporting_round_id}/export", response_class=Response,
         responses={200: {"content": {t: {} for t in EXPORT_TYPES.values()}}})
def export_round(reporting_round_id: RowId, actor: ActorDep, session: SessionDep, clock: ClockDep,
                 settings: SettingsDep, language: LanguageDep, format: ExportFormat = "xlsx") -> Response:  # noqa: A002 - the query's name
    """The round in the order's layout: one row a unit, the fields as columns, the totals row."""
    return export(session, actor, reporting_round_id, format, clock.now(), language, settings.timezone)


# -- pages -------------------------------------------------------------------------------------------------------

def _redirect(path: str) -> RedirectResponse:
    return RedirectResponse(path, status_code=303)


def countdown(deadline: datetime, now: datetime, language: str) -> str:
    """"còn 2 ngày 3 giờ" before the deadline, "quá hạn 1 ngày" after; hours and minutes when less than a day."""
    left = deadline - now
    late = left < timedelta(0)
    span = abs(left)
    days, hours, minutes = span.days, span.seconds // 3600, span.seconds % 3600 // 60
    parts = [translate("rounds.days", language).format(n=days)] if days else []
    if hours or days:
        parts.append(translate("rounds.hours", language).format(n=hours))
    if not days:
        parts.append(translate("rounds.minutes", language).format(n=minutes))
    key = N_("rounds.overdue") if late else N_("rounds.left")
    return translate(key, language).format(span=" ".join(parts))


@pages.get("/rounds")
def rounds_page(request: Request, actor: PageActorDep, session: SessionDep, clock: ClockDep, language: LanguageDep):
    now = clock.now()
    listed = []
    for round_ in rules.rounds_for(session, actor):
        state = _state_of(session, actor, round_, now)
        listed.append({"round": round_, "asking": rules.is_owner_side(actor, round_), "state": state,
                       "countdown": countdown(round_.deadline, now, language)})
    return render(request, "rounds.html", {"rounds": listed, "state_words": STATE_WORDS,
                                           "may_open": actor.has_role(*rules.DEFINERS)}, language, actor)


def _series_choices(session: Session, actor: Actor) -> list[ReportSeries]:
    return [s for s in rules.visible_series(session, actor) if s.organisation.path.startswith(actor.org_path)]


def _unit_choices(session: Session, actor: Actor) -> list[Organisation]:
    return list(session.scalars(select(Organisation).where(Organisation.id.in_(actor.org_ids()))
                                .order_by(Organisation.path).limit(500)))


def _new_form(request: Request, session: Session, actor: Actor, language: str, *, form: FormData | None = None,
              error: str | None = None, status: int = 200):
    response = render(request, "round_new.html", {
        "series": _series_choices(session, actor), "units": _unit_choices(session, actor),
        "figures": list(ReportFigure), "figure_words": FIGURE_WORDS, "kinds": TYPED_KINDS, "rows": FIELD_ROWS,
        "form": form or {}, "error": error, "own_unit": actor.user.organisation_id}, language, actor)
    response.status_code = status
    return response


@pages.get("/rounds/new")
def new_round_page(request: Request, actor: PageActorDep, session: SessionDep, language: LanguageDep):
    return _new_form(request, session, actor, language)


def _local_instant(day: str, clock_time: str, timezone: str) -> datetime:
    try:
        when = datetime.combine(date.fromisoformat(day), time.fromisoformat(clock_time or "00:00"))
    except ValueError:
        raise Invalid(f"the deadline {day} {clock_time} is not a date and time",
                      "give the deadline's date and time") from None
    return when.replace(tzinfo=ZoneInfo(timezone))


def _series_from_form(form: FormData, now: datetime) -> dict[str, Any]:
    fields: list[dict[str, Any]] = [{"key": figure, "label": translate(FIGURE_WORDS[figure], "vi"),
                                     "figure": figure} for figure in form.getlist("figures")]
    for n in range(1, FIELD_ROWS + 1):
        label = (form.get(f"field_label_{n}") or "").strip()
        if not label:
            continue
        field: dict[str, Any] = {"key": f"field_{n}", "label": label,
                                 "kind": form.get(f"field_kind_{n}") or "integer",
                                 "required": form.get(f"field_required_{n}") == "yes"}
        for bound in ("minimum", "maximum"):
            given = (form.get(f"field_{bound}_{n}") or "").strip()
            if given:
                field[bound] = given
        fields.append(field)
    name = (form.get("series_name") or "").strip()
    return {"id": f"{_slug(name)[:40].strip('-') or 'bao-cao'}-{now:%Y%m%d%H%M%S}",
            "name": name, "description": form.get("series_description") or None,
            "needs_approval": form.get("needs_approval") == "yes", "fields": fields}


@pages.post("/rounds/new")
def open_round_form(request: Request, actor: PageActorDep, session: SessionDep, clock: ClockDep,
                    settings: SettingsDep, language: LanguageDep, form: FormDep):
    try:
        series_id = form.get("series_id") or ""
        if not series_id:
            series = rules.create_series(session, actor, clock, form.get("organisation_id") or "",
                                         rules.checked(rules.SeriesIn, _series_from_form(form, clock.now())))
            series_id = series.id
        round_ = rules.add_round(session, actor, clock, series_id, rules.checked(rules.RoundIn, {
            "name": form.get("round_name"), "period_start": form.get("period_start"),
            "period_end": form.get("period_end"),
            "deadline": _local_instant(form.get("deadline_date") or "", form.get("deadline_time") or "",
                                       settings.timezone)}))
    except Refused as exc:
        session.rollback()
        return _new_form(request, session, actor, language, form=form, error=str(exc), status=status_of(exc))
    session.commit()
    return _redirect(f"/rounds/{round_.id}?done=opened")


def _overview_page(request: Request, session: Session, actor: Actor, reporting_round_id: int, now: datetime,
                   language: str, done: str | None):
    overview = rules.round_overview(session, actor, reporting_round_id, now)
    rows = [{"unit": unit, "state": row_state(overview, unit.state, unit.late_submission)}
            for unit in overview.units]
    return render(request, "round_overview.html", {
        "overview": overview, "rows": rows, "state_words": STATE_WORDS, "done": done,
        "countdown": countdown(overview.round.deadline, now, language),
        "late": overview.count("late"), "submitted": overview.count("submitted") + overview.count("approved"),
    }, language, actor)


def _unit_page(request: Request, session: Session, actor: Actor, reporting_round_id: int, now: datetime, language: str,
               timezone: str, *, form: FormData | None = None, error: str | None = None, status: int = 200,
               done: str | None = None):
    view = rules.unit_view(session, actor, reporting_round_id, now, timezone)
    values = dict(view.submission.values) if view.submission else {}
    if form is not None:
        values = {f.key: form.get(f"value_{f.key}") for f in view.series.fields if f.kind is not FieldKind.figure}
    editable = view.may_fill and (view.submission is None or view.submission.status not in rules.FINAL)
    response = render(request, "round_unit.html", {
        "view": view, "values": values, "editable": editable, "error": error, "done": done,
        "countdown": countdown(view.round.deadline, now, language), "state_words": STATE_WORDS,
        "people": full_names(session, [view.submission.submitted_by if view.submission else None]),
        "state": row_state_of(view), "waiting": view.may_approve and view.submission is not None
        and view.submission.status is SubmissionStatus.submitted,
    }, language, actor)
    response.status_code = status
    return response


def row_state_of(view: rules.UnitView) -> str:
    late = rules.submitted_late(view.round, view.submission)
    if view.state == "submitted" and view.series.needs_approval:
        return "waiting"
    return "submitted_late" if late else view.state


@pages.get("/rounds/{reporting_round_id}")
def round_page(request: Request, reporting_round_id: RowId, actor: PageActorDep, session: SessionDep, clock: ClockDep,
               settings: SettingsDep, language: LanguageDep, done: Annotated[str | None, Query(max_length=20)] = None):
    round_ = rules.get_round(session, actor, reporting_round_id)
    done = done if done in DONE else None
    if rules.is_owner_side(actor, round_):
        return _overview_page(request, session, actor, reporting_round_id, clock.now(), language, done)
    return _unit_page(request, session, actor, reporting_round_id, clock.now(), language, settings.timezone, done=done)


@pages.post("/rounds/{reporting_round_id}/submission")
def submission_form(request: Request, reporting_round_id: RowId, actor: PageActorDep, session: SessionDep,
                    clock: ClockDep, settings: SettingsDep, language: LanguageDep, form: FormDep):
    round_ = rules.get_round(session, actor, reporting_round_id)
    submit = form.get("action") == "submit"
    values = {key.removeprefix("value_"): value for key, value in form.multi_items() if key.startswith("value_")}
    try:
        rules.save_submission(session, actor, clock, round_.id, values, submit=submit, timezone=settings.timezone)
    except Refused as exc:
        session.rollback()
        return _unit_page(request, session, actor, reporting_round_id, clock.now(), language, settings.timezone,
                          form=form, error=str(exc), status=status_of(exc))
    session.commit()
    return _redirect(f"/rounds/{reporting_round_id}?done={'submitted' if submit else 'saved'}")


@pages.post("/rounds/{reporting_round_id}/review")
def review_form(request: Request, reporting_round_id: RowId, actor: PageActorDep, session: SessionDep, clock: ClockDep,
                settings: SettingsDep, language: LanguageDep, form: FormDep):
    approve = form.get("action") == "approve"
    try:
        rules.review_submission(session, actor, clock, reporting_round_id, approve=approve, note=form.get("note"))
    except Refused as exc:
        session.rollback()
        return _unit_page(request, session, actor, reporting_round_id, clock.now(), language, settings.timezone,
                          error=str(exc), status=status_of(exc))
    session.commit()
    return _redirect(f"/rounds/{reporting_round_id}?done={'approved' if approve else 'returned'}")


@pages.get("/rounds/{reporting_round_id}/export.{fmt}")
def export_page(reporting_round_id: RowId, fmt: ExportFormat, actor: PageActorDep, session: SessionDep, clock: ClockDep,
                settings: SettingsDep, language: LanguageDep) -> Response:
    return export(session, actor, reporting_round_id, fmt, clock.now(), language, settings.timezone)


__all__ = ["api", "countdown", "pages"]
