"""Fault: a player out of reach for three days, then back (issue 9, fault suite).

Real parts: Mosquitto under the project's supervisor, the server's MQTT bridge and planning service on the test's
database, the real player agent (journal, programme, acks) with the timed playback backend on a virtual clock that
both sides share. The agent's loop is driven turn by turn, the way its own loop runs it, and the clock jumps to
the moment the loop would next wake. `FaultStack` and `VirtualScreen` are shared by the other fault files that
need days of virtual time.
"""

from __future__ import annotations

import shutil
import sqlite3
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from campaigns.campaign_file import import_campaigns
from campaigns.fleet_file import import_fleet
from media.models import MediaAsset
from media.store import MediaStore
from player.agent import PlayerAgent
from player.playback import TimedPlayback
from scheduler.broker import SERVER_ACCOUNT, BrokerSupervisor, server_broker_secret
from scheduler.database import Database
from scheduler.jobs import PlanningService
from scheduler.ledger import OFFLINE
from scheduler.models import DeliveryRollup, PlayerPresence, PlayRecord
from scheduler.mqtt_bridge import MqttBridge
from scheduler.plan_store import newest_versions
from scheduler.players import register_player
from signage.clock import VirtualClock
from signage.config import Settings
from signage.db import transaction
from signage.player_config import PlayerConfig
from signage.signing import Signer
from tests.conftest import CAMPAIGN_FILE, FLEET_FILE
from tests.pg_server import free_port
from tests.virtual_agent import drain, run_agent_until

pytestmark = pytest.mark.faults

HANOI = ZoneInfo("Asia/Ho_Chi_Minh")
VANQUAN = "hn-hadong-vanquan-001"  # a ward office: iHanoi 10 a day in 08:00-11:00 and 14:00-16:30, Saturday mornings
CAMPAIGN = "ihanoi-2024"


def hanoi(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=HANOI)


def wait_until(condition, timeout: float, what: str) -> None:
    tick, deadline = threading.Event(), time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout} s")
        tick.wait(0.05)


@dataclass
class FaultStack:
    """The server side on virtual time: database with the example fleet and the iHanoi campaign, Mosquitto, the
    MQTT bridge and the planning service (plans published as the jobs publish them)."""

    settings: Settings
    database: Database
    clock: VirtualClock
    broker: BrokerSupervisor
    bridge: MqttBridge
    planning: PlanningService

    players_dir: Path  # where the players' data directories go

    def register(self, player_id: str, server_url: str = "http://127.0.0.1:9",
                 data_dir: Path | None = None) -> PlayerConfig:
        signer = Signer.load_or_create(self.settings.data_dir)
        with transaction(self.database.sessions) as session:
            config = register_player(session, player_id, self.settings, signer, server_url, self.clock.now())
        self.broker.reload()
        return config.model_copy(update={"data_dir": str(data_dir or self.players_dir / player_id),
                                         "headless": True})

    def latest_version(self, player_id: str) -> str:
        with self.database.sessions() as session:
            return newest_versions(session)[player_id]

    def confirmed_version(self, player_id: str) -> str | None:
        with self.database.sessions() as session:
            presence = session.get(PlayerPresence, player_id)
            return presence.plan_version if presence is not None else None

    def play_ids(self, player_id: str) -> list[str]:
        with self.database.sessions() as session:
            return list(session.scalars(select(PlayRecord.play_id).where(PlayRecord.player_id == player_id)))

    def ledger(self, screen_id: str) -> dict[date, DeliveryRollup]:
        with self.database.sessions() as session:
            return {row.local_date: row for row in session.scalars(select(DeliveryRollup).where(
                DeliveryRollup.screen_id == screen_id, DeliveryRollup.campaign_id == CAMPAIGN))}

    def media_files(self) -> dict[str, Path]:
        store = MediaStore(self.settings.media_dir)
        with self.database.sessions() as session:
            return {sha: store.path_for(sha) for sha in session.scalars(select(MediaAsset.sha256))}


@pytest.fixture
def players_dir(tmp_path: Path):
    """The players' disks: in memory where the machine has /dev/shm, since days of virtual time journal thousands
    of plays and each append is fsynced (what is tested here is what the agent does, not the disk)."""
    shm = Path("/dev/shm")
    if not shm.is_dir():
        yield tmp_path / "players"
        return
    with tempfile.TemporaryDirectory(dir=shm, prefix="signage-faults-") as directory:
        yield Path(directory)


@pytest.fixture
def fault_stack(database: Database, settings: Settings, tmp_path: Path, players_dir: Path):
    """Starts on Friday 23 August 2024, 06:00 in Hà Nội, with today's plans stored and published."""
    clock = VirtualClock(hanoi(date(2024, 8, 23), 6))
    settings = settings.model_copy(update={"mqtt": True, "jobs": False, "broker_port": free_port()})
    with transaction(database.sessions) as session:
        import_fleet(session, FLEET_FILE, settings.timezone)
        import_campaigns(session, CAMPAIGN_FILE, MediaStore(settings.media_dir), clock, settings.timezone)
    Signer.load_or_create(settings.data_dir)
    with BrokerSupervisor(settings, database) as broker:
        bridge = MqttBridge(settings, database, Signer.load_or_create(settings.data_dir), clock,
                            username=SERVER_ACCOUNT, password=server_broker_secret(settings),
                            client_id=f"signage-server-{tmp_path.name}")
        bridge.start()
        try:
            assert bridge.connected.wait(15), "the server did not connect to the broker"
            planning = PlanningService(database, clock, settings.timezone,
                                       on_plans_changed=lambda r: bridge.publish_plans(r.changed))
            planning.tick()
            yield FaultStack(settings, database, clock, broker, bridge, planning, players_dir)
        finally:
            bridge.stop()


class VirtualScreen:
    """A real player agent on the stack's virtual clock, its media already cached, driven turn by turn."""

    def __init__(self, stack: FaultStack, player_id: str, *, cached: set[str] | None = None, **where) -> None:
        """`cached`: the media put in its cache beforehand (all by default); `where`: server_url, data_dir."""
        self.stack = stack
        self.clock = stack.clock
        self.config = stack.register(player_id, **where)
        cache = Path(self.config.data_dir) / "media"
        for sha, path in stack.media_files().items():
            if cached is not None and sha not in cached:
                continue
            (cache / sha[:2]).mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, cache / sha[:2] / sha)
        self.agent = PlayerAgent(self.config, self.clock, lambda post: TimedPlayback(post, clock=self.clock))
        self.agent.step("start")

    @property
    def playback(self) -> TimedPlayback:
        return self.agent.playback

    def connect(self, timeout: float = 20) -> None:
        """Bring the link up and wait until the server's newest plan is held."""
        self.agent.connect()
        wanted = self.stack.latest_version(self.config.player_id)
        self.turn_until(lambda: self.held_version() == wanted, timeout, "the newest plan never arrived")

    def disconnect(self) -> None:
        self.agent.client.disconnect()
        self.agent.client.loop_stop()
        self.drain()

    def close(self) -> None:
        if self.agent.client.is_connected():
            self.disconnect()
        self.agent.close()

    def held_version(self) -> str | None:
        return self.agent.state.plan.version if self.agent.state.plan is not None else None

    def drain(self) -> None:
        drain(self.agent)

    def turn_until(self, condition, timeout: float, what: str) -> None:
        """Let the agent handle what arrives over the wire (in wall time, the virtual clock still) until
        `condition()` holds."""
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise AssertionError(f"{what} within {timeout} s")
            try:
                event = self.agent.events.get(timeout=0.1)
            except Exception:  # queue.Empty: a turn on its own, as the loop's timeout gives
                event = ("tick", None)
            self.agent.step(*event)

    def run_until(self, end: datetime, on_wake=None) -> None:
        run_agent_until(self.agent, self.playback, self.clock, end, on_wake)

    def journaled(self) -> list[dict]:
        """Every record the journal holds (read beside the agent, as another reader of the file would)."""
        import json

        with sqlite3.connect(Path(self.config.data_dir) / "journal.db") as reader:
            return [json.loads(body) for (body,) in reader.execute("SELECT body FROM records ORDER BY seq")]

    def backlog(self) -> int:
        return self.agent.journal.backlog()


def close_the_day(stack: FaultStack) -> None:
    """What the server's jobs do after local midnight: roll the plans, close the days that ended."""
    stack.planning.daily_roll()


@pytest.fixture
def database_url(tmp_path) -> str:
    # The agent-driven faults run on SQLite; ingest on PostgreSQL has its own fault (test_faults_ingest.py).
    return f"sqlite:///{tmp_path / 'signage.db'}"


def test_three_days_offline_then_back_every_record_arrives_once_and_the_closed_days_are_set_right(fault_stack):
    stack = fault_stack
    friday, saturday, sunday, monday = (date(2024, 8, 23) + timedelta(days=n) for n in range(4))
    screen = VirtualScreen(stack, VANQUAN)
    try:
        screen.connect()
        friday_plan = screen.held_version()
        screen.run_until(hanoi(friday, 6, 30))
        screen.disconnect()  # the link drops before the office opens, for three days

        for day in (saturday, sunday, monday):
            screen.run_until(hanoi(day, 0, 20))
            close_the_day(stack)  # the server rolls plans and closes yesterday without a word from the player
        before = stack.ledger(VANQUAN)
        assert [(before[d].closed, before[d].cause, before[d].completed_in_peak) for d in (friday, saturday)] == [
            (True, OFFLINE, 0)] * 2
        screen.run_until(hanoi(monday, 7))

        journaled = screen.journaled()
        spots = [r for r in journaled if r["kind"] in ("spot", "makegood")]
        # The plan of Friday covers Friday to Sunday: ten spots on Friday, ten on Saturday morning, none on Sunday.
        by_day = {}
        for record in spots:
            by_day.setdefault(datetime.fromisoformat(record["started_at"]).astimezone(HANOI).date(), []).append(record)
        assert {d: len(r) for d, r in by_day.items()} == {friday: 10, saturday: 10}
        assert all(r["status"] == "completed" and r["kind"] == "spot" and r["plan_version"] == friday_plan
                   for r in spots)
        assert len({r["spot_id"] for r in spots}) == 20
        assert any(r["kind"] == "filler" for r in journaled)

        screen.connect(timeout=30)  # back on Monday morning: Monday's plan arrives, the journal drains
        screen.turn_until(lambda: screen.backlog() == 0, 60, "the journal never drained")
        wait_until(lambda: stack.confirmed_version(VANQUAN) == stack.latest_version(VANQUAN), 20,
                   "the server never heard the player confirm its plan")
        assert screen.held_version() == stack.latest_version(VANQUAN) != friday_plan

        stored = stack.play_ids(VANQUAN)
        assert len(stored) == len(set(stored))
        assert set(stored) == {r["play_id"] for r in journaled}
        after = stack.ledger(VANQUAN)
        for day in (friday, saturday):
            row = after[day]
            assert (row.required, row.planned, row.completed_in_peak, row.completed_total, row.missed) == (
                10, 10, 10, 10, 0), day
            assert (row.closed, row.cause) == (True, None), day
        assert sunday not in after or after[sunday].required == 0
    finally:
        screen.close()
