"""Retention on both databases: `signage db prune --dry-run` lists by table and month what `signage db prune` then
deletes, and deletes nothing; a player's newest plan and the plan it says it holds are never deleted; the ledger and
the hourly roll-up stay; deletion goes in batches, each committed, so other writers get the database in between."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import func, select

from scheduler.ingest import ScreenDirectory, ingest_pop
from scheduler.models import DeliveryRollup, PlayerPresence, PlayHours, PlayRecord, PublishedPlan
from scheduler.plan_store import newest_versions
from scheduler.planning import plan_and_store
from scheduler.retention import PAUSE_SECONDS, Cutoffs, RetentionJob, cutoffs, prune, prune_batches
from signage.config import Settings
from signage.db import transaction
from tests.test_ledger import VANQUAN, at, ledger, play  # noqa: F401
from tests.test_play_hours import message

LATER = datetime(2026, 1, 10, 3, 0, tzinfo=UTC)


def counts(database) -> dict[str, int]:
    with database.sessions() as session:
        return {model.__table__.name: session.scalar(select(func.count()).select_from(model))
                for model in (PlayRecord, PublishedPlan, DeliveryRollup, PlayHours)}


def replan(database, clock, days_later: int = 1) -> None:
    """Another day planned: every player's plan changes, so each has a superseded version."""
    with transaction(database.sessions) as session:
        plan_and_store(session, clock.now() + timedelta(days=days_later), days=1)


def prune_cli(env: dict[str, str], *flags: str) -> dict:
    result = subprocess.run([sys.executable, "-m", "signage_cli", "db", "prune", "--json", *flags], env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_the_cutoffs_keep_whole_months_of_plays_and_days_of_superseded_plans():
    limits = cutoffs(Settings(_env_file=None), datetime(2026, 12, 3, 20, 0, tzinfo=UTC))
    assert limits.plays_before == date(2025, 11, 1)  # November 2025 to December 2026: 13 months and this one
    assert limits.plans_before == datetime(2026, 9, 4, 20, 0, tzinfo=UTC)
    assert cutoffs(Settings(_env_file=None, pop_retention_months=1), datetime(2026, 1, 5, tzinfo=UTC)
                   ).plays_before == date(2025, 12, 1)


def test_a_dry_run_deletes_nothing_and_lists_by_table_and_month_what_prune_then_deletes(
        ledger, clock, cli_env):  # noqa: F811
    replan(ledger, clock)
    before = counts(ledger)
    dry = prune_cli(cli_env, "--dry-run")  # today is years after these plays and plans
    assert counts(ledger) == before
    due = {(row["table"], row["month"]): row["rows"] for row in dry["due"]}
    assert due[("play_records", "2024-08")] == before["play_records"]
    assert due[("published_plans", "2024-08")] == before["published_plans"] - len(ledger_players(ledger))
    assert dry["deleted"] is None
    done = prune_cli(cli_env)
    assert done["due"] == dry["due"]
    assert done["deleted"] == {"play_records": before["play_records"],
                               "published_plans": due[("published_plans", "2024-08")]}
    after = counts(ledger)
    assert (after["play_records"], after["published_plans"]) == (0, len(ledger_players(ledger)))
    # The audit's summary stays: the ledger and the hourly roll-up.
    assert (after["delivery_rollups"], after["play_hours"]) == (before["delivery_rollups"], before["play_hours"])
    assert prune_cli(cli_env, "--dry-run")["due"] == []


def ledger_players(database) -> dict[str, str]:
    with database.sessions() as session:
        return newest_versions(session)


def test_prune_never_removes_a_players_newest_plan_nor_the_one_it_says_it_holds(ledger, clock):  # noqa: F811
    first = ledger_players(ledger)
    replan(ledger, clock)
    newest = ledger_players(ledger)
    with transaction(ledger.sessions) as session:  # Van Quan's player still plays its first plan
        session.merge(PlayerPresence(player_id=VANQUAN, state="online", last_seen=clock.now(),
                                     plan_version=first[VANQUAN]))
    deleted = prune(ledger.sessions, Cutoffs(plays_before=date(2000, 1, 1), plans_before=LATER),
                    sleep=lambda seconds: None)
    assert deleted["published_plans"] == len(first) - 1
    assert ledger_players(ledger) == newest
    with ledger.sessions() as session:
        kept = set(session.execute(select(PublishedPlan.player_id, PublishedPlan.version)))
    assert kept == {*newest.items(), (VANQUAN, first[VANQUAN])}
    replan(ledger, clock, days_later=2)  # the plans that replaced them are superseded only now: not yet 90 days
    assert prune(ledger.sessions, cutoffs(Settings(_env_file=None), clock.now() + timedelta(days=30)),
                 sleep=lambda seconds: None)["published_plans"] == 0


def test_pruning_goes_in_committed_batches_that_let_ingest_write_in_between(ledger, clock):  # noqa: F811
    plays = counts(ledger)["play_records"]
    batches, stored = [], 0
    for table, rows in prune_batches(ledger.sessions, Cutoffs(plays_before=date(2024, 9, 1),
                                                              plans_before=datetime(2000, 1, 1, tzinfo=UTC)),
                                     batch_rows=5):
        batches.append((table, rows))
        with transaction(ledger.sessions) as session:  # ingest between two batches: the database is free
            stored += ingest_pop(session, [message(VANQUAN, [play(VANQUAN, at(9, 0, day=date(2024, 9, 2)))])],
                                 ScreenDirectory(), clock.now()).inserted
    assert [rows for _, rows in batches] == [5] * (plays // 5) + ([plays % 5] if plays % 5 else [])
    assert {table for table, _ in batches} == {"play_records"}
    assert stored == len(batches)
    assert counts(ledger)["play_records"] == stored  # September's plays are kept


def test_prune_rests_after_every_batch(ledger):  # noqa: F811
    rests: list[float] = []
    deleted = prune(ledger.sessions, Cutoffs(plays_before=date(2024, 9, 1), plans_before=datetime(2000, 1, 1,
                                                                                                  tzinfo=UTC)),
                    batch_rows=4, sleep=rests.append)
    assert len(rests) == -(-deleted["play_records"] // 4) > 1
    assert min(rests) >= PAUSE_SECONDS


def test_the_nightly_job_prunes_only_on_the_planning_lease_holder(ledger, clock):  # noqa: F811
    settings = Settings(_env_file=None)
    clock.set(LATER)
    assert not RetentionJob(ledger, clock, settings, holds_lease=lambda now: False).run()
    assert counts(ledger)["play_records"] > 0
    assert RetentionJob(ledger, clock, settings, holds_lease=lambda now: True).run()["play_records"] > 0
    assert counts(ledger)["play_records"] == 0
