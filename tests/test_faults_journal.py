"""Fault: the player killed (-9) while it writes its journal, again and again (issue 9, fault suite).

A child process works the real journal as the agent does: it appends plays (spots with their local date, and
filler), takes batches to send and applies acks, saying on stdout what each call did once the call returned.
It is killed at an arbitrary moment, ten times over on the same file; each time the file is reopened and
checked against what the child said: every append that returned is there until an ack that returned removed it,
an ack cut by the kill took all of its records or none, nothing is there twice, and SQLite finds the file sound.
"""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys

import pytest

from player.journal import Journal
from tests.conftest import REPO, ProcessOutput

pytestmark = pytest.mark.faults

WORKER = """
import json, sys, uuid
from datetime import datetime, timedelta, timezone
sys.path.insert(0, {repo!r})
from player.journal import Journal

journal = Journal(__import__("pathlib").Path({path!r}))
now = datetime(2024, 8, 20, 3, 0, tzinfo=timezone.utc) + timedelta(hours={round})
for n in range(1_000_000):
    now += timedelta(seconds=15)
    spot = n % 3 == 0
    record = {{"play_id": str(uuid.uuid4()), "player_id": "hn-nb-t2-001", "media": "a" * 64,
              "kind": "spot" if spot else "filler", "spot_id": f"s-{{{round}}}-{{n}}" if spot else None,
              "campaign_id": "ihanoi-2024" if spot else None,
              "scheduled_start": now.isoformat() if spot else None, "started_at": now.isoformat(),
              "ended_at": (now + timedelta(seconds=15)).isoformat(), "duration_ms": 15000, "status": "completed"}}
    journal.append(record, local_date="2024-08-20" if spot else None)
    print("appended", record["play_id"], flush=True)
    if n % 5 == 4:
        batch = journal.take_batch(now, 8, timedelta(seconds=30))
        if batch is not None:
            acked = [r["play_id"] for r in batch[1][::2]]
            print("acking", json.dumps(acked), flush=True)
            journal.acknowledge(acked, {{}}, batch_id=batch[0])
            print("acked", json.dumps(acked), flush=True)
"""


def reopened(path) -> tuple[list[str], set[str]]:
    """The play_ids the journal holds, and those its spot log names, after reopening it as the agent does."""
    with Journal(path) as journal:  # reopening runs SQLite's recovery of the write-ahead log
        assert journal.backlog() >= 0
    with sqlite3.connect(path) as reader:
        assert reader.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        ids = [play_id for (play_id,) in reader.execute("SELECT play_id FROM records")]
        logged = {play_id for (play_id,) in reader.execute("SELECT play_id FROM spot_log")}
    return ids, logged


def test_a_journal_killed_mid_write_ten_times_loses_no_append_and_holds_nothing_twice(tmp_path):
    path = tmp_path / "journal.db"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    rng = random.Random(9)
    appended: set[str] = set()
    acked: set[str] = set()
    for round_number in range(10):
        child = subprocess.Popen([sys.executable, "-c", WORKER.format(repo=str(REPO), path=str(path),
                                                                      round=round_number)],
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=tmp_path)
        output = ProcessOutput(child)
        try:
            for _ in range(rng.randint(5, 120)):  # an arbitrary moment: somewhere in the loop's next call
                output.wait_for("appended", timeout=30)
        finally:
            os.kill(child.pid, signal.SIGKILL)
            child.wait(timeout=10)
        assert child.returncode == -signal.SIGKILL
        with pytest.raises(RuntimeError, match="the process ended"):
            output.wait_for("a line never printed", timeout=10)  # every line printed before the kill
        in_flight: list[str] = []
        for line in output.lines:
            word, _, rest = line.strip().partition(" ")
            if word == "appended":
                appended.add(rest)
            elif word == "acking":
                in_flight = json.loads(rest)
            elif word == "acked":
                acked.update(json.loads(rest))
                in_flight = []
        ids, logged = reopened(path)
        assert len(ids) == len(set(ids))
        holding = set(ids)
        assert not holding & acked, "an acknowledged record came back"
        taken = set(in_flight) - holding
        assert taken in (set(), set(in_flight)), "an ack was applied in part"
        acked.update(taken)
        assert appended - acked <= holding, "an append that returned was lost"
        unannounced = holding - appended
        assert len(unannounced) <= 1  # at most the append the kill cut between its commit and its print
        appended |= unannounced
        assert logged <= holding | acked  # the spot log moves in the same transactions
    assert len(appended) > 10 * 5
