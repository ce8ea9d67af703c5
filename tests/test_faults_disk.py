"""Fault: the player's disk fills up while it caches media (issue 9, fault suite).

The player's data directory (journal, plan, media cache) is on a small tmpfs mounted for the test (the suite runs
as root, as `make test` does). The real agent on the shared virtual clock (tests/test_faults_offline.py) holds
its plan with the poster cached; a ballast file leaves room for half the clip. The cache says the disk is full
(and leaves the journal its room: before that fix the download took the last bytes and every play after it was
lost, "database or disk is full"), the screen keeps playing what it has and journals every play, and once room
comes back the clip is fetched from where it stopped, plays, and the spots it missed are made good.
"""

from __future__ import annotations

import os
import subprocess
from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import select

from media.models import MediaAsset
from player.cache import DISK_FULL, DISK_RESERVE_BYTES
from scheduler.app import create_app
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
