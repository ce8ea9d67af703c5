"""Retention: proof-of-play older than `SIGNAGE_POP_RETENTION_MONTHS` whole months, and plan versions superseded
more than `SIGNAGE_PLAN_RETENTION_DAYS` ago, deleted in small batches, each batch a short transaction of its own, so
that ingest (SQLite has one writer) never waits longer than one batch.

Kept whatever their age: the delivery ledger (`delivery_rollups`, `player_days`) and the hourly roll-up
(`play_hours`), the audit's summary of what was required and delivered; a player's newest plan, and the plan its
status says it holds. Run nightly on the planning server (`RetentionJob`), or by hand: `signage db prune`.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import delete, func, select, tuple_
from sqlalchemy.orm import Session, sessionmaker

from scheduler.database import Database
from scheduler.models import PlayRecord
from scheduler.plan_store import delete_superseded_plans, superseded_plan_dates
from signage.clock import Clock
from signage.config import Settings
from signage.db import transaction

log = logging.getLogger("signage.retention")

BATCH_ROWS = 2_000  # about 170 ms of SQLite's one writer on a 10,000-screen log (docs/benchmarks.md)
PAUSE_SECONDS = 0.05  # the least rest between batches: ingest's transactions get the database then
PLAYS, PLANS = "play_records", "published_plans"


@dataclass(frozen=True)
class Cutoffs:
    plays_before: date  # plays of local dates before this one go: the first day of the oldest month kept
    plans_before: datetime  # plan versions superseded before this instant go


def cutoffs(settings: Settings, now: datetime) -> Cutoffs:
    """What retention deletes at `now`: plays of whole months before the current month's `pop_retention_months`
    (today in the default timezone), plan versions superseded `plan_retention_days` ago."""
    today = now.astimezone(ZoneInfo(settings.timezone)).date()
    months = today.year * 12 + today.month - 1 - settings.pop_retention_months
    return Cutoffs(plays_before=date(months // 12, months % 12 + 1, 1),
                   plans_before=now - timedelta(days=settings.plan_retention_days))


def due(session: Session, limits: Cutoffs) -> dict[str, Counter]:
    """What would be deleted, by table and month ("2025-10": rows): plays by their local date, plans by when they
    were stored."""
    plays: Counter = Counter()
    for day, n in session.execute(select(PlayRecord.local_date, func.count()).where(
            PlayRecord.local_date < limits.plays_before).group_by(PlayRecord.local_date)):
        plays[f"{day:%Y-%m}"] += n
    plans = Counter(f"{created:%Y-%m}" for created in superseded_plan_dates(session, limits.plans_before))
    return {PLAYS: plays, PLANS: plans}


def _delete_old_plays(session: Session, before: date, limit: int) -> int:
    oldest = select(PlayRecord.play_id, PlayRecord.player_id).where(PlayRecord.local_date < before).limit(limit)
    result = session.execute(delete(PlayRecord).where(tuple_(PlayRecord.play_id, PlayRecord.player_id).in_(oldest))
                             .execution_options(synchronize_session=False))
    return result.rowcount


def prune_batches(sessions: sessionmaker[Session], limits: Cutoffs,
                  batch_rows: int = BATCH_ROWS) -> Iterator[tuple[str, int]]:
    """Delete what retention lets go, `batch_rows` rows a transaction; yields (table, rows) after each commit, so
    that the caller can pause between batches (or stop)."""
    for table, delete_batch in ((PLAYS, lambda s: _delete_old_plays(s, limits.plays_before, batch_rows)),
                                (PLANS, lambda s: delete_superseded_plans(s, limits.plans_before, batch_rows))):
        while True:
            with transaction(sessions) as session:
                deleted = delete_batch(session)
            if not deleted:
                break
            yield table, deleted


def prune(sessions: sessionmaker[Session], limits: Cutoffs, batch_rows: int = BATCH_ROWS,
          sleep: Callable[[float], None] = time.sleep) -> Counter:
    """Delete everything retention lets go, in batches; returns the rows by table. After each batch it rests as
    long as the batch took (at least PAUSE_SECONDS), so it holds SQLite's one writer at most half the time."""
    deleted: Counter = Counter()
    started = time.monotonic()
    for table, rows in prune_batches(sessions, limits, batch_rows):
        deleted[table] += rows
        sleep(max(PAUSE_SECONDS, time.monotonic() - started))
        started = time.monotonic()
    return deleted


class RetentionJob:
    """The nightly prune, run only by the planning lease's holder (one server prunes)."""

    def __init__(self, database: Database, clock: Clock, settings: Settings,
                 holds_lease: Callable[[datetime], bool]) -> None:
        self.database, self.clock, self.settings, self.holds_lease = database, clock, settings, holds_lease

    def run(self) -> Counter:
        now = self.clock.now()
        if not self.holds_lease(now):
            return Counter()
        deleted = prune(self.database.sessions, cutoffs(self.settings, now))
        if deleted:
            log.info("retention deleted %s", ", ".join(f"{n:,} rows of {table}" for table, n in deleted.items()))
        return deleted


__all__ = ["BATCH_ROWS", "Cutoffs", "RetentionJob", "cutoffs", "due", "prune", "prune_batches"]
