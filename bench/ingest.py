"""Proof-of-play ingest throughput: end to end through the broker, and the raw insert rate beside it.

    .venv/bin/python bench/ingest.py [--players 20] [--records 5000] [--batch 500] [--database-url URL]

Starts a real Mosquitto (the project's supervisor and config) and the server's MQTT bridge in this
process, on SQLite in a temporary directory unless a URL is given. N protocol-speaking players each
send their records in batches and the clock runs until the last record is committed and acked:
that is the end-to-end rate. Then the same rows are inserted straight into the same table with plain
bulk INSERTs, no broker, no validation: the raw rate. Both are printed with their ratio.
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import func, select  # noqa: E402

from loadtest.serving import free_port  # noqa: E402
from loadtest.stand import fleet_yaml, load_fleet, register_players, screen_ids  # noqa: E402
from scheduler.broker import BrokerSupervisor  # noqa: E402
from scheduler.database import open_database  # noqa: E402
from scheduler.ingest_worker import run_ingest_worker  # noqa: E402
from scheduler.models import PlayRecord  # noqa: E402
from signage.clock import SystemClock  # noqa: E402
from signage.config import Settings  # noqa: E402
from tests.protocol_client import ProtocolPlayer, pop_record  # noqa: E402


def run_players(accounts: list[tuple[str, str]], port: int, records: int, batch: int, ready, go, done) -> None:
    players = [ProtocolPlayer(player_id, password, "127.0.0.1", port).start() for player_id, password in accounts]
    start = datetime(2024, 8, 20, 1, 0, tzinfo=UTC)
    for client in players:
        client.record([pop_record(client.player_id, start=start + timedelta(seconds=i)) for i in range(records)])
    ready.set()
    go.wait()
    senders = [threading.Thread(target=c.drain, kwargs={"timeout": 600, "resend_after": 30, "batch_size": batch})
               for c in players]
    for thread in senders:
        thread.start()
    for thread in senders:
        thread.join()
    done.put(sum(c.backlog() for c in players))
    for client in players:
        client.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--players", type=int, default=20)
    parser.add_argument("--records", type=int, default=5000, help="records per player")
    parser.add_argument("--batch", type=int, default=500, help="records per PopBatch")
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--workers", type=int, default=1, help="ingest processes sharing the subscription")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="signage-bench-ingest-"))
    settings = Settings(_env_file=None, data_dir=work, database_url=args.database_url, broker_port=free_port())
    database = open_database(settings)
    load_fleet(database, settings, work, fleet_yaml(args.players, prefix="bench"))
    configs = list(register_players(database, settings, screen_ids(args.players, "bench"), "http://127.0.0.1",
                                    SystemClock()).values())

    total = args.players * args.records
    with BrokerSupervisor(settings, database):
        context = multiprocessing.get_context("spawn")
        stop_workers = context.Event()
        workers = [context.Process(target=run_ingest_worker, args=(settings, f"bench-ingest-{i}", stop_workers))
                   for i in range(args.workers)]
        for worker in workers:
            worker.start()
        # The players run in a process of their own, so that their JSON work does not share the server's GIL.
        ready, go, done = context.Event(), context.Event(), context.Queue()
        players = context.Process(target=run_players, args=(
            [(c.player_id, c.password) for c in configs], settings.broker_port, args.records, args.batch,
            ready, go, done))
        players.start()
        if not ready.wait(120):
            raise SystemExit("the players did not connect")
        print(f"{args.players} players × {args.records} records in batches of {args.batch} "
              f"({total:,} records) on {database.engine.url.get_backend_name()}, {args.workers} ingest process(es)")
        began = time.perf_counter()
        go.set()
        backlog = done.get(timeout=600)
        elapsed = time.perf_counter() - began
        players.join(timeout=60)
        stop_workers.set()
        for worker in workers:
            worker.join(timeout=60)
    assert backlog == 0, f"{backlog} records were never acked"

    with database.sessions() as session:
        stored = session.scalar(select(func.count()).select_from(PlayRecord))
    assert stored == total, f"{stored} rows for {total} records"
    end_to_end = total / elapsed
    print(f"end to end (broker -> committed rows, acked): {elapsed:6.2f} s  {end_to_end:10,.0f} records/s")

    # The raw rate: the very values now stored, read back as the driver gives them, deleted, and put
    # back with one executemany on the driver's cursor: no broker, no parsing, no checks, no rollup.
    table = PlayRecord.__tablename__
    with database.engine.begin() as connection:
        result = connection.exec_driver_sql(f"SELECT * FROM {table}")
        columns, values = list(result.keys()), [tuple(row) for row in result]
        connection.exec_driver_sql(f"DELETE FROM {table}")
    marker = "?" if database.engine.dialect.paramstyle == "qmark" else "%s"
    sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join(marker for _ in columns)})"
    began = time.perf_counter()
    with database.engine.begin() as connection:
        cursor = connection.connection.dbapi_connection.cursor()
        cursor.executemany(sql, values)
        cursor.close()
    raw_elapsed = time.perf_counter() - began
    raw = total / raw_elapsed
    print(f"raw executemany of the same rows:              {raw_elapsed:6.2f} s  {raw:10,.0f} records/s")
    print(f"raw ÷ end to end: {raw / end_to_end:.2f}×")
    database.dispose()


if __name__ == "__main__":
    main()
