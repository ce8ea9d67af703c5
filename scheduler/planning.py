"""Planning the fleet from the database and keeping the plans players should have."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from campaigns.revision import current_revision
from scheduler.ledger import record_plan_figures
from scheduler.models import PlayerPresence
from scheduler.plan_inputs import HORIZON_DAYS, load_planning_inputs, planning_horizon
from scheduler.plan_store import newest_versions, store_new_versions
from scheduler.planner import PlanningResult, plan_fleet


@dataclass
class PlanningRound:
    revision: int
    first_day: date
    days: int
    players: int
    changed: list[str] = field(default_factory=list)
    result: PlanningResult | None = None


def unconfirmed_players(session: Session) -> list[str]:
    """Players whose last status does not confirm their newest plan."""
    newest = newest_versions(session)
    confirmed = dict(session.execute(select(PlayerPresence.player_id, PlayerPresence.plan_version)).all())
    return [player_id for player_id, version in newest.items() if confirmed.get(player_id) != version]


def store_plans(session: Session, result: PlanningResult, now: datetime) -> list[str]:
    """Keep each plan whose version differs from the player's newest, and the ledger's planned figures of those
    players; returns them, sorted."""
    changed = store_new_versions(session, result, now)
    record_plan_figures(session, result, changed)
    return changed


def plan_and_store(session: Session, now: datetime, days: int = HORIZON_DAYS) -> PlanningRound:
    """One planning round in the caller's transaction: plan every screen from today, keep what changed."""
    revision = current_revision(session)
    inputs = load_planning_inputs(session)
    first_day, span = planning_horizon(inputs.timezones, now, days)
    result = plan_fleet(inputs.screens, inputs.campaigns, first_day, span, now)
    changed = store_plans(session, result, now)
    return PlanningRound(revision, first_day, span, len(result.player_ids), changed, result)
