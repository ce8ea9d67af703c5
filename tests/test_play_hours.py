"""The hourly roll-up kept at ingest (`play_hours`), on both databases: it always equals a count of the log, whatever
arrives twice or crosses local midnight; the compliance chart reads it and shows what the log says; the migration
fills it from an existing log."""

from __future__ import annotations

import importlib.util
import json
import uuid
from collections import Counter
from datetime import date
from pathlib import Path

from sqlalchemy import delete, func, select

from campaigns.models import Screen, Site
from scheduler.ingest import ScreenDirectory, ingest_pop
from scheduler.models import HOURS, PlayHours, PlayRecord
from scheduler.reports.compliance import compliance_report, plays_by_hour
from scheduler.reports.scope import Scope
from signage.db import transaction
from tests.test_ledger import HANOI, PHULA_1, TUESDAY, VANQUAN, at, ledger, play  # noqa: F401

WEDNESDAY = date(2024, 8, 21)
VANQUAN_SITE, PHULA_SITE = "hadong-vanquan", "hadong-phula"  # the sites of VANQUAN and PHULA_1
MIGRATION = Path(__file__).resolve().parents[1] / "scheduler/migrations/versions/0022_play_hours.py"


def message(player: str, records: list[dict]) -> tuple[str, bytes]:
    return player, json.dumps({"schema": "signage.pop/1", "batch_id": str(uuid.uuid4()), "records": records}).encode()


def rolled_up(session) -> Counter:
    """play_hours as {(local date, site, campaign, hour): plays}."""
    counts: Counter = Counter()
    for row in session.execute(select(PlayHours.__table__)).mappings():
        for hour, name in enumerate(HOURS):
            if row[name]:
                counts[(row["local_date"], row["site_id"], row["campaign_id"], hour)] += row[name]
    return counts


def counted_from_the_log(session) -> Counter:
    """The same figures counted from the log itself, each play at its screen's site, its hour read in the site's
    zone (Hà Nội here)."""
    site_of = dict(session.execute(select(Screen.id, Screen.site_id)).all())
    return Counter((p.local_date, site_of[p.player_id], p.campaign_id, p.started_at.astimezone(HANOI).hour)
                   for p in session.scalars(select(PlayRecord).where(
                       PlayRecord.status == "completed", PlayRecord.kind.in_(("spot", "makegood")))))


def hadong(first: date = TUESDAY, last: date = TUESDAY, campaign: str | None = None) -> Scope:
    return Scope("hn-hadong", "Quận Hà Đông", "/hn/hn-hadong/", first, last, campaign)


def test_the_roll_up_equals_the_logs_count_with_duplicates_and_plays_across_local_midnight(ledger, clock):  # noqa: F811
    late, early = play(VANQUAN, at(23, 59)), play(VANQUAN, at(0, 0, day=WEDNESDAY))
    makegood = play(PHULA_1, at(23, 30), kind="makegood")
    directory = ScreenDirectory()
    with transaction(ledger.sessions) as session:  # the same record in two messages of one round
        outcome = ingest_pop(session, [message(VANQUAN, [late, early]), message(VANQUAN, [late]),
                                       message(PHULA_1, [makegood])], directory, clock.now())
    assert outcome.inserted == 3
    with transaction(ledger.sessions) as session:  # and sent again later: the player never saw its ack
        outcome = ingest_pop(session, [message(VANQUAN, [late, early]), message(PHULA_1, [makegood])],
                             directory, clock.now())
    assert (outcome.inserted, outcome.duplicates) == (0, 3)
    with ledger.sessions() as session:
        hours = rolled_up(session)
        assert hours == counted_from_the_log(session)
    assert hours[(TUESDAY, VANQUAN_SITE, "ihanoi-2024", 23)] == 1
    assert hours[(WEDNESDAY, VANQUAN_SITE, "ihanoi-2024", 0)] == 1
    assert hours[(TUESDAY, PHULA_SITE, "ihanoi-2024", 23)] == 1
    assert hours[(TUESDAY, VANQUAN_SITE, "ihanoi-2024", 8)] == 8  # the fixture's eight spots from 08:00
    assert sum(hours.values()) == 9 + 16 + 1 + 3  # failed and missed plays are not charted


def plays_by_hour_from_the_log(session, scope: Scope) -> dict[str, list[int]]:
    """What the chart showed before the roll-up: the log scanned for the scope, hours in Hà Nội's."""
    counts: dict[str, list[int]] = {}
    query = scope.filter_plays(select(Site.kind, PlayRecord.started_at)).where(
        PlayRecord.status == "completed", PlayRecord.kind.in_(("spot", "makegood")))
    for kind, started_at in session.execute(query):
        counts.setdefault(kind.value, [0] * 24)[started_at.astimezone(HANOI).hour] += 1
    return counts


def test_the_chart_reads_from_the_roll_up_what_the_log_says_for_the_period_the_unit_and_the_campaign(
        ledger, clock):  # noqa: F811
    with transaction(ledger.sessions) as session:
        ingest_pop(session, [message(VANQUAN, [play(VANQUAN, at(23, 59)), play(VANQUAN, at(7, 0, day=WEDNESDAY))])],
                   ScreenDirectory(), clock.now())
    with ledger.sessions() as session:
        for scope in (hadong(), hadong(WEDNESDAY, WEDNESDAY), hadong(date(2024, 8, 14), WEDNESDAY),
                      hadong(campaign="ihanoi-2024"), hadong(campaign="another"),
                      Scope("hn-hadong-phula", "Phú La", "/hn/hn-hadong/hn-hadong-phula/", TUESDAY, TUESDAY),
                      Scope("hn", "Hà Nội", "/hn/", date(2024, 8, 1), date(2024, 8, 31))):
            assert plays_by_hour(session, scope) == plays_by_hour_from_the_log(session, scope), scope
        by_kind = plays_by_hour(session, hadong())
        assert sum(map(sum, by_kind.values())) == 9 + 16 + 1
        report = compliance_report(session, hadong(), clock.now())
        assert len(report.charts) == len(by_kind) + 2  # a chart of hours per kind of site that played, then two


def test_the_migration_fills_the_roll_up_from_an_existing_log(ledger):  # noqa: F811
    with ledger.sessions() as session:
        expected = rolled_up(session)
    assert expected
    with transaction(ledger.sessions) as session:
        session.execute(delete(PlayHours))
    spec = importlib.util.spec_from_file_location("migration_0022", MIGRATION)
    migration = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(migration)
    migration.ROWS_PER_INSERT = 2  # several inserts a day, as a city's would be
    with ledger.engine.begin() as connection:
        migration.backfill(connection)
    with ledger.sessions() as session:
        assert rolled_up(session) == expected
        assert session.scalar(select(func.count()).select_from(PlayHours)) > 2

