"""Security suite: what a player's broker account cannot reach, beyond tests/test_broker.py (whose ACL tests are
marked `security` too): wildcard and shared subscriptions that would reach other players' topics or take the
server's share of proof-of-play, other players' pop and status, the broker's own $SYS tree, topics outside the
contract, and another player's client id.

A real Mosquitto run by the supervisor, paho MQTT 5 probes; absence of a delivery is shown by a barrier: a message
on the probe's own topic, published after the forbidden ones, arrives alone.
"""

from __future__ import annotations

import pytest

from scheduler.broker import server_broker_secret
from scheduler.mqtt_bridge import ingest_share
from signage.protocol import TOPIC_ROOT, player_topic
from tests import test_broker
from tests.test_broker import NOT_AUTHORIZED, payloads

# The broker, its players and probes, as tests/test_broker.py sets them up (pytest finds fixtures by name here).
database_url, data_dir, settings = test_broker.database_url, test_broker.data_dir, test_broker.settings
fleet, players, broker, connect = test_broker.fleet, test_broker.players, test_broker.broker, test_broker.connect

pytestmark = pytest.mark.security

OWN_PLAN = player_topic("scr-a", "plan")
WILDCARDS = ["#", f"{TOPIC_ROOT}/#", f"{TOPIC_ROOT}/+/plan", f"{TOPIC_ROOT}/+/+", "+/+/+/+/+", "signage/#",
             f"{TOPIC_ROOT}/scr-b/#", f"$share/steal/{TOPIC_ROOT}/+/pop", f"$share/ingest/{TOPIC_ROOT}/+/pop",
             f"$share/ingest/{TOPIC_ROOT}/+/status", f"$share/x/{TOPIC_ROOT}/#"]


def test_no_wildcard_or_shared_subscription_gives_a_player_anything_of_another_player(connect, settings):
    server = connect("server")
    server.publish_all([(player_topic("scr-b", kind), b"retained, for scr-b") for kind in ("plan", "status")],
                       retain=True)
    # The server's ingest group must get every record: a player that joined it would take its turn of them away.
    ingest = connect("server")
    ingest.subscribe(f"{ingest_share(server_broker_secret(settings))}/{TOPIC_ROOT}/+/pop")
    thief = connect("scr-a")
    for topic in WILDCARDS:
        assert thief.subscribe(topic).value in (1, NOT_AUTHORIZED), topic
    thief.subscribe(OWN_PLAN)
    other = connect("scr-b")
    records = [(player_topic("scr-b", "pop"), f"record {n}".encode()) for n in range(20)]
    assert not any(code.is_failure for code in other.publish_all(records))
    other.publish(player_topic("scr-b", "status"), b"live status of scr-b")
    server.publish_all([(player_topic("scr-b", kind), b"live, for scr-b") for kind in ("plan", "cmd", "ack")])
    server.publish(OWN_PLAN, b"barrier")
    # The barrier comes once per subscription that matches the player's own topic (the wildcards do); anything
    # of scr-b would have come before it.
    assert set(payloads(thief.wait_for_messages(1))) == {(OWN_PLAN, b"barrier")}
    assert sorted(payloads(ingest.wait_for_messages(20))) == sorted(records)


def test_a_player_reads_neither_another_players_pop_and_status_nor_the_brokers_sys_tree(connect):
    other = connect("scr-b")
    other.publish(player_topic("scr-b", "status"), b"online", retain=True)
    server = connect("server")
    server.publish(OWN_PLAN, b"plan of scr-a", retain=True)
    thief = connect("scr-a")
    for topic in (player_topic("scr-b", "pop"), player_topic("scr-b", "status"), player_topic("scr-a", "status"),
                  "$SYS/#", "$SYS/broker/version"):
        assert thief.subscribe(topic).value in (1, NOT_AUTHORIZED), topic
    # Retained messages of the subscriptions above (scr-b's status, $SYS's static entries) would come before this.
    thief.subscribe(OWN_PLAN)
    other.publish(player_topic("scr-b", "pop"), b"batch of scr-b")
    server.publish(OWN_PLAN, b"barrier")
    assert payloads(thief.wait_for_messages(2)) == [(OWN_PLAN, b"plan of scr-a"), (OWN_PLAN, b"barrier")]


def test_a_player_cannot_publish_outside_its_own_pop_and_status(connect):
    listener = connect("server")
    listener.subscribe("#")
    player = connect("scr-a")
    forbidden = ["signage/v1/server", f"{TOPIC_ROOT}/scr-a", f"{TOPIC_ROOT}/scr-a/pop/more", f"{TOPIC_ROOT}/scr-a/log",
                 "other/topic", "$SYS/broker/forged", f"{TOPIC_ROOT}/scr-b/pop"]
    codes = player.publish_all([(topic, b"forged") for topic in forbidden])
    assert {topic: code.value for topic, code in zip(forbidden, codes, strict=True)} == dict.fromkeys(
        forbidden, NOT_AUTHORIZED)
    player.publish(player_topic("scr-a", "pop"), b"allowed")
    assert payloads(listener.wait_for_messages(1)) == [(player_topic("scr-a", "pop"), b"allowed")]


def test_a_player_using_another_players_client_id_gets_none_of_its_queued_messages(connect):
    session = {"clean_start": False, "session_expiry": 86400}
    victim = connect("scr-b", client_id="scr-b", **session)
    victim.subscribe(player_topic("scr-b", "cmd"))
    victim.close()
    server = connect("server")
    server.publish(player_topic("scr-b", "cmd"), b"queued for scr-b")
    thief = connect("scr-a", client_id="scr-b", **session)
    thief.subscribe(OWN_PLAN)
    server.publish(OWN_PLAN, b"barrier")
    assert payloads(thief.wait_for_messages(1)) == [(OWN_PLAN, b"barrier")]
