"""Proof-of-play out of a player: each record made, journaled before it is sent, sent in batches, and forgotten once
the server acknowledged it.

What the journal cannot write now (a full disk) waits in memory, in order and bounded, and is tried again every
turn; nothing is sent meanwhile (the journal could not mark a batch sent). A player stopping while its journal
still cannot write hands those plays to the broker directly and waits a moment for the server's acks.
"""

from __future__ import annotations

import logging
import queue
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError

from player.journal import Journal, JournalUnwritable, UnwrittenPlays
from signage.protocol import PopAck, canonical_json, player_topic

log = logging.getLogger("signage.player")

POP_BATCH = 500
RESEND_AFTER = timedelta(seconds=30)
# How long a stopping agent waits for the server's acks of the plays it could not journal (sent straight to it).
STOP_ACK_WAIT = timedelta(seconds=5)


class ProofOfPlay:
    """One player's proof-of-play: its journal, the plays held in memory, and the MQTT client they go out on.
    `trouble_changed()` is called when the journal starts or stops refusing writes (the status says so)."""

    def __init__(self, journal: Journal, player_id: str, client, trouble_changed: Callable[[], None]) -> None:
        self.journal = journal
        self.player_id = player_id
        self.client = client
        self.unwritten = UnwrittenPlays()  # plays the journal could not write yet
        self.error: str | None = None  # the journal's last refused write, until it writes again with nothing held
        self.stop_ack_wait = STOP_ACK_WAIT
        self._trouble_changed = trouble_changed

    def record(self, *, spot_id: str | None, campaign_id: str | None, media: str, kind: str,
               scheduled_start: datetime | None, started: datetime, ended: datetime, status: str,
               reason: str | None, plan_version: str | None) -> dict[str, Any]:
        """A proof-of-play record (docs/design.md §3) of this player, under the plan it holds."""
        return {"play_id": str(uuid.uuid4()), "player_id": self.player_id, "spot_id": spot_id,
                "campaign_id": campaign_id, "media": media, "kind": kind,
                "scheduled_start": scheduled_start.isoformat() if scheduled_start else None,
                "started_at": started.isoformat(), "ended_at": ended.isoformat(),
                "duration_ms": max(0, int((ended - started) / timedelta(milliseconds=1))), "status": status,
                "reason": reason, "plan_version": plan_version}

    def keep(self, record: dict[str, Any], local_date: str | None = None) -> None:
        """Journal a play attempt behind those still waiting in memory (where it waits too if it cannot be written
        now)."""
        self.unwritten.hold(record, local_date)
        self.write_unwritten()

    def write_unwritten(self) -> None:
        if not self.unwritten:
            return
        try:
            self.unwritten.write_to(self.journal)
        except JournalUnwritable as exc:
            self._refused(exc)
        else:
            self._wrote()

    def backlog(self) -> int:
        """The plays not yet acknowledged by the server: in the journal, and waiting in memory."""
        return self.journal.backlog() + len(self.unwritten)

    def send(self, now: datetime) -> None:
        """Send a few batches of what the journal holds unsent (or sent and not acknowledged for a while)."""
        if not self.client.is_connected() or self.unwritten:
            return  # plays waiting in memory: the journal cannot write, nor mark a batch sent
        for _ in range(4):  # a few batches a turn: a backlog drains without holding up playback
            try:
                batch = self.journal.take_batch(now, POP_BATCH, RESEND_AFTER)
            except JournalUnwritable as exc:
                self._refused(exc)
                return
            if batch is None:
                return
            self._wrote()
            self._publish(*batch)

    def take_ack(self, payload: bytes) -> None:
        """The server's ack of a batch: the records it committed or rejected leave the journal."""
        try:
            ack = PopAck.model_validate_json(payload)
        except ValidationError as exc:
            log.warning("ignored a malformed ack: %s", exc)
            return
        try:
            self.journal.acknowledge(ack.committed, ack.rejected, batch_id=ack.batch_id)
        except JournalUnwritable as exc:
            self._refused(exc)  # the records stay, go again later, and the server acks them again
        else:
            self._wrote()

    def hand_over_before_stopping(self, events: queue.Queue) -> None:
        """The player stops while its journal still cannot write: the plays held in memory would die with the
        process, so they go to the broker as they are, and the server's acks are awaited (from `events`, the
        agent's queue) for a moment. What is not acknowledged by then is lost, and the log names it."""
        if self.client.is_connected():
            records = self.unwritten.records()
            batches = {}
            for start in range(0, len(records), POP_BATCH):
                batch_id = str(uuid.uuid4())
                batches[batch_id] = records[start:start + POP_BATCH]
                self._publish(batch_id, batches[batch_id])
            log.warning("stopping with the journal unwritable: %d plays sent to the broker directly", len(records))
            self._await_acks(batches, events)
        if self.unwritten:
            log.error("stopping with %d plays neither journaled nor acknowledged, lost: %s", len(self.unwritten),
                      " ".join(record["play_id"] for record in self.unwritten.records()))

    def _await_acks(self, batches: dict[str, list[dict[str, Any]]], events: queue.Queue) -> None:
        """Take the server's acks of `batches` (sent from memory) off the queue until all came or the wait passed in
        real time; the plays they answer for leave memory. Nothing else is handled: the player is stopping."""
        deadline = time.monotonic() + self.stop_ack_wait.total_seconds()
        ack_topic = player_topic(self.player_id, "ack")
        while batches and (left := deadline - time.monotonic()) > 0:
            try:
                kind, value = events.get(timeout=left)
            except queue.Empty:
                return
            if kind != "mqtt" or value[0] != ack_topic:
                continue
            try:
                ack = PopAck.model_validate_json(value[1])
            except ValidationError:
                continue
            records = batches.pop(ack.batch_id, None) if ack.batch_id is not None else None
            if records is None:
                continue  # an ack of a batch from the journal: its records stay there, sent again at the next start
            rejected = rejected_play_ids(ack.rejected, records)
            for play_id, reason in rejected.items():
                log.error("the server rejected play %s: %s", play_id, reason)
            self.unwritten.forget([*ack.committed, *rejected])

    def _publish(self, batch_id: str, records: list[dict[str, Any]]) -> None:
        self.client.publish(player_topic(self.player_id, "pop"),
                            canonical_json({"schema": "signage.pop/1", "batch_id": batch_id, "records": records}),
                            qos=1)

    def _refused(self, exc: JournalUnwritable) -> None:
        if self.error is None:
            log.error("%s; plays wait in memory (%d now) and are written when it can", exc, len(self.unwritten))
            self._trouble_changed()
        self.error = str(exc)[:500]

    def _wrote(self) -> None:
        if self.error is not None and not self.unwritten:
            log.warning("the journal writes again; every play is on disk")
            self.error = None
            self._trouble_changed()


def rejected_play_ids(rejected: dict[str, str], records: list[dict[str, Any]]) -> dict[str, str]:
    """A PopAck's rejections of a batch by play_id; a "#index" key (a record the server could not read an id from)
    names the record at that place in the batch."""
    named = {}
    for key, reason in rejected.items():
        if not key.startswith("#"):
            named[key] = reason
        elif key[1:].isdigit() and int(key[1:]) < len(records):
            named[records[int(key[1:])]["play_id"]] = reason
    return named


__all__ = ["POP_BATCH", "RESEND_AFTER", "STOP_ACK_WAIT", "ProofOfPlay", "rejected_play_ids"]
