"""The staff list routes in process: SQL statements and milliseconds per request of GET /api/v1/campaigns and
GET /api/v1/screens, for a city admin and for users of a district and a ward.

    .venv/bin/python bench/list_routes.py [--requests 100] [--database-url URL] [--profile ROUTE [--as USER]
                                          [--libraries]] [--show-sql]

Set-up, in a temporary directory: the example fleet and the iHanoi campaign (tests/conftest.py's FLEET_FILE and
CAMPAIGN_FILE), a few users, the app as `signage server` makes it (no broker, no jobs) under Starlette's TestClient,
each user with a bearer token. Each route is asked --requests times in a row per user; the statements are counted
on the engine (`before_cursor_execute`). Requests are sequential and the client is in the same process, so the
figures are the server's cost per request plus the TestClient's, which the constant route (GET /healthz) shows:
compare the routes with it, and runs on a loaded machine only by their ratios. CPU ms is this process's CPU time
(server and client), which waits for the cores do not inflate; threadpool CPU the part of it spent in what FastAPI
runs on its threadpool (the sign-in, the route, the response's validation). --profile ROUTE prints cProfile's
top functions for that route as the city admin (or `--as` another of the users), ours only; with `--libraries`
also the libraries' functions by their own time (where SQLAlchemy spends it).
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import event
from sqlalchemy.engine import Engine

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PASSWORD = "bench-list-routes-Password-1"
USERS = [("city-admin", "admin", "hn"), ("hadong-staff", "staff", "hn-hadong"),
         ("phula-staff", "staff", "hn-hadong-phula")]
ROUTES = ("/healthz", "/api/v1/campaigns", "/api/v1/screens")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--database-url")
    parser.add_argument("--profile", choices=ROUTES)
    parser.add_argument("--as", dest="profile_user", default="city-admin", choices=[name for name, _, _ in USERS])
    parser.add_argument("--libraries", action="store_true", help="with --profile: the libraries' functions too")
    parser.add_argument("--show-sql", action="store_true", help="print the statements of one request of each")
    args = parser.parse_args()

    from datetime import UTC, datetime

    from fastapi.testclient import TestClient

    from campaigns.accounts import create_user, hash_password
    from campaigns.campaign_file import import_campaigns
    from campaigns.fleet_file import import_fleet
    from media.store import MediaStore
    from scheduler.app import create_app
    from scheduler.database import open_database
    from signage.clock import VirtualClock
    from signage.config import Settings
    from signage.db import transaction

    examples = ROOT / "examples"
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite:///{tmp}/signage.db"
        settings = Settings(_env_file=None, data_dir=Path(tmp) / "var", database_url=url, mqtt=False, jobs=False)
        clock = VirtualClock(datetime(2024, 8, 20, 3, 0, tzinfo=UTC))
        database = open_database(settings)
        password_hash = hash_password(PASSWORD)
        with transaction(database.sessions) as session:
            import_fleet(session, examples / "hanoi-fleet.yaml", settings.timezone)
            import_campaigns(session, examples / "ihanoi-campaign.yaml", MediaStore(settings.media_dir), clock,
                             settings.timezone)
            for name, role, org in USERS:
                create_user(session, username=name, full_name=name, role=role, organisation_id=org,
                            password_hash=password_hash, clock=clock)
        database.dispose()

        profiler = cProfile.Profile()
        watch_threadpool_calls(profiler)
        app = create_app(settings, clock)
        with TestClient(app, base_url="http://127.0.0.1") as client:
            tokens = {}
            for name, _, _ in USERS:
                answer = client.post("/api/v1/auth/token", json={"username": name, "password": PASSWORD})
                answer.raise_for_status()
                tokens[name] = {"Authorization": f"Bearer {answer.json()['access_token']}"}
            statements = [0]
            shown: list[str] = []

            def count(_conn: object, _cursor: object, statement: str, *_: object) -> None:
                statements[0] += 1
                shown.append(" ".join(statement.split()))

            event.listen(Engine, "before_cursor_execute", count)  # the app's engines: no jobs, no bridge

            print(f"{args.requests} sequential requests each, {url.split(':')[0]}")
            print(f"{'route':<20} {'user':<14} {'statements/req':>15} {'ms/req':>8} {'CPU ms/req':>11} "
                  f"{'threadpool CPU':>15} {'items':>6}")
            for route in ROUTES:
                for name, _, _ in USERS:
                    client.get(route, headers=tokens[name]).raise_for_status()  # warm
                    if args.show_sql:
                        shown.clear()
                        client.get(route, headers=tokens[name])
                        print(f"-- {route} as {name}:", *(f"   {sql[:300]}" for sql in shown), sep="\n")
                    statements[0], threadpool_cpu[0] = 0, 0.0
                    started, cpu = time.perf_counter(), time.process_time()
                    for _ in range(args.requests):
                        answer = client.get(route, headers=tokens[name])
                    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
                    items = len(answer.json().get("items", [])) if route != "/healthz" else "-"
                    print(f"{route:<20} {name:<14} {statements[0] / args.requests:>15.1f} "
                          f"{1000 * elapsed / args.requests:>8.2f} {1000 * cpu / args.requests:>11.2f} "
                          f"{1000 * threadpool_cpu[0] / args.requests:>15.2f} {items:>6}")
                    if route == "/healthz":
                        break
            if args.profile:
                profiling[0] = True
                for _ in range(args.requests):
                    client.get(args.profile, headers=tokens[args.profile_user])
                profiling[0] = False
                ours = rf"{ROOT}/(?!\.venv)|pydantic|fastapi"
                pstats.Stats(profiler).sort_stats("cumulative").print_stats(ours, 40)
                if args.libraries:
                    pstats.Stats(profiler).sort_stats("tottime").print_stats(30)


profiling = [False]
threadpool_cpu = [0.0]


def watch_threadpool_calls(profiler: cProfile.Profile) -> None:
    """Each call FastAPI hands to the threadpool (the plain-def dependencies and route, and the response's
    validation) has its thread's CPU time added up, and is profiled while `profiling` (cProfile sees only the thread
    it is enabled in; requests are sequential, so one thread at a time enables it)."""
    import fastapi.dependencies.utils
    import fastapi.routing
    from starlette.concurrency import run_in_threadpool

    def watched(func, *args, **kwargs):
        started = time.thread_time()
        if profiling[0]:
            profiler.enable()
        try:
            return func(*args, **kwargs)
        finally:
            if profiling[0]:
                profiler.disable()
            threadpool_cpu[0] += time.thread_time() - started

    async def run_watched(func, *args, **kwargs):
        return await run_in_threadpool(watched, func, *args, **kwargs)

    fastapi.routing.run_in_threadpool = run_watched
    fastapi.dependencies.utils.run_in_threadpool = run_watched


if __name__ == "__main__":
    main()
