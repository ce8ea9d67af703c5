"""The end check: every record a player sent is in play_records exactly once, and nothing else is there."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from loadtest.swarm import SwarmResults
from scheduler.database import Database
from scheduler.models import PlayRecord

CHUNK = 500


@dataclass
class AuditFigures:
    sent: int  # play_ids the players made and sent
    distinct_sent: int
    rows: int  # rows in play_records for these players
    distinct_rows: int
    missing: int  # sent, never stored: lost
    unexpected: int  # stored, never sent by these players
    rejected: int  # refused by the server
    unacknowledged: int  # still in the players' journals

    @property
    def duplicates(self) -> int:
        return (self.rows - self.distinct_rows) + (self.sent - self.distinct_sent)

    @property
    def passed(self) -> bool:
        return (self.missing == self.unexpected == self.rejected == self.unacknowledged == self.duplicates == 0
                and self.rows == self.sent)


def audit(database: Database, ids: list[str], results: SwarmResults) -> AuditFigures:
    stored: list[str] = []
    with database.sessions() as session:
        for start in range(0, len(ids), CHUNK):
            stored += session.scalars(select(PlayRecord.play_id).where(
                PlayRecord.player_id.in_(ids[start:start + CHUNK])))
    sent, rows = set(results.sent), set(stored)
    return AuditFigures(sent=len(results.sent), distinct_sent=len(sent), rows=len(stored), distinct_rows=len(rows),
                        missing=len(sent - rows), unexpected=len(rows - sent), rejected=len(results.rejected),
                        unacknowledged=len(results.backlog))
