"""Organisation subtrees: what a user or a campaign owner may see and target."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from campaigns.models import Organisation, Screen, ScreenGroup, Site
from campaigns.org_paths import is_within


def organisation_paths(session: Session) -> dict[str, str]:
    return dict(session.execute(select(Organisation.id, Organisation.path)).all())


def owning_organisation(session: Session, kind: str, ref: str) -> str | None:
    """The organisation that owns a site, screen or group (or is the organisation), None if unknown."""
    if kind == "organisation":
        return ref if session.get(Organisation, ref) else None
    if kind == "site":
        site = session.get(Site, ref)
        return site.organisation_id if site else None
    if kind == "screen":
        screen = session.get(Screen, ref)
        return screen.site.organisation_id if screen else None
    if kind == "group":
        group = session.get(ScreenGroup, ref)
        return group.organisation_id if group else None
    raise ValueError(f"unknown reference kind {kind!r}")


__all__ = ["is_within", "organisation_paths", "owning_organisation"]
