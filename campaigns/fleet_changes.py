"""Sites and screens made, changed, moved and retired by staff (the web UI and the API), by the fleet file's rules.

Each change is written as the fleet file would say it: the stored entry (campaigns/fleet_file.py `site_entry`,
`screen_entry`) with the change applied, checked by the file's own rules (campaigns/fleet_document.py
`checked_fleet`: the models, the references, a group's screens within its owner's subtree, a retired site's
screens retired) and written by the import's own functions (`upsert_sites`, `upsert_screens`). So whatever the
browser makes, `signage fleet export` writes and `signage fleet import` reads back unchanged.

Everything named goes through the actor's subtree (campaigns/fleet_view.py `*_in_scope`): another unit's site,
screen, organisation or group is `NotFound`, whatever the role. Who may do what is in one place, the `_may_*`
checks below. A change moves the planning revision by itself (campaigns/revision.py), so plans follow: a moved
screen is planned for its new site, a retired one is never planned again; its history and proof-of-play stay.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from campaigns.access import Actor
from campaigns.audit import record_change
from campaigns.fleet_document import FleetFile, checked_fleet
from campaigns.fleet_file import (
    FLEET_SCHEMA,
    ImportReport,
    known_fleet,
    screen_entry,
    site_entry,
    upsert_screens,
    upsert_sites,
)
from campaigns.fleet_view import group_in_scope, organisation_in_scope, require_hours_editor, site_in_scope
from campaigns.kinds import Role
from campaigns.models import Screen, Site
from campaigns.yaml_source import FileRejected, YamlDocument
from signage.clock import Clock
from signage.errors import Conflict, Invalid

# The API's names of the file's references.
API_FIELDS = {"organisation": "organisation_id", "site": "site_id"}
SITE_FIELDS = ("name", "kind", "organisation", "timezone", "address", "international_audience")
SCREEN_FIELDS = ("name", "kind", "site", "resolution", "orientation", "groups", "enabled")

# -- who may do what --------------------------------------------------------------------------------------

# The unit's communications staff and its head of unit run its sites and screens (admins may do everything within
# their subtree); managers take reports and change nothing here. A site's hours stay the head's to set
# (campaigns/fleet_view.py `require_hours_editor`).
FLEET_EDITORS = (Role.staff, Role.head)


def require_fleet_editor(actor: Actor, to: str) -> None:
    actor.require(*FLEET_EDITORS, to=to)


def _may_change(actor: Actor, kind: str, thing: Site | Screen, to: str) -> None:
    require_fleet_editor(actor, to)
    if thing.retired_at is not None:
        raise Conflict(f"the {kind} {thing.id!r} is retired and keeps its history unchanged",
                       f"add a new {kind} instead")


def may_manage_fleet(actor: Actor) -> bool:
    """Whether the actor may add, change, move and retire sites and screens (for showing the buttons that work)."""
    return actor.has_role(*FLEET_EDITORS)


# -- the file's rules -------------------------------------------------------------------------------------


def _field_of(path: str, section: str) -> str:
    """'sites[0].organisation' -> 'organisation_id'; a problem of another entry keeps its place."""
    own = path.removeprefix(f"{section}[0]").lstrip(".")
    if own == path:
        return path
    head, dot, rest = own.partition(".")
    name, bracket, index = head.partition("[")
    return f"{API_FIELDS.get(name, name)}{bracket}{index}{dot}{rest}"


def _checked(session: Session, section: str, entries: Iterable[dict[str, Any]],
             screens: Iterable[dict[str, Any]] = ()) -> FleetFile:
    """`entries` (the first is the one asked about) as a fleet file, checked by its rules; or Invalid naming each
    field with its problem and fix."""
    data: dict[str, Any] = {"schema": FLEET_SCHEMA, section: list(entries)}
    if section == "sites":
        data["screens"] = list(screens)
    try:
        return checked_fleet(YamlDocument("request", data, {}), known_fleet(session))
    except FileRejected as rejected:
        errors = [{"field": _field_of(p.path, section), "problem": p.message, "fix": p.fix}
                  for p in rejected.problems]
        raise Invalid("; ".join(f"{e['field']}: {e['problem']}" if e["field"] else e["problem"] for e in errors),
                      "; ".join(dict.fromkeys(e["fix"] for e in errors)), errors=errors) from None


def _refuse_nul(values: Mapping[str, Any]) -> None:
    # PostgreSQL cannot store NUL in text; refuse it with its field rather than fail on the write.
    for name, value in values.items():
        if isinstance(value, str) and "\x00" in value:
            raise Invalid(f"{API_FIELDS.get(name, name)} contains a NUL character", "remove it",
                          errors=[{"field": API_FIELDS.get(name, name), "problem": "a NUL character",
                                   "fix": "remove it"}])


def _entry(values: Mapping[str, Any]) -> dict[str, Any]:
    """The file's entry: fields given as None are left out, as a file leaves them out."""
    return {name: value for name, value in values.items() if value is not None}


def _written(session: Session, actor: Actor, clock: Clock, fleet: FleetFile, before: dict[str, Any] | None,
             action: str | None = None) -> bool:
    """The checked file's site (with its screens, as they were) or screen written by the import's own functions,
    and its audit entry when it changed: `action`, else a move when its place (organisation, site) changed, else
    an update."""
    if fleet.sites:
        kind, place = "site", "organisation"
        upsert_sites(session, fleet, ImportReport("request"), fleet.sites[0].timezone or "")
    else:
        kind, place = "screen", "site"
        upsert_screens(session, fleet, ImportReport("request"))
    session.flush()
    thing = session.get(Site if kind == "site" else Screen, (fleet.sites or fleet.screens)[0].id)
    session.expire(thing)  # its organisation or site, as the new key says
    after = site_entry(thing) if kind == "site" else screen_entry(thing)
    if after == before:
        return False
    if action is None:
        action = f"{kind}.move" if after[place] != before[place] else f"{kind}.update"
    organisation_id = thing.organisation_id if kind == "site" else thing.site.organisation_id
    record_change(session, actor, clock, action=action, entity_kind=kind, entity_id=thing.id,
                  organisation_id=organisation_id, before=before, after=after)
    return True


# -- sites ------------------------------------------------------------------------------------------------


def create_site(session: Session, actor: Actor, clock: Clock, default_timezone: str, *, site_id: str,
                values: Mapping[str, Any]) -> Site:
    """A new site of an organisation of the actor's subtree: `values` are the fleet file's fields of a site
    (name, kind, organisation, timezone, address, operating_hours, peak_windows); the kind's hours when none."""
    _refuse_nul(values)
    organisation_in_scope(session, actor, values.get("organisation") or "")
    require_fleet_editor(actor, "add sites")
    if values.get("operating_hours") is not None or values.get("peak_windows") is not None:
        require_hours_editor(actor)
    if session.get(Site, site_id) is not None:
        raise Conflict(f"the site id {site_id!r} is taken", "choose another")
    entry = _entry({**values, "id": site_id})
    entry.setdefault("timezone", default_timezone)
    fleet = _checked(session, "sites", [entry])
    _written(session, actor, clock, fleet, None, "site.create")
    return session.get(Site, site_id)


def change_site(session: Session, actor: Actor, clock: Clock, site: Site, changes: Mapping[str, Any]) -> bool:
    """The site's name, kind, timezone, address or audience, or its move to another organisation of the actor's subtree
    (`organisation`), checked as the fleet file is, with its screens (their groups must still hold them). Fields
    left out stay as they are. True when something changed."""
    _refuse_nul(changes)
    changes = {name: value for name, value in changes.items() if name in SITE_FIELDS}
    moving_to = changes.get("organisation")
    if moving_to is not None and moving_to != site.organisation_id:
        organisation_in_scope(session, actor, moving_to)
    _may_change(actor, "site", site, "change sites")
    before = site_entry(site)
    # A null address clears it; a null audience is the site kind's default.
    entry = {**before, **{name: value for name, value in changes.items()
                          if value is not None or name in ("address", "international_audience")}}
    fleet = _checked(session, "sites", [_entry(entry)], [_entry(screen_entry(s)) for s in site.screens])
    return _written(session, actor, clock, fleet, before)


def retire_site(session: Session, actor: Actor, clock: Clock, site: Site) -> None:
    """The site and its screens out of use for good: never planned again, their history and proof-of-play kept."""
    _may_change(actor, "site", site, "retire sites")
    now = clock.now()
    for screen in site.screens:
        if screen.retired_at is None:
            _retire_screen(session, actor, clock, screen, now)
    before = site_entry(site)
    fleet = _checked(session, "sites", [_entry({**before, "retired_at": now})],
                     [_entry(screen_entry(s)) for s in site.screens])
    _written(session, actor, clock, fleet, before, "site.retire")


# -- screens ----------------------------------------------------------------------------------------------


def _groups_in_scope(session: Session, actor: Actor, group_ids: Iterable[str]) -> list[str]:
    return [group_in_scope(session, actor, group_id).id for group_id in group_ids]


def create_screen(session: Session, actor: Actor, clock: Clock, *, screen_id: str,
                  values: Mapping[str, Any]) -> Screen:
    """A new screen (its player's id) at a site of the actor's subtree: `values` are the fleet file's fields of a
    screen (site, name, kind, resolution, orientation, groups, enabled)."""
    _refuse_nul(values)
    site_in_scope(session, actor, values.get("site") or "")
    _groups_in_scope(session, actor, values.get("groups") or ())
    require_fleet_editor(actor, "add screens")
    if session.get(Screen, screen_id) is not None:
        raise Conflict(f"the screen id {screen_id!r} is taken", "choose another")
    fleet = _checked(session, "screens", [_entry({**values, "id": screen_id})])
    _written(session, actor, clock, fleet, None, "screen.create")
    return session.get(Screen, screen_id)


def change_screen(session: Session, actor: Actor, clock: Clock, screen: Screen, changes: Mapping[str, Any]) -> bool:
    """The screen's name, kind, resolution, orientation, groups or whether it is in use, or its move to another site
    of the actor's subtree (`site`), checked as the fleet file is. `groups` are those the actor sees: groups of
    units above theirs that hold the screen keep it. Fields left out stay as they are; `resolution` and
    `orientation` given as None are cleared (a loudspeaker has neither). True when something changed."""
    _refuse_nul(changes)
    changes = {name: value for name, value in changes.items() if name in SCREEN_FIELDS}
    moving_to = changes.get("site")
    if moving_to is not None and moving_to != screen.site_id:
        site_in_scope(session, actor, moving_to)
    visible = set(_groups_in_scope(session, actor, changes.get("groups") or ()))
    _may_change(actor, "screen", screen, "change screens")
    before = screen_entry(screen)
    entry = {**before, **{name: value for name, value in changes.items()
                          if value is not None or name in ("resolution", "orientation")}}
    if "groups" in changes and changes["groups"] is not None:
        seen = {group.id for group in screen.groups if actor.sees_organisation(session, group.organisation_id)}
        entry["groups"] = sorted((set(before["groups"]) - seen) | visible)
    return _written(session, actor, clock, _checked(session, "screens", [_entry(entry)]), before)


def retire_screen(session: Session, actor: Actor, clock: Clock, screen: Screen) -> None:
    """The screen out of use for good: never planned again, its history and proof-of-play kept."""
    _may_change(actor, "screen", screen, "retire screens")
    _retire_screen(session, actor, clock, screen, clock.now())


def _retire_screen(session: Session, actor: Actor, clock: Clock, screen: Screen, now: datetime) -> None:
    before = screen_entry(screen)
    fleet = _checked(session, "screens", [_entry({**before, "retired_at": now})])
    _written(session, actor, clock, fleet, before, "screen.retire")


__all__ = ["FLEET_EDITORS", "change_screen", "change_site", "create_screen", "create_site", "may_manage_fleet",
           "require_fleet_editor", "retire_screen", "retire_site"]
