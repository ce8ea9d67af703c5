"""`signage loadtest`: stand up everything in a work directory, run the three measurements, check the ledger."""

from __future__ import annotations

import logging
import multiprocessing
import os
import secrets
import shutil
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import httpx
from rich.console import Console

from loadtest.audit import audit
from loadtest.options import LoadtestOptions
from loadtest.phases import MeasureFailed, measure_ingest, measure_replan, measure_storm
from loadtest.processes import CpuMeter
from loadtest.report import LoadtestReport, phase_progress
from loadtest.serving import free_port
from loadtest.sim_player import PlayerOptions
from loadtest.stand import (
    CITY,
    campaign_yaml,
    confirmed_players,
    fleet_yaml,
    load_campaign,
    load_fleet,
    raise_open_files_limit,
    register_players,
    running_server,
    screen_ids,
    wait_until,
)
from loadtest.swarm import Swarm, SwarmFailed
from scheduler.broker import BrokerFailed, BrokerSupervisor
from signage.clock import SystemClock, local_today
from signage.config import Settings
from signage.db import transaction

CAMPAIGN_ID = "loadtest-ihanoi"
STAFF_USER = "loadtest-staff"
PREFIX = "lt"


class StandFailed(RuntimeError):
    """The stand could not be set up: the run measured nothing."""


def run_loadtest(options: LoadtestOptions, console: Console) -> LoadtestReport:
    """Run the whole test; the report says what passed. Raises StandFailed when the stand could not be set up."""
    work = options.work_dir or Path(tempfile.mkdtemp(prefix="signage-loadtest-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        with logging_to(work / "loadtest.log") as log_counts:
            report = _run(options, work, console)
            report.log_counts = dict(log_counts)
            return report
    finally:
        if options.keep or options.work_dir is not None:
            console.print(f"the stand's files are in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


def _run(options: LoadtestOptions, work: Path, console: Console) -> LoadtestReport:
    from campaigns.accounts import create_user
    from scheduler.database import open_database
    from scheduler.ingest_worker import run_ingest_worker

    raise_open_files_limit(2 * options.players + 1024)
    settings = Settings(_env_file=None, data_dir=work / "data", broker_port=free_port(), mqtt=True, jobs=True,
                        database_url=options.database_url or f"sqlite:///{(work / 'signage.db').resolve()}")
    clock = SystemClock()
    ids = screen_ids(options.players, PREFIX)
    report = LoadtestReport(options)
    database = open_database(settings)
    report.database = database.engine.url.get_backend_name()
    began = time.perf_counter()
    password = secrets.token_urlsafe(24)
    try:
        with console.status(f"making the stand in {work}: {options.players:,} screens, a campaign, players…"):
            load_fleet(database, settings, work, fleet_yaml(options.players, prefix=PREFIX, per_site=options.per_site))
            load_campaign(database, settings, work, clock,
                          campaign_yaml(CAMPAIGN_ID, local_today(clock, settings.timezone), plays_per_day=10))
            with transaction(database.sessions) as session:
                create_user(session, username=STAFF_USER, full_name="Load test staff", role="staff",
                            organisation_id=CITY, password=password, clock=clock)
            configs = register_players(database, settings, ids, "http://127.0.0.1", clock)
        with ExitStack() as stack:
            broker = stack.enter_context(BrokerSupervisor(settings, database))
            context = multiprocessing.get_context("spawn")
            stop_ingest = context.Event()
            ingesters = [context.Process(target=run_ingest_worker, args=(settings, f"loadtest-ingest-{i}", stop_ingest),
                                         daemon=True) for i in range(options.ingest_workers)]
            for process in ingesters:
                process.start()
            stack.callback(_stop_processes, ingesters, stop_ingest)
            server = stack.enter_context(running_server(settings, clock))
            if not wait_until(lambda: planned_players(database) >= len(ids), options.sync_timeout_s):
                raise StandFailed("the server did not plan every screen in time")
            public_keys = configs[ids[0]].public_keys
            player_options = PlayerOptions(
                host=settings.broker_host, port=settings.broker_port, resend_after_s=options.resend_after_s,
                reconnect_min_s=options.reconnect_min_s, reconnect_max_s=options.reconnect_max_s,
                status_every_s=options.status_every_s)
            swarm = Swarm([(p, configs[p].password) for p in ids], public_keys, player_options,
                          processes=options.processes, connect_spread_s=options.connect_spread_s)
            swarm.start()
            stack.callback(swarm.stop)
            meter = CpuMeter()
            meter.watch("server", os.getpid())
            meter.watch("mosquitto", broker.pid)
            for index, pid in enumerate(swarm.pids()):
                meter.watch(f"players-{index}", pid)
            for index, process in enumerate(ingesters):
                meter.watch(f"ingest-{index}", process.pid)
            report.setup_s = round(time.perf_counter() - began, 2)
            console.print(f"stand ready in {report.setup_s:.1f} s: {options.players:,} players on "
                          f"{len(swarm.pids())} worker processes, Mosquitto on 127.0.0.1:{settings.broker_port}, "
                          f"the server on {server.url} ({report.database})")

            meter.mark()
            synced_from = time.perf_counter()
            with phase_progress(console, "players connecting and confirming their plans", len(ids)) as update:
                def initial_sync() -> bool:
                    confirmed = confirmed_players(database, ids)
                    update(confirmed, f"{swarm.total('connected'):,} connected, {confirmed:,} confirmed")
                    return confirmed >= len(ids)

                if not wait_until(initial_sync, options.sync_timeout_s, every=0.5):
                    raise StandFailed("not every player connected and confirmed its plan in time")
            report.initial_sync_s = round(time.perf_counter() - synced_from, 2)
            report.cpu_s["connect"] = meter.since_mark()
            report.load_average["connect"] = os.getloadavg()[0]

            api = stack.enter_context(httpx.Client(base_url=server.url, timeout=60))
            token = api.post("/api/v1/auth/token", json={"username": STAFF_USER, "password": password})
            if token.is_error:
                raise StandFailed(f"the staff user could not sign in: {token.status_code} {token.text[:300]}")
            api.headers["Authorization"] = f"Bearer {token.json()['access_token']}"

            meter.mark()
            with phase_progress(console, "(a) campaign change", len(ids)) as update:
                report.replan = measure_replan(database, api, CAMPAIGN_ID, swarm, ids, options.replan_timeout_s,
                                               update)
            report.cpu_s["(a) replan"] = meter.since_mark()
            report.load_average["(a) replan"] = os.getloadavg()[0]

            meter.mark()
            with phase_progress(console, "(b) proof-of-play", options.ingest_seconds) as update:
                report.ingest = measure_ingest(database, swarm, options.ingest_seconds, options.batch,
                                               options.window, options.drain_timeout_s, server.bridge.inbox.empty,
                                               update)
            report.cpu_s["(b) ingest"] = meter.since_mark()
            report.load_average["(b) ingest"] = os.getloadavg()[0]

            meter.mark()
            with phase_progress(console, "(c) broker restart", len(ids)) as update:
                report.storm = measure_storm(database, broker, swarm, ids, options.storm_timeout_s, update)
            meter.watch("mosquitto", broker.pid)
            report.cpu_s["(c) storm"] = meter.since_mark()
            report.load_average["(c) storm"] = os.getloadavg()[0]

            with console.status("checking every record…"):
                swarm.drain(options.drain_timeout_s)
                report.audit = audit(database, ids, swarm.results())
            report.peak_rss_mib = meter.peak_memory()
            report.server_stats = {key: int(value) for key, value in sorted(server.bridge.stats.items())}
    except (StandFailed, MeasureFailed, SwarmFailed, BrokerFailed, httpx.HTTPError) as exc:
        report.error = f"{type(exc).__name__}: {exc}"
    finally:
        database.dispose()
    return report


class _CountingHandler(logging.Handler):
    def __init__(self, counts: Counter) -> None:
        super().__init__(logging.WARNING)
        self.counts = counts

    def emit(self, record: logging.LogRecord) -> None:
        self.counts[f"{record.levelname.lower()}: {record.name}"] += 1


@contextmanager
def logging_to(path: Path) -> Iterator[Counter]:
    """The server's and broker's log go to a file in the work directory, not over the progress display; yields
    the count of warnings and errors by logger, which the report shows."""
    counts: Counter = Counter()
    handlers = [logging.FileHandler(path, encoding="utf-8"), _CountingHandler(counts)]
    handlers[0].setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(threadName)s %(name)s: %(message)s"))
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.INFO)
    for handler in handlers:
        root.addHandler(handler)
    try:
        yield counts
    finally:
        for handler in handlers:
            root.removeHandler(handler)
            handler.close()
        root.setLevel(level)


def planned_players(database) -> int:
    """How many players have a plan stored."""
    from scheduler.plan_store import newest_versions

    with database.sessions() as session:
        return len(newest_versions(session))


def _stop_processes(processes, stop: threading.Event) -> None:
    stop.set()
    for process in processes:
        process.join(timeout=60)
        if process.is_alive():
            process.terminate()
