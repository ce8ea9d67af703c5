"""The fleet file `signage.fleet/1`: organisations, sites, screens and groups; import and export.

An import is all-or-nothing: the whole file is checked, against itself and the database, before
anything is written, and then written in one transaction. Importing the same file twice changes
nothing the second time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Literal

import yaml
from pydantic import Field, model_validator
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from campaigns.kinds import (
    OrgKind,
    Orientation,
    ScreenKind,
    SiteKind,
    default_operating_hours,
    default_peak_windows,
)
from campaigns.models import Organisation, Screen, ScreenGroup, Site
from campaigns.schema_types import Name, Resolution, ScheduleSpec, Slug, StrictModel, Timezone
from campaigns.windows import WeekSchedule
from campaigns.yaml_source import FileRejected, Problem, YamlDocument
from signage.errors import Invalid

FLEET_SCHEMA = "signage.fleet/1"


class OrganisationIn(StrictModel):
    id: Slug
    name: Name
    kind: OrgKind
    parent: Slug | None = None
    # Whether the unit's staff's alerts wait for its head's approval; left out: as set in the web UI.
    alerts_need_approval: bool | None = None


class SiteIn(StrictModel):
    id: Slug
    name: Name
    kind: SiteKind
    organisation: Slug
    timezone: Timezone | None = None
    address: str | None = None
    operating_hours: ScheduleSpec | None = None
    peak_windows: ScheduleSpec | None = None

    @model_validator(mode="after")
    def _peaks_inside_operating_hours(self) -> SiteIn:
        operating = (WeekSchedule.from_spec(self.operating_hours) if self.operating_hours is not None
                     else default_operating_hours(self.kind))
        peaks = (WeekSchedule.from_spec(self.peak_windows) if self.peak_windows is not None
                 else default_peak_windows(self.kind))
        problems = peaks.problems_outside(operating)
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

    @model_validator(mode="after")
    def _visual_screens_have_a_resolution(self) -> ScreenIn:
        if self.kind is ScreenKind.speaker:
            if self.resolution or self.orientation:
                raise Invalid("a speaker has no resolution or orientation", "remove them from this screen")
        elif self.resolution is None:
            raise Invalid(f"a {self.kind.value} screen needs its resolution", "add e.g. resolution: 1920x1080")
        return self


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


@dataclass
class Counts:
    created: int = 0
    updated: int = 0
    unchanged: int = 0

    def add(self, outcome: str) -> None:
        setattr(self, outcome, getattr(self, outcome) + 1)


@dataclass
class ImportReport:
    file: str
    counts: dict[str, Counts] = field(default_factory=dict)

    def count(self, entity: str, outcome: str) -> None:
        self.counts.setdefault(entity, Counts()).add(outcome)

    @property
    def changed(self) -> bool:
        return any(c.created or c.updated for c in self.counts.values())

    def as_json(self) -> dict[str, Any]:
        return {"file": self.file, "changed": self.changed,
                "counts": {k: vars(v) for k, v in self.counts.items()}}


def read_fleet_file(path: Path) -> tuple[YamlDocument, FleetFile]:
    document = YamlDocument.load(path)
    return document, document.validate(FleetFile)


def import_fleet(session: Session, path: Path, default_timezone: str) -> ImportReport:
    """Upsert the fleet file into the database in the caller's transaction, or raise FileRejected.

    Sites that name no timezone get `default_timezone`.
    """
    document = YamlDocument.load(path)
    try:
        fleet = document.validate(FleetFile)
        problems = []
    except FileRejected as rejected:
        # Check references too, over what the file says, so that one run shows every problem.
        fleet, problems = _raw_view(document.data), rejected.problems
        if fleet is None:
            raise
    problems = problems + _check_references(session, document, fleet)
    if problems:
        raise FileRejected(document.filename, sorted(problems, key=lambda p: (p.line or 0, p.path)))
    report = ImportReport(document.filename)
    _upsert_organisations(session, fleet, report)
    _upsert_sites(session, fleet, report, default_timezone)
    _upsert_groups(session, fleet, report)
    _upsert_screens(session, fleet, report)
    session.flush()
    return report


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


def _check_references(session: Session, doc: YamlDocument, fleet: FleetFile) -> list[Problem]:
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

    def known(model: type, in_file: set[str]) -> set[str]:
        return in_file | set(session.scalars(select(model.id)))

    org_ids = known(Organisation, {o.id for o in fleet.organisations})
    site_ids = known(Site, {s.id for s in fleet.sites})
    group_ids = known(ScreenGroup, {g.id for g in fleet.groups})

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

    problems.extend(_parent_cycles(session, doc, fleet))
    if not problems:
        problems.extend(_groups_outside_scope(session, doc, fleet))
    return problems


def _groups_outside_scope(session: Session, doc: YamlDocument, fleet: FleetFile) -> list[Problem]:
    """A group may only hold screens of its organisation's subtree: targeting a group must not reach
    screens that its owner could not target one by one."""
    parents = {org.id: org.parent_id for org in session.scalars(select(Organisation))}
    parents.update({org.id: org.parent for org in fleet.organisations})
    paths = materialised_paths(parents)
    site_orgs = dict(session.execute(select(Site.id, Site.organisation_id)).all())
    site_orgs.update({site.id: site.organisation for site in fleet.sites})
    group_orgs = dict(session.execute(select(ScreenGroup.id, ScreenGroup.organisation_id)).all())
    group_orgs.update({group.id: group.organisation for group in fleet.groups})
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


def _parent_cycles(session: Session, doc: YamlDocument, fleet: FleetFile) -> list[Problem]:
    parents = {org.id: org.parent_id for org in session.scalars(select(Organisation))}
    parents.update({org.id: org.parent for org in fleet.organisations})
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


def _apply(row: Any, values: dict[str, Any]) -> bool:
    changed = False
    for name, value in values.items():
        if getattr(row, name) != value:
            setattr(row, name, value)
            changed = True
    return changed


def _upsert(session: Session, model: type, key: str, values: dict[str, Any], report: ImportReport,
            entity: str) -> Any:
    row = session.get(model, key)
    if row is None:
        row = model(id=key, **values)
        session.add(row)
        report.count(entity, "created")
    else:
        report.count(entity, "updated" if _apply(row, values) else "unchanged")
    return row


def _upsert_organisations(session: Session, fleet: FleetFile, report: ImportReport) -> None:
    parents = {org.id: org.parent_id for org in session.scalars(select(Organisation))}
    parents.update({org.id: org.parent for org in fleet.organisations})
    paths = materialised_paths(parents)
    # Parents first, so that every foreign key points at a row that is already there.
    for org in sorted(fleet.organisations, key=lambda o: paths[o.id].count("/")):
        values = {"name": org.name, "kind": org.kind, "parent_id": org.parent, "path": paths[org.id]}
        if org.alerts_need_approval is not None:
            values["alerts_need_approval"] = org.alerts_need_approval
        _upsert(session, Organisation, org.id, values, report, "organisations")
    in_file = {org.id for org in fleet.organisations}
    for row in session.scalars(select(Organisation).where(Organisation.id.not_in(in_file))):
        if row.path != paths[row.id]:  # moved along with an ancestor that the file moved
            row.path = paths[row.id]
            report.count("organisations", "updated")
    session.flush()


def materialised_paths(parents: dict[str, str | None]) -> dict[str, str]:
    """{id: parent id} -> {id: "/root/.../id/"}; the caller has ruled out cycles."""
    paths: dict[str, str] = {}

    def path_of(org_id: str) -> str:
        if org_id not in paths:
            parent = parents[org_id]
            paths[org_id] = f"{path_of(parent) if parent else '/'}{org_id}/"
        return paths[org_id]

    for org_id in parents:
        path_of(org_id)
    return paths


def _upsert_sites(session: Session, fleet: FleetFile, report: ImportReport, default_timezone: str) -> None:
    for site in fleet.sites:
        _upsert(session, Site, site.id, {
            "name": site.name, "kind": site.kind, "organisation_id": site.organisation,
            "timezone": site.timezone or default_timezone, "address": site.address,
            "operating_hours": site.operating_hours, "peak_windows": site.peak_windows,
        }, report, "sites")


def _upsert_groups(session: Session, fleet: FleetFile, report: ImportReport) -> None:
    for group in fleet.groups:
        _upsert(session, ScreenGroup, group.id, {"name": group.name, "organisation_id": group.organisation},
                report, "groups")
    session.flush()


def _upsert_screens(session: Session, fleet: FleetFile, report: ImportReport) -> None:
    for screen in fleet.screens:
        width, height = (int(v) for v in screen.resolution.split("x")) if screen.resolution else (None, None)
        _upsert(session, Screen, screen.id, {
            "site_id": screen.site, "name": screen.name, "kind": screen.kind, "width": width, "height": height,
            "orientation": screen.orientation, "enabled": screen.enabled,
            "groups": [session.get(ScreenGroup, g) for g in sorted(set(screen.groups))],
        }, report, "screens")


def export_fleet(session: Session) -> str:
    """The database's fleet as a `signage.fleet/1` YAML document that imports back to the same state."""
    orgs = session.scalars(select(Organisation).order_by(Organisation.path)).all()
    sites = session.scalars(select(Site).order_by(Site.id)).all()
    groups = session.scalars(select(ScreenGroup).order_by(ScreenGroup.id)).all()
    screens = session.scalars(select(Screen).options(selectinload(Screen.groups)).order_by(Screen.id)).all()

    def compact(values: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in values.items() if v not in (None, [], True) or k == "enabled" and v is False}

    document = {
        "schema": FLEET_SCHEMA,
        "organisations": [compact({"id": o.id, "name": o.name, "kind": o.kind.value, "parent": o.parent_id,
                                   "alerts_need_approval": o.alerts_need_approval or None}) for o in orgs],
        "sites": [compact({"id": s.id, "name": s.name, "kind": s.kind.value, "organisation": s.organisation_id,
                           "timezone": s.timezone, "address": s.address,
                           "operating_hours": s.operating_hours, "peak_windows": s.peak_windows})
                  for s in sites],
        "groups": [{"id": g.id, "name": g.name, "organisation": g.organisation_id} for g in groups],
        "screens": [compact({"id": s.id, "site": s.site_id, "name": s.name, "kind": s.kind.value,
                             "resolution": s.resolution,
                             "orientation": s.orientation.value if s.orientation else None,
                             "groups": [g.id for g in s.groups], "enabled": s.enabled})
                    for s in screens],
    }
    return yaml.safe_dump(document, allow_unicode=True, sort_keys=False, width=110)
