"""The fleet file `signage.fleet/1`: organisations, sites, screens and groups; import and export.

An import is all-or-nothing: the whole file is checked, against itself and the database, before
anything is written (by the rules of campaigns/fleet_document.py), and then written in one
transaction. Importing the same file twice changes nothing the second time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from campaigns.fleet_document import FleetFile, KnownFleet, ScreenIn, SiteIn, checked_fleet
from campaigns.models import Organisation, Screen, ScreenGroup, Site
from campaigns.org_paths import materialised_paths
from campaigns.yaml_source import YamlDocument

FLEET_SCHEMA = "signage.fleet/1"


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


def import_fleet(session: Session, path: Path, default_timezone: str) -> ImportReport:
    """Upsert the fleet file into the database in the caller's transaction, or raise FileRejected.

    Sites that name no timezone get `default_timezone`.
    """
    document = YamlDocument.load(path)
    fleet = checked_fleet(document, known_fleet(session))
    report = ImportReport(document.filename)
    _upsert_organisations(session, fleet, report)
    upsert_sites(session, fleet, report, default_timezone)
    _upsert_groups(session, fleet, report)
    upsert_screens(session, fleet, report)
    session.flush()
    return report


def known_fleet(session: Session) -> KnownFleet:
    """The stored fleet, as a file's references are checked against it."""
    return KnownFleet(dict(session.execute(select(Organisation.id, Organisation.parent_id)).all()),
                      dict(session.execute(select(Site.id, Site.organisation_id)).all()),
                      dict(session.execute(select(ScreenGroup.id, ScreenGroup.organisation_id)).all()),
                      frozenset(session.scalars(select(Site.id).where(Site.retired_at.is_not(None)))))


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
        if org.message_interval_days is not None:
            values["message_interval_days"] = org.message_interval_days
        _upsert(session, Organisation, org.id, values, report, "organisations")
    in_file = {org.id for org in fleet.organisations}
    for row in session.scalars(select(Organisation).where(Organisation.id.not_in(in_file))):
        if row.path != paths[row.id]:  # moved along with an ancestor that the file moved
            row.path = paths[row.id]
            report.count("organisations", "updated")
    session.flush()


def _retirement(entry: SiteIn | ScreenIn) -> dict[str, Any]:
    # Left out of the file: as stored (a site or screen retired in the web UI stays retired).
    return {} if entry.retired_at is None else {"retired_at": entry.retired_at}


def upsert_sites(session: Session, fleet: FleetFile, report: ImportReport, default_timezone: str) -> None:
    """The file's sites written as it says (the web UI's changes go through here too: campaigns/fleet_changes.py)."""
    for site in fleet.sites:
        _upsert(session, Site, site.id, {
            "name": site.name, "kind": site.kind, "organisation_id": site.organisation,
            "timezone": site.timezone or default_timezone, "address": site.address,
            "operating_hours": site.operating_hours, "peak_windows": site.peak_windows,
            "international_audience": site.international_audience, **_retirement(site),
        }, report, "sites")


def _upsert_groups(session: Session, fleet: FleetFile, report: ImportReport) -> None:
    for group in fleet.groups:
        _upsert(session, ScreenGroup, group.id, {"name": group.name, "organisation_id": group.organisation},
                report, "groups")
    session.flush()


def upsert_screens(session: Session, fleet: FleetFile, report: ImportReport) -> None:
    """The file's screens written as it says (the web UI's changes go through here too)."""
    for screen in fleet.screens:
        width, height = screen.size
        _upsert(session, Screen, screen.id, {
            "site_id": screen.site, "name": screen.name, "kind": screen.kind, "width": width, "height": height,
            "orientation": screen.orientation, "enabled": screen.enabled,
            "groups": [session.get(ScreenGroup, g) for g in sorted(set(screen.groups))], **_retirement(screen),
        }, report, "screens")


def _instant(at: datetime | None) -> str | None:
    return at.astimezone(UTC).isoformat() if at else None


def site_entry(site: Site) -> dict[str, Any]:
    """A stored site as the fleet file says it."""
    return {"id": site.id, "name": site.name, "kind": site.kind.value, "organisation": site.organisation_id,
            "timezone": site.timezone, "address": site.address, "operating_hours": site.operating_hours,
            "peak_windows": site.peak_windows, "international_audience": site.international_audience,
            "retired_at": _instant(site.retired_at)}


def screen_entry(screen: Screen) -> dict[str, Any]:
    """A stored screen as the fleet file says it."""
    return {"id": screen.id, "site": screen.site_id, "name": screen.name, "kind": screen.kind.value,
            "resolution": screen.resolution, "orientation": screen.orientation.value if screen.orientation else None,
            "groups": [g.id for g in screen.groups], "enabled": screen.enabled,
            "retired_at": _instant(screen.retired_at)}


def _compact(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v not in (None, [], True) or k == "enabled" and v is False
            or k == "international_audience" and v is not None}


def export_fleet(session: Session) -> str:
    """The database's fleet as a `signage.fleet/1` YAML document that imports back to the same state."""
    orgs = session.scalars(select(Organisation).order_by(Organisation.path)).all()
    sites = session.scalars(select(Site).order_by(Site.id)).all()
    groups = session.scalars(select(ScreenGroup).order_by(ScreenGroup.id)).all()
    screens = session.scalars(select(Screen).options(selectinload(Screen.groups)).order_by(Screen.id)).all()

    document = {
        "schema": FLEET_SCHEMA,
        "organisations": [_compact({"id": o.id, "name": o.name, "kind": o.kind.value, "parent": o.parent_id,
                                    "alerts_need_approval": o.alerts_need_approval or None,
                                    "message_interval_days": o.message_interval_days}) for o in orgs],
        "sites": [_compact(site_entry(s)) for s in sites],
        "groups": [{"id": g.id, "name": g.name, "organisation": g.organisation_id} for g in groups],
        "screens": [_compact(screen_entry(s)) for s in screens],
    }
    return yaml.safe_dump(document, allow_unicode=True, sort_keys=False, width=110)
