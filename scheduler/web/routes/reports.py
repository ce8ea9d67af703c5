"""Reports on the web and in the API: the figures on screen with charts, and every report as CSV, XLSX, PDF or
(the proof-of-play log) the playout format, for the signed-in user's organisation subtree only."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import replace
from datetime import date, datetime
from itertools import islice
from typing import Annotated, Any, Literal
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse, StreamingResponse
from pydantic import BaseModel, Field
from sqlalchemy import exists, select
from sqlalchemy.orm import Session
from starlette.background import BackgroundTask

from campaigns.access import Actor, not_found
from campaigns.models import Campaign, Organisation, Screen, Site
from scheduler.models import DeliveryRollup
from scheduler.reports.build import KINDS, build_report, make_scope
from scheduler.reports.cadence import cadence_period
from scheduler.reports.compliance import Scope, cause_words, screen_days
from scheduler.reports.exports import cell_text
from scheduler.reports.table import Column, Report, for_reading
from scheduler.reports.words import in_words
from scheduler.web.auth import ActorDep, PageActorDep
from scheduler.web.deps import ClockDep, LanguageDep, SessionDep, SettingsDep, render
from scheduler.web.i18n import N_
from scheduler.web.problems import Problem
from signage.clock import local_today
from signage.errors import Refused

PAGE_ROWS = 200
HEALTH_PAGE_ROWS = 50  # screen health: a page of screens, those needing action first; the export has them all
# The health page's groups, in the order of campaigns/screen_state.py's ATTENTION_ORDER (looked up by name).
HEALTH_GROUPS = (N_("health.group.dark_in_peak"), N_("health.group.offline"), N_("health.group.degraded"),
                 N_("health.group.ok"), N_("health.group.never"), N_("health.group.retired"))
WITHOUT_CAMPAIGN = {"cadence", "mobile"}  # about units rather than campaigns: no campaign is offered or accepted
LOCAL_TIME = Column("at", "", "", "datetime")  # how the page shows a datetime: in the server's zone, like the PDF
Format = Literal["csv", "xlsx", "pdf", "playout"]
MEDIA_TYPES = {"csv": "text/csv; charset=utf-8", "playout": "text/csv; charset=utf-8",
               "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
               "pdf": "application/pdf"}

pages = APIRouter(include_in_schema=False)
api = APIRouter(prefix="/api/v1", tags=["reports"])


def visible_campaign(session: Session, actor: Actor, campaign_id: str) -> bool:
    """Campaigns of the user's subtree, and campaigns of others that reach the user's screens."""
    campaign = session.get(Campaign, campaign_id)
    if campaign is None:
        return False
    if actor.sees_organisation(session, campaign.organisation_id):
        return True
    return bool(session.scalar(select(exists().where(
        DeliveryRollup.campaign_id == campaign_id, DeliveryRollup.screen_id == Screen.id,
        Screen.site_id == Site.id, Site.organisation_id.in_(actor.org_ids())))))


def scope_for(session: Session, actor: Actor, clock, settings, organisation_id: str | None, campaign_id: str | None,
              first: date | None, last: date | None) -> Scope:
    organisation_id = organisation_id or actor.user.organisation_id
    if not actor.sees_organisation(session, organisation_id):
        raise not_found("organisation", organisation_id)
    if campaign_id is not None and not visible_campaign(session, actor, campaign_id):
        raise not_found("campaign", campaign_id)
    return make_scope(session, organisation_id, first, last, campaign_id, local_today(clock, settings.timezone))


def refuse_campaign(kind: str, campaign_id: str | None) -> None:
    if kind in WITHOUT_CAMPAIGN and campaign_id:
        raise Problem(422, f"the report {kind!r} is about units, not campaigns: leave campaign_id out")


def check_report(kind: str, scope: Scope, now: datetime, timezone: str) -> None:
    """Refuses what a report cannot be asked for before any of it is built: an export has begun streaming by then."""
    if kind == "cadence":
        cadence_period(scope, now, timezone)


def export_response(request: Request, report_args: dict[str, Any], fmt: str) -> Any:
    """The file, built from a session of its own: a long export must not hold the request's session."""
    database = request.app.state.database
    kind, scope = report_args["kind"], report_args["scope"]
    name = f"{kind}-{scope.organisation_id}-{scope.first}-{scope.last}"
    if fmt == "csv":
        def chunks() -> Iterator[bytes]:
            from scheduler.reports.exports import iter_csv
            from scheduler.reports.operations import pop_log_csv

            with database.sessions() as session:
                if kind == "pop":  # millions of rows: formatted by the database, written from its cursor
                    yield from pop_log_csv(session, scope, report_args["timezone"], report_args["language"])
                    return
                report = build_report(session, **report_args)
                yield from iter_csv(report, len(report.sheets) - 1 if kind == "compliance" else 0)

        return StreamingResponse(chunks(), media_type=MEDIA_TYPES[fmt], headers={
            "Content-Disposition": f'attachment; filename="{name}.csv"'})
    from scheduler.reports.exports import write_pdf, write_xlsx
    from scheduler.reports.playout import write_playout_csv

    handle, path = tempfile.mkstemp(prefix="signage-report-", suffix=f".{fmt}")
    try:
        with os.fdopen(handle, "wb") as out, database.sessions() as session:
            report = build_report(session, **report_args)
            if fmt == "pdf":
                write_pdf(report, out)
            elif fmt == "playout":
                write_playout_csv(report.sheets[0].rows, out, timezone=report.timezone or "Asia/Ho_Chi_Minh")
            else:
                write_xlsx(report, out)
    except BaseException:
        os.unlink(path)
        raise
    suffix = "csv" if fmt == "playout" else fmt
    return FileResponse(path, media_type=MEDIA_TYPES[fmt], filename=f"{name}.{suffix}",
                        background=BackgroundTask(os.unlink, path))


# -- API ------------------------------------------------------------------------------------------------------

class SheetOut(BaseModel):
    name: str
    columns: list[dict[str, str]]
    rows: list[dict[str, Any]]
    truncated: bool
    totals: dict[str, Any] | None


class ReportOut(BaseModel):
    kind: str
    title: str
    organisation: str
    first: date
    last: date
    notes: list[str]
    sheets: list[SheetOut]


ReportKind = Literal["compliance", "pop", "health", "rounds", "cadence", "mobile"]
FromQuery = Annotated[date | None, Query(alias="from", description="first local date (default: see the CLI)")]
ToQuery = Annotated[date | None, Query(alias="to", description="last local date")]


def sheets_out(report: Report, limit: int, offsets: Sequence[int] = ()) -> list[SheetOut]:
    """Each sheet's rows from its own offset (the n-th of `offsets`, 0 past their end), at most `limit`; `truncated`
    when more follow."""
    out = []
    for index, sheet in enumerate(report.sheets):
        rows, truncated = [], False
        for row in islice(sheet.rows, offsets[index] if index < len(offsets) else 0, None):
            if len(rows) == limit:
                truncated = True
                break
            rows.append(row)
        out.append(SheetOut(name=sheet.name, columns=[{"key": c.key, "title": c.title(report.language),
                                                         "kind": c.kind} for c in sheet.columns],
                            rows=rows, truncated=truncated, totals=sheet.totals))
    return out


@api.get("/reports/{kind}", response_model=ReportOut)
def report_json(kind: ReportKind, actor: ActorDep, session: SessionDep, clock: ClockDep, settings: SettingsDep,
                organisation_id: str | None = None, campaign_id: str | None = None, first: FromQuery = None,
                last: ToQuery = None, limit: Annotated[int, Query(ge=1, le=5000)] = PAGE_ROWS,
                lang: Literal["vi", "en"] = "vi") -> ReportOut:
    """A report's sheets as JSON, each cut at `limit` rows (the export has them all)."""
    refuse_campaign(kind, campaign_id)
    scope = scope_for(session, actor, clock, settings, organisation_id, campaign_id, first, last)
    check_report(kind, scope, clock.now(), settings.timezone)
    report = build_report(session, kind, scope, clock.now(), lang, settings.timezone,
                          settings.message_interval_days)
    return ReportOut(kind=kind, title=report.title, organisation=report.organisation, first=scope.first,
                     last=scope.last, notes=report.notes, sheets=sheets_out(report, limit))


@api.get("/reports/{kind}/export", response_class=StreamingResponse,
         responses={200: {"content": {t: {} for t in set(MEDIA_TYPES.values())}}})
def report_export(kind: ReportKind, request: Request, actor: ActorDep, session: SessionDep, clock: ClockDep,
                  settings: SettingsDep, format: Format = "csv", organisation_id: str | None = None,
                  campaign_id: str | None = None, first: FromQuery = None, last: ToQuery = None,
                  lang: Literal["vi", "en"] = "vi"):
    """The whole report as a file: CSV (UTF-8 with BOM), XLSX, PDF, or the log in the playout format."""
    if format == "playout" and kind != "pop":
        raise Problem(422, "the playout format is for the proof-of-play log: ask for /reports/pop/export")
    refuse_campaign(kind, campaign_id)
    scope = scope_for(session, actor, clock, settings, organisation_id, campaign_id, first, last)
    check_report(kind, scope, clock.now(), settings.timezone)
    return export_response(request, {"kind": kind, "scope": scope, "now": clock.now(), "language": lang,
                                     "timezone": settings.timezone,
                                     "message_interval_days": settings.message_interval_days}, format)


# -- pages ----------------------------------------------------------------------------------------------------

def scope_choices(session: Session, actor: Actor) -> tuple[list[Organisation], list[Campaign]]:
    organisations = session.scalars(select(Organisation).where(Organisation.id.in_(actor.org_ids()))
                                    .order_by(Organisation.path)).all()
    campaigns = [c for c in session.scalars(select(Campaign).order_by(Campaign.start_date.desc(), Campaign.id))
                 if visible_campaign(session, actor, c.id)]
    return list(organisations), campaigns


def sheet_pages(query: dict[str, str], sheets: list[SheetOut], offsets: list[int], page_rows: int) -> list[dict]:
    """Per sheet: the first row it shows and the links to its previous and next page, the other sheets staying
    where they are (a health page's "Now" and "By day" differ in length)."""
    offsets = [offsets[i] if i < len(offsets) else 0 for i in range(len(sheets))]

    def link(index: int, first: int) -> str:
        moved = [first if i == index else o for i, o in enumerate(offsets)]
        while moved and moved[-1] == 0:
            moved.pop()
        return "/reports?" + urlencode([*query.items(), *(("offset", o) for o in moved)])
    return [{"offset": offsets[i],
             "previous": link(i, max(offsets[i] - page_rows, 0)) if offsets[i] > 0 else None,
             "next": link(i, offsets[i] + page_rows) if sheet.truncated else None} for i, sheet in enumerate(sheets)]


@pages.get("/reports")
def reports_page(request: Request, actor: PageActorDep, session: SessionDep, clock: ClockDep, settings: SettingsDep,
                 language: LanguageDep, kind: ReportKind = "compliance", organisation_id: str | None = None,
                 campaign_id: str | None = None, first: FromQuery = None, last: ToQuery = None,
                 offset: Annotated[list[Annotated[int, Field(ge=0, le=10**9)]] | None, Query(
                     description="the first row shown of each sheet, in the sheets' order: each pages on its own")]
                 = None):
    offsets = offset or []
    organisations, campaigns = scope_choices(session, actor)
    page_rows = HEALTH_PAGE_ROWS if kind == "health" else PAGE_ROWS
    if kind in WITHOUT_CAMPAIGN:  # the form still sends the campaign chosen for another report
        campaign_id = None
    if campaign_id is None and kind == "compliance" and campaigns:
        campaign_id = campaigns[0].id
    error = None
    try:
        scope = scope_for(session, actor, clock, settings, organisation_id or None, campaign_id or None, first, last)
        check_report(kind, scope, clock.now(), settings.timezone)
    except Problem as exc:
        scope, error = None, str(exc.detail)
    except Refused as exc:
        scope, error = None, str(exc)
    report, sheets, summary = None, [], None
    if scope is not None:
        report = build_report(session, kind, scope, clock.now(), language, settings.timezone,
                              settings.message_interval_days)
        sheets = sheets_out(replace(report, sheets=[in_words(for_reading(s), language) for s in report.sheets]),
                            page_rows, offsets)
        if kind == "compliance":
            summary = report.sheets[0].totals  # the whole scope's figures: the by-unit sheet's totals
    query = {"kind": kind, "organisation_id": scope.organisation_id if scope else "", "campaign_id": campaign_id
             or "", "from": scope.first.isoformat() if scope else "", "to": scope.last.isoformat() if scope else ""}
    zone = ZoneInfo(settings.timezone)
    return render(request, "reports.html", {
        "kinds": KINDS, "kind": kind, "organisations": organisations, "campaigns": campaigns, "scope": scope,
        "report": report, "sheets": sheets, "summary": summary, "error": error, "query": query,
        "takes_campaign": kind not in WITHOUT_CAMPAIGN,
        "cause_words": lambda cause: cause_words(cause, language), "page_rows": page_rows,
        "pages": sheet_pages(query, sheets, offsets, page_rows),
        "local_time": lambda value: cell_text(LOCAL_TIME, value, language, zone)}, language, actor)


__all__ = ["api", "pages", "screen_days"]
