"""The rhythm of each unit's regular messages ("tối thiểu 03 ngày 01 tin"): its interval, when it is due, and
whether it is late, at risk or on track. One set of definitions for the cadence report
(scheduler/reports/cadence.py), the reminders (scheduler/rhythm_notices.py) and the regular-messages page.

- A unit's **regular message** is an `info` alert it issued itself that went out (`went_out_by`): approved or
  stopped, started, and not stopped before its start. Urgent alerts keep no rhythm.
- The **units** are the organisations with an enabled screen somewhere in their own subtree (a district for its
  wards' screens too); each is judged on the messages it issued itself.
- Its **interval** is its own `message_interval_days` (1–30), else its nearest ancestor's, else the server's
  `SIGNAGE_MESSAGE_INTERVAL_DAYS` (3, as the orders say). Managers and heads of the unit set it, and admins of a
  subtree holding it; audited.
- It is **due by** its last regular message + its interval. A unit that never sent one has no due date and is
  late already: the orders' rhythm began with the orders, not with the day the unit's screens joined the system
  (nor is that day recorded), so nothing would justify a grace period.
- Its **state** at an instant: `late` once past its due date (or never sent), `at_risk` within `AT_RISK` (1 day)
  of it, else `on_track`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session, aliased

from campaigns.access import Actor
from campaigns.audit import record_change
from campaigns.fleet_view import organisation_in_scope
from campaigns.kinds import AlertSeverity, AlertStatus, Role
from campaigns.models import Alert, Organisation, Screen, Site
from signage.clock import Clock
from signage.errors import Invalid, NotAllowed

MIN_INTERVAL_DAYS, MAX_INTERVAL_DAYS = 1, 30
AT_RISK = timedelta(days=1)
SETTERS = (Role.manager, Role.head)  # of the unit itself; admins of a subtree holding it too
RhythmState = Literal["late", "at_risk", "on_track"]
STATES: tuple[RhythmState, ...] = ("late", "at_risk", "on_track")


@dataclass(frozen=True)
class UnitRhythm:
    organisation_id: str
    name: str
    path: str
    parent_id: str | None
    own_interval_days: int | None  # None: inherited
    interval_days: int
    last_message: datetime | None
    due_by: datetime | None  # None: never sent one
    state: RhythmState


def went_out_by(end: datetime):
    """Alerts that went out by `end` (which is never after now)."""
    return and_(Alert.status.in_((AlertStatus.approved, AlertStatus.stopped)), Alert.starts_at <= end,
                or_(Alert.stopped_at.is_(None), Alert.stopped_at > Alert.starts_at))


REGULAR = Alert.severity == AlertSeverity.info


def rhythm_state(due_by: datetime | None, now: datetime) -> RhythmState:
    if due_by is None or now > due_by:
        return "late"
    return "at_risk" if due_by - now <= AT_RISK else "on_track"


def due_by(last_message: datetime | None, interval_days: int) -> datetime | None:
    return None if last_message is None else last_message + timedelta(days=interval_days)


def effective_intervals(session: Session, paths: Iterable[str], default_days: int) -> dict[str, int]:
    """Each organisation's interval (by id) from its materialised path: its own, its nearest ancestor's, else
    `default_days`."""
    chains = {path: [part for part in path.split("/") if part] for path in paths}
    ids = {part for chain in chains.values() for part in chain}
    own = dict(session.execute(select(Organisation.id, Organisation.message_interval_days).where(
        Organisation.id.in_(ids), Organisation.message_interval_days.is_not(None))).all()) if ids else {}
    return {chain[-1]: next((own[part] for part in reversed(chain) if part in own), default_days)
            for chain in chains.values() if chain}


def last_regular_messages(session: Session, organisation_ids: Iterable[str], now: datetime) -> dict[str, datetime]:
    ids = list(organisation_ids)
    if not ids:
        return {}
    return dict(session.execute(select(Alert.organisation_id, func.max(Alert.starts_at)).where(
        Alert.organisation_id.in_(ids), REGULAR, went_out_by(now)).group_by(Alert.organisation_id)).all())


def units_with_screens(session: Session, within_path: str) -> list[Organisation]:
    """The organisations of the subtree at `within_path` with an enabled screen in their own subtree, by path."""
    held_by = aliased(Organisation)
    holders = (select(held_by.path).select_from(Screen).join(Site, Site.id == Screen.site_id)
               .join(held_by, held_by.id == Site.organisation_id).where(Screen.in_service).distinct().subquery())
    holds_a_screen = (select(holders.c.path)
                      .where(func.substr(holders.c.path, 1, func.length(Organisation.path)) == Organisation.path)
                      .exists())
    return list(session.scalars(select(Organisation).where(
        Organisation.path.startswith(within_path, autoescape=True), holds_a_screen).order_by(Organisation.path)))


def unit_rhythms(session: Session, within_path: str, now: datetime, default_days: int) -> list[UnitRhythm]:
    """Every unit of the subtree at `within_path` at `now`: late first, then at risk, then on track; the soonest
    due first within each, then by path."""
    units = units_with_screens(session, within_path)
    intervals = effective_intervals(session, [unit.path for unit in units], default_days)
    last = last_regular_messages(session, [unit.id for unit in units], now)
    rhythms = []
    for unit in units:
        due = due_by(last.get(unit.id), intervals[unit.id])
        rhythms.append(UnitRhythm(unit.id, unit.name, unit.path, unit.parent_id, unit.message_interval_days,
                                  intervals[unit.id], last.get(unit.id), due, rhythm_state(due, now)))
    return sorted(rhythms, key=lambda r: (STATES.index(r.state), r.due_by is not None, r.due_by or now, r.path))


def may_set_message_interval(actor: Actor, org: Organisation) -> bool:
    """Its own managers and heads, or an admin (of a subtree holding it: `organisation_in_scope` checked that)."""
    return actor.role is Role.admin or (actor.role in SETTERS and actor.user.organisation_id == org.id)


def set_message_interval(session: Session, actor: Actor, clock: Clock, organisation_id: str,
                         days: int | None) -> Organisation:
    """Sets the unit's own interval in days (1–30), or None to inherit its ancestors' (or the server's); audited.
    Another unit's is NotFound, whatever the role."""
    org = organisation_in_scope(session, actor, organisation_id)
    if not may_set_message_interval(actor, org):
        raise NotAllowed(f"your role ({actor.role.value}) may not set {org.id}'s interval between regular messages",
                         f"it takes a manager or head of unit of {org.id}, or an admin")
    if days is not None and not MIN_INTERVAL_DAYS <= days <= MAX_INTERVAL_DAYS:
        raise Invalid(f"an interval of {days} days is out of bounds",
                      f"give {MIN_INTERVAL_DAYS} to {MAX_INTERVAL_DAYS} days, or none to inherit the unit above's")
    if days != org.message_interval_days:
        before = {"message_interval_days": org.message_interval_days}
        org.message_interval_days = days
        record_change(session, actor, clock, action="organisation.message_interval", entity_kind="organisation",
                      entity_id=org.id, organisation_id=org.id, before=before, after={"message_interval_days": days})
    return org


__all__ = ["AT_RISK", "MAX_INTERVAL_DAYS", "MIN_INTERVAL_DAYS", "REGULAR", "STATES", "RhythmState", "UnitRhythm",
           "due_by", "effective_intervals", "last_regular_messages", "may_set_message_interval", "rhythm_state",
           "set_message_interval", "unit_rhythms", "units_with_screens", "went_out_by"]
