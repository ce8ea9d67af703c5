"""A stand to measure on: a generated fleet, a campaign, registered players, Mosquitto and the server, on a fresh
database in a work directory. `signage loadtest` and the benches in bench/ build theirs from these pieces."""

from __future__ import annotations

import resource
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

from sqlalchemy import select

from scheduler.database import Database
from signage.clock import Clock
from signage.config import Settings
from signage.db import transaction
from signage.player_config import PlayerConfig

# Kinds whose default peak windows are the same every day, so plans have spots whatever the weekday.
SITE_KINDS = ("bus_station", "airport", "railway_station", "intersection")
CITY, WARD = "hn", "lt-ward"
EXAMPLE_MEDIA = Path(__file__).resolve().parents[1] / "examples" / "media"


def screen_ids(count: int, prefix: str) -> list[str]:
    return [f"{prefix}-{i:05d}" for i in range(count)]


def fleet_yaml(screens: int, *, prefix: str = "lt", per_site: int = 50, peak_windows: str | None = None) -> str:
    """A signage.fleet/1 file: the city, one ward, sites of `per_site` screens each (open all day, with their
    kind's peak windows unless `peak_windows` such as "08:00-11:00" is given) and `screens` LCD screens."""
    lines = ["schema: signage.fleet/1", "organisations:", f"  - {{id: {CITY}, name: Hà Nội, kind: city}}",
             f"  - {{id: {WARD}, name: Phường thử tải, kind: ward, parent: {CITY}}}", "sites:"]
    for site in range((screens + per_site - 1) // per_site):
        windows = f', peak_windows: {{daily: ["{peak_windows}"]}}' if peak_windows else ""
        kind = SITE_KINDS[site % len(SITE_KINDS)]
        lines.append(f"  - {{id: {prefix}-site-{site:04d}, name: Điểm {site}, kind: {kind}, "
                     f'organisation: {WARD}, operating_hours: {{daily: ["00:00-24:00"]}}{windows}}}')
    lines.append("screens:")
    lines += [f"  - {{id: {screen}, site: {prefix}-site-{i // per_site:04d}, name: Màn hình {i}, kind: lcd, "
              f"resolution: 1920x1080}}" for i, screen in enumerate(screen_ids(screens, prefix))]
    return "\n".join(lines) + "\n"


def campaign_yaml(campaign_id: str, first_day: date, plays_per_day: int, media_dir: Path = EXAMPLE_MEDIA) -> str:
    """A signage.campaigns/1 file: the iHanoi clip and poster on every screen of the city for 30 days."""
    return (f"schema: signage.campaigns/1\ncampaigns:\n  - id: {campaign_id}\n    name: Thử tải iHanoi\n"
            f"    organisation: {CITY}\n    start_date: {first_day.isoformat()}\n"
            f"    end_date: {(first_day + timedelta(days=29)).isoformat()}\n    plays_per_day: {plays_per_day}\n"
            f"    window: peak\n    creatives:\n      - file: {media_dir / 'ihanoi-30s.mp4'}\n"
            f"      - file: {media_dir / 'ihanoi-poster.png'}\n        duration_s: 15\n"
            f"    targets:\n      organisations: [{CITY}]\n")


def load_fleet(database: Database, settings: Settings, work: Path, fleet_text: str) -> None:
    from campaigns.fleet_file import import_fleet

    (work / "fleet.yaml").write_text(fleet_text, encoding="utf-8")
    with transaction(database.sessions) as session:
        import_fleet(session, work / "fleet.yaml", settings.timezone)


def load_campaign(database: Database, settings: Settings, work: Path, clock: Clock, text: str) -> None:
    """Import the campaign file as `signage campaign import` does (capacity checked), approved by the file."""
    from campaigns.campaign_file import read_campaign_file
    from media.store import MediaStore
    from scheduler.capacity import import_campaigns_checked
    from scheduler.demo import mark_approved_by_file

    path = work / "campaigns.yaml"
    path.write_text(text, encoding="utf-8")
    with transaction(database.sessions) as session:
        import_campaigns_checked(session, path, MediaStore(settings.media_dir), clock, settings.timezone)
        mark_approved_by_file(session, {c.id for c in read_campaign_file(path)[1].campaigns}, path, clock)


def register_players(database: Database, settings: Settings, ids: list[str], server_url: str,
                     clock: Clock) -> dict[str, PlayerConfig]:
    """Broker credentials for each screen, as `signage player register` makes them: player id -> its config."""
    from scheduler.players import register_player
    from signage.signing import Signer

    signer = Signer.load_or_create(settings.data_dir)
    with transaction(database.sessions) as session:
        return {player_id: register_player(session, player_id, settings, signer, server_url, clock.now())
                for player_id in ids}


def raise_open_files_limit(wanted: int) -> int:
    """Mosquitto and the simulated players hold a socket per player: lift the soft limit towards the hard one."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        return target
    return soft


def confirmed_players(database: Database, ids: list[str], newest: dict[str, str] | None = None,
                      since=None) -> int:
    """How many of the players' statuses, as the server stored them, name their newest plan (the one in `newest`
    when given), counting only statuses the players sent at or after `since` when given (by their `sent_at`: a
    status the broker kept and hands over again is not a new one)."""
    from scheduler.models import PlayerPresence
    from scheduler.plan_store import newest_versions

    with database.sessions() as session:
        newest = newest if newest is not None else newest_versions(session)
        query = select(PlayerPresence.player_id, PlayerPresence.plan_version).where(PlayerPresence.state == "online")
        if since is not None:
            query = query.where(PlayerPresence.sent_at >= since)
        have = dict(session.execute(query).all())
    return sum(1 for player_id in ids if player_id in newest and have.get(player_id) == newest[player_id])


def wait_until(condition, timeout: float, every: float = 0.2) -> bool:
    """Poll `condition` until it holds or `timeout` seconds pass."""
    tick, deadline = threading.Event(), time.monotonic() + timeout
    while not condition():
        if time.monotonic() >= deadline:
            return False
        tick.wait(every)
    return True


@dataclass
class RunningServer:
    app: object
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def bridge(self):
        return self.app.state.bridge


@contextmanager
def running_server(settings: Settings, clock: Clock | None = None, connect_timeout: float = 30) -> Iterator[
        RunningServer]:
    """`signage server`'s app (web API, MQTT bridge, and planning jobs when settings.jobs) on uvicorn on
    127.0.0.1, connected to the broker when settings.mqtt."""
    from loadtest.serving import serve_in_thread
    from scheduler.app import create_app

    app = create_app(settings, clock)
    server, thread, port = serve_in_thread(app)
    try:
        if settings.mqtt and not app.state.bridge.connected.wait(connect_timeout):
            raise RuntimeError(f"the server did not reach the broker within {connect_timeout:.0f} s")
        yield RunningServer(app, port)
    finally:
        server.should_exit = True
        thread.join(timeout=60)
