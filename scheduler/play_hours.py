"""Hourly delivery, kept at ingest as the ledger is: per local date, screen and campaign, the completed spots and
make-goods that started in each local hour of the screen's site timezone (`play_hours`, one row a screen-day).

Ingest counts only the records it stored (a duplicate it drops counts nothing), in the transaction that stored
them; the compliance report's chart reads these rows for its period instead of the proof-of-play log, so it costs
the same whatever the log holds. Retention never deletes them: with the ledger they are the audit's summary.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from scheduler.ledger import dialect_insert
from scheduler.models import HOURS, PlayHours

CHARTED_KINDS = ("spot", "makegood")  # what the chart counts: completed spots and make-goods

HourKey = tuple[date, str, str]  # (local date, screen id, campaign id)


def hour_counts(rows: Iterable[Mapping[str, Any]], zone_of: Callable[[str], str | None]) -> dict[HourKey, list[int]]:
    """The charted plays among proof-of-play `rows` (ingest's dicts) counted by screen-day and local hour;
    `zone_of(player_id)` names the screen's timezone (None: an unknown screen, not counted)."""
    counts: dict[HourKey, list[int]] = {}
    zones: dict[str, ZoneInfo | None] = {}
    for row in rows:
        if row["status"] != "completed" or row["kind"] not in CHARTED_KINDS or row["campaign_id"] is None:
            continue
        player_id = row["player_id"]
        if player_id not in zones:
            name = zone_of(player_id)
            zones[player_id] = ZoneInfo(name) if name else None
        zone = zones[player_id]
        if zone is None:
            continue
        key = (row["local_date"], player_id, row["campaign_id"])
        counts.setdefault(key, [0] * 24)[row["started_at"].astimezone(zone).hour] += 1
    return counts


def add_play_hours(session: Session, counts: Mapping[HourKey, list[int]]) -> None:
    """Add `counts` to the stored hours, in the caller's transaction (one statement for the whole batch)."""
    if not counts:
        return
    statement = dialect_insert(session, PlayHours)
    statement = statement.on_conflict_do_update(
        index_elements=["local_date", "screen_id", "campaign_id"],
        set_={name: getattr(PlayHours, name) + getattr(statement.excluded, name) for name in HOURS})
    session.execute(statement, [{"local_date": day, "screen_id": screen_id, "campaign_id": campaign_id,
                                 **dict(zip(HOURS, hours, strict=True))}
                                for (day, screen_id, campaign_id), hours in sorted(counts.items())])


def count_play_hours(session: Session, rows: list[dict[str, Any]], zone_of: Callable[[str], str | None]) -> None:
    """Count the newly stored proof-of-play `rows` into `play_hours` (ingest calls it with the rows it inserted)."""
    add_play_hours(session, hour_counts(rows, zone_of))


__all__ = ["CHARTED_KINDS", "add_play_hours", "count_play_hours", "hour_counts"]
