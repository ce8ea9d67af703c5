"""Published plans: every plan version a player was given, and the newest of each, read one way.

The newest plan of a player is its row with the largest id (a version issued again is stored again, as a new
row). Every reader goes through `_newest_ids`: the ids of the newest rows, one per player, found on the index
(player_id), optionally for a list of players, and the rows then fetched by id. (Two IN lists, of players and of
versions, made SQLite probe their cross product: 4 million index lookups, 1.8 s, to publish 2,000 plans.)
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Select, delete, func, select, tuple_
from sqlalchemy.orm import Session, aliased

from scheduler.models import PlayerPresence, PublishedPlan

if TYPE_CHECKING:
    from scheduler.planner import PlanningResult

# Long IN lists are sent in pieces: SQLite's limit on bound parameters is 32,766, PostgreSQL's 65,535.
IN_BATCH = 1000


def _newest_ids(player_ids: Collection[str] | None) -> Select:
    newest = select(func.max(PublishedPlan.id)).group_by(PublishedPlan.player_id)
    if player_ids is not None:
        newest = newest.where(PublishedPlan.player_id.in_(player_ids))
    return newest


def _newest(session: Session, column: Any, player_ids: Collection[str] | None) -> dict[str, Any]:
    if player_ids is None:
        batches: list[Collection[str] | None] = [None]
    else:
        ids = sorted(set(player_ids))
        batches = [ids[start:start + IN_BATCH] for start in range(0, len(ids), IN_BATCH)]
    found: dict[str, Any] = {}
    for batch in batches:
        rows = session.execute(select(PublishedPlan.player_id, column)
                               .where(PublishedPlan.id.in_(_newest_ids(batch))))
        found.update((player_id, value) for player_id, value in rows)
    return found


def newest_versions(session: Session, player_ids: Collection[str] | None = None) -> dict[str, str]:
    """The version of the newest plan of each player that has one (of `player_ids`, or of all)."""
    return _newest(session, PublishedPlan.version, player_ids)


def newest_bodies(session: Session, player_ids: Collection[str]) -> dict[str, str]:
    """The newest plan (its canonical JSON, as signed and sent) of each of `player_ids` that has one."""
    return _newest(session, PublishedPlan.body, player_ids)


def newest_body(session: Session, player_id: str) -> str | None:
    """One player's newest plan, or None if it was never given one."""
    return newest_bodies(session, [player_id]).get(player_id)


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


def store_new_versions(session: Session, result: PlanningResult, now: datetime) -> list[str]:
    """Keep each plan whose version differs from the player's newest, each under a new sequence; returns those
    players, sorted."""
    have = newest_versions(session)
    sequence = next_plan_sequence(session)
    fresh = [(player_id, result.version(player_id)) for player_id in result.player_ids]
    fresh = [(player_id, version) for player_id, version in fresh if have.get(player_id) != version]
    # A version a player had before (A, then B, then A again) is issued again as the newest, under a new sequence:
    # its old row goes, as (player_id, version) is unique, and the newest row is the one with the largest id.
    for start in range(0, len(fresh), IN_BATCH):
        session.execute(delete(PublishedPlan).where(
            tuple_(PublishedPlan.player_id, PublishedPlan.version).in_(fresh[start:start + IN_BATCH]))
            .execution_options(synchronize_session=False))
    changed = []
    for player_id, version in fresh:
        valid_from, valid_until = result.validity(player_id)
        session.add(PublishedPlan(player_id=player_id, version=version, sequence=sequence,
                                  body=with_sequence(result.plan_json(player_id), sequence).decode(),
                                  valid_from=valid_from, valid_until=valid_until, created_at=now))
        changed.append(player_id)
        sequence += 1
    session.flush()
    return changed


def _superseded_before(before: datetime) -> Select:
    """Ids of the plan versions that a newer version of their player replaced before `before`, and that their player
    does not say it holds: never a player's newest plan, nor one still referenced by a player's status."""
    newer = aliased(PublishedPlan)
    replaced = select(newer.id).where(newer.player_id == PublishedPlan.player_id, newer.id > PublishedPlan.id,
                                      newer.created_at < before)
    held = select(PlayerPresence.player_id).where(PlayerPresence.player_id == PublishedPlan.player_id,
                                                  PlayerPresence.plan_version == PublishedPlan.version)
    return select(PublishedPlan.id).where(replaced.exists(), ~held.exists())


def superseded_plan_dates(session: Session, before: datetime) -> list[datetime]:
    """When each plan version that retention would delete (superseded before `before`) was stored."""
    return list(session.scalars(select(PublishedPlan.created_at)
                                .where(PublishedPlan.id.in_(_superseded_before(before)))))


def delete_superseded_plans(session: Session, before: datetime, limit: int) -> int:
    """Delete up to `limit` plan versions superseded before `before` (see _superseded_before); returns how many."""
    result = session.execute(delete(PublishedPlan).where(PublishedPlan.id.in_(_superseded_before(before).limit(limit)))
                             .execution_options(synchronize_session=False))
    return result.rowcount


__all__ = ["delete_superseded_plans", "newest_bodies", "newest_body", "newest_versions", "next_plan_sequence",
           "store_new_versions", "superseded_plan_dates", "with_sequence"]
