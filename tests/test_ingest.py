"""Proof-of-play ingest on the real databases: idempotent, record by record, rolled up in one transaction."""

import json
import uuid
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from campaigns.fleet_file import import_fleet
from scheduler.ingest import ScreenDirectory, ingest_pop, ingest_status
from scheduler.models import DeliveryRollup, PlayerPresence, PlayRecord
from signage.db import transaction
from tests.conftest import FLEET_FILE

HANOI = ZoneInfo("Asia/Ho_Chi_Minh")
MEDIA = "ab" * 32
PLAYER = "hn-hadong-phula-001"  # a ward office: peaks 08:00-11:00 and 14:00-16:30 on weekdays


@pytest.fixture
def fleet(database, settings):
    with transaction(database.sessions) as session:
        import_fleet(session, FLEET_FILE, settings.timezone)
    return database


def record(player=PLAYER, start=datetime(2024, 8, 20, 8, 30, tzinfo=HANOI), **fields):
    values = {"play_id": str(uuid.uuid4()), "player_id": player, "spot_id": "s1", "campaign_id": "ihanoi-2024",
              "media": MEDIA, "kind": "spot", "scheduled_start": start.isoformat(), "started_at": start.isoformat(),
              "ended_at": (start + timedelta(seconds=30)).isoformat(), "duration_ms": 30000,
              "status": "completed", "reason": None, "plan_version": "v1"}
    values.update(fields)
    return values


def batch(records, batch_id=None) -> bytes:
    return json.dumps({"schema": "signage.pop/1", "batch_id": batch_id or str(uuid.uuid4()),
                       "records": records}).encode()


def ingest(database, clock, messages):
    with transaction(database.sessions) as session:
        return ingest_pop(session, messages, ScreenDirectory(), clock.now())


def count(database, model=PlayRecord) -> int:
    with database.sessions() as session:
        return session.scalar(select(func.count()).select_from(model))


def test_good_records_are_stored_and_acked_by_play_id(fleet, clock):
    records = [record() for _ in range(3)]
    outcome = ingest(fleet, clock, [(PLAYER, batch(records, "b1"))])
    [(player, ack)] = outcome.acks
    assert (player, ack.batch_id, sorted(ack.committed)) == (PLAYER, "b1", sorted(r["play_id"] for r in records))
    assert count(fleet) == 3


def test_a_batch_sent_twice_is_stored_once_and_acked_both_times(fleet, clock):
    payload = batch([record(), record()])
    ingest(fleet, clock, [(PLAYER, payload)])
    again = ingest(fleet, clock, [(PLAYER, payload), (PLAYER, payload)])
    assert (again.inserted, again.duplicates) == (0, 2)
    assert all(len(ack.committed) == 2 for _, ack in again.acks)
    assert count(fleet) == 2
    with fleet.sessions() as session:
        assert session.scalars(select(DeliveryRollup.completed_total)).one() == 2


def test_a_malformed_record_is_refused_without_costing_the_rest_of_its_batch(fleet, clock):
    good, bad = record(), record(duration_ms="long")
    outcome = ingest(fleet, clock, [(PLAYER, batch([good, bad, "not even an object"]))])
    [(_, ack)] = outcome.acks
    assert ack.committed == [good["play_id"]]
    assert set(ack.rejected) == {bad["play_id"], "#2"}
    assert "duration_ms" in ack.rejected[bad["play_id"]]
    assert count(fleet) == 1


def test_a_record_claiming_another_player_is_refused_as_forged(fleet, clock):
    forged = record(player="hn-nb-t2-001")
    outcome = ingest(fleet, clock, [(PLAYER, batch([forged]))])
    assert outcome.acks[0][1].rejected[forged["play_id"]].startswith("forged")
    assert count(fleet) == 0


def test_a_batch_that_is_not_json_is_counted_and_nothing_else_happens(fleet, clock):
    outcome = ingest(fleet, clock, [(PLAYER, b"\x00\xffnot json"), (PLAYER, batch([record()]))])
    assert outcome.rejected["malformed batch"] == 1
    assert len(outcome.acks) == 1 and count(fleet) == 1


def test_plays_are_dated_and_counted_in_peak_by_the_sites_zone(fleet, clock):
    in_peak = record(start=datetime(2024, 8, 20, 8, 30, tzinfo=HANOI))
    off_peak = record(start=datetime(2024, 8, 20, 12, 0, tzinfo=HANOI))
    late_utc = record(start=datetime(2024, 8, 20, 17, 30, tzinfo=ZoneInfo("UTC")))  # 00:30 on the 21st locally
    makegood = record(kind="makegood", start=datetime(2024, 8, 20, 14, 10, tzinfo=HANOI))
    failed = record(status="failed", reason="playback error")
    ingest(fleet, clock, [(PLAYER, batch([in_peak, off_peak, late_utc, makegood, failed]))])
    with fleet.sessions() as session:
        rollups = {r.local_date: r for r in session.scalars(select(DeliveryRollup))}
    day = rollups[date(2024, 8, 20)]
    assert (day.completed_in_peak, day.completed_total, day.makegoods, day.failed) == (2, 3, 1, 1)
    assert rollups[date(2024, 8, 21)].completed_total == 1


def test_filler_plays_are_stored_but_never_counted_for_a_campaign(fleet, clock):
    filler = record(kind="filler", spot_id=None, campaign_id=None)
    ingest(fleet, clock, [(PLAYER, batch([filler]))])
    assert count(fleet) == 1 and count(fleet, DeliveryRollup) == 0


def test_status_updates_presence_and_the_last_will_marks_the_player_offline(fleet, clock):
    online = {"player_id": PLAYER, "state": "online", "plan_version": "v9", "journal_backlog": 4,
              "cache": {"ready": 3, "missing": 0, "bytes": 1000}, "clock_offset_ms": -12, "software_version": "0.1"}
    with transaction(fleet.sessions) as session:
        assert ingest_status(session, PLAYER, json.dumps(online).encode(), clock.now())
        assert not ingest_status(session, PLAYER, json.dumps({**online, "player_id": "hn-nb-t2-001"}).encode(),
                                 clock.now())
    with transaction(fleet.sessions) as session:
        ingest_status(session, PLAYER, json.dumps({"player_id": PLAYER, "state": "offline"}).encode(), clock.now())
    with fleet.sessions() as session:
        presence = session.get(PlayerPresence, PLAYER)
    assert (presence.state, presence.plan_version, presence.journal_backlog) == ("offline", "v9", 4)


def test_a_status_stored_after_a_newer_one_does_not_turn_presence_back(fleet, clock):
    # Two ingest processes: the newer status is stored first, the older one (a retained copy handed over again
    # after a broker restart, or the previous status shared out to the other process) comes after it.
    def status(version: str, sent: datetime) -> bytes:
        return json.dumps({"player_id": PLAYER, "state": "online", "plan_version": version,
                           "sent_at": sent.isoformat()}).encode()

    sent = clock.now()
    for version, at in (("v2", sent), ("v1", sent - timedelta(seconds=30)), ("v3", sent + timedelta(seconds=1))):
        with transaction(fleet.sessions) as session:
            assert ingest_status(session, PLAYER, status(version, at), clock.now())
        with fleet.sessions() as session:
            presence = session.get(PlayerPresence, PLAYER)
        assert presence.plan_version == ("v2" if version == "v1" else version)
    assert presence.sent_at == sent + timedelta(seconds=1)


# -- idempotency is per player: (player_id, play_id) (issue 16) ---------------------------------------------------

OTHER = "hn-nb-t2-001"


def stored_pairs(database) -> set[tuple[str, str]]:
    with database.sessions() as session:
        return {tuple(row) for row in session.execute(select(PlayRecord.player_id, PlayRecord.play_id))}


def test_a_play_id_another_player_used_is_stored_for_this_player_too_never_acked_unstored(fleet, clock):
    # Before the key was (player_id, play_id), OTHER was told its record was committed (and deleted it from its
    # journal) while only PLAYER's row existed.
    mine = record()
    ingest(fleet, clock, [(PLAYER, batch([mine]))])
    theirs = record(player=OTHER, play_id=mine["play_id"])
    [(player, ack)] = ingest(fleet, clock, [(OTHER, batch([theirs]))]).acks
    assert (player, ack.committed, ack.rejected) == (OTHER, [mine["play_id"]], {})
    assert stored_pairs(fleet) == {(PLAYER, mine["play_id"]), (OTHER, mine["play_id"])}


def test_the_same_play_id_from_two_players_in_one_round_is_stored_for_each_and_counted_for_each(fleet, clock):
    shared = str(uuid.uuid4())
    outcome = ingest(fleet, clock, [(PLAYER, batch([record(play_id=shared)])),
                                    (OTHER, batch([record(player=OTHER, play_id=shared)]))])
    assert [(player, ack.committed) for player, ack in outcome.acks] == [(PLAYER, [shared]), (OTHER, [shared])]
    assert (outcome.inserted, outcome.duplicates) == (2, 0)
    assert stored_pairs(fleet) == {(PLAYER, shared), (OTHER, shared)}
    with fleet.sessions() as session:
        counted = session.execute(select(DeliveryRollup.screen_id, DeliveryRollup.completed_total))
        assert sorted(tuple(row) for row in counted) == sorted([(PLAYER, 1), (OTHER, 1)])
    again = ingest(fleet, clock, [(OTHER, batch([record(player=OTHER, play_id=shared)]))])
    assert (again.inserted, again.duplicates) == (0, 1)
