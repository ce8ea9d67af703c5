"""Alerts out and acknowledgements in, with real parts: Mosquitto, the server's bridge and dispatcher, players
speaking the wire contract, and proof-of-play ingest on both databases."""

from datetime import timedelta

import pytest
from sqlalchemy import select

from campaigns.access import Actor
from campaigns.alerts import AlertIn, create_alert, stop_alert
from campaigns.fleet_file import import_fleet
from campaigns.models import Alert, User
from scheduler.alert_dispatch import AlertDispatcher
from scheduler.broker import SERVER_ACCOUNT, BrokerSupervisor, server_broker_secret
from scheduler.ingest import ScreenDirectory, ingest_pop, ingest_status
from scheduler.models import AlertDelivery, PlayRecord
from scheduler.mqtt_bridge import MqttBridge
from scheduler.players import register_player
from signage.db import transaction
from signage.protocol import AlertOrder, AlertStop, Command, SignedEnvelope, canonical_json, text_sha256
from signage.signing import Signer, Verifier
from tests.conftest import FLEET_FILE
from tests.pg_server import free_port
from tests.protocol_client import ProtocolPlayer, pop_record

PHULA = ("hn-hadong-phula-001", "hn-hadong-phula-002")
VANQUAN = "hn-hadong-vanquan-001"


@pytest.fixture
def wire_settings(settings):
    return settings.model_copy(update={"mqtt": True, "broker_port": free_port()})


@pytest.fixture
def issuer(database, wire_settings, clock, password_hash):
    """Phú La's communications staff, as the workflow sees them."""
    from campaigns.accounts import create_user

    with transaction(database.sessions) as session:
        import_fleet(session, FLEET_FILE, wire_settings.timezone)
        user = create_user(session, username="phula-staff", full_name="Phú La", role="staff",
                           organisation_id="hn-hadong-phula", password_hash=password_hash, clock=clock)
        return user.id


def actor_of(session, user_id: int) -> Actor:
    user = session.get(User, user_id)
    return Actor(user, user.organisation.path, via="token")


def issue(database, clock, user_id: int, **fields) -> str:
    values = {"title": "Ngập úng", "text": "Đường Phú La ngập sâu, xin đi đường khác", "severity": "urgent",
              "targets": {"organisations": ["hn-hadong-phula"]}, **fields}
    with transaction(database.sessions) as session:
        return create_alert(session, actor_of(session, user_id), clock, AlertIn(**values)).id


@pytest.fixture
def wire(database, wire_settings, clock, issuer):
    """The broker, the server's bridge and dispatcher, and players of both wards speaking the protocol."""
    signer = Signer.load_or_create(wire_settings.data_dir)
    with transaction(database.sessions) as session:
        configs = {player_id: register_player(session, player_id, wire_settings, signer, "http://127.0.0.1:9",
                                              clock.now()) for player_id in (*PHULA, VANQUAN)}
    with BrokerSupervisor(wire_settings, database):
        bridge = MqttBridge(wire_settings, database, signer, clock, username=SERVER_ACCOUNT,
                            password=server_broker_secret(wire_settings), client_id="signage-server-alerts")
        bridge.start()
        assert bridge.connected.wait(15), "the server did not connect to the broker"
        players = {player_id: ProtocolPlayer(player_id, config.password, "127.0.0.1", wire_settings.broker_port)
                   .start() for player_id, config in configs.items()}
        try:
            yield AlertDispatcher(database, bridge, clock), players, Verifier([signer.public_key])
        finally:
            for player in players.values():
                player.stop()
            bridge.stop()


def commands_of(player: ProtocolPlayer, verifier: Verifier) -> list[Command]:
    """Every command the player received so far, verified, once one more has arrived."""
    assert player.command_arrived.wait(15), f"{player.player_id} received no command"
    player.command_arrived.clear()
    return [Command.model_validate(verifier.verify(SignedEnvelope.model_validate_json(payload)))
            for payload in list(player.commands)]


def test_an_alert_goes_to_every_target_screen_as_a_signed_command_that_expires_with_the_alert(wire, database,
                                                                                              clock, issuer):
    dispatcher, players, verifier = wire
    alert_id = issue(database, clock, issuer)
    assert dispatcher.publish(alert_id) == 2  # Phú La's two displays, not its loudspeaker (a text alert)
    for player_id in PHULA:
        [command] = commands_of(players[player_id], verifier)
        order = AlertOrder.model_validate(command.args)
        assert (command.name, command.player_id, order.alert_id, order.severity) == (
            "alert_start", player_id, alert_id, "urgent")
        assert command.expires_at == order.expires_at == clock.now() + timedelta(hours=1)
    with database.sessions() as session:
        sent = {d.screen_id: d.sends for d in session.scalars(select(AlertDelivery))}
    assert sent == {"hn-hadong-phula-001": 1, "hn-hadong-phula-002": 1}
    # Văn Quán's player is not a target. Its silence is checked after a later command to it arrived, in order.
    dispatcher.bridge.publish_command(VANQUAN, "sync_now")
    [command] = commands_of(players[VANQUAN], verifier)
    assert command.name == "sync_now"


def test_stopping_an_alert_sends_the_stop_to_the_screens_it_went_to(wire, database, clock, issuer):
    dispatcher, players, verifier = wire
    alert_id = issue(database, clock, issuer)
    dispatcher.publish(alert_id)
    player = players[PHULA[0]]
    commands_of(player, verifier)
    with transaction(database.sessions) as session:
        stop_alert(session, actor_of(session, issuer), clock, alert_id, "nước đã rút")
    assert dispatcher.stop(alert_id) == 2
    start, stop = commands_of(player, verifier)
    assert stop.name == "alert_stop" and AlertStop.model_validate(stop.args).alert_id == alert_id
    assert stop.expires_at == clock.now() + timedelta(hours=1)


def test_a_player_heard_from_after_the_send_without_acknowledging_is_sent_the_alert_again(wire, database, clock,
                                                                                         issuer):
    dispatcher, players, verifier = wire
    alert_id = issue(database, clock, issuer)
    dispatcher.publish(alert_id)
    assert dispatcher.resend_due() == 0  # nobody was heard from since
    clock.advance(timedelta(seconds=30))
    directory = ScreenDirectory()
    with transaction(database.sessions) as session:
        directory.refresh(session)
        status = {"player_id": PHULA[0], "state": "online", "sent_at": clock.now().isoformat()}
        assert ingest_status(session, PHULA[0], canonical_json(status), clock.now(), directory)
        acked = pop_record(PHULA[1], media=text_sha256("x"), start=clock.now(), kind="alert", spot_id=alert_id,
                           campaign_id=None, status="started", ended_at=clock.now().isoformat(), duration_ms=0)
        ingest_pop(session, [(PHULA[1], canonical_json({"schema": "signage.pop/1", "batch_id": "b1",
                                                        "records": [acked]}))], directory, clock.now())
        for player_id in (PHULA[1],):
            ingest_status(session, player_id, canonical_json({**status, "player_id": player_id}), clock.now(),
                          directory)
    clock.advance(timedelta(seconds=1))
    # Only the player that was heard from and never acknowledged, not the one that did.
    assert dispatcher.resend_due() == 1
    with database.sessions() as session:
        sends = {d.screen_id: d.sends for d in session.scalars(select(AlertDelivery))}
    assert sends == {"hn-hadong-phula-001": 2, "hn-hadong-phula-002": 1}


def alert_record(player_id: str, alert_id: str, status: str, start, end, reason=None) -> dict:
    return pop_record(player_id, media=text_sha256("Đường ngập"), start=start, kind="alert", spot_id=alert_id,
                      campaign_id=None, scheduled_start=start.isoformat(), status=status,
                      ended_at=end.isoformat(), duration_ms=int((end - start).total_seconds() * 1000), reason=reason)


def test_proof_of_play_acknowledgements_fill_the_alerts_deliveries_once(database, clock, issuer):
    alert_id = issue(database, clock, issuer)
    start, end = clock.now(), clock.now() + timedelta(minutes=5)
    records = [alert_record(PHULA[0], alert_id, "started", start, start),
               alert_record(PHULA[0], alert_id, "completed", start, end, "stopped by the issuer"),
               alert_record(PHULA[1], alert_id, "started", start, start),
               alert_record(PHULA[1], "alert-unknown", "started", start, start)]
    directory = ScreenDirectory()
    for _ in range(2):  # the same batch twice: the second changes nothing
        with transaction(database.sessions) as session:
            for player_id in PHULA:
                batch = {"schema": "signage.pop/1", "batch_id": f"b-{player_id}",
                         "records": [r for r in records if r["player_id"] == player_id]}
                outcome = ingest_pop(session, [(player_id, canonical_json(batch))], directory, clock.now())
                assert not outcome.rejected, outcome.rejected
    with database.sessions() as session:
        deliveries = {d.screen_id: (d.started_at, d.ended_at, d.outcome, d.reason)
                      for d in session.scalars(select(AlertDelivery))}
        kept = session.scalar(select(PlayRecord.status).where(PlayRecord.spot_id == "alert-unknown"))
    assert deliveries == {PHULA[0]: (start, end, "completed", "stopped by the issuer"),
                          PHULA[1]: (start, None, None, None)}
    assert kept == "started"  # in the log, though it names no alert of ours


def test_only_an_alerts_play_may_be_acknowledged_as_started(database, clock, issuer):
    directory = ScreenDirectory()
    record = pop_record(PHULA[0], start=clock.now(), status="started")
    with transaction(database.sessions) as session:
        outcome = ingest_pop(session, [(PHULA[0], canonical_json({"schema": "signage.pop/1", "batch_id": "b",
                                                                  "records": [record]}))], directory, clock.now())
    assert outcome.inserted == 0 and sum(outcome.rejected.values()) == 1
    [(_, ack)] = outcome.acks
    assert "only an alert's play is acknowledged as started" in ack.rejected[record["play_id"]]


def test_an_alert_whose_targets_no_longer_resolve_does_not_hold_up_the_others(wire, database, clock, issuer):
    dispatcher, players, verifier = wire
    broken = issue(database, clock, issuer)
    with transaction(database.sessions) as session:
        session.get(Alert, broken).targets = {"screens": ["hn-screen-removed-since"]}
    fine = issue(database, clock, issuer)
    assert dispatcher.resend_due() == 2  # the other alert's first sends, to Phú La's two displays
    [command] = commands_of(players[PHULA[0]], verifier)
    assert AlertOrder.model_validate(command.args).alert_id == fine
