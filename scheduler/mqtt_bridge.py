"""The server's side of the wire: signed plans and commands out, proof-of-play and status in.

paho-mqtt 2 runs its network loop on its own thread; its callbacks only hand messages to this
bridge's worker thread, which does the database work in batches and publishes the acks once the
records are committed. Subscriptions are made in on_connect, so a reconnect restores them, and the
ingest subscriptions are shared (`$share/ingest-<key>/...`, see `ingest_share`) so that several servers can split
the load.
"""

from __future__ import annotations

import hashlib
import logging
import queue
import socket
import threading
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions
from sqlalchemy.orm import Session

from scheduler.database import Database
from scheduler.ingest import IngestOutcome, ScreenDirectory, ingest_messages, ingest_pop_record_by_record
from scheduler.ledger import dialect_insert
from scheduler.models import CommandSequence
from scheduler.plan_store import newest_bodies
from scheduler.planning import unconfirmed_players
from signage.clock import Clock
from signage.config import Settings
from signage.db import transaction
from signage.protocol import SHARED_INGEST, TOPIC_ROOT, Command, canonical_json, player_of_topic, player_topic
from signage.signing import Signer

log = logging.getLogger("signage.mqtt")

SESSION_EXPIRY_SECONDS = 7 * 24 * 3600
MAX_MESSAGES_PER_ROUND = 400  # pop batches taken into one transaction
COMMAND_TTL = timedelta(minutes=10)


def ingest_share(server_secret: str) -> str:
    """The shared-subscription group the servers' ingest joins, named from the server account's secret: Mosquitto's
    ACL file does not check subscriptions, only deliveries, so a player that joined a group it could name would
    take its turn of every player's proof-of-play, which its ACL then drops (found by tests/test_security_broker.py)."""
    return f"{SHARED_INGEST}-{hashlib.sha256(f'ingest:{server_secret}'.encode()).hexdigest()[:16]}"


@dataclass(frozen=True)
class CommandOrder:
    player_id: str
    name: str
    args: dict[str, Any]
    ttl: timedelta = COMMAND_TTL
    command_id: str | None = None  # made here when None; a remote action names its own, stored before it goes


def next_command_sequences(session: Session, player_ids: list[str]) -> list[int]:
    """A new command sequence for each of `player_ids` (in order; a player named twice gets two), counted up in
    `command_sequences` in the caller's transaction."""
    wanted = Counter(player_ids)
    last = {}
    for player_id, count in sorted(wanted.items()):
        statement = dialect_insert(session, CommandSequence).values(player_id=player_id, last=count)
        statement = statement.on_conflict_do_update(index_elements=["player_id"],
                                                    set_={"last": CommandSequence.last + count})
        last[player_id] = session.scalar(statement.returning(CommandSequence.last))
    given: Counter = Counter()
    sequences = []
    for player_id in player_ids:
        given[player_id] += 1
        sequences.append(last[player_id] - wanted[player_id] + given[player_id])
    return sequences


def signed_plans(database: Database, signer: Signer, player_ids: list[str]) -> dict[str, bytes]:
    """The newest stored plan of each of `player_ids` that has one, as the signed envelope players take, by player."""
    if not player_ids:
        return {}
    with database.sessions() as session:
        bodies = newest_bodies(session, player_ids)
    return {player_id: signer.envelope_json(body.encode()) for player_id, body in sorted(bodies.items())}


class MqttBridge:
    def __init__(self, settings: Settings, database: Database, signer: Signer, clock: Clock, *, username: str,
                 password: str, client_id: str | None = None) -> None:
        self.settings = settings
        self.ingest_share = ingest_share(password)
        self.database = database
        self.signer = signer
        self.clock = clock
        self.directory = ScreenDirectory()
        self.inbox: queue.Queue[tuple[str, str, bytes] | None] = queue.Queue()
        self.stats: Counter = Counter()
        self.connected = threading.Event()
        self.committed = threading.Condition()  # notified after every ingest round, for tests and benches
        self._stopping = threading.Event()
        self._resync = threading.Event()
        self._command_order = threading.Lock()
        # A stable id and a persistent session: pop messages published while the server restarts wait for it.
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2,
                                  client_id=client_id or f"signage-server-{socket.gethostname()}",
                                  protocol=mqtt.MQTTv5)
        self.client.username_pw_set(username, password)
        self.client.max_inflight_messages_set(200)
        self.client.max_queued_messages_set(0)  # keep every unsent publish until the broker takes it
        self.client.reconnect_delay_set(min_delay=1, max_delay=10)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self._worker = threading.Thread(target=self._work, name="mqtt-ingest", daemon=True)

    # -- lifecycle ------------------------------------------------------------------------------------

    def start(self) -> None:
        properties = Properties(PacketTypes.CONNECT)
        properties.SessionExpiryInterval = SESSION_EXPIRY_SECONDS
        self.client.connect_async(self.settings.broker_host, self.settings.broker_port, keepalive=30,
                                  clean_start=False, properties=properties)
        self.client.loop_start()
        self._worker.start()

    def stop(self) -> None:
        self._stopping.set()
        self.inbox.put(None)
        self._worker.join(timeout=30)
        self.client.disconnect()
        self.client.loop_stop()

    # -- paho's thread: hand over, nothing more ---------------------------------------------------------

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            log.error("the broker refused the server's connection: %s", reason_code)
            return
        client.subscribe([(f"{self.ingest_share}/{TOPIC_ROOT}/+/pop", SubscribeOptions(qos=1)),
                          (f"{self.ingest_share}/{TOPIC_ROOT}/+/status", SubscribeOptions(qos=1))])
        self.connected.set()
        self._resync.set()
        self.inbox.put(("wake", "", b""))
        log.info("connected to the broker at %s:%s", self.settings.broker_host, self.settings.broker_port)

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        self.connected.clear()
        if not self._stopping.is_set():
            log.warning("lost the broker (%s); reconnecting", reason_code)

    def _on_message(self, client, userdata, message) -> None:
        located = player_of_topic(message.topic)
        if located is None:
            self.stats["unexpected topic"] += 1
            return
        player_id, kind = located
        self.inbox.put((kind, player_id, message.payload))

    # -- the worker: database work and replies ----------------------------------------------------------

    def _work(self) -> None:
        while not self._stopping.is_set():
            try:
                first = self.inbox.get(timeout=1.0)
            except queue.Empty:
                continue
            if first is None:
                break
            items = [first]
            while len(items) < MAX_MESSAGES_PER_ROUND:
                try:
                    item = self.inbox.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    self._stopping.set()
                    break
                items.append(item)
            try:
                self._handle(items)
            except Exception:
                log.exception("an ingest round of %d messages failed; storing them one by one", len(items))
                self.stats["failed rounds"] += 1
                self._handle_one_by_one(items)
            if self._resync.is_set() and self.connected.is_set():
                self._resync.clear()
                self.republish_unconfirmed()

    def _handle_one_by_one(self, items: list[tuple[str, str, bytes]]) -> None:
        """After a failed round, each message in its own transaction: one that cannot be stored costs only itself,
        never the good messages that shared its round. A batch that fails alone is stored record by record."""
        for kind, player_id, payload in items:
            try:
                self._handle([(kind, player_id, payload)])
            except Exception as exc:
                if kind == "pop":
                    log.warning("a proof-of-play batch from %s could not be stored whole (%s: %s); storing its "
                                "records one by one", player_id, type(exc).__name__, str(exc)[:200])
                    self._handle_record_by_record(player_id, payload)
                    continue
                log.error("a %s message from %s could not be stored (%s: %s)", kind, player_id,
                          type(exc).__name__, str(exc)[:200])
                self.stats["failed messages"] += 1
        with self.committed:
            self.committed.notify_all()

    def _handle_record_by_record(self, player_id: str, payload: bytes) -> None:
        self.stats["batches stored record by record"] += 1
        try:
            outcome = ingest_pop_record_by_record(self.database.sessions, player_id, payload, self.directory,
                                                  self.clock.now())
        except Exception as exc:
            log.error("a proof-of-play batch from %s could not be stored (%s: %s); it is not acked", player_id,
                      type(exc).__name__, str(exc)[:200])
            self.stats["failed messages"] += 1
            return
        self._send_acks(outcome)

    def _handle(self, items: list[tuple[str, str, bytes]]) -> None:
        pops = [(player, payload) for kind, player, payload in items if kind == "pop"]
        statuses = [(player, payload) for kind, player, payload in items if kind == "status"]
        if not pops and not statuses:
            return
        with transaction(self.database.sessions) as session:
            outcome = ingest_messages(session, pops, statuses, self.directory, self.clock.now())
        self.stats["statuses"] += outcome.statuses
        self.stats["bad statuses"] += len(statuses) - outcome.statuses
        self._send_acks(outcome)
        with self.committed:
            self.committed.notify_all()

    def _send_acks(self, outcome: IngestOutcome) -> None:
        """Count a committed outcome's records and publish its acks."""
        self.stats["inserted"] += outcome.inserted
        self.stats["duplicates"] += outcome.duplicates
        self.stats.update({f"rejected: {reason}": n for reason, n in outcome.rejected.items()})
        for player_id, ack in outcome.acks:
            self.client.publish(player_topic(player_id, "ack"), canonical_json(ack), qos=1)
        self.stats["acks"] += len(outcome.acks)

    # -- out: plans and commands ------------------------------------------------------------------------

    def publish_plans(self, player_ids: list[str]) -> int:
        """Publish the newest stored plan of each player, signed, retained, QoS 1."""
        envelopes = signed_plans(self.database, self.signer, player_ids)
        for player_id, envelope in envelopes.items():
            self.client.publish(player_topic(player_id, "plan"), envelope, qos=1, retain=True)
        self.stats["plans published"] += len(envelopes)
        return len(envelopes)

    def republish_unconfirmed(self) -> int:
        """Publish again every plan a player has not confirmed in its status (after a reconnect, or a broker
        that lost its retained messages)."""
        with self.database.sessions() as session:
            stale = unconfirmed_players(session)
        return self.publish_plans(stale)

    def publish_command(self, player_id: str, name: str, args: dict | None = None,
                        ttl: timedelta = COMMAND_TTL) -> Command:
        return self.publish_commands([CommandOrder(player_id, name, args or {}, ttl)])[0]

    def publish_commands(self, orders: list[CommandOrder]) -> list[Command]:
        """Sign and publish commands, each under the next sequence of its player (a player runs a command only
        above the last it ran). They go out before the sequences commit: the counters' rows stay locked until
        then, so another thread or server process cannot publish a later sequence to the same player first."""
        if not orders:
            return []
        now = self.clock.now()
        commands = []
        with self._command_order, transaction(self.database.sessions) as session:
            sequences = next_command_sequences(session, [order.player_id for order in orders])
            for order, sequence in zip(orders, sequences, strict=True):
                command = Command(command_id=order.command_id or str(uuid.uuid4()), player_id=order.player_id,
                                  name=order.name, issued_at=now, expires_at=now + order.ttl, args=order.args,
                                  sequence=sequence)
                properties = Properties(PacketTypes.PUBLISH)
                # The broker drops it when it waited longer than this, counting from when it took it: how stale a
                # command may be does not rest on any clock's wall time.
                properties.MessageExpiryInterval = max(1, int(order.ttl.total_seconds()))
                envelope = self.signer.sign(command.model_dump(mode="json", by_alias=True))
                self.client.publish(player_topic(order.player_id, "cmd"), canonical_json(envelope), qos=1,
                                    retain=False, properties=properties)
                commands.append(command)
        return commands
