"""Planning the fleet from the database and keeping the plans players should have."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, datetime

from sqlalchemy import delete, func, select, tuple_
from sqlalchemy.orm import Session

from campaigns.revision import current_revision
from scheduler.ledger import record_plan_figures
from scheduler.models import PlayerPresence, PublishedPlan
from scheduler.plan_inputs import HORIZON_DAYS, load_planning_inputs, planning_horizon
from scheduler.planner import PlanningResult, plan_fleet


@dataclass
class PlanningRound:
    revision: int
    first_day: date
    days: int
    players: int
    changed: list[str] = field(default_factory=list)
    result: PlanningResult | None = None


def latest_versions(session: Session) -> dict[str, str]:
    newest = select(PublishedPlan.player_id, func.max(PublishedPlan.id).label("id")).group_by(
        PublishedPlan.player_id).subquery()
    rows = session.execute(select(PublishedPlan.player_id, PublishedPlan.version)
                           .join(newest, PublishedPlan.id == newest.c.id))
    return {player_id: version for player_id, version in rows}


def newest_plan_bodies(session: Session, player_ids: list[str]) -> dict[str, str]:
    """The newest stored plan (its canonical JSON) of each of `player_ids` that has one."""
    # By the newest row's id, as latest_versions reads it: two IN lists (players, versions) made SQLite probe
    # their cross product, 4 million index lookups (1.8 s) to publish 2,000 plans (found by signage loadtest).
    newest = (select(func.max(PublishedPlan.id)).where(PublishedPlan.player_id.in_(player_ids))
              .group_by(PublishedPlan.player_id))
    rows = session.execute(select(PublishedPlan.player_id, PublishedPlan.body).where(PublishedPlan.id.in_(newest)))
    return {player_id: body for player_id, body in rows}


def unconfirmed_players(session: Session) -> list[str]:
    """Players whose last status does not confirm their newest plan."""
    newest = latest_versions(session)
    confirmed = dict(session.execute(select(PlayerPresence.player_id, PlayerPresence.plan_version)).all())
    return [player_id for player_id, version in newest.items() if confirmed.get(player_id) != version]


_SEQUENCE_GOES = b'"schema":"signage.plan/1","spots":'


def with_sequence(plan_json: bytes, sequence: int) -> bytes:
    """A plan's canonical JSON with its `sequence` set, still canonical: keys are sorted, so it goes between
    `schema` and `spots` (the planner's plans have no sequence; it is given when a plan is stored)."""
    head, found, tail = plan_json.partition(_SEQUENCE_GOES)
    if not found or _SEQUENCE_GOES in tail:
        raise ValueError("not a plan's canonical JSON without a sequence")
    return head + b'"schema":"signage.plan/1","sequence":' + str(sequence).encode() + b',"spots":' + tail


def next_plan_sequence(session: Session) -> int:
    """The sequence the next stored plan gets: above every one given, to any player."""
    return (session.scalar(select(func.max(PublishedPlan.sequence))) or 0) + 1


def store_plans(session: Session, result: PlanningResult, now: datetime) -> list[str]:
    """Keep each plan whose version differs from the player's newest, each under a new sequence; returns those
    players, sorted."""
    have = latest_versions(session)
    changed = []
    sequence = next_plan_sequence(session)
    fresh = [(player_id, result.version(player_id)) for player_id in result.player_ids]
    fresh = [(player_id, version) for player_id, version in fresh if have.get(player_id) != version]
    # A version a player had before (A, then B, then A again) is issued again as the newest, under a new sequence:
    # its old row goes, as (player_id, version) is unique, and the newest row is the one with the largest id.
    for start in range(0, len(fresh), 1000):
        session.execute(delete(PublishedPlan).where(
            tuple_(PublishedPlan.player_id, PublishedPlan.version).in_(fresh[start:start + 1000]))
            .execution_options(synchronize_session=False))
    for player_id, version in fresh:
        body = with_sequence(result.plan_json(player_id), sequence)
        header = json.loads(body)
        session.add(PublishedPlan(player_id=player_id, version=version, sequence=sequence, body=body.decode(),
                                  valid_from=datetime.fromisoformat(header["valid_from"]),
                                  valid_until=datetime.fromisoformat(header["valid_until"]), created_at=now))
        changed.append(player_id)
        sequence += 1
    session.flush()
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
