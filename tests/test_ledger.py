"""The delivery ledger, built from real planning and real ingest of known proof-of-play on both databases:
required and planned from the stored plans, delivered from the plays, and the cause of each short day."""

from __future__ import annotations

import json
import uuid
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from campaigns.campaign_file import import_campaigns
from media.store import MediaStore
from scheduler.ingest import ScreenDirectory, ingest_pop, ingest_status
from scheduler.ledger import (
    MEDIA_MISSING,
    NO_CAPACITY,
    NO_PLAN,
    OFFLINE,
    PLAYBACK_ERROR,
    DayFigures,
    close_days,
    shortfall_cause,
)
from scheduler.models import DeliveryRollup
from scheduler.planning import plan_and_store
from signage.db import transaction
from tests.conftest import CAMPAIGN_FILE

HANOI = ZoneInfo("Asia/Ho_Chi_Minh")
TUESDAY = date(2024, 8, 20)
VANQUAN = "hn-hadong-vanquan-001"  # ward office, 10 a day
PHULA_1, PHULA_2, PHULA_SPEAKER = "hn-hadong-phula-001", "hn-hadong-phula-002", "hn-hadong-phula-003"  # 15 a day


def at(hour: int, minute: int = 0, day: date = TUESDAY) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=HANOI)


def play(player: str, start: datetime, kind: str = "spot", status: str = "completed", reason: str | None = None):
    return {"play_id": str(uuid.uuid4()), "player_id": player, "spot_id": f"s-{uuid.uuid4().hex[:8]}",
            "campaign_id": "ihanoi-2024", "media": "ab" * 32, "kind": kind,
            "scheduled_start": start.isoformat() if kind == "spot" else None, "started_at": start.isoformat(),
            "ended_at": (start + timedelta(seconds=30)).isoformat(),
            "duration_ms": 30000 if status == "completed" else 0, "status": status, "reason": reason,
            "plan_version": "v"}


def status(player: str, plan_version: str | None, sent_at: datetime) -> bytes:
    return json.dumps({"player_id": player, "state": "online",
                       "plan_version": plan_version, "now_playing": None, "cache": None, "journal_backlog": 0,
                       "clock_offset_ms": 0, "software_version": "test", "sent_at": sent_at.isoformat()}).encode()


@pytest.fixture
def ledger(database, fleet, settings, clock):
    """The iHanoi campaign planned from Tuesday 20 August, and a day of known proof-of-play."""
    with transaction(database.sessions) as session:
        import_campaigns(session, CAMPAIGN_FILE, MediaStore(settings.media_dir), clock, settings.timezone)
    with transaction(database.sessions) as session:
        plan_and_store(session, clock.now())
    plays = {
        # Van Quan: 8 spots and 1 make-good in peak, 1 playback error, 1 spot missed for want of its media.
        VANQUAN: [play(VANQUAN, at(8, 5 * i)) for i in range(8)] + [
            play(VANQUAN, at(10, 50), kind="makegood"),
            play(VANQUAN, at(14, 30), status="failed", reason="playback error: libVLC could not play x.mp4"),
            play(VANQUAN, at(15, 0), status="missed", reason="media not cached")],
        # Phu La 1: its 15 in peak, and one more at noon, outside the peak windows.
        PHULA_1: [play(PHULA_1, at(8, 4 * i)) for i in range(15)] + [play(PHULA_1, at(12, 0))],
    }
    directory = ScreenDirectory()
    with transaction(database.sessions) as session:
        ingest_pop(session, [(p, json.dumps({"schema": "signage.pop/1", "batch_id": str(uuid.uuid4()),
                                              "records": r}).encode()) for p, r in plays.items()],
                   directory, clock.now())
        # Before the campaign started: counted as delivered, never required.
        ingest_pop(session, [(VANQUAN, json.dumps({"schema": "signage.pop/1", "batch_id": "early",
                                                   "records": [play(VANQUAN, at(9, day=date(2024, 8, 14)))]})
                              .encode())], directory, clock.now())
        for player, version in ((VANQUAN, "v"), (PHULA_1, "v"), (PHULA_SPEAKER, None)):
            for minute in range(3):  # heard three times on Tuesday; the speaker's player has no plan
                moment = at(9, minute)
                assert ingest_status(session, player, status(player, version, moment), moment, directory)
    return database


def rows(database, day: date = TUESDAY) -> dict[str, DeliveryRollup]:
    with database.sessions() as session:
        return {row.screen_id: row for row in session.scalars(
            select(DeliveryRollup).where(DeliveryRollup.local_date == day))}


def close(database, clock, moment: datetime) -> int:
    clock.set(moment)
    with transaction(database.sessions) as session:
        return close_days(session, clock.now())


def test_stored_plans_set_each_screen_days_required_and_planned_spots(ledger):
    day = rows(ledger)
    assert (day[VANQUAN].required, day[VANQUAN].planned) == (10, 10)
    assert (day[PHULA_1].required, day[PHULA_1].planned) == (15, 15)  # the head of unit's override


def test_ingest_counts_plays_in_peak_make_goods_failures_and_missing_media(ledger):
    row = rows(ledger)[VANQUAN]
    assert (row.completed_in_peak, row.completed_total, row.makegoods) == (9, 9, 1)
    assert (row.failed, row.missed, row.media_missing) == (1, 1, 1)


def test_a_play_outside_the_peak_windows_is_delivered_but_does_not_count(ledger):
    row = rows(ledger)[PHULA_1]
    assert (row.completed_total, row.completed_in_peak) == (16, 15)


def test_plays_before_the_campaign_started_are_kept_but_never_required(ledger):
    row = rows(ledger, date(2024, 8, 14))[VANQUAN]
    assert (row.required, row.planned, row.completed_in_peak) == (0, 0, 1)


def test_closing_the_day_names_why_each_short_screen_day_fell_short(ledger, clock):
    assert close(ledger, clock, at(0, 30, day=date(2024, 8, 21))) >= 4
    day = rows(ledger)
    assert day[VANQUAN].cause == MEDIA_MISSING  # 9 of 10, one spot missed for want of its media
    assert day[PHULA_1].cause is None  # 15 of 15
    assert day[PHULA_2].cause == OFFLINE  # planned, never heard from, nothing played
    assert day[PHULA_SPEAKER].cause == NO_PLAN  # heard all morning, but without a plan
    assert all(row.closed for row in day.values())


def test_closing_leaves_today_open_and_never_touches_a_closed_day_again(ledger, clock):
    close(ledger, clock, at(0, 30, day=date(2024, 8, 21)))
    assert not any(row.closed for row in rows(ledger, date(2024, 8, 21)).values())
    assert close(ledger, clock, at(1, 30, day=date(2024, 8, 21))) == 0


def test_the_cause_is_no_capacity_when_everything_planned_played():
    figures = DayFigures(required=10, planned=7, plan_reason="no capacity", delivered=7, attempts=7, failed=0,
                         media_missing=0, heartbeats=100, had_plan=True)
    assert shortfall_cause(figures) == NO_CAPACITY


def test_a_playback_error_is_the_cause_when_plays_failed_without_missing_media():
    figures = DayFigures(required=10, planned=10, plan_reason=None, delivered=8, attempts=10, failed=2,
                         media_missing=0, heartbeats=100, had_plan=True)
    assert shortfall_cause(figures) == PLAYBACK_ERROR
