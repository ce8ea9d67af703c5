"""The fleet over HTTP: the JSON API for organisations, sites (with their peak windows), screens and groups, and
the web pages "Screens and sites" (/screens, /sites/{id}, /screens/{id}) and the fleet overview (/fleet).

Thin routes over campaigns/fleet_view.py (scoped queries and changes), campaigns/screen_state.py (each screen's
live state) and campaigns/timeline.py (today's plan as a picture).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse, RedirectResponse
from pydantic import AfterValidator, BaseModel, Field, StringConstraints
from sqlalchemy import select
from sqlalchemy.orm import Session

from campaigns import fleet_view as fleet
from campaigns.access import Actor
from campaigns.fleet_changes import may_manage_fleet
from campaigns.fleet_view import HoursRejected, fleet_overview
from campaigns.kinds import OrgKind, Orientation, Role, ScreenKind, SiteKind
from campaigns.message_rhythm import MAX_INTERVAL_DAYS, MIN_INTERVAL_DAYS, set_message_interval
from campaigns.models import Campaign, Organisation, Screen, ScreenGroup, Site, User
from campaigns.schema_types import Name, Slug, StrictModel
from campaigns.screen_state import STATES, ScreenState, ScreenStateName, playing_now, screen_state, screen_states
from campaigns.timeline import day_timeline, timeline_svg
from campaigns.windows import DAY_NAMES
from scheduler.plan_store import newest_body
from scheduler.players import active_credential
from scheduler.screen_actions import screenshot_path
from scheduler.web.auth import ActorDep, PageActorDep
from scheduler.web.deps import ClockDep, LanguageDep, SessionDep, SettingsDep, render
from scheduler.web.forms import FormDep
from scheduler.web.i18n import N_, translate
from scheduler.web.pagination import Page, PageDep, PageParams, paginate
from scheduler.web.routes.screen_actions import screen_actions_context
from signage.clock import local_date
from signage.errors import Invalid, NotFound
from signage.protocol import Plan

api = APIRouter(prefix="/api/v1", tags=["fleet"])
pages = APIRouter(include_in_schema=False)


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise Invalid("the text contains a NUL character", "remove it")
    return value


Text = Annotated[Name, AfterValidator(_no_nul)]
Search = Annotated[str | None, Query(max_length=100, pattern=r"^[^\x00]*$", description="part of an id or name")]
Retired = Annotated[bool | None, Query(description="true: only the retired; false: only those in use; left out: all")]
WindowText = Annotated[str, StringConstraints(max_length=32)]
ScheduleBody = Annotated[dict[Annotated[str, StringConstraints(max_length=16)],
                              Annotated[list[WindowText], Field(max_length=24)]], Field(max_length=16)]


# -- API: organisations -----------------------------------------------------------------------------------


class OrganisationOut(BaseModel):
    id: str
    name: str
    kind: OrgKind
    parent_id: str | None
    path: str
    alerts_need_approval: bool = Field(description="its staff's alerts go out once its head of unit approved them")
    message_interval_days: int | None = Field(description="days it may go without a regular message; null: its "
                                                          "nearest ancestor's, else the server's setting")

    @classmethod
    def of(cls, org: Organisation) -> OrganisationOut:
        return cls(id=org.id, name=org.name, kind=org.kind, parent_id=org.parent_id, path=org.path,
                   alerts_need_approval=bool(org.alerts_need_approval),
                   message_interval_days=org.message_interval_days)


class OrganisationCreate(StrictModel):
    id: Slug
    name: Text
    kind: OrgKind
    parent_id: Slug = Field(description="the organisation it belongs to, within your subtree")


class OrganisationPatch(StrictModel):
    """Fields left out stay as they are."""

    name: Text | None = Field(None, description="administrators only")
    alerts_need_approval: bool | None = Field(None, description="administrators, or the head of this very unit")
    message_interval_days: int | None = Field(
        None, ge=MIN_INTERVAL_DAYS, le=MAX_INTERVAL_DAYS,
        description="days it may go without a regular message; null: inherit (its managers and heads, or admins)")


@api.get("/organisations", response_model=Page[OrganisationOut])
def list_organisations(actor: ActorDep, session: SessionDep, page: PageDep, kind: OrgKind | None = None,
                       parent_id: Annotated[str | None, Query(max_length=63)] = None,
                       q: Search = None) -> Page[OrganisationOut]:
    """The organisations of your subtree (yours and those below it)."""
    parent = fleet.organisation_in_scope(session, actor, parent_id).id if parent_id is not None else None
    return paginate(session, fleet.organisations_query(actor, kind, parent, q), page, OrganisationOut.of)


@api.get("/organisations/{organisation_id}", response_model=OrganisationOut)
def get_organisation(organisation_id: str, actor: ActorDep, session: SessionDep) -> OrganisationOut:
    return OrganisationOut.of(fleet.organisation_in_scope(session, actor, organisation_id))


@api.post("/organisations", response_model=OrganisationOut, status_code=201)
def add_organisation(body: OrganisationCreate, actor: ActorDep, session: SessionDep,
                     clock: ClockDep) -> OrganisationOut:
    org = fleet.create_organisation(session, actor, clock, organisation_id=body.id, name=body.name,
                                    kind=body.kind, parent_id=body.parent_id)
    session.commit()
    return OrganisationOut.of(org)


@api.patch("/organisations/{organisation_id}", response_model=OrganisationOut)
def change_organisation(organisation_id: str, body: OrganisationPatch, actor: ActorDep, session: SessionDep,
                        clock: ClockDep) -> OrganisationOut:
    """Rename it (administrators), set whether its staff's alerts wait for its head's approval
    (administrators, or the head of this unit), or its interval between regular messages (its managers and heads,
    or administrators; 1–30 days, null to inherit)."""
    org = fleet.change_organisation(session, actor, clock, organisation_id, name=body.name,
                                    alerts_need_approval=body.alerts_need_approval)
    if "message_interval_days" in body.model_fields_set:  # null is a value here: inherit
        set_message_interval(session, actor, clock, organisation_id, body.message_interval_days)
    session.commit()
    return OrganisationOut.of(org)


# -- API: sites -------------------------------------------------------------------------------------------


class DayHoursOut(BaseModel):
    operating: list[str]
    peak: list[str]


class SiteOut(BaseModel):
    id: str
    name: str
    kind: SiteKind
    organisation_id: str
    timezone: str
    address: str | None
    screens: int
    operating_hours: dict[str, list[str]] | None = Field(description="as set for the site; null: the kind's defaults")
    peak_windows: dict[str, list[str]] | None = Field(description="as set for the site; null: the kind's defaults")
    week: dict[str, DayHoursOut] = Field(description="the effective hours of each weekday, mon..sun")
    international_audience: bool | None = Field(description="as set for the site; null: the kind's default")
    plays_language_versions: bool = Field(description="its audience is international (as set, else its kind's "
                                                      "default): a creative's language versions play in turn")
    retired_at: datetime | None = Field(description="when it was retired, with its screens; null: in use")

    @classmethod
    def of(cls, site: Site) -> SiteOut:
        return cls(id=site.id, name=site.name, kind=site.kind, organisation_id=site.organisation_id,
                   timezone=site.timezone, address=site.address, screens=len(site.screens), retired_at=site.retired_at,
                   operating_hours=site.operating_hours, peak_windows=site.peak_windows,
                   international_audience=site.international_audience,
                   plays_language_versions=site.effective_international_audience(),
                   week={d.day: DayHoursOut(operating=[str(w) for w in d.operating], peak=[str(w) for w in d.peak])
                         for d in fleet.week_of(site)})


@api.get("/sites", response_model=Page[SiteOut])
def list_sites(actor: ActorDep, session: SessionDep, page: PageDep,
               organisation_id: Annotated[str | None, Query(max_length=63, description="its whole subtree")] = None,
               kind: SiteKind | None = None, q: Search = None, retired: Retired = None) -> Page[SiteOut]:
    within = fleet.organisation_in_scope(session, actor, organisation_id) if organisation_id else None
    return paginate(session, fleet.sites_query(actor, within, kind, q, retired), page, SiteOut.of)


@api.get("/sites/{site_id}", response_model=SiteOut)
def get_site(site_id: str, actor: ActorDep, session: SessionDep) -> SiteOut:
    return SiteOut.of(fleet.site_in_scope(session, actor, site_id))


# -- API: screens -----------------------------------------------------------------------------------------


class CacheOut(BaseModel):
    ready: int | None
    missing: int | None
    bytes: int | None


class ScreenStateOut(BaseModel):
    state: ScreenStateName = Field(description="online: a status within 2 minutes saying so; offline: silent "
                                               "longer, or its Last Will; never: no status yet")
    last_seen: datetime | None
    plan_sent: str | None = Field(description="version of the newest plan published for the screen")
    plan_confirmed: str | None = Field(description="version of the plan the player says it holds")
    plan_current: bool | None
    now_playing: dict[str, Any] | None
    cache: CacheOut | None
    journal_backlog: int | None
    clock_offset_ms: int | None
    software_version: str | None
    refused: str | None

    @classmethod
    def of(cls, state: ScreenState) -> ScreenStateOut:
        cache = (CacheOut(ready=state.cache_ready, missing=state.cache_missing, bytes=state.cache_bytes)
                 if state.cache_missing is not None else None)
        return cls(state=state.state, last_seen=state.last_seen, plan_sent=state.plan_sent,
                   plan_confirmed=state.plan_confirmed, plan_current=state.plan_current, now_playing=state.now_playing,
                   cache=cache, journal_backlog=state.journal_backlog, clock_offset_ms=state.clock_offset_ms,
                   software_version=state.software_version, refused=state.refused)


class ScreenOut(BaseModel):
    id: str
    name: str
    kind: ScreenKind
    site_id: str
    site_kind: SiteKind
    organisation_id: str
    resolution: str | None
    orientation: Orientation | None
    enabled: bool
    retired_at: datetime | None = Field(description="when it was retired; null: in use")
    groups: list[str]
    state: ScreenStateOut


def _screens_out(session: Session, actor: Actor, screens: list[Screen], now: datetime) -> list[ScreenOut]:
    states = screen_states(session, [s.id for s in screens], now)
    groups = fleet.visible_group_ids(session, actor, [s.id for s in screens])
    return [ScreenOut(id=s.id, name=s.name, kind=s.kind, site_id=s.site_id, site_kind=s.site.kind,
                      organisation_id=s.site.organisation_id, resolution=s.resolution, orientation=s.orientation,
                      enabled=s.enabled, retired_at=s.retired_at, groups=groups[s.id],
                      state=ScreenStateOut.of(states[s.id])) for s in screens]


@api.get("/screens", response_model=Page[ScreenOut])
def list_screens(actor: ActorDep, session: SessionDep, clock: ClockDep, page: PageDep,
                 organisation_id: Annotated[str | None, Query(max_length=63, description="its whole subtree")] = None,
                 site_id: Annotated[str | None, Query(max_length=63)] = None, site_kind: SiteKind | None = None,
                 kind: ScreenKind | None = None, state: ScreenStateName | None = None,
                 q: Search = None, retired: Retired = None) -> Page[ScreenOut]:
    now = clock.now()
    within = fleet.organisation_in_scope(session, actor, organisation_id) if organisation_id else None
    site = fleet.site_in_scope(session, actor, site_id).id if site_id else None
    listed = paginate(session, fleet.screens_query(actor, now, within, site, site_kind, kind, state, q, retired), page,
                      lambda screen: screen)
    return Page(items=_screens_out(session, actor, listed.items, now), total=listed.total, limit=listed.limit,
                offset=listed.offset)


@api.get("/screens/{screen_id}", response_model=ScreenOut)
def get_screen(screen_id: str, actor: ActorDep, session: SessionDep, clock: ClockDep) -> ScreenOut:
    screen = fleet.screen_in_scope(session, actor, screen_id)
    return _screens_out(session, actor, [screen], clock.now())[0]


# -- API: groups ------------------------------------------------------------------------------------------


class GroupOut(BaseModel):
    id: str
    name: str
    organisation_id: str
    screens: list[str]

    @classmethod
    def of(cls, group: ScreenGroup) -> GroupOut:
        return cls(id=group.id, name=group.name, organisation_id=group.organisation_id,
                   screens=[s.id for s in group.screens])


ScreenIds = Annotated[list[Annotated[str, StringConstraints(max_length=63)]], Field(max_length=5000)]


class GroupCreate(StrictModel):
    id: Slug
    name: Text
    organisation_id: Slug = Field(description="the owner: campaigns of its subtree may target the group")
    screens: ScreenIds = Field(default_factory=list, description="screens of the owner's subtree")


class GroupPatch(StrictModel):
    name: Text | None = None
    screens: ScreenIds | None = Field(None, description="the whole new membership")


@api.get("/groups", response_model=Page[GroupOut])
def list_groups(actor: ActorDep, session: SessionDep, page: PageDep,
                organisation_id: Annotated[str | None, Query(max_length=63, description="its whole subtree")] = None,
                screen_id: Annotated[str | None, Query(max_length=63, description="groups holding it")] = None,
                q: Search = None) -> Page[GroupOut]:
    within = fleet.organisation_in_scope(session, actor, organisation_id) if organisation_id else None
    screen = fleet.screen_in_scope(session, actor, screen_id).id if screen_id else None
    return paginate(session, fleet.groups_query(actor, within, screen, q), page, GroupOut.of)


@api.get("/groups/{group_id}", response_model=GroupOut)
def get_group(group_id: str, actor: ActorDep, session: SessionDep) -> GroupOut:
    return GroupOut.of(fleet.group_in_scope(session, actor, group_id))


@api.post("/groups", response_model=GroupOut, status_code=201)
def add_group(body: GroupCreate, actor: ActorDep, session: SessionDep, clock: ClockDep) -> GroupOut:
    group = fleet.create_group(session, actor, clock, group_id=body.id, name=body.name,
                               organisation_id=body.organisation_id, screen_ids=body.screens)
    session.commit()
    return GroupOut.of(group)


@api.patch("/groups/{group_id}", response_model=GroupOut)
def change_group(group_id: str, body: GroupPatch, actor: ActorDep, session: SessionDep, clock: ClockDep) -> GroupOut:
    group = fleet.group_in_scope(session, actor, group_id)
    fleet.change_group(session, actor, clock, group, name=body.name, screen_ids=body.screens)
    session.commit()
    return GroupOut.of(group)


@api.delete("/groups/{group_id}", status_code=204)
def remove_group(group_id: str, actor: ActorDep, session: SessionDep, clock: ClockDep) -> None:
    group = fleet.group_in_scope(session, actor, group_id)
    fleet.delete_group(session, actor, clock, group)
    session.commit()


# -- pages ------------------------------------------------------------------------------------------------

SCREENS_PER_PAGE = 100


def _missing_page(request: Request, language: str, actor: Actor):
    response = render(request, "fleet_missing.html", {}, language, actor)
    response.status_code = 404
    return response


def _local_time(instant: datetime | None, timezone: str) -> str:
    return instant.astimezone(ZoneInfo(timezone)).strftime("%d/%m/%Y %H:%M:%S") if instant else "—"


@pages.get("/screens")
def screens_page(request: Request, session: SessionDep, clock: ClockDep, language: LanguageDep, actor: PageActorDep,
                 org: Annotated[str | None, Query(max_length=63)] = None, site_kind: SiteKind | None = None,
                 kind: ScreenKind | None = None, state: ScreenStateName | None = None,
                 q: Annotated[str | None, Query(max_length=100)] = None,
                 offset: Annotated[int, Query(ge=0, le=10**9)] = 0):
    now = clock.now()
    organisations = fleet.visible_organisations(session, actor)
    within = next((o for o in organisations if o.id == org), None)
    q = (q or "").replace("\x00", "").strip() or None
    listed = paginate(session, fleet.screens_query(actor, now, within, None, site_kind, kind, state, q),
                      PageParams(limit=SCREENS_PER_PAGE, offset=offset), lambda screen: screen)
    states = screen_states(session, [s.id for s in listed.items], now)
    filters = {"org": within.id if within else "", "site_kind": site_kind.value if site_kind else "",
               "kind": kind.value if kind else "", "state": state or "", "q": q or ""}
    return render(request, "screens.html", {
        "screens": listed.items, "total": listed.total, "offset": offset, "per_page": SCREENS_PER_PAGE,
        "states": states, "organisations": organisations, "filters": filters, "site_kinds": list(SiteKind),
        "screen_kinds": list(ScreenKind), "state_names": STATES, "local_time": _local_time,
        "depth_of": lambda o: o.path.count("/") - actor.org_path.count("/"), "can_manage": may_manage_fleet(actor),
    }, language, actor)


def _site_context(session: Session, actor: Actor, site: Site, now: datetime) -> dict[str, Any]:
    week = fleet.week_of(site)
    return {
        "site": site, "week": week, "can_edit": actor.has_role(Role.head), "can_manage": may_manage_fleet(actor),
        "texts": {"operating_hours": {d.day: ", ".join(str(w) for w in d.operating) for d in week},
                  "peak_windows": {d.day: ", ".join(str(w) for w in d.peak) for d in week}},
        "states": screen_states(session, [s.id for s in site.screens], now), "local_time": _local_time,
        "today": DAY_NAMES[local_date(now, site.timezone).weekday()], "errors": [], "notice": None,
    }


@pages.get("/sites/{site_id}")
def site_page(site_id: str, request: Request, session: SessionDep, clock: ClockDep, language: LanguageDep,
              actor: PageActorDep, saved: int | None = None):
    try:
        site = fleet.site_in_scope(session, actor, site_id)
    except NotFound:
        return _missing_page(request, language, actor)
    context = _site_context(session, actor, site, clock.now())
    if saved is not None:
        context["notice"] = N_("sitepage.saved") if saved else N_("sitepage.unchanged")
    return render(request, "site.html", context, language, actor)


@pages.post("/sites/{site_id}")
def save_site_hours(site_id: str, request: Request, session: SessionDep, clock: ClockDep, language: LanguageDep,
                    actor: PageActorDep, form: FormDep):
    try:
        site = fleet.site_in_scope(session, actor, site_id)
    except NotFound:
        return _missing_page(request, language, actor)
    fleet.require_hours_editor(actor)  # before the form's hours are read: a refusal, not their problems
    action = form.get("action", "save")
    texts = {field: {day: str(form.get(f"{field}.{day}", ""))[:200] for day in DAY_NAMES}
             for field in fleet.HOURS_FIELDS}
    try:
        if action == "reset_peak":
            changes: dict[str, Any] = {"peak_windows": None}
        elif action == "reset_operating":
            changes = {"operating_hours": None}
        else:
            changes = fleet.hours_from_form(site, texts)
        changed = fleet.change_site_hours(session, actor, clock, site, changes)
    except HoursRejected as exc:
        session.rollback()
        context = _site_context(session, actor, site, clock.now())
        if action == "save":
            context["texts"] = texts
        context["errors"] = exc.problems
        response = render(request, "site.html", context, language, actor)
        response.status_code = 422
        return response
    session.commit()
    return RedirectResponse(f"/sites/{site.id}?saved={int(changed)}", status_code=303)


@pages.get("/fleet")
def fleet_page(request: Request, session: SessionDep, clock: ClockDep, language: LanguageDep, actor: PageActorDep,
               org: str | None = None):
    root = org if org and actor.sees_organisation(session, org) else own_root(actor.user)
    overview = fleet_overview(session, clock, root)
    # A group of a unit above the user's is not theirs to know, even when it holds their screens.
    visible = set(session.scalars(actor.org_ids()))
    return render(request, "fleet.html", {"overview": overview, "visible_organisations": visible}, language, actor)


def own_root(user: User) -> str | None:
    """The top of what the user sees; None (everything) for a user of the city, the root organisation."""
    return user.organisation_id if user.organisation.parent_id is not None else None


@pages.get("/screens/{screen_id}")
def screen_page(screen_id: str, request: Request, session: SessionDep, clock: ClockDep, settings: SettingsDep,
                language: LanguageDep, actor: PageActorDep):
    try:
        screen = fleet.screen_in_scope(session, actor, screen_id)
    except NotFound:
        return _missing_page(request, language, actor)
    now = clock.now()
    state = screen_state(session, screen.id, now)
    timeline, svg, plan = None, None, None
    body = newest_body(session, screen.id)
    if body is not None:
        plan = Plan.model_validate_json(body)
        today = local_date(now, plan.timezone)
        timeline = day_timeline(plan, today)
        names = {campaign_id: name for campaign_id, name in session.execute(
            select(Campaign.id, Campaign.name).where(Campaign.id.in_(timeline.campaign_ids)))}
        labels = {key.removeprefix("timeline."): translate(key, language) for key in (
            N_("timeline.operating"), N_("timeline.peak"), N_("timeline.spots"), N_("timeline.legend_spots"),
            N_("timeline.now"))}
        title = translate("timeline.title", language)
        labels["title"] = f"{title} {today.strftime('%d/%m/%Y')} ({plan.timezone})"
        svg = timeline_svg(timeline, names, labels, now)
    return render(request, "screen.html", {
        "screen": screen, "state": state, "playing": playing_now(session, state.now_playing, plan),
        "groups": fleet.visible_groups(session, actor, screen), "can_manage": may_manage_fleet(actor),
        "timeline": timeline, "timeline_svg": svg, "plan": plan, "local_time": _local_time,
        "paired_player": active_credential(session, screen.id),
        **screen_actions_context(request, session, actor, screen, settings, now),
    }, language, actor)


@pages.get("/screens/{screen_id}/screenshot.png")
def screenshot(screen_id: str, request: Request, session: SessionDep, settings: SettingsDep, language: LanguageDep,
               actor: PageActorDep):
    try:
        screen = fleet.screen_in_scope(session, actor, screen_id)
    except NotFound:
        return _missing_page(request, language, actor)
    path = screenshot_path(settings.data_dir, screen.id)
    if not path.is_file():
        return _missing_page(request, language, actor)
    return FileResponse(path, media_type="image/png", headers={"Cache-Control": "no-store"})
