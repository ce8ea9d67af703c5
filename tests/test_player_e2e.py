"""The whole chain with real parts: Mosquitto, the server (web + MQTT bridge), two player agents with
real libVLC (dummy outputs) playing ffmpeg-made clips, and proof-of-play back in the database."""

import json
import signal
import sys
import threading
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from campaigns.campaign_file import import_campaigns
from campaigns.fleet_file import import_fleet
from media.models import MediaAsset
from media.store import MediaStore
from scheduler.app import create_app
from scheduler.broker import BrokerSupervisor
from scheduler.database import Database
from scheduler.models import PlayRecord, PublishedPlan
from scheduler.mqtt_bridge import MqttBridge
from scheduler.plan_store import next_plan_sequence
from scheduler.players import register_player
from signage.config import Settings
from signage.db import transaction
from signage.protocol import canonical_json, plan_version
from signage.signing import Signer
from tests.pg_server import free_port
from tests.servers import serve_in_thread

HANOI = ZoneInfo("Asia/Ho_Chi_Minh")
PLAYERS = ("e2e-a-001", "e2e-b-001")

FLEET = """schema: signage.fleet/1
organisations:
  - {id: hn, name: Hà Nội, kind: city}
  - {id: e2e-ward-a, name: Phường A, kind: ward, parent: hn}
  - {id: e2e-ward-b, name: Phường B, kind: ward, parent: hn}
sites:
  - {id: e2e-a, name: Điểm A, kind: office, organisation: e2e-ward-a,
     operating_hours: {daily: ["00:00-24:00"]}, peak_windows: {daily: ["00:00-24:00"]}}
  - {id: e2e-b, name: Điểm B, kind: office, organisation: e2e-ward-b,
     operating_hours: {daily: ["00:00-24:00"]}, peak_windows: {daily: ["00:00-24:00"]}}
screens:
  - {id: e2e-a-001, site: e2e-a, name: Màn A, kind: lcd, resolution: 1280x720}
  - {id: e2e-b-001, site: e2e-b, name: Màn B, kind: lcd, resolution: 1280x720}
"""

CAMPAIGNS = """schema: signage.campaigns/1
campaigns:
  - id: e2e
    name: Thử đầu cuối
    organisation: hn
    start_date: 2024-01-01
    end_date: 2024-01-02
    status: draft
    creatives: [{file: media/one.mp4}, {file: media/two.mp4}, {file: media/long.mp4},
                {file: media/loop.png, duration_s: 1.5}]
    targets: {organisations: [hn]}
"""


@pytest.fixture
def database_url(tmp_path) -> str:
    # The player's behaviour does not depend on the server's database, and the server's ingest is run on
    # PostgreSQL by tests/test_distribution.py: these slow end-to-end runs use SQLite only.
    return f"sqlite:///{tmp_path / 'signage.db'}"


@dataclass
class Stack:
    settings: Settings
    database: Database
    bridge: MqttBridge
    configs: dict[str, Path]
    spawn: Any
    broker: BrokerSupervisor
    url: str  # the server's, on 127.0.0.1

    def start_agent(self, player_id: str):
        signage = str(Path(sys.executable).parent / "signage")
        return self.spawn([signage, "player", "run", "--config", str(self.configs[player_id])], {})


def wait_out_local_midnight(margin: timedelta = timedelta(minutes=4)) -> None:
    """A player makes a spot good only on the spot's own local day, so a test whose spots and make-goods
    (each test's span is under the margin) would straddle midnight in Hà Nội starts on the new day."""
    now = datetime.now(HANOI)
    midnight = datetime.combine(now.date() + timedelta(days=1), time(0), HANOI)
    if midnight - now < margin:
        threading.Event().wait((midnight - now).total_seconds() + 1)


@pytest.fixture
def stack(settings, database, clock, tmp_path, make_media, spawn):
    wait_out_local_midnight()
    settings = settings.model_copy(update={"mqtt": True, "jobs": False, "broker_port": free_port()})
    (tmp_path / "fleet.yaml").write_text(FLEET, encoding="utf-8")
    (tmp_path / "campaigns.yaml").write_text(CAMPAIGNS, encoding="utf-8")
    make_media("one.mp4", seconds=2)
    make_media("two.mp4", seconds=3)
    make_media("long.mp4", seconds=8)
    make_media("loop.png")
    with transaction(database.sessions) as session:
        import_fleet(session, tmp_path / "fleet.yaml", settings.timezone)
        import_campaigns(session, tmp_path / "campaigns.yaml", MediaStore(settings.media_dir), clock,
                         settings.timezone)
    with BrokerSupervisor(settings, database) as broker:
        app = create_app(settings)
        server, thread, port = serve_in_thread(app)
        try:
            assert app.state.bridge.connected.wait(15)
            signer = Signer.load_or_create(settings.data_dir)
            configs = {}
            with transaction(database.sessions) as session:
                for player_id in PLAYERS:
                    config = register_player(session, player_id, settings, signer, f"http://127.0.0.1:{port}",
                                             clock.now())
                    config = config.model_copy(update={"data_dir": str(tmp_path / player_id), "headless": True})
                    config.write(tmp_path / f"{player_id}.json")
                    configs[player_id] = tmp_path / f"{player_id}.json"
            yield Stack(settings, database, app.state.bridge, configs, spawn, broker, f"http://127.0.0.1:{port}")
        finally:
            server.should_exit = True
            thread.join(timeout=30)


def media_table(database) -> dict:
    with database.sessions() as session:
        assets = {a.original_name: a for a in session.scalars(select(MediaAsset))}
    return {name: a for name, a in assets.items()}


def publish_plan(database, bridge, player_id: str, spots: list[tuple[datetime, MediaAsset]], filler: MediaAsset):
    today = datetime.now(HANOI).date()
    valid_from = datetime.combine(today, time(0), HANOI)
    valid_until = valid_from + timedelta(days=2)
    everything = {a.sha256: a for _, a in spots} | {filler.sha256: filler}
    body = {
        "schema": "signage.plan/1", "player_id": player_id,
        "generated_at": datetime.now(UTC).isoformat().replace("+00:00", "Z"), "timezone": "Asia/Ho_Chi_Minh",
        "valid_from": valid_from.isoformat(), "valid_until": valid_until.isoformat(),
        "operating_hours": [{"start": valid_from.isoformat(), "end": valid_until.isoformat()}],
        "peak_windows": [{"start": valid_from.isoformat(), "end": valid_until.isoformat()}],
        "filler": [filler.sha256],
        "spots": [{"spot_id": f"{player_id}-s{i}", "campaign_id": "e2e", "media": asset.sha256,
                   "start": start.astimezone(HANOI).isoformat(), "duration_ms": asset.duration_ms}
                  for i, (start, asset) in enumerate(spots)],
        "media": {sha: {"url": f"/media/{sha}", "bytes": a.bytes, "mime": a.mime,
                        "duration_ms": a.duration_ms or 1500} for sha, a in everything.items()},
    }
    body["version"] = plan_version(body)
    with transaction(database.sessions) as session:
        body["sequence"] = next_plan_sequence(session)
        session.add(PublishedPlan(player_id=player_id, version=body["version"], sequence=body["sequence"],
                                  body=canonical_json(body).decode(),
                                  valid_from=valid_from, valid_until=valid_until, created_at=datetime.now(UTC)))
    assert bridge.publish_plans([player_id]) == 1


def wait_for_records(bridge, database, predicate, timeout: float):
    def rows():
        with database.sessions() as session:
            return list(session.scalars(select(PlayRecord)))

    with bridge.committed:
        assert bridge.committed.wait_for(lambda: predicate(rows()), timeout=timeout), "\n".join(
            f"{r.player_id} {r.kind} {r.spot_id} {r.status} {r.reason} {r.started_at:%H:%M:%S.%f} {r.duration_ms}"
            for r in sorted(rows(), key=lambda r: r.started_at))
    return rows()


def test_every_planned_spot_plays_and_comes_back_as_completed_proof_of_play_with_filler_between(stack):
    database, bridge = stack.database, stack.bridge
    assets = media_table(database)
    one, two, loop = assets["one.mp4"], assets["two.mp4"], assets["loop.png"]
    first = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=15)
    planned = {}
    for n, player_id in enumerate(PLAYERS):
        spots = [(first + timedelta(seconds=7 * i + n), one if i % 2 == 0 else two) for i in range(4)]
        planned[player_id] = spots
        publish_plan(database, bridge, player_id, spots, loop)
    agents = [stack.start_agent(player_id) for player_id in PLAYERS]

    def all_spots_completed(rows) -> bool:
        done = {(r.spot_id, r.status) for r in rows if r.kind == "spot"}
        return all((f"{p}-s{i}", "completed") in done for p in PLAYERS for i in range(4))

    try:
        rows = wait_for_records(bridge, database, all_spots_completed, timeout=90)
    except AssertionError:
        for agent in agents:
            agent.process.terminate()
            agent.process.wait(timeout=10)
            print("".join(agent.lines) + "".join(agent.process.stdout.readlines()[-60:]))
        raise
    for player_id, spots in planned.items():
        played = played_at_their_times(rows, player_id, [start for start, _ in spots])
        for record, (_, asset) in zip(played, spots, strict=True):
            assert (record.player_id, record.campaign_id, record.media) == (player_id, "e2e", asset.sha256)
        fillers = [r for r in rows if r.player_id == player_id and r.kind == "filler"]
        assert fillers and {r.media for r in fillers} == {loop.sha256}
    assert len({r.play_id for r in rows}) == len(rows)


def completed(rows, spot_id: str, kind: str = "spot") -> list:
    return [r for r in rows if r.spot_id == spot_id and r.kind == kind and r.status == "completed"]


def played_at_their_times(rows, player_id: str, starts: list[datetime]) -> list:
    """The completed record of each of the player's planned spots `{player_id}-s{i}`, checked to have played at its
    time by the order of events, not by how late the machine ran: the spot completed as itself, so the agent began
    it whole within ON_TIME of its start on its own clock (later, it is joined part-way, recorded interrupted and
    made good); never before that start; and after the spot before it had ended."""
    played = []
    for i, start in enumerate(starts):
        [record] = completed(rows, f"{player_id}-s{i}")
        assert record.scheduled_start == start <= record.started_at, (record.scheduled_start, record.started_at)
        assert not played or played[-1].ended_at <= record.started_at
        played.append(record)
    return played


@pytest.mark.faults
def test_a_player_killed_in_the_middle_of_a_spot_makes_it_good_and_loses_or_doubles_nothing(stack):
    database, bridge = stack.database, stack.bridge
    assets = media_table(database)
    long, two, loop = assets["long.mp4"], assets["two.mp4"], assets["loop.png"]
    player = PLAYERS[0]
    first = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=15)
    # An 8-second spot, so that the kill lands inside it even on a busy machine; room for its make-good
    # before the next spot.
    publish_plan(database, bridge, player, [(first, long), (first + timedelta(seconds=24), two)], loop)
    agent = stack.start_agent(player)
    agent.wait_for(" taken: ", timeout=60)
    # The agent plays by the wall clock: three seconds into the 8-second spot it is playing it. (Its log line
    # can reach this process seconds late on a busy machine, so the moment comes from the plan, not the log.)
    threading.Event().wait((first + timedelta(seconds=3) - datetime.now(UTC)).total_seconds())
    agent.process.send_signal(signal.SIGKILL)  # in the middle of the spot
    agent.process.wait(timeout=10)
    stack.start_agent(player)

    rows = wait_for_records(bridge, database, lambda rows: completed(rows, f"{player}-s0", "makegood")
                            and completed(rows, f"{player}-s1"), timeout=90)
    assert not completed(rows, f"{player}-s0")  # the cut play never counts as completed
    assert len(completed(rows, f"{player}-s0", "makegood")) == 1
    assert len({r.play_id for r in rows}) == len(rows)
    fillers_before_kill = [r for r in rows if r.kind == "filler" and r.ended_at <= first]
    assert fillers_before_kill, "the filler played before the kill was journaled and must have arrived"


def test_playback_goes_on_while_the_broker_is_down_and_the_backlog_arrives_after(stack):
    database, bridge = stack.database, stack.bridge
    assets = media_table(database)
    one, loop = assets["one.mp4"], assets["loop.png"]
    player = PLAYERS[1]
    first = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=20)
    publish_plan(database, bridge, player, [(first + timedelta(seconds=5 * i), one) for i in range(4)], loop)
    agent = stack.start_agent(player)
    agent.wait_for(f"playing spot {player}-s0", timeout=60)
    stack.broker.stop()
    outage = threading.Event()
    outage.wait(20)  # the outage itself: 20 seconds without a broker, as the acceptance asks
    stack.broker.start()
    rows = wait_for_records(bridge, database, lambda rows: all(completed(rows, f"{player}-s{i}") for i in range(4)),
                            timeout=90)
    played_at_their_times(rows, player, [first + timedelta(seconds=5 * i) for i in range(4)])


@pytest.mark.faults
def test_a_file_corrupted_on_the_server_is_never_played_and_is_made_good_once_the_right_file_is_back(stack):
    database, bridge, settings = stack.database, stack.bridge, stack.settings
    assets = media_table(database)
    two, loop = assets["two.mp4"], assets["loop.png"]
    stored = MediaStore(settings.media_dir).path_for(two.sha256)
    good = stored.read_bytes()
    stored.write_bytes(good[: len(good) // 2] + b"\0" * (len(good) - len(good) // 2))
    player = PLAYERS[0]
    first = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=12)
    publish_plan(database, bridge, player, [(first, two)], loop)
    agent = stack.start_agent(player)
    agent.wait_for(f"missed spot {player}-s0: media not cached", timeout=60)
    rows = wait_for_records(bridge, database, lambda rows: any(r.kind == "filler" for r in rows), timeout=60)
    assert not [r for r in rows if r.media == two.sha256 and r.status == "completed"]
    stored.write_bytes(good)
    rows = wait_for_records(bridge, database, lambda rows: completed(rows, f"{player}-s0", "makegood"), timeout=120)
    [missed] = [r for r in rows if r.spot_id == f"{player}-s0" and r.kind == "spot"]
    assert (missed.status, missed.reason) == ("missed", "media not cached")


def test_a_tampered_plan_and_an_older_plan_are_refused_and_the_status_says_why(stack):
    from scheduler.models import PlayerPresence

    database, bridge = stack.database, stack.bridge
    assets = media_table(database)
    one, loop = assets["one.mp4"], assets["loop.png"]
    player = PLAYERS[1]
    first = datetime.now(UTC).replace(microsecond=0) + timedelta(minutes=5)
    publish_plan(database, bridge, player, [(first, one)], loop)
    agent = stack.start_agent(player)
    agent.wait_for(" taken: ", timeout=60)

    def refused() -> str | None:
        with database.sessions() as session:
            row = session.get(PlayerPresence, player)
            return row.refused if row is not None else None

    def status_with(text: str):
        with bridge.committed:
            assert bridge.committed.wait_for(lambda: text in (refused() or ""), timeout=60), "".join(agent.lines)

    with database.sessions() as session:
        held = session.scalars(select(PublishedPlan).where(PublishedPlan.player_id == player)).one()
    envelope = json.loads(bridge.signer.envelope_json(held.body.encode()))
    envelope["payload"]["spots"][0]["start"] = (first + timedelta(seconds=1)).astimezone(HANOI).isoformat()
    topic = f"signage/v1/players/{player}/plan"
    bridge.client.publish(topic, json.dumps(envelope), qos=1, retain=True)
    status_with("the signature does not match")

    older = json.loads(held.body)
    older["generated_at"] = "2024-01-01T00:00:00Z"
    older["spots"] = []
    older["version"] = plan_version(older)
    bridge.client.publish(topic, bridge.signer.envelope_json(canonical_json(older)), qos=1, retain=True)
    status_with("is not later than")
