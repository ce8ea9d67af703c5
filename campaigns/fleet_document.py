"""What a fleet file `signage.fleet/1` may say: its pydantic models, and its checks against itself and the fleet
already stored. The one set of rules for importing a fleet file (campaigns/fleet_file.py) and for planning from
it without a database (scheduler/plan_files.py). No database here."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, Field, model_validator

from campaigns.kinds import (
    OrgKind,
    Orientation,
    ScreenKind,
    SiteKind,
    effective_operating_hours,
    effective_peak_windows,
)
from campaigns.org_paths import materialised_paths
from campaigns.schema_types import Name, Resolution, ScheduleSpec, Slug, StrictModel, Timezone
from campaigns.yaml_source import FileRejected, Problem, YamlDocument
from signage.errors import Invalid


class OrganisationIn(StrictModel):
    id: Slug
    name: Name
    kind: OrgKind
    parent: Slug | None = None
    # Whether the unit's staff's alerts wait for its head's approval; left out: as set in the web UI.
    alerts_need_approval: bool | None = None
    # Days it may go without a regular message (campaigns/message_rhythm.py); left out: as set in the web UI.
    message_interval_days: Annotated[int, Field(ge=1, le=30)] | None = None


class SiteIn(StrictModel):
    id: Slug
    name: Name
    kind: SiteKind
    organisation: Slug
    timezone: Timezone | None = None
    address: str | None = None
    operating_hours: ScheduleSpec | None = None
    peak_windows: ScheduleSpec | None = None
    # Whether its audience is international (a creative's language versions then play in turn); left out: its
    # kind's default (true at airports and railway stations).
    international_audience: bool | None = None
    # When it was retired (in the web UI, or here); left out: as stored. Its screens are retired with it.
    retired_at: AwareDatetime | None = None

    @model_validator(mode="after")
    def _peaks_inside_operating_hours(self) -> SiteIn:
        operating = effective_operating_hours(self.kind, self.operating_hours)
        problems = effective_peak_windows(self.kind, self.peak_windows).problems_outside(operating)
        if problems:
            first = problems[0]
            raise Invalid(first.split("; ")[0], first.split("; ")[1])
        return self


class ScreenIn(StrictModel):
    id: Slug
    site: Slug
    name: Name
    kind: ScreenKind
    resolution: Resolution | None = None
    orientation: Orientation | None = None
    groups: list[Slug] = Field(default_factory=list)
    enabled: bool = True
    # When it was retired (in the web UI, or here): never planned again; left out: as stored.
    retired_at: AwareDatetime | None = None

    @model_validator(mode="after")
    def _visual_screens_have_a_resolution(self) -> ScreenIn:
        if self.kind is ScreenKind.speaker:
            if self.resolution or self.orientation:
                raise Invalid("a speaker has no resolution or orientation", "remove them from this screen")
        elif self.resolution is None:
            raise Invalid(f"a {self.kind.value} screen needs its resolution", "add e.g. resolution: 1920x1080")
        return self

    @property
    def size(self) -> tuple[int, int] | tuple[None, None]:
        """Its resolution as (width, height) in pixels; (None, None) for a loudspeaker."""
        if not self.resolution:
            return None, None
        width, height = self.resolution.split("x")
        return int(width), int(height)


class GroupIn(StrictModel):
    id: Slug
    name: Name
    organisation: Slug


class FleetFile(StrictModel):
    schema_: Literal["signage.fleet/1"] = Field(alias="schema")
    organisations: list[OrganisationIn] = Field(default_factory=list)
    sites: list[SiteIn] = Field(default_factory=list)
    screens: list[ScreenIn] = Field(default_factory=list)
    groups: list[GroupIn] = Field(default_factory=list)


@dataclass(frozen=True)
class KnownFleet:
    """What is stored already, as far as a file's references are checked against it: each organisation's parent,
    each site's and each group's organisation, the retired sites. Empty for a file read on its own."""

    parents: Mapping[str, str | None] = field(default_factory=dict)
    site_organisations: Mapping[str, str] = field(default_factory=dict)
    group_organisations: Mapping[str, str] = field(default_factory=dict)
    retired_sites: frozenset[str] = frozenset()


def checked_fleet(document: YamlDocument, known: KnownFleet) -> FleetFile:
    """The file's fleet, checked against itself and `known`; or FileRejected with every problem found."""
    try:
        fleet = document.validate(FleetFile)
        problems = []
    except FileRejected as rejected:
        # Check references too, over what the file says, so that one run shows every problem.
        fleet, problems = _raw_view(document.data), rejected.problems
        if fleet is None:
            raise
    problems = problems + _check_references(document, fleet, known)
    if problems:
        raise FileRejected(document.filename, sorted(problems, key=lambda p: (p.line or 0, p.path)))
    return fleet


def organisation_parents(fleet: FleetFile, known: KnownFleet) -> dict[str, str | None]:
    """{organisation id: parent id} of the stored organisations, as the file leaves or moves them."""
    return {**known.parents, **{org.id: org.parent for org in fleet.organisations}}


def owning_organisations(fleet: FleetFile) -> Callable[[str, str], str | None]:
    """owner(kind, id): the organisation that owns an organisation, site, screen or group of the file, None if the
    file has no such thing; what campaigns.scope.owning_organisation answers from the database."""
    site_orgs = {site.id: site.organisation for site in fleet.sites}
    owners = {"organisation": {org.id: org.id for org in fleet.organisations}, "site": site_orgs,
              "screen": {screen.id: site_orgs[screen.site] for screen in fleet.screens},
              "group": {group.id: group.organisation for group in fleet.groups}}
    return lambda kind, ref: owners[kind].get(ref)


def _raw_view(data: Any) -> Any:
    """The file's ids and references as attributes, for reference checks on a file that failed validation."""
    if not isinstance(data, dict):
        return None
    fields = {"organisations": {"id": None, "parent": None}, "sites": {"id": None, "organisation": None},
              "screens": {"id": None, "site": None, "groups": []}, "groups": {"id": None, "organisation": None}}
    view = SimpleNamespace()
    for section, defaults in fields.items():
        items = data.get(section) or []
        if not isinstance(items, list):
            return None
        rows = []
        for item in items:
            item = item if isinstance(item, dict) else {}
            row = {name: item.get(name, default) for name, default in defaults.items()}
            if not all(isinstance(v, str) or v is None for k, v in row.items() if k != "groups"):
                row = dict(defaults)
            if "groups" in row and not isinstance(row["groups"], list):
                row["groups"] = []
            rows.append(SimpleNamespace(**row))
        setattr(view, section, rows)
    return view


def _check_references(doc: YamlDocument, fleet: FleetFile, known: KnownFleet) -> list[Problem]:
    problems: list[Problem] = []

    def unique(section: str, items: list[Any]) -> None:
        seen: dict[str, int] = {}
        for index, item in enumerate(items):
            if item.id in seen:
                problems.append(doc.problem((section, index, "id"), f"the id {item.id!r} appears twice in {section}",
                                            f"give each entry its own id (the first is {section}[{seen[item.id]}])"))
            seen.setdefault(item.id, index)

    for section in ("organisations", "sites", "screens", "groups"):
        unique(section, getattr(fleet, section))

    org_ids = {o.id for o in fleet.organisations} | set(known.parents)
    site_ids = {s.id for s in fleet.sites} | set(known.site_organisations)
    group_ids = {g.id for g in fleet.groups} | set(known.group_organisations)

    def must_exist(path: tuple, ref: str | None, ids: set[str], what: str, section: str) -> None:
        if isinstance(ref, str) and ref not in ids:
            problems.append(doc.problem(path, f"no {what} has the id {ref!r}",
                                        f"add it under {section}, or correct the id"))

    for i, org in enumerate(fleet.organisations):
        if org.parent is not None:
            must_exist(("organisations", i, "parent"), org.parent, org_ids, "organisation", "organisations")
    for i, site in enumerate(fleet.sites):
        must_exist(("sites", i, "organisation"), site.organisation, org_ids, "organisation", "organisations")
    for i, group in enumerate(fleet.groups):
        must_exist(("groups", i, "organisation"), group.organisation, org_ids, "organisation", "organisations")
    for i, screen in enumerate(fleet.screens):
        must_exist(("screens", i, "site"), screen.site, site_ids, "site", "sites")
        for j, group_id in enumerate(screen.groups):
            must_exist(("screens", i, "groups", j), group_id, group_ids, "group", "groups")

    problems.extend(_parent_cycles(doc, fleet, known))
    problems.extend(_screens_of_retired_sites(doc, fleet, known))
    if not problems:
        problems.extend(_groups_outside_scope(doc, fleet, known))
    return problems


def _groups_outside_scope(doc: YamlDocument, fleet: FleetFile, known: KnownFleet) -> list[Problem]:
    """A group may only hold screens of its organisation's subtree: targeting a group must not reach
    screens that its owner could not target one by one."""
    paths = materialised_paths(organisation_parents(fleet, known))
    site_orgs = {**known.site_organisations, **{site.id: site.organisation for site in fleet.sites}}
    group_orgs = {**known.group_organisations, **{group.id: group.organisation for group in fleet.groups}}
    problems = []
    for i, screen in enumerate(fleet.screens):
        for j, group_id in enumerate(screen.groups):
            owner = group_orgs[group_id]
            if not paths[site_orgs[screen.site]].startswith(paths[owner]):
                problems.append(doc.problem(("screens", i, "groups", j),
                                            f"the group {group_id!r} belongs to {owner!r}, and this screen's site "
                                            f"is outside {owner!r}'s organisations",
                                            "give the group to an organisation above both, or leave it out"))
    return problems


def _screens_of_retired_sites(doc: YamlDocument, fleet: FleetFile, known: KnownFleet) -> list[Problem]:
    """A retired site holds only retired screens: none is planned there, and none is added or moved there."""
    retired = set(known.retired_sites) | {site.id for site in fleet.sites
                                          if getattr(site, "retired_at", None) is not None}
    return [doc.problem(("screens", i, "site"), f"the site {screen.site!r} is retired, and this screen is not",
                        "choose a site in use, or retire the screen too")
            for i, screen in enumerate(fleet.screens)
            if screen.site in retired and getattr(screen, "retired_at", None) is None]


def _parent_cycles(doc: YamlDocument, fleet: FleetFile, known: KnownFleet) -> list[Problem]:
    parents = organisation_parents(fleet, known)
    problems = []
    for index, org in enumerate(fleet.organisations):
        seen, current = {org.id}, org.parent
        while current is not None and current in parents:
            if current in seen:
                problems.append(doc.problem(("organisations", index, "parent"),
                                            f"{org.id!r} would be its own ancestor (through {current!r})",
                                            "choose a parent higher up the hierarchy"))
                break
            seen.add(current)
            current = parents[current]
    return problems


__all__ = ["FleetFile", "GroupIn", "KnownFleet", "OrganisationIn", "ScreenIn", "SiteIn", "checked_fleet",
           "organisation_parents", "owning_organisations"]
