"""The audit log: who changed what, when, with the values before and after."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from campaigns.access import Actor
from campaigns.models import AuditEntry, User
from signage.clock import Clock


def record_change(session: Session, actor: Actor, clock: Clock, *, action: str, entity_kind: str, entity_id: str,
                  organisation_id: str | None, before: dict[str, Any] | None = None,
                  after: dict[str, Any] | None = None) -> AuditEntry:
    """Adds the entry to the session: it is committed with the change it describes, or not at all."""
    entry = AuditEntry(at=clock.now(), username=actor.username, organisation_id=organisation_id, action=action,
                       entity_kind=entity_kind, entity_id=entity_id, before=before, after=after)
    session.add(entry)
    return entry


def full_names(session: Session, usernames: Iterable[str | None]) -> dict[str, str]:
    """The full names of the users who did things (an entry's author, a campaign's creator or approver), by user
    name, in one query; a name no user has (a file's, a removed user's) is left out: show it as it is."""
    wanted = {name for name in usernames if name}
    if not wanted:
        return {}
    return dict(session.execute(select(User.username, User.full_name).where(User.username.in_(wanted))).all())
