"""A simulated player: the wire contract of docs/design.md §3 as the real agent speaks it, without playback.

It connects with its own credentials and a persistent session, subscribes to its plan, cmd and ack topics, takes
only plans that are signed by the server, for it, consistent with their version and not older than the one it holds,
reports the version it holds in its status (at each connection, on each new plan, and every `status_every` seconds),
sends proof-of-play of its plan's spots (and the filler between them) in `signage.pop/1` batches, forgets records
once an ack says they are committed (or refused), and sends again what stays unacknowledged, as the agent's journal
does. Everything runs on one asyncio loop shared with the other players of its process.
"""

from __future__ import annotations

import json
import logging
import random
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from paho.mqtt.client import MQTTv5
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions
from pydantic import ValidationError

from loadtest.aio_mqtt import AsyncioMqtt, LoopClient
from loadtest.tally import Tally
from signage import __version__
from signage.protocol import Command, Plan, SignedEnvelope, Status, canonical_json, plan_order, player_topic
from signage.signing import SignatureRefused, Verifier

log = logging.getLogger("signage.loadtest")

SESSION_EXPIRY_SECONDS = 7 * 24 * 3600  # as the agent: queued acks and commands wait a week for it
FILLER_EVERY = 4  # one record in four is the house loop played after a spot


@dataclass(frozen=True)
class PlayerOptions:
    host: str
    port: int
    keepalive: int = 30
    connect_timeout: float = 10.0
    reconnect_min_s: float = 0.5
    reconnect_max_s: float = 8.0
    resend_after_s: float = 30.0
    status_every_s: float = 30.0


@dataclass
class Sending:
    until: float  # loop time after which no new batch is started
    batch: int  # records per batch
    window: int  # batches awaiting their ack at once


class SimPlayer:
    def __init__(self, player_id: str, password: str, options: PlayerOptions, mqtt: AsyncioMqtt,
                 verifier: Verifier, tally: Tally, rng: random.Random) -> None:
        self.player_id = player_id
        self.options = options
        self.mqtt = mqtt
        self.verifier = verifier
        self.tally = tally
        self.rng = rng
        self.loop = mqtt.loop
        self.plan: Plan | None = None
        self.refused: str | None = None
        self._plan_payload: bytes | None = None
        self._templates: list[dict[str, Any]] = []
        self._next_template = 0
        self.journal: dict[str, dict[str, Any]] = {}  # play_id -> record, until acked
        self.in_flight: dict[str, tuple[float, list[str]]] = {}  # batch_id -> (sent at, play_ids)
        self.sent: list[str] = []  # every play_id made, in order
        self.rejected: dict[str, str] = {}
        self.sending: Sending | None = None
        self.connected = False
        self.stopping = False
        self._attempts = 0
        self._last_status = 0.0
        self.client = self._make_client(password)
        mqtt.attach(self.client)

    def _make_client(self, password: str) -> LoopClient:
        client = LoopClient(CallbackAPIVersion.VERSION2, client_id=self.player_id, protocol=MQTTv5)
        client.username_pw_set(self.player_id, password)
        client.will_set(player_topic(self.player_id, "status"),
                        canonical_json({"player_id": self.player_id, "state": "offline"}), qos=1, retain=True)
        client.max_queued_messages_set(0)
        client.on_connect = self._on_connect
        client.on_subscribe = self._on_subscribe
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        properties = Properties(PacketTypes.CONNECT)
        properties.SessionExpiryInterval = SESSION_EXPIRY_SECONDS
        client.connect_async(self.options.host, self.options.port, keepalive=self.options.keepalive,
                             clean_start=False, properties=properties)
        return client

    # -- connection -----------------------------------------------------------------------------------------

    def start(self, delay: float) -> None:
        self.loop.call_later(delay, self._connect)

    def _connect(self) -> None:
        if not self.stopping:
            self.loop.create_task(self._open())

    async def _open(self) -> None:
        try:
            await self.mqtt.open(self.client, self.options.host, self.options.port, self.options.connect_timeout)
        except (OSError, TimeoutError):
            self.tally.add("connect_failures")
            self._retry()

    def _retry(self) -> None:
        delay = min(self.options.reconnect_max_s, self.options.reconnect_min_s * 2 ** min(self._attempts, 30))
        self._attempts += 1
        self.loop.call_later(delay * self.rng.uniform(0.5, 1.0), self._connect)

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            self.tally.add("refused_connections")
            log.error("the broker refused %s: %s", self.player_id, reason_code)
            return  # the broker closes the connection: _on_disconnect tries again
        client.subscribe([(player_topic(self.player_id, kind), SubscribeOptions(qos=1))
                          for kind in ("plan", "cmd", "ack")])

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties) -> None:
        self.connected = True
        self._attempts = 0
        self.tally.add("connected")
        self.tally.add("connects")
        self.tally.stamp("last_connect_at")
        self.send_status()
        self._fill()

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        if self.connected:
            self.connected = False
            self.tally.add("connected", -1)
        if not self.stopping:
            self._retry()

    def stop(self) -> None:
        self.stopping = True
        self.sending = None
        self.client.disconnect()

    # -- messages in ------------------------------------------------------------------------------------------

    def _on_message(self, client, userdata, message) -> None:
        kind = message.topic.rsplit("/", 1)[-1]
        if kind == "plan":
            self._take_plan(message.payload)
        elif kind == "ack":
            self._take_ack(message.payload)
        elif kind == "cmd":
            self._take_command(message.payload)

    def _take_plan(self, payload: bytes) -> None:
        if payload == self._plan_payload:
            return  # the retained plan again, as every resubscription brings it: verified already
        try:
            plan = Plan.model_validate(self.verifier.verify(SignedEnvelope.model_validate_json(payload)))
            if plan.player_id != self.player_id:
                raise ValueError(f"the plan is for {plan.player_id}, not this player")
            if plan.computed_version() != plan.version:
                raise ValueError("the plan's version does not match its body")
            order = plan_order(self.plan, plan)  # the agent's rule: by sequence, never by a clock
            if order not in ("take", "same"):
                raise ValueError(order)
        except (ValueError, ValidationError, SignatureRefused) as exc:
            self.refused = f"plan refused: {exc}"[:500]
            self.tally.add("plans_refused")
            log.error("%s refused a plan: %s", self.player_id, exc)
            self.send_status()
            return
        self._plan_payload = payload
        if self.plan is not None and plan.version == self.plan.version:
            self.plan = plan  # the same plan under a later sequence, perhaps: older ones stay refused
            return
        self.plan, self.refused = plan, None
        self._templates = plays_of(plan)
        self.tally.add("plans_taken")
        self.tally.stamp("last_plan_at")
        self.send_status()

    def _take_command(self, payload: bytes) -> None:
        try:
            command = Command.model_validate(self.verifier.verify(SignedEnvelope.model_validate_json(payload)))
        except (ValueError, ValidationError, SignatureRefused) as exc:
            self.tally.add("commands_refused")
            log.error("%s refused a command: %s", self.player_id, exc)
            return
        if command.player_id == self.player_id:
            self.tally.add("commands")

    def _take_ack(self, payload: bytes) -> None:
        try:
            ack = json.loads(payload)
            committed, rejected = ack["committed"], ack.get("rejected", {})
        except (ValueError, KeyError, TypeError):
            self.tally.add("bad_acks")
            return
        acked = 0
        for play_id in committed:
            if self.journal.pop(play_id, None) is not None:
                acked += 1
        for play_id, reason in rejected.items():
            if self.journal.pop(play_id, None) is not None:
                self.rejected[play_id] = reason
        if rejected:
            self.tally.add("rejected", len(rejected))
            log.error("%s: the server refused %d records, e.g. %s", self.player_id, len(rejected),
                      next(iter(rejected.values())))
        self.tally.add("acked", acked)
        self.in_flight.pop(ack.get("batch_id"), None)
        self._fill()

    # -- messages out -----------------------------------------------------------------------------------------

    def send_status(self) -> None:
        self._last_status = self.loop.time()
        if not self.connected:
            return
        plan = self.plan
        cache = {"ready": len(plan.media), "missing": 0, "bytes": sum(m.bytes for m in plan.media.values())} \
            if plan else {"ready": 0, "missing": 0, "bytes": 0}
        status = Status(player_id=self.player_id, state="online", plan_version=plan.version if plan else None,
                        cache=cache, journal_backlog=len(self.journal), clock_offset_ms=0,
                        software_version=__version__, sent_at=datetime.now(UTC), refused=self.refused)
        self.client.publish(player_topic(self.player_id, "status"), canonical_json(status), qos=1, retain=True)
        self.tally.add("statuses")

    def begin_sending(self, sending: Sending) -> None:
        self.sending = sending
        self._fill()

    def stop_sending(self) -> None:
        self.sending = None

    def _fill(self) -> None:
        """Start new batches while sending, connected and under the window."""
        sending = self.sending
        if sending is None or not self.connected or not self._templates:
            return
        while len(self.in_flight) < sending.window and self.loop.time() < sending.until:
            self._publish([self._new_record() for _ in range(sending.batch)])

    def _new_record(self) -> dict[str, Any]:
        template = self._templates[self._next_template % len(self._templates)]
        self._next_template += 1
        record = {**template, "play_id": str(uuid.uuid4())}
        self.journal[record["play_id"]] = record
        self.sent.append(record["play_id"])
        self.tally.add("sent")
        return record

    def _publish(self, records: list[dict[str, Any]]) -> None:
        batch_id = str(uuid.uuid4())
        self.in_flight[batch_id] = (self.loop.time(), [r["play_id"] for r in records])
        self.client.publish(player_topic(self.player_id, "pop"),
                            canonical_json({"schema": "signage.pop/1", "batch_id": batch_id, "records": records}),
                            qos=1)

    def tick(self, now: float) -> None:
        """Once a second: send again what waited too long for its ack; the status when it is due."""
        if now - self._last_status >= self.options.status_every_s:
            self.send_status()
        if not self.connected:
            return
        for batch_id, (sent_at, play_ids) in list(self.in_flight.items()):
            if now - sent_at < self.options.resend_after_s:
                continue
            del self.in_flight[batch_id]
            waiting = [self.journal[p] for p in play_ids if p in self.journal]
            if waiting:
                self.tally.add("resent", len(waiting))
                self._publish(waiting)
        self._fill()

    def backlog(self) -> int:
        return len(self.journal)


def plays_of(plan: Plan) -> list[dict[str, Any]]:
    """Proof-of-play templates (all but play_id) for the plan's spots, each completed a little after its start,
    and, every FILLER_EVERY, the house loop played after it."""
    plays = []
    filler = plan.filler or [spot.media for spot in plan.spots]
    for index, spot in enumerate(plan.spots):
        started = spot.start + timedelta(milliseconds=40 + index % 200)
        ended = started + timedelta(milliseconds=spot.duration_ms)
        plays.append({"player_id": plan.player_id, "spot_id": spot.spot_id, "campaign_id": spot.campaign_id,
                      "media": spot.media, "kind": "spot", "scheduled_start": spot.start.isoformat(),
                      "started_at": started.isoformat(), "ended_at": ended.isoformat(),
                      "duration_ms": spot.duration_ms, "status": "completed", "reason": None,
                      "plan_version": plan.version})
        if index % FILLER_EVERY == FILLER_EVERY - 1 and filler:
            media = filler[index % len(filler)]
            length = plan.media[media].duration_ms
            plays.append({"player_id": plan.player_id, "spot_id": None, "campaign_id": None, "media": media,
                          "kind": "filler", "scheduled_start": None, "started_at": ended.isoformat(),
                          "ended_at": (ended + timedelta(milliseconds=length)).isoformat(), "duration_ms": length,
                          "status": "completed", "reason": None, "plan_version": plan.version})
    return plays

