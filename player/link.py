"""The player's MQTT link: paho's client for this player (its account, TLS, Last Will, subscriptions) and its
persistent session. paho's network thread only hands over: each message and each connection is posted to the
agent's loop."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from signage.player_config import PlayerConfig
from signage.protocol import canonical_json, player_topic

log = logging.getLogger("signage.player")

SESSION_EXPIRY_SECONDS = 7 * 24 * 3600
SUBSCRIBED = ("plan", "cmd", "ack")


def make_client(config: PlayerConfig, post: Callable[[str, Any], None]) -> mqtt.Client:
    """paho's client for this player; `post(kind, value)` puts an event on the agent's queue."""
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=config.player_id, protocol=mqtt.MQTTv5)
    client.username_pw_set(config.username, config.password)
    if config.broker_tls_ca:
        client.tls_set(ca_certs=config.broker_tls_ca)
    client.will_set(player_topic(config.player_id, "status"),
                    canonical_json({"player_id": config.player_id, "state": "offline"}), qos=1, retain=True)
    client.reconnect_delay_set(min_delay=1, max_delay=60)
    client.max_queued_messages_set(0)

    def on_connect(client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            log.error("the broker refused this player: %s", reason_code)
            return
        client.subscribe([(player_topic(config.player_id, kind), SubscribeOptions(qos=1)) for kind in SUBSCRIBED])
        post("connected", None)

    client.on_connect = on_connect
    client.on_message = lambda c, u, message: post("mqtt", (message.topic, message.payload))
    return client


def connect(client: mqtt.Client, config: PlayerConfig) -> None:
    """Start paho's network thread towards the broker (persistent session); it reconnects by itself."""
    properties = Properties(PacketTypes.CONNECT)
    properties.SessionExpiryInterval = SESSION_EXPIRY_SECONDS
    client.connect_async(config.broker_host, config.broker_port, keepalive=30, clean_start=False,
                         properties=properties)
    client.loop_start()


__all__ = ["SESSION_EXPIRY_SECONDS", "connect", "make_client"]
