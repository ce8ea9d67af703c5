"""The compliance report with its charts, for the whole city, as the proof-of-play history grows (issue 20, item 1).

    .venv/bin/python bench/report_history.py [--plays 1000000] [--screens 10000] [--days 30] [--postgres]
                                             [--database-url URL] [--keep DIR | --reuse URL]

Builds the city of bench/reports.py (10,000 screens at 900 sites, one campaign of 30 days), the ledger's required
and planned spots for each screen-day (as storing plans sets them), then `--plays` plays through the ingest path's
own SQL: `scheduler.ingest._store_rows`, the statements ingest runs for every round (the play records' insert
that skips duplicates, the ledger's roll-up, the hourly roll-up), in transactions of `--batch` records. Then, in a
fresh process, it times the compliance report of the whole city for the whole period with its charts (what the
report page, the API and a PDF ask for: `build_report`, and the first 200 screen-days the page shows), three times,
and prints each with the load average and this process's CPU seconds. --postgres runs a throwaway PostgreSQL
(initdb into a temporary directory, as the tests do).
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from datetime import time as clock_time
from itertools import islice
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import func, insert, select, text  # noqa: E402

from bench.reports import FIRST, make_city  # noqa: E402
from scheduler.database import open_database  # noqa: E402
from scheduler.models import DeliveryRollup, PlayHours, PlayRecord  # noqa: E402
from signage.config import Settings  # noqa: E402

HANOI = ZoneInfo("Asia/Ho_Chi_Minh")


def _settings(url: str) -> Settings:
    return Settings(_env_file=None, database_url=url, data_dir=Path(tempfile.mkdtemp(prefix="signage-bench-")),
                    mqtt=False)


def build(url: str, screens: int, days: int, plays: int, batch: int, seed: int) -> None:
    from scheduler import ingest

    rng = random.Random(seed)
    database = open_database(_settings(url))
    started = time.perf_counter()
    screen_rows = make_city(database, screens, days)
    ids = [row["id"] for row in screen_rows]
    with database.sessions() as session, session.begin():  # what storing plans writes: required and planned
        ledger = [{"screen_id": screen_id, "campaign_id": "ihanoi", "local_date": FIRST + timedelta(days=day),
                   "required": 10, "planned": 10, "plan_reason": None, "completed_in_peak": 0, "completed_total": 0,
                   "makegoods": 0, "interrupted": 0, "failed": 0, "missed": 0, "media_missing": 0, "closed": False}
                  for screen_id in ids for day in range(days)]
        for start in range(0, len(ledger), 50_000):
            session.execute(insert(DeliveryRollup), ledger[start:start + 50_000])
        del ledger
    directory = ingest.ScreenDirectory()
    received = datetime(2024, 10, 1, tzinfo=UTC)
    slots, made, rows = len(ids) * days, 0, []
    for slot in range(slots):  # exactly `plays` in all, spread evenly over the screen-days, 06:00 to 22:00 local
        day, screen_id = divmod(slot, len(ids))[0], ids[slot % len(ids)]
        local_date = FIRST + timedelta(days=day)
        opening = datetime.combine(local_date, clock_time(6), HANOI)
        count = plays * (slot + 1) // slots - plays * slot // slots
        for n in range(count):
            start = opening + timedelta(seconds=n * 57_600 // max(count, 1) + rng.randint(0, 30))
            made += 1
            status = "completed" if rng.random() < 0.97 else "failed"
            rows.append({"play_id": f"{made:032x}", "player_id": screen_id, "spot_id": f"sp-{made}",
                         "campaign_id": "ihanoi", "media": "ab" * 32, "kind": "spot" if n % 12 else "makegood",
                         "scheduled_start": start, "started_at": start, "ended_at": start + timedelta(seconds=15),
                         "duration_ms": 15_000 if status == "completed" else 0, "status": status,
                         "reason": None if status == "completed" else "playback error", "plan_version": "v",
                         "local_date": local_date, "in_peak": 7 <= start.hour < 9 or 17 <= start.hour < 20,
                         "received_at": received})
        if len(rows) >= batch or (slot == slots - 1 and rows):
            with database.sessions() as session, session.begin():
                directory.refresh(session)
                ingest._store_rows(session, rows, directory)
            rows = []
            if made % (batch * 20) < batch:
                print(f"  {made:,} plays stored, {made / (time.perf_counter() - started):,.0f}/s, load "
                      f"{os.getloadavg()[0]:.1f}", flush=True)
    with database.sessions() as session:
        stored = session.scalar(select(func.count()).select_from(PlayRecord))
        hours = session.scalar(select(func.count()).select_from(PlayHours))
    if database.engine.dialect.name == "postgresql":  # what autovacuum does by itself a minute after a bulk load
        with database.engine.connect() as connection:
            connection.execute(text("ANALYZE"))
            connection.commit()
    database.dispose()
    print(f"built {len(ids):,} screens, {slots:,} screen-days, {stored:,} plays (through ingest's SQL), "
          f"{hours:,} play_hours rows in {time.perf_counter() - started:.0f} s", flush=True)


def measure(url: str, rounds: int) -> None:
    from scheduler.reports.build import build_report, make_scope
    from scheduler.reports.compliance import plays_by_hour

    database = open_database(_settings(url), migrate_schema=False)
    today = datetime(2024, 10, 1, tzinfo=UTC)
    with database.sessions() as session:
        plays = session.scalar(select(func.count()).select_from(PlayRecord))
        last = session.scalar(select(func.max(DeliveryRollup.local_date)))
        print(f"{session.get_bind().dialect.name}: {plays:,} plays")
        for _ in range(rounds):
            load = os.getloadavg()[0]
            started, cpu = time.perf_counter(), time.process_time()
            scope = make_scope(session, None, FIRST, last, None, today.date())
            report = build_report(session, "compliance", scope, today, "vi", "Asia/Ho_Chi_Minh")
            shown = list(islice(report.sheets[-1].rows, 200))
            seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
            charts_started = time.perf_counter()
            charted = sum(map(sum, plays_by_hour(session, scope).values()))
            charts_seconds = time.perf_counter() - charts_started
            print(f"compliance report with charts, whole city, {scope.first} to {scope.last}: {seconds:.2f} s "
                  f"({len(report.charts)} charts, first {len(shown)} screen-days; CPU of this process {cpu:.2f} s; "
                  f"load {load:.1f})   target <= 2 s; its hourly figures alone ({charted:,} plays) "
                  f"{charts_seconds:.2f} s", flush=True)
    database.dispose()


def measure_prune(url: str, days: int, batch_rows: int) -> None:
    """Retention on the built log: the plays of its first `days` days deleted as the nightly job deletes them, each
    batch timed (a batch is the longest an ingest round waits for it)."""
    from scheduler.retention import Cutoffs, prune_batches

    database = open_database(_settings(url), migrate_schema=False)
    limits = Cutoffs(plays_before=FIRST + timedelta(days=days), plans_before=datetime(2000, 1, 1, tzinfo=UTC))
    load, started, cpu = os.getloadavg()[0], time.perf_counter(), time.process_time()
    times, rows, mark = [], 0, time.perf_counter()
    for _, deleted in prune_batches(database.sessions, limits, batch_rows):
        now = time.perf_counter()
        times.append(now - mark)
        rows += deleted
        mark = now
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    times.sort()
    print(f"{database.engine.dialect.name}: pruned {rows:,} plays of {days} days in {len(times)} batches of "
          f"{batch_rows:,}: {seconds:.1f} s = {rows / seconds:,.0f} rows/s (CPU of this process {cpu:.1f} s); a "
          f"batch p50 {times[len(times) // 2] * 1000:.0f} ms, p99 {times[int(len(times) * 0.99)] * 1000:.0f} ms, "
          f"max {times[-1] * 1000:.0f} ms; load {load:.1f}", flush=True)
    database.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--screens", type=int, default=10_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--plays", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=20_000, help="records a transaction while building")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--postgres", action="store_true", help="build into a throwaway PostgreSQL server")
    parser.add_argument("--database-url", help="an empty database to build into")
    parser.add_argument("--keep", type=Path, help="build SQLite into this directory and keep it")
    parser.add_argument("--reuse", metavar="URL", help="a database built before: measure only")
    parser.add_argument("--prune-days", type=int, metavar="N",
                        help="with --reuse: then delete the first N days' plays as retention does, timing each batch")
    parser.add_argument("--prune-batch", type=int, default=2_000)
    parser.add_argument("--build-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.build_only:
        build(args.database_url, args.screens, args.days, args.plays, args.batch, args.seed)
        return
    if args.reuse:
        measure(args.reuse, args.rounds)
        if args.prune_days:
            measure_prune(args.reuse, args.prune_days, args.prune_batch)
        return
    server = None
    with tempfile.TemporaryDirectory(prefix="bench-history-") as directory:
        if args.postgres:
            from tests.pg_server import PostgresServer

            server = PostgresServer()
            server.start()
            url = server.create_database()
        else:
            url = args.database_url or f"sqlite:///{args.keep or directory}/signage.db"
        try:
            subprocess.run([sys.executable, __file__, "--build-only", "--database-url", url, "--screens",
                            str(args.screens), "--days", str(args.days), "--plays", str(args.plays), "--batch",
                            str(args.batch), "--seed", str(args.seed)], check=True)
            measure(url, args.rounds)
        finally:
            if server is not None:
                server.stop()


if __name__ == "__main__":
    main()
