"""Published plans, read one way: the newest plan of a player is its newest row, found by scheduler/plan_store.py
and nowhere else."""

from __future__ import annotations

import re
from datetime import timedelta

from sqlalchemy import select

from scheduler.models import PublishedPlan
from scheduler.plan_store import newest_bodies, newest_body, newest_versions
from scheduler.planning import plan_and_store
from signage.db import transaction
from tests.conftest import REPO

NEWEST_ROW = re.compile(r"PublishedPlan\.id\b")


def test_only_the_plan_store_picks_a_players_newest_plan():
    pickers = [path.relative_to(REPO).as_posix() for folder in ("campaigns", "scheduler", "media", "simulation",
                                                                   "loadtest", "signage", "tests")
               for path in (REPO / folder).rglob("*.py")
               if path.name not in ("plan_store.py", "test_plan_store.py") and "migrations" not in path.parts
               and NEWEST_ROW.search(path.read_text(encoding="utf-8"))]
    assert pickers == []


def test_a_version_issued_again_is_the_newest_and_each_reader_agrees(database, fleet, clock):
    with transaction(database.sessions) as session:
        first = plan_and_store(session, clock.now(), days=1)
    assert first.changed
    player = first.changed[0]
    with database.sessions() as session:
        version_a = newest_versions(session)[player]
        body_a = newest_body(session, player)
    with transaction(database.sessions) as session:  # another day planned: every plan changes...
        plan_and_store(session, clock.now() + timedelta(days=1), days=1)
    with transaction(database.sessions) as session:  # ...and the first day's plans come back, issued again
        plan_and_store(session, clock.now(), days=1)
    with database.sessions() as session:
        rows = session.execute(select(PublishedPlan.version).where(PublishedPlan.player_id == player)).all()
        assert len(rows) == 2
        assert newest_versions(session)[player] == newest_versions(session, [player])[player] == version_a
        again = newest_body(session, player)
        assert again is not None and again != body_a  # the same plan under a new, higher sequence
        assert newest_bodies(session, [player, "no-such-screen"]) == {player: again}


def test_many_players_are_read_in_pieces_and_all_found(database, fleet, clock):
    with transaction(database.sessions) as session:
        changed = plan_and_store(session, clock.now(), days=1).changed
    asked = changed + [f"khong-co-{n}" for n in range(2500)]  # past one IN list's batch
    with database.sessions() as session:
        assert sorted(newest_bodies(session, asked)) == sorted(changed)
        assert newest_versions(session, asked) == newest_versions(session)
