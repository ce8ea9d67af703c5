"""A player that speaks the wire contract with paho against the real broker: for tests before (and
beside) the real player agent. It keeps its records in memory until the server's ack names them,
and sends again what was not acked, as the agent's journal does."""

from __future__ import annotations

import json
import threading
import uuid
from datetime import UTC, datetime, timedelta

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from signage.protocol import canonical_json, player_topic


def pop_record(player_id: str, media: str = "ab" * 32, start: datetime | None = None, **fields) -> dict:
    start = start or datetime(2024, 8, 20, 1, 30, tzinfo=UTC)
    record = {"play_id": str(uuid.uuid4()), "player_id": player_id, "spot_id": "spot-1",
              "campaign_id": "ihanoi-2024", "media": media, "kind": "spot",
              "scheduled_start": start.isoformat(), "started_at": start.isoformat(),
              "ended_at": (start + timedelta(seconds=30)).isoformat(), "duration_ms": 30000,
              "status": "completed", "reason": None, "plan_version": None}
    record.update(fields)
    return record


class ProtocolPlayer:
    def __init__(self, player_id: str, password: str, host: str, port: int, username: str | None = None) -> None:
        self.player_id = player_id
        self.journal: dict[str, dict] = {}
        self.rejected: dict[str, str] = {}
        self._positions: dict[str, list[str | None]] = {}  # batch_id -> play_id at each position, for "#index"
        self.plans: list[bytes] = []
        self.commands: list[bytes] = []
        self.connected = threading.Event()
        self.refused = threading.Event()
        self.plan_arrived = threading.Event()
        self.command_arrived = threading.Event()
        self.progress = threading.Condition()
        self._lock = threading.Lock()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=player_id, protocol=mqtt.MQTTv5)
        self.client.username_pw_set(username or player_id, password)
        self.client.will_set(player_topic(player_id, "status"),
                             json.dumps({"player_id": player_id, "state": "offline"}), qos=1, retain=True)
        self.client.max_queued_messages_set(0)
        self.client.reconnect_delay_set(min_delay=1, max_delay=2)
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.on_subscribe = self._on_subscribe
        self.client.on_disconnect = lambda *args: self.connected.clear()
        self.host, self.port = host, port

    def start(self, timeout: float = 15.0) -> ProtocolPlayer:
        properties = Properties(PacketTypes.CONNECT)
        properties.SessionExpiryInterval = 7 * 24 * 3600
        self.client.connect_async(self.host, self.port, keepalive=20, clean_start=False, properties=properties)
        self.client.loop_start()
        if not self.connected.wait(timeout):
            raise TimeoutError(f"{self.player_id} did not connect within {timeout}s")
        return self

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            self.refused.set()
            return
        client.subscribe([(player_topic(self.player_id, kind), SubscribeOptions(qos=1))
                          for kind in ("plan", "cmd", "ack")])

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties) -> None:
        # Ready only once the broker confirmed the subscriptions: a command sent before would be lost.
        self.connected.set()

    def _on_message(self, client, userdata, message) -> None:
        kind = message.topic.rsplit("/", 1)[-1]
        if kind == "plan":
            self.plans.append(message.payload)
            self.plan_arrived.set()
        elif kind == "cmd":
            self.commands.append(message.payload)
            self.command_arrived.set()
        elif kind == "ack":
            ack = json.loads(message.payload)
            with self._lock:
                positions = self._positions.pop(ack["batch_id"], [])
                for play_id in ack["committed"]:
                    self.journal.pop(play_id, None)
                for key, reason in ack.get("rejected", {}).items():
                    play_id = self._named(key, positions)
                    if play_id is not None and self.journal.pop(play_id, None) is not None:
                        self.rejected[play_id] = reason
            with self.progress:
                self.progress.notify_all()

    @staticmethod
    def _named(key: str, positions: list[str | None]) -> str | None:
        """The play_id an ack's rejection names: "#index" names the record at that position of the batch (one whose
        play_id the server could not read), as the agent's journal resolves it."""
        if not key.startswith("#"):
            return key
        index = key[1:]
        return positions[int(index)] if index.isdigit() and int(index) < len(positions) else None

    def send_status(self, **fields) -> None:
        status = {"player_id": self.player_id, "state": "online", **fields}
        self.client.publish(player_topic(self.player_id, "status"), json.dumps(status), qos=1, retain=True)

    def record(self, records: list[dict]) -> None:
        with self._lock:
            for record in records:
                self.journal[record["play_id"]] = record

    def send_unacked(self, batch_size: int = 250) -> int:
        with self._lock:
            pending = list(self.journal.values())
        for start in range(0, len(pending), batch_size):
            self.send_raw({"schema": "signage.pop/1", "batch_id": str(uuid.uuid4()),
                           "records": pending[start:start + batch_size]})
        return len(pending)

    def send_raw(self, batch: dict | bytes) -> None:
        if isinstance(batch, dict):
            with self._lock:
                self._positions[batch["batch_id"]] = [r.get("play_id") if isinstance(r, dict) else None
                                                      for r in batch["records"]]
        payload = batch if isinstance(batch, bytes) else canonical_json(batch)
        self.client.publish(player_topic(self.player_id, "pop"), payload, qos=1)

    def backlog(self) -> int:
        with self._lock:
            return len(self.journal)

    def drain(self, timeout: float = 60.0, resend_after: float = 5.0, batch_size: int = 250) -> None:
        """Send the journal and wait until every record is acked, sending again what stays unacked for a while."""
        import time

        deadline = time.monotonic() + timeout
        self.send_unacked(batch_size)
        while self.backlog():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"{self.player_id}: {self.backlog()} records never acked")
            before = self.backlog()
            with self.progress:
                self.progress.wait(timeout=min(resend_after, remaining))
            if self.backlog() == before and self.connected.is_set():
                self.send_unacked(batch_size)
