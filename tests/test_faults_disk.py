"""Fault: the player's disk fills up while it caches media (issue 9, fault suite).

The player's data directory (journal, plan, media cache) is on a small tmpfs mounted for the test (the suite runs
as root, as `make test` does). The real agent on the shared virtual clock (tests/test_faults_offline.py) holds
its plan with the poster cached; a ballast file leaves room for half the clip. The cache says the disk is full
(and leaves the journal its room: before that fix the download took the last bytes and every play after it was
lost, "database or disk is full"), the screen keeps playing what it has and journals every play, and once room
comes back the clip is fetched from where it stopped, plays, and the spots it missed are made good.

Then the journal's own disk fills (issue 16, item 4): every play made is counted as the agent makes it, and each
must reach the server exactly once, whether the disk is freed while the agent runs or the agent is stopped cleanly
while it is still full; and once the memory's bound is reached, the newest plays are the ones refused, and said so.
"""

from __future__ import annotations

import json
import os
import subprocess
from datetime import date, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from media.models import MediaAsset
from player.cache import DISK_FULL, DISK_RESERVE_BYTES
from player.journal import UnwrittenPlays
from scheduler.app import create_app
from signage.protocol import player_topic
from tests import test_faults_offline as offline
from tests.servers import serve_in_thread
from tests.test_faults_offline import CAMPAIGN, HANOI, VANQUAN, VirtualScreen, hanoi

pytestmark = pytest.mark.faults

database_url = offline.database_url
players_dir = offline.players_dir
fault_stack = offline.fault_stack

FRIDAY = date(2024, 8, 23)


@pytest.fixture
def small_disk(tmp_path: Path):
    if os.geteuid() != 0:
        pytest.fail("the disk-full fault mounts a tmpfs: run the suite as root (make test does, with sudo)")
    mountpoint = tmp_path / "disk"
    mountpoint.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m,mode=0700", "tmpfs", str(mountpoint)], check=True)
    try:
        yield mountpoint
    finally:
        subprocess.run(["umount", "-l", str(mountpoint)], check=True)


@pytest.fixture
def media_server(fault_stack):
    app = create_app(fault_stack.settings.model_copy(update={"mqtt": False, "jobs": False}), fault_stack.clock)
    server, thread, port = serve_in_thread(app)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


def fill(disk: Path, leave: int) -> Path:
    """A ballast file that leaves `leave` bytes free on the disk."""
    ballast = disk / "ballast"
    stats = os.statvfs(disk)
    with ballast.open("wb") as handle:
        handle.truncate(0)
        handle.write(b"\0" * max(0, stats.f_bavail * stats.f_frsize - leave))
    return ballast


def cache_pass(screen: VirtualScreen):
    """One pass of the agent's cache thread; returns the report it posts to the loop."""
    screen.agent.cache_pass()
    reports = [value for kind, value in list(screen.agent.events.queue) if kind == "cache"]
    screen.drain()
    return reports[-1]


def test_a_full_disk_while_caching_is_reported_what_is_cached_plays_and_the_clip_comes_once_room_is_back(
        fault_stack, small_disk, media_server):
    stack = fault_stack
    with stack.database.sessions() as session:
        names = {a.original_name: a.sha256 for a in session.scalars(select(MediaAsset))}
    clip, poster = names["ihanoi-30s.mp4"], names["ihanoi-poster.png"]
    screen = VirtualScreen(stack, VANQUAN, cached={poster}, server_url=media_server, data_dir=small_disk / "player")
    try:
        screen.connect()
        screen.disconnect()
        size = stack.media_files()[clip].stat().st_size
        ballast = fill(small_disk, DISK_RESERVE_BYTES + size // 2)  # other files: room for half the clip
        report = cache_pass(screen)
        assert report.failed.get(clip) == DISK_FULL
        partial = small_disk / "player" / "media" / "partial" / f"{clip}.part"
        assert 0 < partial.stat().st_size < size  # kept, to resume from
        assert screen.agent.status().cache.missing >= 1

        screen.run_until(hanoi(FRIDAY, 11))  # the morning peak on a full disk
        morning = screen.journaled()
        spots = [r for r in morning if r["kind"] == "spot"]
        assert spots and all(r["status"] == "completed" for r in spots if r["media"] == poster)
        assert all((r["status"], r["reason"]) == ("missed", "media not cached") for r in spots if r["media"] == clip)
        assert any(r["media"] == clip for r in spots) and any(r["media"] == poster for r in spots)
        assert not any(r["media"] == clip and r["status"] == "completed" for r in morning)

        ballast.unlink()  # room again
        assert screen.agent.cache.retry_at(clip) <= stack.clock.now()  # its retry time passed in the morning
        assert cache_pass(screen).downloaded == [clip]
        assert not partial.exists()
        screen.run_until(hanoi(FRIDAY, 17))
        journaled = screen.journaled()

        screen.connect()
        screen.turn_until(lambda: screen.backlog() == 0, 60, "the journal never drained")
        assert screen.held_version() == stack.latest_version(VANQUAN)
        assert sorted(stack.play_ids(VANQUAN)) == sorted(r["play_id"] for r in journaled)
        plan_spots = {s.spot_id for s in screen.agent.state.plan.spots if s.start.astimezone(HANOI).date() == FRIDAY}
        completed = [r["spot_id"] for r in journaled if r["kind"] in ("spot", "makegood")
                     and r["status"] == "completed"]
        assert sorted(completed) == sorted(plan_spots)  # each once: the clip's missed spots made good after
        row = stack.ledger(VANQUAN)[FRIDAY]
        missed = sum(1 for r in journaled if r["status"] == "missed")
        assert (row.campaign_id, row.required, row.completed_in_peak, row.makegoods, row.missed,
                row.media_missing) == (CAMPAIGN, 10, 10, missed, missed, missed)
    finally:
        screen.close()


# -- the journal on a full disk ------------------------------------------------------------------------------------


def records_made(screen: VirtualScreen) -> list[dict]:
    """Every proof-of-play record the agent makes from now on, noted as it is made, before the journal sees it."""
    made: list[dict] = []
    make = screen.agent.proof.record

    def noting(**fields) -> dict:
        made.append(make(**fields))
        return made[-1]

    screen.agent.proof.record = noting
    return made


def statuses_published(screen: VirtualScreen) -> list[dict]:
    """The status messages the agent publishes from now on, as sent."""
    sent: list[dict] = []
    publish, topic = screen.agent.client.publish, player_topic(screen.config.player_id, "status")

    def noting(to, payload=None, *args, **kwargs):
        if to == topic:
            sent.append(json.loads(payload))
        return publish(to, payload, *args, **kwargs)

    screen.agent.client.publish = noting
    return sent


def play_ids(records: list[dict]) -> list[str]:
    return sorted(record["play_id"] for record in records)


def test_plays_made_while_the_journals_disk_is_full_wait_in_memory_and_each_arrives_once_the_disk_is_freed(
        fault_stack, small_disk):
    stack = fault_stack
    screen = VirtualScreen(stack, VANQUAN, data_dir=small_disk / "player")
    try:
        screen.connect()  # and it stays connected: nothing holds the plays back but the disk
        made, published = records_made(screen), statuses_published(screen)
        ballast = fill(small_disk, 0)
        screen.run_until(hanoi(FRIDAY, 11))  # the morning peak, on a full disk

        held = screen.agent.proof.unwritten.records()
        assert held and held == made[-len(held):]  # the newest plays, in play order, none missing between
        status = screen.agent.status()
        assert "database or disk is full" in status.journal_error
        assert status.journal_unwritten == len(held) and status.journal_backlog >= len(held)
        assert status.journal_refused is None
        assert published and published[-1]["journal_unwritten"] > 0 and published[-1]["journal_error"]
        # Never sent while they are not on disk: the server has none of them.
        assert not set(stack.play_ids(VANQUAN)) & {record["play_id"] for record in held}

        ballast.unlink()  # the disk is freed
        screen.run_until(hanoi(FRIDAY, 17))
        assert len(screen.agent.proof.unwritten) == 0 and screen.agent.status().journal_error is None
        assert "journal_error" not in published[-1] and "journal_unwritten" not in published[-1]
        screen.turn_until(lambda: screen.backlog() == 0, 60, "the journal never drained")

        assert play_ids(made) == sorted(stack.play_ids(VANQUAN))  # every play, each exactly once
        plan_spots = {s.spot_id for s in screen.agent.state.plan.spots if s.start.astimezone(HANOI).date() == FRIDAY}
        completed = [r["spot_id"] for r in made if r["kind"] in ("spot", "makegood") and r["status"] == "completed"]
        assert sorted(completed) == sorted(plan_spots)  # each spot once: none played again for want of a record
        row = stack.ledger(VANQUAN)[FRIDAY]
        assert (row.campaign_id, row.required, row.completed_in_peak) == (CAMPAIGN, 10, 10)
    finally:
        screen.close()


def test_an_agent_stopped_while_the_journals_disk_is_still_full_hands_its_plays_to_the_broker(fault_stack, small_disk):
    stack = fault_stack
    screen = VirtualScreen(stack, VANQUAN, data_dir=small_disk / "player")
    try:
        screen.connect()
        made = records_made(screen)
        fill(small_disk, 0)
        screen.run_until(hanoi(FRIDAY, 9))
        assert made and screen.agent.proof.unwritten.records() == made  # nothing could be written since the fill

        # A clean stop (the loop ended by stop(), as SIGTERM does) with the disk still full. The agent returns once
        # every batch it sent is acknowledged; the wait is only a bound for a server that never answers.
        screen.agent.proof.stop_ack_wait = timedelta(seconds=60)
        screen.agent.close()
        assert len(screen.agent.proof.unwritten) == 0
        assert play_ids(made) == sorted(stack.play_ids(VANQUAN))  # committed (acked after commit), each once
    finally:
        screen.close()


def test_once_the_memory_bound_is_reached_the_newest_plays_are_refused_counted_and_the_oldest_arrive(
        fault_stack, small_disk):
    stack = fault_stack
    screen = VirtualScreen(stack, VANQUAN, data_dir=small_disk / "player")
    try:
        screen.connect()
        screen.agent.proof.unwritten = UnwrittenPlays(limit=5)
        made = records_made(screen)
        ballast = fill(small_disk, 0)
        screen.run_until(hanoi(FRIDAY, 9))
        assert len(made) > 5
        assert screen.agent.proof.unwritten.records() == made[:5]  # the oldest kept
        status = screen.agent.status()
        assert (status.journal_unwritten, status.journal_refused) == (5, len(made) - 5)

        ballast.unlink()
        screen.turn_until(lambda: len(screen.agent.proof.unwritten) == 0 and screen.backlog() == 0, 60,
                          "the journal never drained")
        assert sorted(stack.play_ids(VANQUAN)) == play_ids(made[:5])
        assert screen.agent.status().journal_refused == len(made) - 5  # said until the agent restarts
    finally:
        screen.close()
