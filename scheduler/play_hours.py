"""Hourly delivery, kept at ingest as the ledger is: per local date, site and campaign, the completed spots and
make-goods that started in each local hour of the site's timezone (`play_hours`, one row a site-day).

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

HourKey = tuple[date, str, str]  # (local date, site id, campaign id)
Placement = Callable[[str], tuple[str, str] | None]  # a screen's (site id, timezone); None for an unknown screen


def hour_counts(rows: Iterable[Mapping[str, Any]], place_of: Placement) -> dict[HourKey, list[int]]:
    """The charted plays among proof-of-play `rows` (ingest's dicts) counted by site-day and local hour;
    `place_of(player_id)` names the screen's site and its timezone."""
    counts: dict[HourKey, list[int]] = {}
    places: dict[str, tuple[str, ZoneInfo] | None] = {}
    for row in rows:
        if row["status"] != "completed" or row["kind"] not in CHARTED_KINDS or row["campaign_id"] is None:
            continue
        player_id = row["player_id"]
        if player_id not in places:
            place = place_of(player_id)
            places[player_id] = (place[0], ZoneInfo(place[1])) if place else None
        place = places[player_id]
        if place is None:
            continue
        site_id, zone = place
        key = (row["local_date"], site_id, row["campaign_id"])
        counts.setdefault(key, [0] * 24)[row["started_at"].astimezone(zone).hour] += 1
    return counts


def add_play_hours(session: Session, counts: Mapping[HourKey, list[int]]) -> None:
    """Add `counts` to the stored hours, in the caller's transaction (one statement for the whole batch)."""
    if not counts:
        return
    statement = dialect_insert(session, PlayHours)
    statement = statement.on_conflict_do_update(
        index_elements=["local_date", "site_id", "campaign_id"],
        set_={name: getattr(PlayHours, name) + getattr(statement.excluded, name) for name in HOURS})
    session.execute(statement, [{"local_date": day, "site_id": site_id, "campaign_id": campaign_id,
                                 **dict(zip(HOURS, hours, strict=True))}
                                for (day, site_id, campaign_id), hours in sorted(counts.items())])


def count_play_hours(session: Session, rows: list[dict[str, Any]], place_of: Placement) -> None:
    """Count the newly stored proof-of-play `rows` into `play_hours` (ingest calls it with the rows it inserted)."""
    add_play_hours(session, hour_counts(rows, place_of))


__all__ = ["CHARTED_KINDS", "add_play_hours", "count_play_hours", "hour_counts"]
