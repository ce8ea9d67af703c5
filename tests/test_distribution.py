"""The wire, end to end with real parts: Mosquitto, the server's MQTT bridge, protocol-speaking players."""

import json
import signal
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import func, select

from campaigns.campaign_file import import_campaigns
from campaigns.fleet_file import import_fleet
from campaigns.models import FrequencyOverride
from media.store import MediaStore
from scheduler.broker import SERVER_ACCOUNT, BrokerSupervisor, server_broker_secret
from scheduler.jobs import PlanningService
from scheduler.models import PlayRecord, PublishedPlan
from scheduler.mqtt_bridge import MqttBridge
from scheduler.players import register_player
from signage.db import transaction
from signage.protocol import Plan, SignedEnvelope
from signage.signing import Signer, Verifier, public_key_from_text
from tests.conftest import CAMPAIGN_FILE, FLEET_FILE
from tests.pg_server import free_port
from tests.protocol_client import ProtocolPlayer, pop_record

PHULA, AIRPORT = "hn-hadong-phula-001", "hn-nb-t2-001"


@pytest.fixture
def wire_settings(settings):
    return settings.model_copy(update={"mqtt": True, "broker_port": free_port()})


@pytest.fixture
def fleet(database, wire_settings, clock):
    with transaction(database.sessions) as session:
        import_fleet(session, FLEET_FILE, wire_settings.timezone)
        import_campaigns(session, CAMPAIGN_FILE, MediaStore(wire_settings.media_dir), clock, wire_settings.timezone)
    return database


@pytest.fixture
def configs(fleet, wire_settings, clock):
    signer = Signer.load_or_create(wire_settings.data_dir)
    with transaction(fleet.sessions) as session:
        return {player_id: register_player(session, player_id, wire_settings, signer, "http://127.0.0.1:8000",
                                           clock.now())
                for player_id in (PHULA, AIRPORT, "hn-nb-t2-002")}


@pytest.fixture
def broker(fleet, wire_settings, configs):
    with BrokerSupervisor(wire_settings, fleet) as supervisor:
        yield supervisor


@pytest.fixture
def bridge(fleet, wire_settings, broker, clock):
    server = MqttBridge(wire_settings, fleet, Signer.load_or_create(wire_settings.data_dir), clock,
                        username=SERVER_ACCOUNT, password=server_broker_secret(wire_settings),
                        client_id="signage-server-test")
    server.start()
    assert server.connected.wait(15), "the server did not connect to the broker"
    yield server
    server.stop()


@pytest.fixture
def player(configs, wire_settings):
    started: list[ProtocolPlayer] = []

    def start(player_id: str) -> ProtocolPlayer:
        config = configs[player_id]
        client = ProtocolPlayer(player_id, config.password, "127.0.0.1", wire_settings.broker_port).start()
        started.append(client)
        return client

    yield start
    for client in started:
        client.stop()


def verified_plan(payload: bytes, config) -> Plan:
    envelope = SignedEnvelope.model_validate_json(payload)
    Verifier([public_key_from_text(k) for k in config.public_keys]).verify(envelope)
    return Plan.model_validate(envelope.payload)


def test_a_plan_published_while_the_player_is_offline_arrives_signed_when_it_connects(fleet, bridge, clock, configs,
                                                                                      player):
    PlanningService(fleet, clock, "Asia/Ho_Chi_Minh", on_plans_changed=lambda r: bridge.publish_plans(r.changed)).tick()
    client = player(PHULA)
    assert client.plan_arrived.wait(15), "no plan arrived"
    plan = verified_plan(client.plans[-1], configs[PHULA])
    assert plan.player_id == PHULA and len(plan.spots) == 45  # 15 a day (the head of unit's override) × 3
    assert plan.computed_version() == plan.version


def test_a_changed_campaign_republishes_only_the_affected_players_plans(fleet, bridge, clock, player):
    service = PlanningService(fleet, clock, "Asia/Ho_Chi_Minh",
                              on_plans_changed=lambda r: bridge.publish_plans(r.changed))
    service.tick()
    phula, airport = player(PHULA), player(AIRPORT)
    assert phula.plan_arrived.wait(15) and airport.plan_arrived.wait(15)
    phula.plan_arrived.clear()
    seen_by_airport = len(airport.plans)
    with transaction(fleet.sessions) as session:
        session.scalars(select(FrequencyOverride)).one().plays_per_day = 12
    changed = service.tick()
    assert changed.changed == ["hn-hadong-phula-001", "hn-hadong-phula-002", "hn-hadong-phula-003"]
    assert phula.plan_arrived.wait(15)
    assert len(airport.plans) == seen_by_airport
    with fleet.sessions() as session:
        assert session.scalar(select(func.count()).select_from(PublishedPlan)
                              .where(PublishedPlan.player_id == AIRPORT)) == 1


def test_proof_of_play_is_stored_and_acked_and_bad_records_are_refused_and_counted(fleet, bridge, player):
    client = player(PHULA)
    good = [pop_record(PHULA) for _ in range(10)]
    forged = pop_record(AIRPORT)
    broken = {**pop_record(PHULA), "status": "played-a-bit"}
    client.record(good + [forged, broken])
    client.drain(timeout=30)
    assert set(client.rejected) == {forged["play_id"], broken["play_id"]}
    assert client.rejected[forged["play_id"]].startswith("forged")
    with fleet.sessions() as session:
        assert set(session.scalars(select(PlayRecord.play_id))) == {r["play_id"] for r in good}
    assert bridge.stats["rejected: forged"] == 1


def test_garbage_on_the_pop_topic_never_stops_ingest(fleet, bridge, player):
    client = player(PHULA)
    for junk in (b"", b"\xff\xfe", b"[]", b'{"schema": "signage.pop/1"}', json.dumps({"x": "y" * 10000}).encode()):
        client.send_raw(junk)
    client.record([pop_record(PHULA)])
    client.drain(timeout=30)
    with fleet.sessions() as session:
        assert session.scalar(select(func.count()).select_from(PlayRecord)) == 1


def test_status_messages_update_presence_and_the_last_will_says_offline(fleet, bridge, player):
    from scheduler.models import PlayerPresence

    client = player(AIRPORT)

    def presence():
        with fleet.sessions() as session:
            row = session.get(PlayerPresence, AIRPORT)
            return None if row is None else (row.state, row.plan_version)

    def wait_for(expected) -> bool:
        with bridge.committed:
            return bridge.committed.wait_for(lambda: presence() == expected, timeout=15)

    client.send_status(plan_version="v1", journal_backlog=0)
    assert wait_for(("online", "v1"))
    client.client._sock.close()  # the link drops without a DISCONNECT: the broker sends the Last Will
    assert wait_for(("offline", "v1"))


def test_a_command_arrives_signed_with_a_message_expiry(fleet, bridge, player, configs):
    client = player(AIRPORT)
    command = bridge.publish_command(AIRPORT, "sync_now")
    assert client.command_arrived.wait(15)
    envelope = SignedEnvelope.model_validate_json(client.commands[-1])
    payload = Verifier([public_key_from_text(configs[AIRPORT].public_keys[0])]).verify(envelope)
    assert payload["command_id"] == command.command_id and payload["name"] == "sync_now"


def test_100000_records_from_20_players_survive_a_server_and_a_broker_restart_exactly_once(
        fleet, wire_settings, broker, clock, tmp_path, spawn, cli_env):
    """The acceptance run: every record acked, none lost, none doubled."""
    signer = Signer.load_or_create(wire_settings.data_dir)
    with transaction(fleet.sessions) as session:
        from campaigns.models import Screen

        ids = sorted(session.scalars(select(Screen.id)))[:20]
        configs = {p: register_player(session, p, wire_settings, signer, "http://127.0.0.1:8000", clock.now())
                   for p in ids}
    broker.reload()
    env = {**cli_env, "SIGNAGE_MQTT": "true", "SIGNAGE_BROKER_PORT": str(wire_settings.broker_port),
           "SIGNAGE_JOBS": "false"}
    signage = str(Path(sys.executable).parent / "signage")
    port = free_port()
    server = spawn([signage, "server", "--port", str(port)], env)
    server.wait_for("connected to the broker", timeout=60)

    players = [ProtocolPlayer(p, configs[p].password, "127.0.0.1", wire_settings.broker_port).start()
               for p in ids]
    start = datetime(2024, 8, 20, 1, 0, tzinfo=UTC)
    for client in players:
        client.record([pop_record(client.player_id, start=start) for _ in range(5000)])
    forged = [pop_record(ids[1], start=start) for _ in range(50)]
    malformed = [{**pop_record(ids[0], start=start), "duration_ms": -5} for _ in range(50)]
    players[0].record(forged + malformed)
    try:
        halves = [threading.Thread(target=c.send_unacked, kwargs={"batch_size": 250}) for c in players]
        for thread in halves:
            thread.start()
        for thread in halves:
            thread.join()
        server.process.send_signal(signal.SIGKILL)  # the server dies in the middle of ingest
        server.process.wait(timeout=30)
        broker.restart()  # and the broker restarts while the players' records are in flight
        server = spawn([signage, "server", "--port", str(port)], env)
        server.wait_for("connected to the broker", timeout=60)
        for client in players:
            assert client.connected.wait(30), f"{client.player_id} did not reconnect"
        drains = [threading.Thread(target=c.drain, kwargs={"timeout": 180, "resend_after": 10}) for c in players]
        for thread in drains:
            thread.start()
        for thread in drains:
            thread.join()
        assert [c.backlog() for c in players] == [0] * 20
        assert set(players[0].rejected) == {r["play_id"] for r in forged + malformed}
        assert sum(reason.startswith("forged") for reason in players[0].rejected.values()) == 50
        assert all(not c.rejected for c in players[1:])
    finally:
        for client in players:
            client.stop()
    with fleet.sessions() as session:
        assert session.scalar(select(func.count()).select_from(PlayRecord)) == 100_000
        assert session.scalar(select(func.count(func.distinct(PlayRecord.player_id)))) == 20


def test_extra_ingest_workers_share_the_proof_of_play_and_stop_cleanly(fleet, broker, player, wire_settings, spawn,
                                                                       cli_env):
    env = {**cli_env, "SIGNAGE_MQTT": "true", "SIGNAGE_BROKER_PORT": str(wire_settings.broker_port)}
    signage = str(Path(sys.executable).parent / "signage")
    workers = [spawn([signage, "ingest", "--name", f"ingest-{i}"], env) for i in (1, 2)]
    for worker in workers:
        worker.wait_for("connected to the broker", timeout=60)
    clients = [player(PHULA), player(AIRPORT)]
    for client in clients:
        client.record([pop_record(client.player_id) for _ in range(2000)])
    for client in clients:
        client.drain(timeout=60, batch_size=100)
    with fleet.sessions() as session:
        assert session.scalar(select(func.count()).select_from(PlayRecord)) == 4000
    for worker in workers:
        worker.process.send_signal(signal.SIGTERM)
    assert [w.process.wait(timeout=30) for w in workers] == [0, 0]
    inserted = [int(line.split("'inserted': ")[1].split(",")[0].rstrip("}"))
                for w in workers for line in [w.wait_for("stopped:", timeout=10)]]
    assert sum(inserted) == 4000 and all(n > 0 for n in inserted), inserted
