"""Campaigns over HTTP: the JSON API (/api/v1/campaigns..., /api/v1/targets/count) and the staff pages (the
list, the wizard, the detail page with approval, overrides and the audit trail).

Thin: each route reads its input, calls campaigns/workflow.py or campaigns/overrides.py, commits, and answers.
The workflow's errors become problem+json (API: scheduler/web/problems.py) or the same page again with the
message (web).
"""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, HTTPException, Query, Request, Response
from fastapi import Path as PathParam
from fastapi.responses import RedirectResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from campaigns import overrides as override_rules
from campaigns import workflow
from campaigns.access import Actor
from campaigns.audit import full_names
from campaigns.campaign_file import TARGET_KINDS
from campaigns.kinds import CampaignStatus, MediaKind, WindowPolicy
from campaigns.models import AuditEntry, Campaign, FrequencyOverride
from campaigns.scope import is_within
from scheduler.demo import FILE_APPROVER
from scheduler.web.auth import ActorDep, PageActorDep
from scheduler.web.bodies import ReviewBody, TargetCountOut, TargetsBody
from scheduler.web.deps import ClockDep, LanguageDep, RowId, SessionDep, SettingsDep, render
from scheduler.web.forms import FormDep
from scheduler.web.i18n import N_
from scheduler.web.pagination import Page, PageDep, PageParams, paginate
from scheduler.web.problems import page_not_found, status_of
from signage.errors import Invalid, NotFound, Refused
from signage.text import NfcModel

api = APIRouter(prefix="/api/v1", tags=["campaigns"])
pages = APIRouter(include_in_schema=False)

STEPS = ("draft", "media", "targets", "dates", "frequency", "preview")
# -- API models ---------------------------------------------------------------------------------------------


class CreativeOut(BaseModel):
    position: int
    slot: int = Field(description="creatives of one slot are versions of one creative: one of them plays where it "
                                  "is due, by the screen's format and the site's audience")
    language: str | None = Field(description='the version\'s language ("vi", "en"...); null: for any audience')
    sha256: str
    kind: MediaKind
    mime: str
    duration_ms: int
    original_name: str


class OverrideOut(BaseModel):
    id: int
    organisation_id: str | None
    site_id: str | None
    plays_per_day: int
    set_by: str
    set_at: datetime
    reason: str

    @classmethod
    def of(cls, row: FrequencyOverride) -> OverrideOut:
        return cls(id=row.id, organisation_id=row.organisation_id, site_id=row.site_id,
                   plays_per_day=row.plays_per_day, set_by=row.set_by, set_at=row.set_at, reason=row.reason)


class RateOut(BaseModel):
    """What the screens of an override's place get: the planner's rate there, and whose override gives it."""

    override_id: int = Field(description="the place's own override")
    organisation_id: str | None
    site_id: str | None
    place_name: str
    plays_per_day: int = Field(description="the plays a day the place's screens get: the highest override that "
                                           "covers them, the place's own or a unit above's")
    raised_by: str = Field(description="the user name of whoever set the override that gives the rate")
    raised_by_name: str
    raised_for: str = Field(description="the name of the unit or site of the override that gives the rate")
    raised_at: datetime
    reason: str

    @classmethod
    def of(cls, rate: override_rules.UnitRate) -> RateOut:
        own, giver = rate.override.row, rate.raised_by
        return cls(override_id=own.id, organisation_id=own.organisation_id, site_id=own.site_id,
                   place_name=rate.override.place_name, plays_per_day=rate.plays_per_day,
                   raised_by=giver.row.set_by, raised_by_name=giver.set_by_name, raised_for=giver.place_name,
                   raised_at=giver.row.set_at, reason=giver.row.reason)


class CampaignOut(BaseModel):
    id: str
    name: str
    description: str | None
    organisation_id: str
    status: CampaignStatus
    start_date: date
    end_date: date
    plays_per_day: int
    window: WindowPolicy
    windows: dict[str, list[str]] | None
    priority: int
    creatives: list[CreativeOut]
    targets: TargetsBody
    overrides: list[OverrideOut] = Field(description="the overrides on the caller's unit's screens")
    rates: list[RateOut] = Field(description="the rate the place of each of `overrides` gets, and who raised it "
                                             "(and the caller's own unit's, when a unit above raised it); every "
                                             "other screen gets plays_per_day")
    owned: bool = Field(description="false for a higher unit's campaign seen because it plays on the caller's "
                                    "screens: it may be read, and its frequency raised by heads, not changed")
    created_by: str | None
    created_at: datetime
    updated_at: datetime
    submitted_by: str | None
    submitted_at: datetime | None
    approved_by: str | None
    approved_at: datetime | None
    review_note: str | None


class WarningOut(BaseModel):
    code: str
    message: str


class CampaignDetail(CampaignOut):
    actions: list[str] = Field(description="what the caller may do now: edit, media, submit, approve, reject, "
                                           "archive, override")
    screens: int = Field(description="enabled screens the targets hit now")
    speakers: int
    warnings: list[WarningOut]


class CampaignCreate(NfcModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(max_length=255)
    id: str | None = Field(None, max_length=63, description="made from the name when left out")
    organisation_id: str | None = Field(None, max_length=63, description="the owner; default the caller's unit")
    description: str | None = Field(None, max_length=10000)
    start_date: date | None = Field(None, description="default today")
    end_date: date | None = Field(None, description="default 30 days from the start, inclusive")
    plays_per_day: int = Field(10, description="the campaign file's rule: 1 to 1000")
    window: WindowPolicy = WindowPolicy.peak
    windows: dict[str, list[str]] | None = Field(None, description='for window "explicit": e.g. '
                                                                   '{"mon-fri": ["08:00-11:00"]}')
    priority: int = Field(0, description="0 to 100; higher is planned first")


class CampaignPatch(NfcModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(None, max_length=255)
    description: str | None = Field(None, max_length=10000)
    start_date: date | None = None
    end_date: date | None = None
    plays_per_day: int | None = None
    window: WindowPolicy | None = None
    windows: dict[str, list[str]] | None = None
    priority: int | None = None


class CreativeBody(NfcModel):
    model_config = ConfigDict(extra="forbid")
    sha256: str = Field(max_length=64, description="a media library item")
    duration_s: float | None = Field(None, description="display time of a still image; default 10 s")
    language: str | None = Field(None, max_length=8, description='its language ("vi", "en"...; null: any); left '
                                                                 "out: as it was. An item kept stays a version of "
                                                                 "its creative")


class VersionBody(NfcModel):
    model_config = ConfigDict(extra="forbid")
    sha256: str = Field(max_length=64, description="a media library item of your unit's subtree")
    language: str = Field(max_length=8, description='the version\'s language: "en", "zh", "ko", "ja"...')
    duration_s: float | None = Field(None, description="display time of a still image; default: the creative's")


class CreativesBody(NfcModel):
    model_config = ConfigDict(extra="forbid")
    creatives: list[CreativeBody] = Field(max_length=workflow.MAX_CREATIVES, description="in play order")


class OverrideBody(NfcModel):
    model_config = ConfigDict(extra="forbid")
    organisation_id: str | None = Field(None, max_length=63, description="the unit (with those below it); or site_id")
    site_id: str | None = Field(None, max_length=63)
    plays_per_day: int = Field(description="at least the campaign's own rate")
    reason: str = Field(max_length=override_rules.REASON_LIMIT)


class PreviewShortfall(BaseModel):
    site_id: str
    site_name: str
    date: date
    screens: int
    missing: int
    reason: str


class PreviewOut(BaseModel):
    campaign_id: str
    screens: int
    sites: int
    speakers: int
    plays_per_day: int
    highest_plays_per_day: int
    spots_per_day: int
    first_day: date | None
    last_day: date | None
    runs_beyond: bool
    shortfalls: list[PreviewShortfall]
    warnings: list[WarningOut]


class AuditOut(BaseModel):
    id: int
    at: datetime
    username: str
    organisation_id: str | None
    action: str
    entity_kind: str
    entity_id: str
    before: dict[str, Any] | None
    after: dict[str, Any] | None

    @classmethod
    def of(cls, row: AuditEntry) -> AuditOut:
        return cls(id=row.id, at=row.at, username=row.username, organisation_id=row.organisation_id,
                   action=row.action, entity_kind=row.entity_kind, entity_id=row.entity_id, before=row.before,
                   after=row.after)


def _owned(campaign: Campaign, actor: Actor) -> bool:
    return is_within(campaign.organisation.path, actor.org_path)


def campaign_out(session: Session, actor: Actor, campaign: Campaign, model: type[CampaignOut] = CampaignOut,
                 rates: list[override_rules.UnitRate] | None = None, **extra: Any) -> CampaignOut:
    """`rates`: the campaign's overrides the user sees, with their rates, when they were read for a whole page
    (`override_rules.unit_rates`)."""
    owned = _owned(campaign, actor)
    if rates is None:
        rates = override_rules.unit_rates(session, actor, [campaign])[campaign.id]
    return model(
        id=campaign.id, name=campaign.name, description=campaign.description,
        organisation_id=campaign.organisation_id, status=campaign.status, start_date=campaign.start_date,
        end_date=campaign.end_date, plays_per_day=campaign.plays_per_day, window=campaign.window_policy,
        windows=campaign.explicit_windows, priority=campaign.priority,
        creatives=[CreativeOut(position=c.position, slot=c.slot, language=c.language, sha256=c.media_sha256,
                               kind=c.media.kind, mime=c.media.mime, duration_ms=c.duration_ms,
                               original_name=c.media.original_name)
                   for c in campaign.creatives],
        targets=TargetsBody(**workflow.target_lists(campaign)),
        overrides=[OverrideOut.of(r.override.row) for r in rates if r.seen], rates=[RateOut.of(r) for r in rates],
        owned=owned, created_by=campaign.created_by, created_at=campaign.created_at,
        updated_at=campaign.updated_at, submitted_by=campaign.submitted_by, submitted_at=campaign.submitted_at,
        approved_by=campaign.approved_by, approved_at=campaign.approved_at, review_note=campaign.review_note,
        **extra)


def campaign_detail(session: Session, actor: Actor, campaign: Campaign) -> CampaignDetail:
    screens = workflow.campaign_screens(session, campaign)
    return campaign_out(
        session, actor, campaign, CampaignDetail,
        actions=workflow.allowed_actions(actor, campaign, _owned(campaign, actor)), screens=len(screens),
        speakers=sum(1 for s in screens if s.kind.value == "speaker"),
        warnings=[WarningOut(code=w.code, message=w.message) for w in workflow.campaign_warnings(campaign, screens)])


# -- API routes ---------------------------------------------------------------------------------------------

CampaignId = Annotated[str, PathParam(max_length=200, description="a campaign id")]
CreativePosition = Annotated[int, PathParam(ge=0, le=10_000, description="the creative's position in the campaign")]


@api.get("/campaigns", response_model=Page[CampaignOut])
def list_campaigns(actor: ActorDep, session: SessionDep, page: PageDep,
                   status: Annotated[list[CampaignStatus] | None, Query(description="any of these")] = None,
                   organisation_id: Annotated[str | None, Query(max_length=63,
                                                                description="that unit's subtree")] = None,
                   q: Annotated[str | None, Query(max_length=200, description="in id, name or description")] = None,
                   active_on: Annotated[date | None, Query(description="approved and running on this day")] = None,
                   ) -> Page[CampaignOut]:
    """The campaigns of the caller's subtree, and those of the units above that play on its screens."""
    query = workflow.campaigns_query(session, actor, statuses=status or (), organisation_id=organisation_id,
                                     q=q, active_on=active_on)
    listed = paginate(session, workflow.with_contents(query), page, lambda campaign: campaign)
    rates = override_rules.unit_rates(session, actor, listed.items)
    return Page(items=[campaign_out(session, actor, c, rates=rates[c.id]) for c in listed.items],
                total=listed.total, limit=listed.limit, offset=listed.offset)


@api.post("/campaigns", response_model=CampaignDetail, status_code=201)
def create_campaign(body: CampaignCreate, actor: ActorDep, session: SessionDep, clock: ClockDep,
                    settings: SettingsDep) -> CampaignDetail:
    """A new draft (staff, heads of unit)."""
    campaign = workflow.create_draft(
        session, actor, clock, settings.timezone, name=body.name, campaign_id=body.id,
        organisation_id=body.organisation_id, description=body.description, start_date=body.start_date,
        end_date=body.end_date, plays_per_day=body.plays_per_day, window=body.window, windows=body.windows,
        priority=body.priority)
    session.commit()
    return campaign_detail(session, actor, campaign)


@api.get("/campaigns/{campaign_id}", response_model=CampaignDetail)
def get_campaign(campaign_id: CampaignId, actor: ActorDep, session: SessionDep) -> CampaignDetail:
    campaign, _ = workflow.find_campaign(session, actor, campaign_id)
    return campaign_detail(session, actor, campaign)


@api.patch("/campaigns/{campaign_id}", response_model=CampaignDetail)
def change_campaign(campaign_id: CampaignId, body: CampaignPatch, actor: ActorDep, session: SessionDep,
                    clock: ClockDep, settings: SettingsDep) -> CampaignDetail:
    """Name, description, dates, frequency, window, priority. An approved campaign stays planned and is re-planned."""
    campaign = workflow.update_campaign(session, actor, clock, settings.timezone, campaign_id,
                                        body.model_dump(exclude_unset=True))
    session.commit()
    return campaign_detail(session, actor, campaign)


@api.put("/campaigns/{campaign_id}/targets", response_model=CampaignDetail)
def put_targets(campaign_id: CampaignId, body: TargetsBody, actor: ActorDep, session: SessionDep, clock: ClockDep,
                settings: SettingsDep) -> CampaignDetail:
    campaign = workflow.set_targets(session, actor, clock, settings.timezone, campaign_id, body.model_dump())
    session.commit()
    return campaign_detail(session, actor, campaign)


@api.put("/campaigns/{campaign_id}/creatives", response_model=CampaignDetail)
def put_creatives(campaign_id: CampaignId, body: CreativesBody, actor: ActorDep, session: SessionDep,
                  clock: ClockDep, settings: SettingsDep) -> CampaignDetail:
    languages = {c.sha256: c.language for c in body.creatives if "language" in c.model_fields_set}
    campaign = workflow.set_creatives(session, actor, clock, settings.timezone, campaign_id,
                                      [(c.sha256, c.duration_s) for c in body.creatives], languages)
    session.commit()
    return campaign_detail(session, actor, campaign)


@api.post("/campaigns/{campaign_id}/creatives/{position}/versions", response_model=CampaignDetail,
          status_code=201)
def add_language_version(campaign_id: CampaignId, position: CreativePosition, body: VersionBody, actor: ActorDep,
                         session: SessionDep, clock: ClockDep, settings: SettingsDep) -> CampaignDetail:
    """A version in another language of the creative at `position`: a play of any version is one play of the
    campaign; where a site's audience is international the versions play in turn, elsewhere the Vietnamese one."""
    campaign = workflow.add_language_version(session, actor, clock, settings.timezone, campaign_id, position,
                                             body.sha256, body.language, body.duration_s)
    session.commit()
    return campaign_detail(session, actor, campaign)


def _preview_out(preview: workflow.Preview) -> PreviewOut:
    return PreviewOut(
        campaign_id=preview.campaign_id, screens=preview.screens, sites=preview.sites, speakers=preview.speakers,
        plays_per_day=preview.plays_per_day, highest_plays_per_day=preview.highest_plays_per_day,
        spots_per_day=preview.spots_per_day, first_day=preview.first_day, last_day=preview.last_day,
        runs_beyond=preview.runs_beyond,
        shortfalls=[PreviewShortfall(**s.__dict__) for s in preview.shortfalls],
        warnings=[WarningOut(code=w.code, message=w.message) for w in preview.warnings])


@api.post("/campaigns/{campaign_id}/preview", response_model=PreviewOut)
def preview_campaign(campaign_id: CampaignId, actor: ActorDep, session: SessionDep, clock: ClockDep,
                     settings: SettingsDep) -> PreviewOut:
    """The capacity preview: screens hit, plays per day, and any shortfall by site and day (changes nothing)."""
    preview = workflow.preview(session, actor, clock, settings.timezone, campaign_id)
    session.rollback()
    return _preview_out(preview)


@api.post("/campaigns/{campaign_id}/submit", response_model=CampaignDetail)
def submit_campaign(campaign_id: CampaignId, actor: ActorDep, session: SessionDep, clock: ClockDep,
                    settings: SettingsDep) -> CampaignDetail:
    campaign = workflow.submit(session, actor, clock, settings.timezone, campaign_id)
    session.commit()
    return campaign_detail(session, actor, campaign)


@api.post("/campaigns/{campaign_id}/approve", response_model=CampaignDetail)
def approve_campaign(campaign_id: CampaignId, actor: ActorDep, session: SessionDep, clock: ClockDep,
                     settings: SettingsDep, body: ReviewBody | None = None) -> CampaignDetail:
    """A head of unit or manager of the owning unit (not the submitter) approves: scheduled, or active today."""
    campaign = workflow.approve(session, actor, clock, settings.timezone, campaign_id,
                                body.note if body else None)
    session.commit()
    return campaign_detail(session, actor, campaign)


@api.post("/campaigns/{campaign_id}/reject", response_model=CampaignDetail)
def reject_campaign(campaign_id: CampaignId, body: ReviewBody, actor: ActorDep, session: SessionDep,
                    clock: ClockDep) -> CampaignDetail:
    """Back to draft, with a note saying what to change (the note is required)."""
    campaign = workflow.reject(session, actor, clock, campaign_id, body.note)
    session.commit()
    return campaign_detail(session, actor, campaign)


@api.post("/campaigns/{campaign_id}/archive", response_model=CampaignDetail)
def archive_campaign(campaign_id: CampaignId, actor: ActorDep, session: SessionDep, clock: ClockDep,
                     ) -> CampaignDetail:
    """Drafts and ended campaigns only; the history stays."""
    campaign = workflow.archive(session, actor, clock, campaign_id)
    session.commit()
    return campaign_detail(session, actor, campaign)


@api.get("/campaigns/{campaign_id}/overrides", response_model=Page[OverrideOut])
def list_overrides(campaign_id: CampaignId, actor: ActorDep, session: SessionDep, page: PageDep,
                   ) -> Page[OverrideOut]:
    query = override_rules.overrides_query(session, actor, campaign_id)
    return paginate(session, query, page, OverrideOut.of)


@api.post("/campaigns/{campaign_id}/overrides", response_model=OverrideOut, status_code=201)
def set_override(campaign_id: CampaignId, body: OverrideBody, actor: ActorDep, session: SessionDep,
                 clock: ClockDep, settings: SettingsDep) -> OverrideOut:
    """A head of unit raises the rate on their unit's (or one of its sites') screens; the same place again
    changes that override."""
    row = override_rules.set_override(session, actor, clock, settings.timezone, campaign_id,
                                      organisation_id=body.organisation_id, site_id=body.site_id,
                                      plays_per_day=body.plays_per_day, reason=body.reason)
    session.commit()
    return OverrideOut.of(row)


@api.delete("/campaigns/{campaign_id}/overrides/{override_id}", status_code=204)
def remove_override(campaign_id: CampaignId, override_id: RowId, actor: ActorDep,
                    session: SessionDep, clock: ClockDep, settings: SettingsDep) -> Response:
    override_rules.remove_override(session, actor, clock, settings.timezone, campaign_id, override_id)
    session.commit()
    return Response(status_code=204)


@api.get("/campaigns/{campaign_id}/audit", response_model=Page[AuditOut])
def campaign_audit(campaign_id: CampaignId, actor: ActorDep, session: SessionDep, page: PageDep) -> Page[AuditOut]:
    """Who changed what and when, with the values before and after; newest first."""
    query = workflow.audit_query(session, actor, campaign_id)
    return paginate(session, query, page, AuditOut.of)


@api.get("/targets/count", response_model=TargetCountOut)
def count_targets(actor: ActorDep, session: SessionDep,
                  organisation_id: Annotated[str | None, Query(max_length=63,
                                                               description="the campaign's owner")] = None,
                  organisations: Annotated[list[str] | None, Query(max_length=500)] = None,
                  site_kinds: Annotated[list[str] | None, Query(max_length=50)] = None,
                  sites: Annotated[list[str] | None, Query(max_length=5000)] = None,
                  screens: Annotated[list[str] | None, Query(max_length=50000)] = None,
                  groups: Annotated[list[str] | None, Query(max_length=500)] = None) -> TargetCountOut:
    """How many enabled screens a targeting hits now (the wizard's live count); refs outside the owner: 422."""
    targets = {"organisations": organisations or [], "site_kinds": site_kinds or [], "sites": sites or [],
               "screens": screens or [], "groups": groups or []}
    count = workflow.count_targets(session, actor, organisation_id, targets)
    return TargetCountOut(**count.__dict__)


# -- pages --------------------------------------------------------------------------------------------------


def _page_campaign(session: Session, actor: Actor, campaign_id: str) -> tuple[Campaign, bool]:
    try:
        return workflow.find_campaign(session, actor, campaign_id)
    except NotFound as exc:
        raise page_not_found(exc) from None


def _redirect(path: str) -> RedirectResponse:
    return RedirectResponse(path, status_code=303)


def _with_status(response, status: int):
    response.status_code = status
    return response


@pages.get("/campaigns")
def campaigns_page(request: Request, session: SessionDep, settings: SettingsDep, actor: PageActorDep,
                   language: LanguageDep, status: str | None = None, q: str | None = None, offset: int = 0):
    statuses = [CampaignStatus(status)] if status in CampaignStatus.__members__ else []
    q = (q or "").replace("\x00", "")[:200] or None
    query = workflow.campaigns_query(session, actor, statuses=statuses, q=q)
    found = paginate(session, query, PageParams(limit=50, offset=max(0, min(offset, 10**9))), lambda c: c)
    return render(request, "campaigns.html", {
        "page": found, "rates": override_rules.unit_rates(session, actor, found.items),
        "zone": ZoneInfo(settings.timezone), "status": statuses[0].value if statuses else None, "q": q,
        "statuses": [s.value for s in CampaignStatus], "can_create": workflow.may_create(actor),
    }, language, actor)


def _json_text(value: dict[str, Any] | None) -> str:
    return json.dumps(value, ensure_ascii=False, indent=1) if value else ""


def _windows_text(windows: dict[str, list[str]] | None) -> str:
    return "\n".join(f"{days}: {', '.join(spans)}" for days, spans in (windows or {}).items())


def _windows_from_text(text: str) -> dict[str, list[str]]:
    windows: dict[str, list[str]] = {}
    for line in text.splitlines():
        days, _, spans = line.partition(":")
        if line.strip():
            windows[days.strip()] = [s.strip() for s in spans.split(",") if s.strip()]
    return windows


def _number(value: str | None) -> int | float | str | None:
    text = (value or "").strip()
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            continue
    return text or None


def _step_values(campaign: Campaign | None, form: FormData | None) -> dict[str, Any]:
    """The values a step's form shows: what was just sent (after an error), else the campaign's own."""
    if form is not None:
        values: dict[str, Any] = {key: form.get(key) for key in form}
        values["media"] = form.getlist("media")
        for kind in TARGET_KINDS:
            values[kind] = form.getlist(kind)
        return values
    if campaign is None:
        return {"window": WindowPolicy.peak.value}
    values = {"name": campaign.name, "description": campaign.description or "",
              "start_date": campaign.start_date.isoformat(), "end_date": campaign.end_date.isoformat(),
              "plays_per_day": campaign.plays_per_day, "window": campaign.window_policy.value,
              "windows": _windows_text(campaign.explicit_windows), "priority": campaign.priority,
              "media": [c.media_sha256 for c in campaign.creatives], **workflow.target_lists(campaign)}
    for creative in campaign.creatives:
        if creative.media.kind is MediaKind.image:
            values[f"duration_{creative.media_sha256}"] = f"{creative.duration_ms / 1000:g}"
        values[f"language_{creative.media_sha256}"] = creative.language or ""
    return values


def _version_of(campaign: Campaign) -> dict[str, str]:
    """Each version's sha256 -> the name of the creative it is a version of (its slot's first row)."""
    first = {}
    for creative in campaign.creatives:
        first.setdefault(creative.slot, creative.media.original_name)
    return {c.media_sha256: first[c.slot] for c in campaign.creatives if c.slot != c.position}


def _wizard(request: Request, session: Session, actor: Actor, clock, timezone: str, language: str,
            campaign: Campaign | None, step: str, *, form: FormData | None = None, error: str | None = None,
            status: int = 200):
    context: dict[str, Any] = {"campaign": campaign, "step": step, "steps": STEPS, "error": error,
                               "values": _step_values(campaign, form)}
    if campaign is None:
        context["owners"] = workflow.owner_choices(session, actor)
    else:
        context["actions"] = workflow.allowed_actions(actor, campaign, _owned(campaign, actor))
    if step == "media" and campaign is not None:
        chosen = list(context["values"].get("media") or [])
        # the chosen items first, in play order: the form sends them back in the order shown
        context["library"] = sorted(workflow.media_choices(session, actor),
                                    key=lambda a: chosen.index(a.sha256) if a.sha256 in chosen else len(chosen))
        context["version_of"] = _version_of(campaign)
    elif step == "targets" and campaign is not None:
        context["choices"] = workflow.target_choices(session, campaign.organisation_id)
        context["count"] = workflow.count_targets(session, actor, campaign.organisation_id, {
            kind: context["values"].get(kind) or [] for kind in TARGET_KINDS}) if form is None else None
    elif step == "preview" and campaign is not None:
        try:
            context["preview"] = workflow.preview(session, actor, clock, timezone, campaign.id)
        except Invalid as exc:
            context["preview_error"] = str(exc)
    return _with_status(render(request, "campaign_wizard.html", context, language, actor), status)


@pages.get("/campaigns/new")
def new_campaign_page(request: Request, session: SessionDep, clock: ClockDep, settings: SettingsDep,
                      actor: PageActorDep, language: LanguageDep):
    if not workflow.may_create(actor):
        raise HTTPException(403, "your role may not create campaigns; it takes a staff or head of unit account")
    return _wizard(request, session, actor, clock, settings.timezone, language, None, "draft")


@pages.post("/campaigns/new")
def create_campaign_form(request: Request, session: SessionDep, clock: ClockDep, settings: SettingsDep,
                         actor: PageActorDep, language: LanguageDep, form: FormDep):
    try:
        campaign = workflow.create_draft(
            session, actor, clock, settings.timezone, name=form.get("name") or "",
            campaign_id=(form.get("campaign_id") or "").strip() or None,
            organisation_id=form.get("organisation_id") or None, description=form.get("description") or None)
    except Refused as exc:
        session.rollback()
        return _wizard(request, session, actor, clock, settings.timezone, language, None, "draft", form=form,
                       error=str(exc), status=status_of(exc))
    session.commit()
    return _redirect(f"/campaigns/{campaign.id}/edit?step=media")


@pages.get("/campaigns/{campaign_id}/edit")
def edit_campaign_page(request: Request, campaign_id: str, session: SessionDep, clock: ClockDep,
                       settings: SettingsDep, actor: PageActorDep, language: LanguageDep, step: str = "draft"):
    campaign, owned = _page_campaign(session, actor, campaign_id)
    if "edit" not in workflow.allowed_actions(actor, campaign, owned):
        return _redirect(f"/campaigns/{campaign.id}")
    return _wizard(request, session, actor, clock, settings.timezone, language, campaign,
                   step if step in STEPS else "draft")


def _save_step(session: Session, actor: Actor, clock, timezone: str, campaign_id: str, step: str,
               form: FormData) -> None:
    if step == "draft":
        workflow.update_campaign(session, actor, clock, timezone, campaign_id, {
            "name": form.get("name") or "", "description": (form.get("description") or "").strip() or None})
    elif step == "media":
        chosen = form.getlist("media")
        workflow.set_creatives(session, actor, clock, timezone, campaign_id, [
            (sha, _number(form.get(f"duration_{sha}"))) for sha in chosen],
            {sha: (form.get(f"language_{sha}") or "").strip() or None for sha in chosen if f"language_{sha}" in form})
    elif step == "targets":
        workflow.set_targets(session, actor, clock, timezone, campaign_id,
                             {kind: form.getlist(kind) for kind in TARGET_KINDS})
    elif step == "dates":
        workflow.update_campaign(session, actor, clock, timezone, campaign_id, {
            "start_date": form.get("start_date") or None, "end_date": form.get("end_date") or None})
    elif step == "frequency":
        window = form.get("window") or WindowPolicy.peak.value
        workflow.update_campaign(session, actor, clock, timezone, campaign_id, {
            "plays_per_day": _number(form.get("plays_per_day")), "window": window,
            "windows": _windows_from_text(form.get("windows") or "") if window == WindowPolicy.explicit else None,
            "priority": _number(form.get("priority")) or 0})
    else:
        raise HTTPException(404, f"there is no step {step!r}; the steps are {', '.join(STEPS[:-1])}")


@pages.post("/campaigns/{campaign_id}/edit/media/version")
def add_version_form(request: Request, campaign_id: str, session: SessionDep, clock: ClockDep,
                     settings: SettingsDep, actor: PageActorDep, language: LanguageDep, form: FormDep):
    """The media step's form for a version of a creative in another language."""
    campaign, _ = _page_campaign(session, actor, campaign_id)
    try:
        position = _number(form.get("version_of"))
        if not isinstance(position, int):
            raise Invalid("no creative is chosen", "choose the creative this is a version of")
        workflow.add_language_version(session, actor, clock, settings.timezone, campaign.id, position,
                                      (form.get("version_media") or "").strip(), form.get("version_language") or "",
                                      _number(form.get("version_duration")))
    except Refused as exc:
        session.rollback()
        return _wizard(request, session, actor, clock, settings.timezone, language, campaign, "media",
                       error=str(exc), status=status_of(exc))
    session.commit()
    return _redirect(f"/campaigns/{campaign.id}/edit?step=media")


@pages.post("/campaigns/{campaign_id}/edit/{step}")
def save_step(request: Request, campaign_id: str, step: str, session: SessionDep, clock: ClockDep,
              settings: SettingsDep, actor: PageActorDep, language: LanguageDep, form: FormDep):
    campaign, _ = _page_campaign(session, actor, campaign_id)
    try:
        _save_step(session, actor, clock, settings.timezone, campaign.id, step, form)
    except Refused as exc:
        session.rollback()
        return _wizard(request, session, actor, clock, settings.timezone, language, campaign, step, form=form,
                       error=str(exc), status=status_of(exc))
    session.commit()
    following = STEPS[min(STEPS.index(step) + 1, len(STEPS) - 1)]
    return _redirect(f"/campaigns/{campaign.id}/edit?step={following}")


def _detail(request: Request, session: Session, actor: Actor, clock, timezone: str, language: str,
            campaign: Campaign, owned: bool, *, error: str | None = None, status: int = 200, done: str | None = None):
    actions = workflow.allowed_actions(actor, campaign, owned)
    screens = workflow.campaign_screens(session, campaign)
    context: dict[str, Any] = {
        "campaign": campaign, "owned": owned, "actions": actions, "error": error, "done": done,
        "screens": screens, "sites": len({s.site_id for s in screens}),
        "speakers": sum(1 for s in screens if s.kind.value == "speaker"),
        "warnings": workflow.campaign_warnings(campaign, screens),
        "rates": override_rules.unit_rates(session, actor, [campaign])[campaign.id], "zone": ZoneInfo(timezone),
        "audit": [(entry, _json_text(entry.before), _json_text(entry.after))
                  for entry in session.scalars(workflow.audit_query(session, actor, campaign.id).limit(200))],
        "windows_text": _windows_text(campaign.explicit_windows), "file_approver": FILE_APPROVER,
        "audit_words": AUDIT_WORDS,
    }
    context["people"] = full_names(session, [campaign.created_by, campaign.submitted_by, campaign.approved_by,
                                             *(entry.username for entry, _, _ in context["audit"])])
    if "override" in actions:
        context["places"] = override_rules.override_places(session, actor, campaign)
    if campaign.status is CampaignStatus.submitted and campaign.creatives and campaign.targets:
        context["preview"] = workflow.preview(session, actor, clock, timezone, campaign.id)
    return _with_status(render(request, "campaign_detail.html", context, language, actor), status)


DONE = {"saved", "submitted", "approved", "rejected", "archived", "override"}
# The audit trail's actions in words (campaigns/workflow.py and overrides.py record them).
AUDIT_WORDS = {
    "campaign.create": N_("audit.campaign.create"), "campaign.update": N_("audit.campaign.update"),
    "campaign.media": N_("audit.campaign.media"), "campaign.targets": N_("audit.campaign.targets"),
    "campaign.submit": N_("audit.campaign.submit"), "campaign.approve": N_("audit.campaign.approve"),
    "campaign.reject": N_("audit.campaign.reject"), "campaign.archive": N_("audit.campaign.archive"),
    "override.set": N_("audit.override.set"), "override.change": N_("audit.override.change"),
    "override.remove": N_("audit.override.remove"),
}


@pages.get("/campaigns/{campaign_id}")
def campaign_page(request: Request, campaign_id: str, session: SessionDep, clock: ClockDep, settings: SettingsDep,
                  actor: PageActorDep, language: LanguageDep, done: str | None = None):
    campaign, owned = _page_campaign(session, actor, campaign_id)
    return _detail(request, session, actor, clock, settings.timezone, language, campaign, owned,
                   done=done if done in DONE else None)


def _act(request: Request, session: Session, actor: Actor, clock, timezone: str, language: str, campaign_id: str,
         action, done: str, *, back_to_preview: bool = False):
    """Run a workflow action from a form: to the detail page when done, the same page with the error if not."""
    campaign, owned = _page_campaign(session, actor, campaign_id)
    try:
        action(campaign)
    except Refused as exc:
        session.rollback()
        if back_to_preview:
            return _wizard(request, session, actor, clock, timezone, language, campaign, "preview",
                           error=str(exc), status=status_of(exc))
        return _detail(request, session, actor, clock, timezone, language, campaign, owned, error=str(exc),
                       status=status_of(exc))
    session.commit()
    return _redirect(f"/campaigns/{campaign.id}?done={done}")


@pages.post("/campaigns/{campaign_id}/submit")
def submit_form(request: Request, campaign_id: str, session: SessionDep, clock: ClockDep, settings: SettingsDep,
                actor: PageActorDep, language: LanguageDep):
    return _act(request, session, actor, clock, settings.timezone, language, campaign_id,
                lambda c: workflow.submit(session, actor, clock, settings.timezone, c.id), "submitted",
                back_to_preview=True)


@pages.post("/campaigns/{campaign_id}/approve")
def approve_form(request: Request, campaign_id: str, session: SessionDep, clock: ClockDep, settings: SettingsDep,
                 actor: PageActorDep, language: LanguageDep, form: FormDep):
    return _act(request, session, actor, clock, settings.timezone, language, campaign_id,
                lambda c: workflow.approve(session, actor, clock, settings.timezone, c.id, form.get("note")),
                "approved")


@pages.post("/campaigns/{campaign_id}/reject")
def reject_form(request: Request, campaign_id: str, session: SessionDep, clock: ClockDep, settings: SettingsDep,
                actor: PageActorDep, language: LanguageDep, form: FormDep):
    return _act(request, session, actor, clock, settings.timezone, language, campaign_id,
                lambda c: workflow.reject(session, actor, clock, c.id, form.get("note")), "rejected")


@pages.post("/campaigns/{campaign_id}/archive")
def archive_form(request: Request, campaign_id: str, session: SessionDep, clock: ClockDep, settings: SettingsDep,
                 actor: PageActorDep, language: LanguageDep):
    return _act(request, session, actor, clock, settings.timezone, language, campaign_id,
                lambda c: workflow.archive(session, actor, clock, c.id), "archived")


@pages.post("/campaigns/{campaign_id}/overrides")
def override_form(request: Request, campaign_id: str, session: SessionDep, clock: ClockDep, settings: SettingsDep,
                  actor: PageActorDep, language: LanguageDep, form: FormDep):
    kind, _, ref = (form.get("place") or "").partition(":")

    def save(campaign: Campaign) -> None:
        override_rules.set_override(
            session, actor, clock, settings.timezone, campaign.id,
            organisation_id=ref if kind == "organisation" else None, site_id=ref if kind == "site" else None,
            plays_per_day=_number(form.get("plays_per_day")), reason=form.get("reason") or "")

    return _act(request, session, actor, clock, settings.timezone, language, campaign_id, save, "override")


@pages.post("/campaigns/{campaign_id}/overrides/{override_id}/remove")
def remove_override_form(request: Request, campaign_id: str, override_id: RowId, session: SessionDep,
                         clock: ClockDep, settings: SettingsDep, actor: PageActorDep, language: LanguageDep):
    def remove(campaign: Campaign) -> None:
        try:
            override_rules.remove_override(session, actor, clock, settings.timezone, campaign.id, override_id)
        except NotFound as exc:
            raise page_not_found(exc) from None

    return _act(request, session, actor, clock, settings.timezone, language, campaign_id, remove, "override")


__all__ = ["api", "pages"]
