"""Sites and screens made, changed, moved and retired, over HTTP: the JSON API (POST /api/v1/sites, PATCH and
retire; the same for screens) and the web forms (/fleet/sites/new, /sites/{id}/edit, /fleet/screens/new,
/screens/{id}/edit, and their retire buttons).

Thin routes over campaigns/fleet_changes.py, which checks each change by the fleet file's rules, the user's scope
and who may, and writes its audit entry. The forms show their refusals with the field and its fix.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse
from pydantic import BaseModel, Field, StringConstraints
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from campaigns import fleet_changes as changes
from campaigns import fleet_view as fleet
from campaigns.access import Actor
from campaigns.kinds import Orientation, ScreenKind, SiteKind
from campaigns.models import Organisation, Screen, ScreenGroup, Site
from campaigns.schema_types import Slug, StrictModel
from campaigns.workflow import slug_from_name
from scheduler.web.auth import ActorDep, PageActorDep
from scheduler.web.deps import ClockDep, LanguageDep, SessionDep, SettingsDep, render
from scheduler.web.forms import FormDep
from scheduler.web.problems import status_of
from scheduler.web.routes.fleet import ScheduleBody, ScreenOut, SiteOut, Text, _missing_page, _screens_out
from signage.errors import NotFound, Refused

api = APIRouter(prefix="/api/v1", tags=["fleet"])
pages = APIRouter(include_in_schema=False)

Address = Annotated[str, StringConstraints(max_length=500)]
TimezoneName = Annotated[str, StringConstraints(max_length=64)]
GroupRefs = Annotated[list[Slug], Field(max_length=100)]
ResolutionText = Annotated[str, StringConstraints(max_length=16)]
AUDIENCE_HELP = ("travellers from abroad: a creative's language versions play in turn (Vietnamese first); null: "
                 "the site kind's default, true at airports and railway stations")
HOURS_HELP = ("a schedule maps day-specs (mon, mon-fri, daily; a later key overrides an earlier one) to windows "
              "\"HH:MM-HH:MM\", as in the fleet file; heads of unit set them")


# -- API: sites -------------------------------------------------------------------------------------------


class SiteCreate(StrictModel):
    """A site as the fleet file has it, checked by the file's rules; its kind's hours unless given."""

    id: Slug
    name: Text
    kind: SiteKind
    organisation_id: Slug = Field(description="the unit it belongs to, within your subtree")
    timezone: TimezoneName | None = Field(None, description="IANA name; left out: the server's")
    address: Address | None = None
    international_audience: bool | None = Field(None, description=AUDIENCE_HELP)
    operating_hours: ScheduleBody | None = Field(None, description=HOURS_HELP,
                                                 examples=[{"mon-fri": ["07:30-17:00"]}])
    peak_windows: ScheduleBody | None = Field(None, description=HOURS_HELP,
                                              examples=[{"mon-fri": ["08:00-11:00", "14:00-16:30"]}])


class SitePatch(StrictModel):
    """Fields left out stay as they are; null hours reset them to the site kind's defaults. A new
    `organisation_id` moves the site (with its screens) to that unit of your subtree."""

    name: Text | None = None
    kind: SiteKind | None = None
    organisation_id: Slug | None = Field(None, description="moves the site to this unit of your subtree")
    timezone: TimezoneName | None = None
    address: Address | None = Field(None, description="null clears it")
    international_audience: bool | None = Field(None, description=AUDIENCE_HELP)
    operating_hours: ScheduleBody | None = Field(None, description=HOURS_HELP,
                                                 examples=[{"mon-fri": ["07:30-17:00"]}])
    peak_windows: ScheduleBody | None = Field(None, description=HOURS_HELP,
                                              examples=[{"mon-fri": ["08:00-11:00", "14:00-16:30"]}])


def _file_fields(body: BaseModel, fields: set[str]) -> dict[str, Any]:
    """A body's fields under the fleet file's names (organisation_id -> organisation, site_id -> site)."""
    values = body.model_dump(include=fields, mode="json")
    return {name.removesuffix("_id"): value for name, value in values.items()}


@api.post("/sites", response_model=SiteOut, status_code=201)
def add_site(body: SiteCreate, actor: ActorDep, session: SessionDep, clock: ClockDep,
             settings: SettingsDep) -> SiteOut:
    """A new site of a unit of your subtree (communications staff, heads of unit), checked as the fleet file is."""
    site = changes.create_site(session, actor, clock, settings.timezone, site_id=body.id,
                               values=_file_fields(body, body.model_fields_set - {"id"}))
    session.commit()
    return SiteOut.of(site)


@api.patch("/sites/{site_id}", response_model=SiteOut)
def change_site(site_id: str, body: SitePatch, actor: ActorDep, session: SessionDep, clock: ClockDep) -> SiteOut:
    """Its name, kind, timezone, address (communications staff, heads of unit), its move to another unit of your
    subtree, and its operating hours and peak windows (heads of unit), checked as the fleet file checks them; the
    screens' plans follow."""
    site = fleet.site_in_scope(session, actor, site_id)
    hours = body.model_fields_set & set(fleet.HOURS_FIELDS)
    others = body.model_fields_set - hours
    if others:
        changes.change_site(session, actor, clock, site, _file_fields(body, others))
    if hours:
        fleet.change_site_hours(session, actor, clock, site, body.model_dump(include=hours))
    session.commit()
    return SiteOut.of(site)


@api.post("/sites/{site_id}/retire", response_model=SiteOut)
def retire_site(site_id: str, actor: ActorDep, session: SessionDep, clock: ClockDep) -> SiteOut:
    """Out of use for good, with its screens: never planned again; its history and proof-of-play stay."""
    site = fleet.site_in_scope(session, actor, site_id)
    changes.retire_site(session, actor, clock, site)
    session.commit()
    return SiteOut.of(site)


# -- API: screens -----------------------------------------------------------------------------------------


class ScreenCreate(StrictModel):
    """A screen (its id is its player's) as the fleet file has it, checked by the file's rules."""

    id: Slug
    site_id: Slug = Field(description="a site of your subtree")
    name: Text
    kind: ScreenKind
    resolution: ResolutionText | None = Field(None, description="WIDTHxHEIGHT; none for a loudspeaker",
                                              examples=["1920x1080"])
    orientation: Orientation | None = None
    groups: GroupRefs = Field(default_factory=list, description="groups of your subtree")
    enabled: bool = True


class ScreenPatch(StrictModel):
    """Fields left out stay as they are. A new `site_id` moves the screen to that site of your subtree."""

    name: Text | None = None
    kind: ScreenKind | None = None
    site_id: Slug | None = Field(None, description="moves the screen to this site of your subtree")
    resolution: ResolutionText | None = Field(None, description="null clears it (a loudspeaker has none)")
    orientation: Orientation | None = Field(None, description="null clears it")
    groups: GroupRefs | None = Field(None, description="the groups you see it in; groups of units above yours "
                                                       "keep it")
    enabled: bool | None = Field(None, description="false: kept but not planned")


@api.post("/screens", response_model=ScreenOut, status_code=201)
def add_screen(body: ScreenCreate, actor: ActorDep, session: SessionDep, clock: ClockDep) -> ScreenOut:
    """A new screen at a site of your subtree (communications staff, heads of unit), checked as the fleet file is;
    planned from the next round."""
    screen = changes.create_screen(session, actor, clock, screen_id=body.id,
                                   values=_file_fields(body, set(ScreenCreate.model_fields) - {"id"}))
    session.commit()
    return _screens_out(session, actor, [screen], clock.now())[0]


@api.patch("/screens/{screen_id}", response_model=ScreenOut)
def change_screen(screen_id: str, body: ScreenPatch, actor: ActorDep, session: SessionDep,
                  clock: ClockDep) -> ScreenOut:
    """Its name, kind, resolution, orientation, groups, whether it is in use (a disabled screen gets no plan), or
    its move to another site (re-planned there); communications staff and heads of unit."""
    screen = fleet.screen_in_scope(session, actor, screen_id)
    changes.change_screen(session, actor, clock, screen, _file_fields(body, body.model_fields_set))
    session.commit()
    return _screens_out(session, actor, [screen], clock.now())[0]


@api.post("/screens/{screen_id}/retire", response_model=ScreenOut)
def retire_screen(screen_id: str, actor: ActorDep, session: SessionDep, clock: ClockDep) -> ScreenOut:
    """Out of use for good: never planned again; its history and proof-of-play stay."""
    screen = fleet.screen_in_scope(session, actor, screen_id)
    changes.retire_screen(session, actor, clock, screen)
    session.commit()
    return _screens_out(session, actor, [screen], clock.now())[0]


# -- pages ------------------------------------------------------------------------------------------------

FORM_TEXT = 255  # what a form field may hold before the rules see it


def _text(form: FormData, name: str) -> str:
    return str(form.get(name) or "").strip()[:FORM_TEXT]


def _form_page(request: Request, template: str, context: dict[str, Any], language: str, actor: Actor,
               error: Refused | None = None):
    """The form, again with the refusal when there is one: its fields, problems and fixes, and its status."""
    problems = (error.details.get("errors") or [{"field": "", "problem": error.problem, "fix": error.fix}]
                if error else [])
    response = render(request, template, {**context, "problems": problems}, language, actor)
    if error is not None:
        response.status_code = status_of(error)
    return response


def _units(session: Session, actor: Actor) -> list[Organisation]:
    return fleet.visible_organisations(session, actor)


def _site_form(session: Session, actor: Actor, site: Site | None, values: dict[str, str]) -> dict[str, Any]:
    return {"site": site, "values": values, "units": _units(session, actor), "site_kinds": list(SiteKind),
            "depth_of": lambda o: o.path.count("/") - actor.org_path.count("/")}


def _site_values(form: FormData) -> dict[str, str]:
    return {name: _text(form, name) for name in ("id", "name", "kind", "organisation", "address", "audience")}


def _audience(value: str) -> bool | None:
    """The form's audience choice: "international", "local", or "" for the site kind's default."""
    return {"international": True, "local": False}.get(value)


def _audience_choice(site: Site) -> str:
    return {True: "international", False: "local"}.get(site.international_audience, "")


@pages.get("/fleet/sites/new")
def new_site_page(request: Request, session: SessionDep, language: LanguageDep, actor: PageActorDep,
                  org: Annotated[str | None, Query(max_length=63)] = None):
    changes.require_fleet_editor(actor, "add sites")
    values = {"organisation": org or actor.user.organisation_id, "kind": SiteKind.ward_office.value}
    return render(request, "site_form.html", _site_form(session, actor, None, values), language, actor)


@pages.post("/fleet/sites/new")
def create_site_form(request: Request, session: SessionDep, clock: ClockDep, settings: SettingsDep,
                     language: LanguageDep, actor: PageActorDep, form: FormDep):
    values = _site_values(form)
    site_id = values["id"] or slug_from_name(values["name"])
    try:
        site = changes.create_site(session, actor, clock, settings.timezone, site_id=site_id, values={
            "name": values["name"], "kind": values["kind"], "organisation": values["organisation"],
            "address": values["address"] or None, "international_audience": _audience(values["audience"])})
    except Refused as exc:
        session.rollback()
        return _form_page(request, "site_form.html", _site_form(session, actor, None, values), language, actor, exc)
    session.commit()
    return RedirectResponse(f"/sites/{site.id}?saved=1", status_code=303)


@pages.get("/sites/{site_id}/edit")
def edit_site_page(site_id: str, request: Request, session: SessionDep, language: LanguageDep,
                   actor: PageActorDep):
    try:
        site = fleet.site_in_scope(session, actor, site_id)
    except NotFound:
        return _missing_page(request, language, actor)
    values = {"id": site.id, "name": site.name, "kind": site.kind.value, "organisation": site.organisation_id,
              "address": site.address or "", "audience": _audience_choice(site)}
    return render(request, "site_form.html", _site_form(session, actor, site, values), language, actor)


@pages.post("/sites/{site_id}/edit")
def save_site_form(site_id: str, request: Request, session: SessionDep, clock: ClockDep, language: LanguageDep,
                   actor: PageActorDep, form: FormDep):
    try:
        site = fleet.site_in_scope(session, actor, site_id)
    except NotFound:
        return _missing_page(request, language, actor)
    values = {**_site_values(form), "id": site.id}
    try:
        if form.get("action") == "retire":
            changes.retire_site(session, actor, clock, site)
            changed = True
        else:
            changed = changes.change_site(session, actor, clock, site, {
                "name": values["name"], "kind": values["kind"], "organisation": values["organisation"],
                "address": values["address"] or None, "international_audience": _audience(values["audience"])})
    except Refused as exc:
        session.rollback()
        return _form_page(request, "site_form.html", _site_form(session, actor, site, values), language, actor, exc)
    session.commit()
    return RedirectResponse(f"/sites/{site.id}?saved={int(changed)}", status_code=303)


def _screen_form(session: Session, actor: Actor, screen: Screen | None, values: dict[str, Any]) -> dict[str, Any]:
    sites = session.scalars(fleet.sites_query(actor).where(Site.retired_at.is_(None))).all()
    groups = session.scalars(select(ScreenGroup).where(ScreenGroup.organisation_id.in_(actor.org_ids()))
                             .order_by(ScreenGroup.name, ScreenGroup.id)).all()
    return {"screen": screen, "values": values, "sites": sites, "groups": groups, "screen_kinds": list(ScreenKind),
            "orientations": list(Orientation)}


def _screen_values(form: FormData) -> dict[str, Any]:
    values: dict[str, Any] = {name: _text(form, name)
                              for name in ("id", "name", "kind", "site", "resolution", "orientation")}
    values["groups"] = [str(g)[:63] for g in form.getlist("groups")][:100]
    values["enabled"] = form.get("enabled") == "yes"
    return values


def _screen_fields(values: dict[str, Any]) -> dict[str, Any]:
    """The form's values as the fleet file's fields: a loudspeaker's resolution and orientation left empty (the
    form keeps them for a screen)."""
    speaker = values["kind"] == ScreenKind.speaker.value
    return {"name": values["name"], "kind": values["kind"], "site": values["site"],
            "resolution": None if speaker else values["resolution"] or None,
            "orientation": None if speaker else values["orientation"] or None,
            "groups": values["groups"], "enabled": values["enabled"]}


@pages.get("/fleet/screens/new")
def new_screen_page(request: Request, session: SessionDep, language: LanguageDep, actor: PageActorDep,
                    site: Annotated[str | None, Query(max_length=63)] = None):
    changes.require_fleet_editor(actor, "add screens")
    values = {"site": site or "", "kind": ScreenKind.lcd.value, "resolution": "1920x1080",
              "orientation": Orientation.landscape.value, "groups": [], "enabled": True}
    return render(request, "screen_form.html", _screen_form(session, actor, None, values), language, actor)


@pages.post("/fleet/screens/new")
def create_screen_form(request: Request, session: SessionDep, clock: ClockDep, language: LanguageDep,
                       actor: PageActorDep, form: FormDep):
    values = _screen_values(form)
    values["enabled"] = True
    try:
        screen = changes.create_screen(session, actor, clock, screen_id=values["id"], values=_screen_fields(values))
    except Refused as exc:
        session.rollback()
        return _form_page(request, "screen_form.html", _screen_form(session, actor, None, values), language, actor,
                          exc)
    session.commit()
    return RedirectResponse(f"/screens/{screen.id}?saved=1", status_code=303)


@pages.get("/screens/{screen_id}/edit")
def edit_screen_page(screen_id: str, request: Request, session: SessionDep, language: LanguageDep,
                     actor: PageActorDep):
    try:
        screen = fleet.screen_in_scope(session, actor, screen_id)
    except NotFound:
        return _missing_page(request, language, actor)
    values = {"id": screen.id, "name": screen.name, "kind": screen.kind.value, "site": screen.site_id,
              "resolution": screen.resolution or "", "orientation": screen.orientation.value if screen.orientation
              else "", "groups": [g.id for g in fleet.visible_groups(session, actor, screen)],
              "enabled": screen.enabled}
    return render(request, "screen_form.html", _screen_form(session, actor, screen, values), language, actor)


@pages.post("/screens/{screen_id}/edit")
def save_screen_form(screen_id: str, request: Request, session: SessionDep, clock: ClockDep, language: LanguageDep,
                     actor: PageActorDep, form: FormDep):
    try:
        screen = fleet.screen_in_scope(session, actor, screen_id)
    except NotFound:
        return _missing_page(request, language, actor)
    values = {**_screen_values(form), "id": screen.id}
    try:
        if form.get("action") == "retire":
            changes.retire_screen(session, actor, clock, screen)
            changed = True
        else:
            changed = changes.change_screen(session, actor, clock, screen, _screen_fields(values))
    except Refused as exc:
        session.rollback()
        return _form_page(request, "screen_form.html", _screen_form(session, actor, screen, values), language,
                          actor, exc)
    session.commit()
    return RedirectResponse(f"/screens/{screen.id}?saved={int(changed)}", status_code=303)
