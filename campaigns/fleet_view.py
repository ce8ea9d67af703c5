"""The fleet as staff see it and change it: organisations, sites, screens and groups within one's subtree.

Every lookup and list here goes through the actor's organisation subtree: what lies outside is reported as
`NotFound`, exactly like what does not exist. Changes keep the fleet file's rules (campaigns/fleet_document.py,
campaigns/windows.py) and are written to the audit log with the values before and after. Changes to sites,
screens and groups move the planning revision by themselves (campaigns/revision.py), so plans follow.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import TypeAdapter, ValidationError
from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import Session, contains_eager, selectinload

from campaigns.access import Actor
from campaigns.audit import record_change
from campaigns.kinds import OrgKind, Role, ScreenKind, SiteKind, default_operating_hours, default_peak_windows
from campaigns.models import Campaign, CampaignTarget, Organisation, Screen, ScreenGroup, Site, screen_group_members
from campaigns.schema_types import SLUG_PATTERN, ScheduleSpec
from campaigns.screen_state import ScreenStateName, state_condition
from campaigns.windows import DAY_NAMES, WINDOW_FIX, WeekSchedule, Window
from scheduler.models import PlayerPresence
from signage.clock import Clock, local_date
from signage.errors import Conflict, Invalid, NotAllowed, NotFound
from signage.text import search_text

# -- the fleet page ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SiteRow:
    site: Site
    screens: int
    operating_today: str
    peak_today: str


@dataclass(frozen=True)
class FleetOverview:
    root: Organisation | None
    organisations: list[tuple[Organisation, int]]  # with depth below the shown root
    sites: list[SiteRow]
    screens: list[Screen]


def fleet_overview(session: Session, clock: Clock, root_id: str | None = None) -> FleetOverview:
    root = session.get(Organisation, root_id) if root_id else None
    prefix = root.path if root else "/"
    orgs = session.scalars(
        select(Organisation).where(Organisation.path.startswith(prefix, autoescape=True)).order_by(Organisation.path)
    ).all()
    base_depth = prefix.count("/") - (1 if root else 0)  # the shown root at depth 1, not 0
    org_ids = [o.id for o in orgs]
    sites = session.scalars(
        select(Site).join(Organisation).where(Site.organisation_id.in_(org_ids))
        .options(selectinload(Site.screens)).order_by(Organisation.path, Site.name)
    ).all()
    screens = session.scalars(
        select(Screen).join(Site).where(Site.organisation_id.in_(org_ids))
        .options(selectinload(Screen.groups), selectinload(Screen.site)).order_by(Screen.id)
    ).all()
    now = clock.now()
    rows = []
    for site in sites:
        today = local_date(now, site.timezone)
        rows.append(SiteRow(
            site=site, screens=len(site.screens),
            operating_today=", ".join(str(w) for w in site.effective_operating_hours().on(today)),
            peak_today=", ".join(str(w) for w in site.effective_peak_windows().on(today)),
        ))
    return FleetOverview(root, [(o, o.path.count("/") - base_depth) for o in orgs], rows, list(screens))


# -- scope ------------------------------------------------------------------------------------------------

_SLUG = re.compile(SLUG_PATTERN)

def _plausible(ref: str | None) -> bool:
    """Every id is a slug (the fleet file and the API make them so): anything else cannot exist, and is not
    worth a query (a NUL character would even upset PostgreSQL)."""
    return isinstance(ref, str) and _SLUG.match(ref) is not None


def visible_organisations(session: Session, actor: Actor) -> list[Organisation]:
    return list(session.scalars(select(Organisation).where(Organisation.id.in_(actor.org_ids()))
                                .order_by(Organisation.path)))


def organisation_in_scope(session: Session, actor: Actor, organisation_id: str) -> Organisation:
    org = session.get(Organisation, organisation_id) if _plausible(organisation_id) else None
    if org is None or not org.path.startswith(actor.org_path):
        raise NotFound("organisation", organisation_id)
    return org


def site_in_scope(session: Session, actor: Actor, site_id: str) -> Site:
    site = session.get(Site, site_id) if _plausible(site_id) else None
    if site is None or not site.organisation.path.startswith(actor.org_path):
        raise NotFound("site", site_id)
    return site


def screen_in_scope(session: Session, actor: Actor, screen_id: str) -> Screen:
    screen = session.get(Screen, screen_id) if _plausible(screen_id) else None
    if screen is None or not screen.site.organisation.path.startswith(actor.org_path):
        raise NotFound("screen", screen_id)
    return screen


def group_in_scope(session: Session, actor: Actor, group_id: str) -> ScreenGroup:
    group = session.get(ScreenGroup, group_id) if _plausible(group_id) else None
    if group is None or not actor.sees_organisation(session, group.organisation_id):
        raise NotFound("group", group_id)
    return group


def visible_groups(session: Session, actor: Actor, screen: Screen) -> list[ScreenGroup]:
    """A screen's groups that the actor may see: a group of a unit above theirs is not theirs to know."""
    visible = set(session.scalars(actor.org_ids()))
    return [group for group in screen.groups if group.organisation_id in visible]


def visible_group_ids(session: Session, actor: Actor, screen_ids: Iterable[str]) -> dict[str, list[str]]:
    """`visible_groups` of each of `screen_ids` (a page's worth), as ids in the order of `Screen.groups`."""
    groups: dict[str, list[str]] = {screen_id: [] for screen_id in screen_ids}
    if groups:
        member = screen_group_members.c
        for screen_id, group_id in session.execute(
                select(member.screen_id, member.group_id).join(ScreenGroup, ScreenGroup.id == member.group_id)
                .where(member.screen_id.in_(list(groups)), ScreenGroup.organisation_id.in_(actor.org_ids()))
                .order_by(ScreenGroup.id)):
            groups[screen_id].append(group_id)
    return groups


# -- lists ------------------------------------------------------------------------------------------------


def organisations_query(actor: Actor, kind: OrgKind | None = None, parent_id: str | None = None,
                        q: str | None = None) -> Select:
    query = select(Organisation).where(Organisation.id.in_(actor.org_ids())).order_by(Organisation.path)
    if kind is not None:
        query = query.where(Organisation.kind == kind)
    if parent_id is not None:
        query = query.where(Organisation.parent_id == parent_id)
    q = search_text(q)
    if q:
        query = query.where(or_(Organisation.id.icontains(q, autoescape=True),
                                Organisation.name.icontains(q, autoescape=True)))
    return query


def sites_query(actor: Actor, within: Organisation | None = None, kind: SiteKind | None = None,
                q: str | None = None, retired: bool | None = None) -> Select:
    """Sites of the actor's subtree; `within` narrows to that organisation's subtree; `retired` to the retired
    ones (True) or those in use (False)."""
    query = (select(Site).join(Organisation, Site.organisation_id == Organisation.id)
             .where(Site.organisation_id.in_(actor.org_ids())).order_by(Organisation.path, Site.name, Site.id))
    if within is not None:
        query = query.where(Organisation.path.startswith(within.path, autoescape=True))
    if kind is not None:
        query = query.where(Site.kind == kind)
    if retired is not None:
        query = query.where(Site.retired_at.is_not(None) if retired else Site.retired_at.is_(None))
    q = search_text(q)
    if q:
        query = query.where(or_(Site.id.icontains(q, autoescape=True), Site.name.icontains(q, autoescape=True),
                                Site.address.icontains(q, autoescape=True)))
    return query


def screens_query(actor: Actor, now: datetime, within: Organisation | None = None, site_id: str | None = None,
                  site_kind: SiteKind | None = None, kind: ScreenKind | None = None,
                  state: ScreenStateName | None = None, q: str | None = None, retired: bool | None = None) -> Select:
    query = (select(Screen).join(Site, Screen.site_id == Site.id)
             .join(Organisation, Site.organisation_id == Organisation.id)
             .where(Site.organisation_id.in_(actor.org_ids()))
             .options(contains_eager(Screen.site).contains_eager(Site.organisation))
             .order_by(Organisation.path, Site.name, Screen.id))
    if within is not None:
        query = query.where(Organisation.path.startswith(within.path, autoescape=True))
    if site_id is not None:
        query = query.where(Screen.site_id == site_id)
    if site_kind is not None:
        query = query.where(Site.kind == site_kind)
    if kind is not None:
        query = query.where(Screen.kind == kind)
    if retired is not None:
        query = query.where(Screen.retired_at.is_not(None) if retired else Screen.retired_at.is_(None))
    if state is not None:
        query = query.outerjoin(PlayerPresence, PlayerPresence.player_id == Screen.id).where(
            state_condition(state, now))
    q = search_text(q)
    if q:
        query = query.where(or_(Screen.id.icontains(q, autoescape=True), Screen.name.icontains(q, autoescape=True)))
    return query


def groups_query(actor: Actor, within: Organisation | None = None, screen_id: str | None = None,
                 q: str | None = None) -> Select:
    query = (select(ScreenGroup).join(Organisation, ScreenGroup.organisation_id == Organisation.id)
             .where(ScreenGroup.organisation_id.in_(actor.org_ids())).options(selectinload(ScreenGroup.screens))
             .order_by(ScreenGroup.id))
    if within is not None:
        query = query.where(Organisation.path.startswith(within.path, autoescape=True))
    if screen_id is not None:
        query = query.where(ScreenGroup.screens.any(Screen.id == screen_id))
    q = search_text(q)
    if q:
        query = query.where(or_(ScreenGroup.id.icontains(q, autoescape=True),
                                ScreenGroup.name.icontains(q, autoescape=True)))
    return query


# -- organisations ----------------------------------------------------------------------------------------


def create_organisation(session: Session, actor: Actor, clock: Clock, *, organisation_id: str, name: str,
                        kind: OrgKind, parent_id: str) -> Organisation:
    """A new organisation under one of the actor's subtree (never a second root); administrators only."""
    parent = organisation_in_scope(session, actor, parent_id)  # another unit's is not found, whatever the role
    actor.require(Role.admin, to="create organisations")
    if session.get(Organisation, organisation_id) is not None:
        raise Conflict(f"the organisation id {organisation_id!r} is taken", "choose another")
    org = Organisation(id=organisation_id, name=name, kind=kind, parent_id=parent.id,
                       path=f"{parent.path}{organisation_id}/")
    session.add(org)
    record_change(session, actor, clock, action="organisation.create", entity_kind="organisation",
                  entity_id=org.id, organisation_id=parent.id, after=_organisation_values(org))
    session.flush()
    return org


def rename_organisation(session: Session, actor: Actor, clock: Clock, org: Organisation, name: str) -> None:
    if org.name == name:
        return
    before = _organisation_values(org)
    org.name = name
    record_change(session, actor, clock, action="organisation.rename", entity_kind="organisation",
                  entity_id=org.id, organisation_id=org.id, before=before, after=_organisation_values(org))


def may_set_alert_approval(actor: Actor, org: Organisation) -> bool:
    """An admin (of a subtree holding it), or the head of unit of this very organisation."""
    return actor.role is Role.admin or (actor.role is Role.head and actor.user.organisation_id == org.id)


def change_organisation(session: Session, actor: Actor, clock: Clock, organisation_id: str, *,
                        name: str | None = None, alerts_need_approval: bool | None = None) -> Organisation:
    """Rename it (administrators), or set whether its staff's alerts wait for its head's approval (administrators,
    or the head of this unit); None leaves a field as it is. Both are checked before either is changed."""
    org = organisation_in_scope(session, actor, organisation_id)
    if name is not None:
        actor.require(Role.admin, to="rename organisations")
    if alerts_need_approval is not None and not may_set_alert_approval(actor, org):
        raise NotAllowed(f"your role ({actor.role.value}) may not set whether {org.id}'s alerts need approval",
                         f"it takes an admin account or the head of unit of {org.id}")
    if name is not None:
        rename_organisation(session, actor, clock, org, name)
    if alerts_need_approval is not None and alerts_need_approval != org.alerts_need_approval:
        before = {"alerts_need_approval": bool(org.alerts_need_approval)}
        org.alerts_need_approval = alerts_need_approval
        record_change(session, actor, clock, action="organisation.alerts_need_approval", entity_kind="organisation",
                      entity_id=org.id, organisation_id=org.id, before=before,
                      after={"alerts_need_approval": org.alerts_need_approval})
    return org


def _organisation_values(org: Organisation) -> dict[str, Any]:
    return {"name": org.name, "kind": org.kind.value, "parent_id": org.parent_id}


# -- site hours -------------------------------------------------------------------------------------------

HOURS_FIELDS = ("operating_hours", "peak_windows")
_SCHEDULE = TypeAdapter(ScheduleSpec)
_DAY_OF_PROBLEM = re.compile(r"^on (\w+) ")


@dataclass(frozen=True)
class HoursProblem:
    field: str  # operating_hours | peak_windows
    day: str | None  # the day-spec as written (mon, mon-fri, daily), when the problem is on one
    problem: str
    fix: str

    def __str__(self) -> str:
        where = f"{self.field} {self.day}" if self.day else self.field
        return f"{where}: {self.problem}; {self.fix}"


class HoursRejected(Invalid):
    """Operating hours or peak windows that break the fleet file's rules, each problem with its day and fix."""

    def __init__(self, problems: list[HoursProblem]) -> None:
        super().__init__("the hours are not valid: " + "; ".join(str(p) for p in problems),
                         "correct them and send them again", errors=[p.__dict__ for p in problems])
        self.problems = problems


@dataclass(frozen=True)
class DayHours:
    day: str  # mon..sun
    operating: tuple[Window, ...]
    peak: tuple[Window, ...]


def week_of(site: Site) -> list[DayHours]:
    """The site's effective hours, Monday first."""
    operating, peaks = site.effective_operating_hours(), site.effective_peak_windows()
    return [DayHours(name, operating.days[index], peaks.days[index]) for index, name in enumerate(DAY_NAMES)]


def _problem_of(error: ValidationError) -> tuple[str, str]:
    first = error.errors()[0]
    cause = first.get("ctx", {}).get("error")
    if isinstance(cause, Invalid):
        return cause.problem, cause.fix
    return first["msg"], WINDOW_FIX


def _checked_schedule(field: str, spec: Mapping[str, Any]) -> tuple[dict[str, list[str]] | None, list[HoursProblem]]:
    """The spec normalised as the fleet file stores it, or the problems of each day-spec in it."""
    problems = []
    for day_spec, windows in spec.items():
        try:
            _SCHEDULE.validate_python({day_spec: windows})
        except ValidationError as exc:
            problems.append(HoursProblem(field, str(day_spec), *_problem_of(exc)))
    if problems:
        return None, problems
    try:
        return _SCHEDULE.validate_python(dict(spec)), []
    except ValidationError as exc:
        return None, [HoursProblem(field, None, *_problem_of(exc))]


def checked_hours(kind: SiteKind, operating_hours: Mapping[str, Any] | None,
                  peak_windows: Mapping[str, Any] | None) -> tuple[dict | None, dict | None]:
    """Both schedules normalised (None stays None: the kind's defaults), or HoursRejected with every problem."""
    problems: list[HoursProblem] = []
    normalised: dict[str, dict | None] = {}
    for field, spec in (("operating_hours", operating_hours), ("peak_windows", peak_windows)):
        normalised[field] = None
        if spec is not None:
            normalised[field], found = _checked_schedule(field, spec)
            problems.extend(found)
    if problems:
        raise HoursRejected(problems)
    operating = (WeekSchedule.from_spec(normalised["operating_hours"]) if operating_hours is not None
                 else default_operating_hours(kind))
    peaks = (WeekSchedule.from_spec(normalised["peak_windows"]) if peak_windows is not None
             else default_peak_windows(kind))
    for message in peaks.problems_outside(operating):
        problem, _, fix = message.partition("; ")
        day = _DAY_OF_PROBLEM.match(problem)
        problems.append(HoursProblem("peak_windows", day[1] if day else None, problem, fix))
    if problems:
        raise HoursRejected(problems)
    return normalised["operating_hours"], normalised["peak_windows"]


def require_hours_editor(actor: Actor) -> None:
    """Heads of unit (and admins) set their sites' hours."""
    actor.require(Role.head, to="change a site's hours")


def change_site_hours(session: Session, actor: Actor, clock: Clock, site: Site,
                      changes: Mapping[str, Mapping[str, Any] | None]) -> bool:
    """Apply `changes` ({"operating_hours"|"peak_windows": spec, or None for the kind's defaults}; a field left
    out stays as it is), checked as the fleet file checks them; heads of unit and admins. True when something
    changed."""
    require_hours_editor(actor)
    wanted = {field: changes[field] if field in changes else getattr(site, field) for field in HOURS_FIELDS}
    operating, peaks = checked_hours(site.kind, wanted["operating_hours"], wanted["peak_windows"])
    before = {field: getattr(site, field) for field in HOURS_FIELDS}
    after = {"operating_hours": operating, "peak_windows": peaks}
    if after == before:
        return False
    site.operating_hours, site.peak_windows = operating, peaks
    record_change(session, actor, clock, action="site.hours", entity_kind="site", entity_id=site.id,
                  organisation_id=site.organisation_id, before=before, after=after)
    return True


def day_text_windows(text: str) -> list[str]:
    """'06:00-08:30, 16:30-19:00' -> ['06:00-08:30', '16:30-19:00'] (commas, semicolons or spaces between)."""
    return [piece for piece in re.split(r"[,;\s]+", text.strip()) if piece]


def hours_from_form(site: Site, texts: Mapping[str, Mapping[str, str]]) -> dict[str, dict[str, list[str]]]:
    """The editor's per-weekday texts ({"operating_hours": {"mon": "07:30-17:00", ...}, "peak_windows": ...})
    as changes for `change_site_hours`: a schedule that reads the same as the site's effective one is left
    out, so that saving the form unchanged does not pin the kind's defaults to the site."""
    problems: list[HoursProblem] = []
    changes = {}
    current = {"operating_hours": site.effective_operating_hours(), "peak_windows": site.effective_peak_windows()}
    for field in HOURS_FIELDS:
        spec = {day: day_text_windows(texts.get(field, {}).get(day, "")) for day in DAY_NAMES}
        normalised, found = _checked_schedule(field, spec)
        problems.extend(found)
        if normalised is not None and WeekSchedule.from_spec(normalised) != current[field]:
            changes[field] = normalised
    if problems:
        raise HoursRejected(problems)
    return changes


def site_values(site: Site) -> dict[str, Any]:
    return {field: getattr(site, field) for field in HOURS_FIELDS}


# -- screens ----------------------------------------------------------------------------------------------

# Who may act on the screens of their subtree from afar (a screenshot, reload the plan, sync media, restart
# playback): the units' communications staff and heads, and admins; managers read reports.
SCREEN_OPERATORS = (Role.staff, Role.head)


def may_operate_screens(actor: Actor) -> bool:
    return actor.has_role(*SCREEN_OPERATORS)


def require_screen_operator(actor: Actor) -> None:
    actor.require(*SCREEN_OPERATORS, to="act on screens (screenshot, reload, sync, restart)")



# -- groups -----------------------------------------------------------------------------------------------


GROUP_ROLES = (Role.staff,)  # and admins: who make and change groups of screens


def group_members(session: Session, actor: Actor, owner: Organisation, screen_ids: Iterable[str]) -> list[Screen]:
    """The screens for a group of `owner`: each within the actor's reach (else NotFound), and within the owner's
    subtree, as the fleet file requires (else Invalid): a group must not reach screens its owner could not
    target one by one."""
    screens = []
    for screen_id in sorted(set(screen_ids)):
        screen = screen_in_scope(session, actor, screen_id)
        if not screen.site.organisation.path.startswith(owner.path):
            raise Invalid(f"the screen {screen_id!r} is at a site of {screen.site.organisation_id!r}, outside the "
                          f"group owner {owner.id!r}'s organisations",
                          f"choose screens of {owner.id!r}'s own sites, or give the group to an organisation "
                          "above both")
        screens.append(screen)
    return screens


def _group_values(group: ScreenGroup) -> dict[str, Any]:
    return {"name": group.name, "organisation_id": group.organisation_id, "screens": [s.id for s in group.screens]}


def create_group(session: Session, actor: Actor, clock: Clock, *, group_id: str, name: str, organisation_id: str,
                 screen_ids: Iterable[str]) -> ScreenGroup:
    owner = organisation_in_scope(session, actor, organisation_id)
    actor.require(*GROUP_ROLES, to="create groups of screens")
    members = group_members(session, actor, owner, screen_ids)
    if session.get(ScreenGroup, group_id) is not None:
        raise Conflict(f"the group id {group_id!r} is taken", "choose another")
    group = ScreenGroup(id=group_id, name=name, organisation_id=owner.id, screens=members)
    session.add(group)
    record_change(session, actor, clock, action="group.create", entity_kind="group", entity_id=group.id,
                  organisation_id=owner.id, after=_group_values(group))
    session.flush()
    return group


def change_group(session: Session, actor: Actor, clock: Clock, group: ScreenGroup, *, name: str | None = None,
                 screen_ids: Iterable[str] | None = None) -> bool:
    actor.require(*GROUP_ROLES, to="change groups of screens")
    owner = session.get(Organisation, group.organisation_id)
    before = _group_values(group)
    members = group_members(session, actor, owner, screen_ids) if screen_ids is not None else None
    if name is not None:
        group.name = name
    if members is not None and [s.id for s in members] != before["screens"]:
        group.screens = members
    after = _group_values(group)
    if after == before:
        return False
    record_change(session, actor, clock, action="group.update", entity_kind="group", entity_id=group.id,
                  organisation_id=group.organisation_id, before=before, after=after)
    return True


def delete_group(session: Session, actor: Actor, clock: Clock, group: ScreenGroup) -> None:
    """Refused while campaigns target the group: deleting it would silently take screens off them."""
    actor.require(*GROUP_ROLES, to="delete groups of screens")
    targeting = session.scalars(select(Campaign.id).join(CampaignTarget, CampaignTarget.campaign_id == Campaign.id)
                                .where(CampaignTarget.kind == "group", CampaignTarget.ref == group.id)
                                .where(Campaign.organisation_id.in_(actor.org_ids())).order_by(Campaign.id)).all()
    others = session.scalar(select(func.count()).select_from(CampaignTarget).where(
        CampaignTarget.kind == "group", CampaignTarget.ref == group.id)) - len(targeting)
    if targeting or others:
        named = ", ".join(targeting) + (f" and {others} of other units" if others else "")
        raise Conflict(f"campaigns target the group {group.id!r} ({named.removeprefix(' and ')})",
                       "take it out of their targets first, or change its screens instead")
    record_change(session, actor, clock, action="group.delete", entity_kind="group", entity_id=group.id,
                  organisation_id=group.organisation_id, before=_group_values(group))
    session.delete(group)
