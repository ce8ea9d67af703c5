"""The whole chain with real parts: Mosquitto, the server (web + MQTT bridge), two player agents with
real libVLC (dummy outputs) playing ffmpeg-made clips, and proof-of-play back in the database."""

import sys
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from campaigns.campaign_file import import_campaigns
from campaigns.fleet_file import import_fleet
from media.models import MediaAsset
from media.store import MediaStore
from scheduler.app import create_app
from scheduler.broker import BrokerSupervisor
from scheduler.models import PlayRecord, PublishedPlan
from scheduler.players import register_player
from signage.db import transaction
from signage.protocol import canonical_json, plan_version
from signage.signing import Signer
from tests.pg_server import free_port
from tests.servers import serve_in_thread

HANOI = ZoneInfo("Asia/Ho_Chi_Minh")
PLAYERS = ("e2e-a-001", "e2e-b-001")

FLEET = """schema: signage.fleet/1
organisations: [{id: hn, name: Hà Nội, kind: city}]
sites:
  - {id: e2e-a, name: Điểm A, kind: office, organisation: hn,
     operating_hours: {daily: ["00:00-24:00"]}, peak_windows: {daily: ["00:00-24:00"]}}
  - {id: e2e-b, name: Điểm B, kind: office, organisation: hn,
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
    creatives: [{file: media/one.mp4}, {file: media/two.mp4}, {file: media/loop.png, duration_s: 1.5}]
    targets: {organisations: [hn]}
"""


@pytest.fixture
def stack(settings, database, clock, tmp_path, make_media, spawn):
    settings = settings.model_copy(update={"mqtt": True, "jobs": False, "broker_port": free_port()})
    (tmp_path / "fleet.yaml").write_text(FLEET, encoding="utf-8")
    (tmp_path / "campaigns.yaml").write_text(CAMPAIGNS, encoding="utf-8")
    make_media("one.mp4", seconds=2)
    make_media("two.mp4", seconds=3)
    make_media("loop.png")
    with transaction(database.sessions) as session:
        import_fleet(session, tmp_path / "fleet.yaml", settings.timezone)
        import_campaigns(session, tmp_path / "campaigns.yaml", MediaStore(settings.media_dir), clock,
                         settings.timezone)
    with BrokerSupervisor(settings, database):
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
            yield settings, database, app.state.bridge, configs, spawn
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
        session.add(PublishedPlan(player_id=player_id, version=body["version"], body=canonical_json(body).decode(),
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
    settings, database, bridge, configs, spawn = stack
    assets = media_table(database)
    one, two, loop = assets["one.mp4"], assets["two.mp4"], assets["loop.png"]
    first = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=15)
    planned = {}
    for n, player_id in enumerate(PLAYERS):
        spots = [(first + timedelta(seconds=7 * i + n), one if i % 2 == 0 else two) for i in range(4)]
        planned[player_id] = spots
        publish_plan(database, bridge, player_id, spots, loop)
    signage = str(Path(sys.executable).parent / "signage")
    agents = [spawn([signage, "player", "run", "--config", str(configs[player_id])], {}) for player_id in PLAYERS]

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
        for i, (start, asset) in enumerate(spots):
            [record] = [r for r in rows if r.spot_id == f"{player_id}-s{i}" and r.status == "completed"]
            assert (record.player_id, record.campaign_id, record.media) == (player_id, "e2e", asset.sha256)
            assert abs((record.started_at - start).total_seconds()) < 1.0
        fillers = [r for r in rows if r.player_id == player_id and r.kind == "filler"]
        assert fillers and {r.media for r in fillers} == {loop.sha256}
    assert len({r.play_id for r in rows}) == len(rows)
