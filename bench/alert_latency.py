"""Alert latency: from the API call that issues an urgent alert to its start on every screen, and from the stop.

    .venv/bin/python bench/alert_latency.py [--players 200] [--processes 4] [--vlc 2] [--rounds 3]

Runs, on this machine: a real Mosquitto (the project's supervisor, config and ACLs), the server (web API and MQTT
bridge, on uvicorn on 127.0.0.1) on SQLite in a temporary directory, and N player agents — the real agent
(player/agent.py: signed commands, the alert book, journal, proof-of-play, status) — in a few processes. All but
`--vlc` of them play through the timed backend (no picture: it honours durations; 200 libVLC instances would not fit
2 cores); `--vlc` of them are `signage player run` processes with real libVLC and dummy outputs.

Each round: a ward's staff POSTs an urgent text alert for the whole ward to /api/v1/alerts; every player
acknowledges the start in proof-of-play (`kind: alert`, `status: started`, stamped by the player's clock, the same
machine's); the time from just before the call to each acknowledged start is the latency. Then the alert is stopped
through the API and the time to each player's ending record is the stop latency. Prints p50/p99/max of both, the
API call's own time, and how many players acknowledged.
"""

from __future__ import annotations

import argparse
import math
import multiprocessing
import subprocess
import sys
import tempfile
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import httpx  # noqa: E402
from sqlalchemy import select  # noqa: E402

from campaigns.accounts import create_user  # noqa: E402
from loadtest.serving import free_port  # noqa: E402
from loadtest.stand import (  # noqa: E402
    WARD,
    confirmed_players,
    fleet_yaml,
    load_fleet,
    register_players,
    running_server,
    screen_ids,
    wait_until,
)
from scheduler.broker import BrokerSupervisor  # noqa: E402
from scheduler.database import open_database  # noqa: E402
from scheduler.jobs import PlanningService  # noqa: E402
from scheduler.models import AlertDelivery  # noqa: E402
from signage.clock import SystemClock  # noqa: E402
from signage.config import Settings  # noqa: E402
from signage.db import transaction  # noqa: E402

TARGET_P99_S = 2.0
PASSWORD = "bench password, long enough"


def run_agents(config_paths: list[str], ready, stop) -> None:
    """A worker process: the real agent, many times, each on its own threads, with the timed playback."""
    import logging

    from player.agent import PlayerAgent
    from player.playback import TimedPlayback
    from signage.player_config import PlayerConfig

    logging.basicConfig(level=logging.ERROR)  # 200 agents each saying "takes the screen over" drown the figures
    clock = SystemClock()
    agents = [PlayerAgent(PlayerConfig.load(Path(path)), clock, lambda post: TimedPlayback(post, clock=clock))
              for path in config_paths]
    threads = [threading.Thread(target=agent.run, daemon=True) for agent in agents]
    for thread in threads:
        thread.start()
    ready.release()
    stop.wait()
    for agent in agents:
        agent.stop()
    for thread in threads:
        thread.join(timeout=30)


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(share * len(ordered)) - 1))]


def figures(name: str, seconds: list[float]) -> str:
    return (f"{name}: n={len(seconds)} p50 {percentile(seconds, 0.5):.3f} s, p99 {percentile(seconds, 0.99):.3f} s, "
            f"max {max(seconds):.3f} s")


def wait_for_deliveries(app, database, alert_id: str, column, count: int, timeout: float) -> dict[str, datetime]:
    """{screen: the column's time} once `count` deliveries of the alert have it (or the timeout passed)."""
    found: dict[str, datetime] = {}

    def enough() -> bool:
        with database.sessions() as session:
            found.update(session.execute(select(AlertDelivery.screen_id, column).where(
                AlertDelivery.alert_id == alert_id, column.is_not(None))).all())
        return len(found) >= count

    bridge = app.state.bridge
    with bridge.committed:
        bridge.committed.wait_for(enough, timeout=timeout)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--players", type=int, default=200)
    parser.add_argument("--processes", type=int, default=4, help="worker processes for the timed agents")
    parser.add_argument("--vlc", type=int, default=2, help="how many of the players run real libVLC")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if not 0 <= args.vlc <= args.players:
        parser.error("--vlc must be between 0 and --players")

    work = Path(tempfile.mkdtemp(prefix="signage-alert-bench-"))
    settings = Settings(data_dir=work / "data", database_url=f"sqlite:///{work / 'signage.db'}", mqtt=True,
                        jobs=False, broker_port=free_port())
    database = open_database(settings)
    clock = SystemClock()
    load_fleet(database, settings, work, fleet_yaml(args.players, prefix="bench", per_site=args.players,
                                                    peak_windows="08:00-11:00"))
    with transaction(database.sessions) as session:
        create_user(session, username="bench-staff", full_name="Bench", role="staff", organisation_id=WARD,
                    password=PASSWORD, clock=clock)
    with BrokerSupervisor(settings, database), running_server(settings) as server:
        run_rounds(args, work, settings, database, server.app, server.port)
    database.dispose()


def run_rounds(args, work: Path, settings: Settings, database, app, port: int) -> None:
    clock = SystemClock()
    ids = screen_ids(args.players, "bench")
    configs = {}
    for player_id, config in register_players(database, settings, ids, f"http://127.0.0.1:{port}", clock).items():
        config = config.model_copy(update={"data_dir": str(work / "players" / player_id), "headless": True})
        configs[player_id] = work / "players" / f"{player_id}.json"
        configs[player_id].parent.mkdir(parents=True, exist_ok=True)
        config.write(configs[player_id])
    planned = PlanningService(database, clock, settings.timezone).tick(force=True)
    app.state.bridge.publish_plans(planned.changed)
    print(f"{args.players} players ({args.vlc} with libVLC) on {args.processes} worker processes; "
          f"{len(planned.changed)} plans published", flush=True)

    vlc_ids, timed_ids = ids[:args.vlc], ids[args.vlc:]
    signage = str(Path(sys.executable).parent / "signage")
    vlc_agents = [subprocess.Popen([signage, "player", "run", "--config", str(configs[p])],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for p in vlc_ids]
    context = multiprocessing.get_context("spawn")
    ready, stop = context.Semaphore(0), context.Event()
    shares = [timed_ids[i::args.processes] for i in range(args.processes)]
    workers = [context.Process(target=run_agents, args=([str(configs[p]) for p in share], ready, stop))
               for share in shares if share]
    for worker in workers:
        worker.start()
    for _ in workers:
        ready.acquire()
    try:
        wait_until_all_confirm(database, ids)
        client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60)
        token = client.post("/api/v1/auth/token", json={"username": "bench-staff", "password": PASSWORD}).json()
        client.headers["Authorization"] = f"Bearer {token['access_token']}"
        starts, stops, calls, acked = [], [], [], []
        for round_number in range(args.rounds):
            before = datetime.now(UTC)
            answer = client.post("/api/v1/alerts", json={
                "title": f"Thử cảnh báo {round_number + 1}", "text": "Cảnh báo khẩn: thử hệ thống", "severity":
                "urgent", "expires_at": (before + timedelta(minutes=10)).isoformat(),
                "targets": {"organisations": [WARD]}})
            after = datetime.now(UTC)
            answer.raise_for_status()
            alert_id = answer.json()["id"]
            calls.append((after - before).total_seconds())
            started = wait_for_deliveries(app, database, alert_id, AlertDelivery.started_at, len(ids), timeout=60)
            acked.append(len(started))
            starts += [(at - before).total_seconds() for at in started.values()]
            stopping = datetime.now(UTC)
            client.post(f"/api/v1/alerts/{alert_id}/stop", json={"reason": "thử xong"}).raise_for_status()
            ended = wait_for_deliveries(app, database, alert_id, AlertDelivery.ended_at, len(ids), timeout=60)
            stops += [(at - stopping).total_seconds() for at in ended.values()]
            print(f"round {round_number + 1}: {len(started)}/{len(ids)} started, p99 "
                  f"{percentile([(at - before).total_seconds() for at in started.values()], 0.99):.3f} s; "
                  f"{len(ended)} ended after the stop", flush=True)
        print(figures("API call (issue the alert, commands sent)", calls))
        print(figures("issue -> playback start, every player", starts))
        print(figures("stop -> alert off, every player", stops))
        print(f"acknowledged starts per round: {acked} of {len(ids)}; target p99 <= {TARGET_P99_S} s: "
              f"{'met' if percentile(starts, 0.99) <= TARGET_P99_S else 'NOT met'}")
    finally:
        stop.set()
        for worker in workers:
            worker.join(timeout=60)
        for agent in vlc_agents:
            agent.terminate()
            agent.wait(timeout=30)


def wait_until_all_confirm(database, ids: list[str], timeout: float = 120) -> None:
    """Until every player's status names the plan it was given (they are connected and settled)."""
    if not wait_until(lambda: confirmed_players(database, ids) >= len(ids), timeout):
        raise SystemExit("not every player confirmed its plan within two minutes")


if __name__ == "__main__":
    main()
