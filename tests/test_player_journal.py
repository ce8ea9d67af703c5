"""The player's proof-of-play journal: durable before publishing, drained in bounded batches, deleted on ack."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from player.journal import Journal, UnwrittenPlays
from tests.conftest import REPO, ProcessOutput

PLAYER = "hn-nb-t2-001"
MEDIA = "a" * 64
NOW = datetime(2024, 8, 20, 3, 0, tzinfo=UTC)
DAY = "2024-08-20"
RESEND = timedelta(seconds=60)


def record(kind: str = "filler", status: str = "completed", spot_id: str | None = None,
           started: datetime = NOW, play_id: str | None = None) -> dict:
    spot = kind in ("spot", "makegood")
    return {
        "play_id": play_id or str(uuid.uuid4()), "player_id": PLAYER,
        "spot_id": spot_id if spot else None, "campaign_id": "ihanoi-2024" if spot else None,
        "media": MEDIA, "kind": kind, "scheduled_start": started.isoformat() if spot else None,
        "started_at": started.isoformat(), "ended_at": (started + timedelta(seconds=30)).isoformat(),
        "duration_ms": 30_000, "status": status, "reason": None if status == "completed" else "playback error",
        "plan_version": "b" * 64,
    }


@pytest.fixture
def journal(tmp_path: Path):
    with Journal(tmp_path / "journal.db") as opened:
        yield opened


def fill(journal: Journal, count: int) -> list[str]:
    ids = []
    for _ in range(count):
        appended = record()
        journal.append(appended)
        ids.append(appended["play_id"])
    return ids


def test_appended_records_survive_reopening_the_journal(tmp_path):
    path = tmp_path / "journal.db"
    with Journal(path) as journal:
        first, second = record(), record("spot", spot_id="spot-1")
        journal.append(first)
        journal.append(second, local_date=DAY)
    with Journal(path) as reopened:
        assert reopened.backlog() == 2
        batch_id, records = reopened.take_batch(NOW, 10, RESEND)
        assert [r["play_id"] for r in records] == [first["play_id"], second["play_id"]]
        assert records[1] == second
        assert reopened.spot_log(DAY) == {"spot-1": "completed"}


def test_the_journal_writes_through_a_wal_with_full_synchronous_commits(journal):
    # synchronous=FULL fsyncs the WAL at each commit, so a power cut after append() cannot lose the record
    # (the kill -9 test below shows the commit happens before append returns).
    connection = journal._db
    assert connection.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert connection.execute("PRAGMA synchronous").fetchone() == (2,)


CHILD = """
import sys, uuid
sys.path.insert(0, {repo!r})
from player.journal import Journal
journal = Journal(__import__("pathlib").Path({path!r}))
for n in range(100000):
    play_id = str(uuid.uuid4())
    journal.append({{"play_id": play_id, "player_id": "hn-nb-t2-001", "media": "{media}", "kind": "filler",
                    "started_at": "2024-08-20T10:00:00+07:00", "ended_at": "2024-08-20T10:00:30+07:00",
                    "duration_ms": 30000, "status": "completed"}})
    print("appended", play_id, flush=True)
"""


def test_every_record_appended_before_a_kill_9_is_there_after_reopening_and_none_twice(tmp_path):
    path = tmp_path / "journal.db"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    child = subprocess.Popen([sys.executable, "-c", CHILD.format(repo=str(REPO), path=str(path), media=MEDIA)],
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=tmp_path)
    output = ProcessOutput(child)
    try:
        for _ in range(200):
            output.wait_for("appended", timeout=30)
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=10)
    assert child.returncode == -signal.SIGKILL
    with pytest.raises(RuntimeError, match="the process ended"):
        output.wait_for("a line never printed", timeout=10)  # collects every line printed before the kill
    printed = [line.split()[1] for line in output.lines if line.startswith("appended ")]
    assert len(printed) >= 200
    with Journal(path) as reopened:
        batch = reopened.take_batch(NOW, 5000, RESEND)
        assert reopened.backlog() == len(batch[1])
    assert batch is not None
    held = [r["play_id"] for r in batch[1]]
    assert len(held) == len(set(held))
    assert set(printed) <= set(held)
    # At most the append under way when the kill came is there without having been printed.
    assert len(held) - len(printed) <= 1
    assert sqlite3.connect(path).execute("PRAGMA integrity_check").fetchone() == ("ok",)


def test_take_batch_never_hands_out_a_record_twice_within_resend_after_and_again_after_it(journal):
    ids = fill(journal, 3)
    first = journal.take_batch(NOW, 10, RESEND)
    assert first is not None and [r["play_id"] for r in first[1]] == ids
    assert journal.take_batch(NOW, 10, RESEND) is None
    assert journal.take_batch(NOW + RESEND - timedelta(microseconds=1), 10, RESEND) is None
    later = journal.take_batch(NOW + RESEND, 10, RESEND)
    assert later is not None
    assert [r["play_id"] for r in later[1]] == ids
    assert later[0] != first[0]


def test_a_record_appended_after_a_batch_went_out_goes_in_the_next_batch_alone(journal):
    fill(journal, 2)
    journal.take_batch(NOW, 10, RESEND)
    live = fill(journal, 1)
    batch = journal.take_batch(NOW + timedelta(seconds=1), 10, RESEND)
    assert batch is not None and [r["play_id"] for r in batch[1]] == live


def test_acknowledge_deletes_committed_records_and_dead_letters_rejected_ones(journal):
    committed, rejected, unanswered = fill(journal, 3)
    batch_id, _ = journal.take_batch(NOW, 10, RESEND)
    journal.acknowledge([committed, "never-held-0001"], {rejected: "player_id does not match the topic"},
                        batch_id=batch_id)
    assert journal.backlog() == 1
    assert journal.dead_letters() == [(rejected, "player_id does not match the topic")]
    again = journal.take_batch(NOW + RESEND, 10, RESEND)
    assert again is not None and [r["play_id"] for r in again[1]] == [unanswered]
    # A repeated ack changes nothing.
    journal.acknowledge([committed], {rejected: "player_id does not match the topic"})
    assert journal.backlog() == 1
    assert journal.dead_letters() == [(rejected, "player_id does not match the topic")]


def test_a_rejection_by_position_dead_letters_that_record_of_the_batch(journal):
    ids = fill(journal, 3)
    batch_id, records = journal.take_batch(NOW, 10, RESEND)
    journal.acknowledge([ids[0], ids[2]], {"#1": "not a proof-of-play record"}, batch_id=batch_id)
    assert journal.backlog() == 0
    assert journal.dead_letters() == [(records[1]["play_id"], "not a proof-of-play record")]


def test_a_dead_lettered_record_is_never_sent_again_nor_taken_back(journal):
    [rejected] = fill(journal, 1)
    journal.take_batch(NOW, 10, RESEND)
    journal.acknowledge([], {rejected: "unknown campaign"})
    assert journal.take_batch(NOW + 10 * RESEND, 10, RESEND) is None
    with pytest.raises(ValueError, match="already rejected by the server"):
        journal.append(record(play_id=rejected))


def test_a_backlog_drains_in_bounded_batches_with_the_newest_records_in_the_first(journal):
    backlog = fill(journal, 25)
    sent: list[str] = []
    now = NOW
    first = True
    while (batch := journal.take_batch(now, 10, RESEND)) is not None:
        batch_id, records = batch
        ids = [r["play_id"] for r in records]
        assert len(ids) >= 1 and len(ids) <= 10
        if first:
            # Half the batch is the newest (live) records, half the oldest of the backlog.
            assert ids == backlog[:5] + backlog[-5:]
            first = False
        sent += ids
        journal.acknowledge(ids, {})
        now += timedelta(seconds=1)
    assert sorted(sent) == sorted(backlog)
    assert len(sent) == len(set(sent))
    assert journal.backlog() == 0


def test_live_records_go_out_next_even_behind_a_large_backlog(journal):
    fill(journal, 40)
    journal.take_batch(NOW, 10, RESEND)  # a batch in flight, its ack still to come
    live = fill(journal, 2)
    batch_id, records = journal.take_batch(NOW + timedelta(seconds=1), 10, RESEND)
    ids = [r["play_id"] for r in records]
    assert len(ids) == 10
    assert set(live) <= set(ids)


def test_spot_log_gives_completed_or_made_good_per_spot_of_the_day(journal):
    journal.append(record("spot", spot_id="s-ok"), local_date=DAY)
    journal.append(record("spot", "failed", spot_id="s-made-good"), local_date=DAY)
    journal.append(record("makegood", spot_id="s-made-good", started=NOW + timedelta(minutes=5)), local_date=DAY)
    journal.append(record("spot", "interrupted", spot_id="s-still-owed"), local_date=DAY)
    journal.append(record("makegood", "failed", spot_id="s-still-owed"), local_date=DAY)
    journal.append(record("spot", "missed", spot_id="s-tomorrow"), local_date="2024-08-21")
    # A completed spot stays completed whatever comes after it.
    journal.append(record("makegood", "failed", spot_id="s-ok"), local_date=DAY)
    assert journal.spot_log(DAY) == {"s-ok": "completed", "s-made-good": "made_good", "s-still-owed": "failed"}
    # The spot log outlives the records: acknowledged records are gone, the outcomes stay.
    batch_id, records = journal.take_batch(NOW, 100, RESEND)
    journal.acknowledge([r["play_id"] for r in records], {})
    assert journal.backlog() == 0
    assert journal.spot_log(DAY)["s-made-good"] == "made_good"
    journal.prune_spot_log("2024-08-21")
    assert journal.spot_log(DAY) == {}
    assert journal.spot_log("2024-08-21") == {"s-tomorrow": "missed"}


def test_a_spot_record_without_its_local_date_is_refused(journal):
    with pytest.raises(ValueError, match="needs local_date"):
        journal.append(record("spot", spot_id="s-1"))
    assert journal.backlog() == 0


def test_an_invalid_record_is_refused_with_a_message_naming_the_problem(journal):
    broken = record()
    broken["media"] = "not-a-sha"
    with pytest.raises(ValueError, match=r"media: String should match pattern"):
        journal.append(broken)
    backwards = record()
    backwards["ended_at"] = (NOW - timedelta(seconds=1)).isoformat()
    with pytest.raises(ValueError, match="ended_at is before started_at"):
        journal.append(backwards)
    unknown = {**record(), "colour": "red"}
    with pytest.raises(ValueError, match="colour: Extra inputs are not permitted"):
        journal.append(unknown)
    assert journal.backlog() == 0


def test_appending_the_same_record_twice_keeps_one_and_another_record_under_its_play_id_is_refused(journal):
    once = record()
    journal.append(once)
    journal.append(once)
    assert journal.backlog() == 1
    with pytest.raises(ValueError, match="already holds another record"):
        journal.append({**once, "status": "failed", "reason": "decoder error"})
    assert journal.backlog() == 1


def test_plays_held_in_memory_keep_the_oldest_at_the_bound_and_go_to_the_journal_in_play_order(journal):
    held = UnwrittenPlays(limit=3)
    spot = record("spot", spot_id="spot-1")
    broken = {**record(), "duration_ms": -1}  # the journal refuses it whatever the disk does
    plays = [record(), spot, broken, record(), record()]
    assert [held.hold(play, local_date=DAY if play is spot else None) for play in plays] == [
        True, True, True, False, False]
    assert (len(held), held.refused, held.records()) == (3, 2, plays[:3])

    held.write_to(journal)
    assert len(held) == 0
    _, sent = journal.take_batch(NOW, 10, RESEND)
    assert [r["play_id"] for r in sent] == [plays[0]["play_id"], spot["play_id"]]  # the invalid one dropped, logged
    assert journal.spot_log(DAY) == {"spot-1": "completed"}  # with its local date, as if appended at once
