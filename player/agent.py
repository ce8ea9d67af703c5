"""The player agent: one loop that owns playback, the journal and the plan; everything else posts to it.

paho's network thread, libVLC's event thread and the cache's download thread only put events on
the loop's queue. The loop asks the programme what to play, drives playback, writes every play
attempt to the journal before it is published, and sends proof-of-play, status and acks.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions
from pydantic import ValidationError

from player.cache import MediaCache
from player.journal import Journal
from player.playback import Playback, PlaybackEvent
from player.programme import COMPLETION_TOLERANCE, Action, Programme, SpotOutcome, play_status
from player.uploads import upload_screenshot
from signage import __version__
from signage.clock import Clock
from signage.player_config import PlayerConfig
from signage.protocol import Command, Plan, PopAck, SignedEnvelope, Status, canonical_json, player_topic
from signage.signing import SignatureRefused, Verifier, public_key_from_text

log = logging.getLogger("signage.player")

STATUS_EVERY = timedelta(seconds=30)
CACHE_SYNC_EVERY = timedelta(seconds=60)
POP_BATCH = 500
RESEND_AFTER = timedelta(seconds=30)
WATCHDOG_GRACE = timedelta(seconds=3)
SESSION_EXPIRY_SECONDS = 7 * 24 * 3600
MEDIA_KIND = {"video": "video", "image": "image", "audio": "audio"}


def media_kind(mime: str) -> str:
    return mime.split("/", 1)[0] if mime.split("/", 1)[0] in MEDIA_KIND else "video"


@dataclass
class CurrentPlay:
    token: str
    action: Action
    planned_start: datetime
    natural_end: datetime
    started_at: datetime | None = None
    deadline: datetime | None = None


@dataclass
class AgentState:
    plan: Plan | None = None
    refused: str | None = None
    outcomes: dict[str, SpotOutcome] = field(default_factory=dict)
    now_playing: dict[str, Any] | None = None
    clock_offset_ms: int | None = None


class PlayerAgent:
    def __init__(self, config: PlayerConfig, clock: Clock, playback_factory, *, cache_budget_bytes: int = 20 << 30):
        self.config = config
        self.clock = clock
        self.data_dir = Path(config.data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.events: queue.Queue[tuple[str, Any]] = queue.Queue()
        self.journal = Journal(self.data_dir / "journal.db")
        self.cache = MediaCache(self.data_dir / "media", config.server_url, config.player_id, config.password,
                                cache_budget_bytes, clock)
        self.playback: Playback = playback_factory(lambda event: self.events.put(("playback", event)))
        self.verifier = Verifier([public_key_from_text(key) for key in config.public_keys])
        self.state = AgentState()
        self.programme: Programme | None = None
        self.current: CurrentPlay | None = None
        self._stopping = threading.Event()
        self._sync_wanted = threading.Event()
        self._last_status: datetime | None = None
        self._last_sync: datetime | None = None
        self.client = self._make_client()
        self._load_saved_plan()

    # -- MQTT: paho's thread only hands over ------------------------------------------------------------

    def _make_client(self) -> mqtt.Client:
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=self.config.player_id, protocol=mqtt.MQTTv5)
        client.username_pw_set(self.config.username, self.config.password)
        if self.config.broker_tls_ca:
            client.tls_set(ca_certs=self.config.broker_tls_ca)
        client.will_set(player_topic(self.config.player_id, "status"),
                        canonical_json({"player_id": self.config.player_id, "state": "offline"}), qos=1, retain=True)
        client.reconnect_delay_set(min_delay=1, max_delay=60)
        client.max_queued_messages_set(0)
        client.on_connect = self._on_connect
        client.on_message = lambda c, u, message: self.events.put(("mqtt", (message.topic, message.payload)))
        return client

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            log.error("the broker refused this player: %s", reason_code)
            return
        client.subscribe([(player_topic(self.config.player_id, kind), SubscribeOptions(qos=1))
                          for kind in ("plan", "cmd", "ack")])
        self.events.put(("connected", None))

    # -- the plan ----------------------------------------------------------------------------------------

    def _plan_file(self) -> Path:
        return self.data_dir / "plan.json"

    def _load_saved_plan(self) -> None:
        path = self._plan_file()
        if path.exists():
            try:
                self._accept_plan(path.read_bytes(), save=False)
            except (ValueError, ValidationError) as exc:
                log.error("the saved plan is not usable (%s); waiting for the server's", exc)

    def _accept_plan(self, payload: bytes, save: bool = True) -> None:
        """Verify and take a plan; raises ValueError saying why it is refused."""
        envelope = SignedEnvelope.model_validate_json(payload)
        body = self.verifier.verify(envelope)
        plan = Plan.model_validate(body)
        if plan.player_id != self.config.player_id:
            raise ValueError(f"the plan is for {plan.player_id}, not this player")
        if plan.computed_version() != plan.version:
            raise ValueError("the plan's version does not match its body")
        current = self.state.plan
        if current is not None:
            if plan.version == current.version:
                return
            if plan.generated_at <= current.generated_at:
                raise ValueError(f"the plan of {plan.generated_at.isoformat()} is older than the one held")
        if save:
            temporary = self._plan_file().with_suffix(".tmp")
            temporary.write_bytes(payload)
            with temporary.open("rb") as handle:
                os.fsync(handle.fileno())
            os.replace(temporary, self._plan_file())
        self.state.plan = plan
        self.programme = Programme(plan)
        self.state.refused = None
        self._sync_wanted.set()
        log.info("plan %s taken: %d spots", plan.version[:12], len(plan.spots))

    # -- running -----------------------------------------------------------------------------------------

    def run(self) -> None:
        properties = Properties(PacketTypes.CONNECT)
        properties.SessionExpiryInterval = SESSION_EXPIRY_SECONDS
        self.client.connect_async(self.config.broker_host, self.config.broker_port, keepalive=30,
                                  clean_start=False, properties=properties)
        self.client.loop_start()
        syncer = threading.Thread(target=self._cache_loop, name="cache-sync", daemon=True)
        syncer.start()
        try:
            self._loop()
        finally:
            self.client.loop_stop()
            self.playback.close()
            self.journal.close()

    def stop(self) -> None:
        self._stopping.set()
        self.events.put(("stop", None))

    def _loop(self) -> None:
        self._refresh_outcomes()
        self._advance()
        while not self._stopping.is_set():
            timeout = self._seconds_to_next_deadline()
            try:
                kind, value = self.events.get(timeout=timeout)
            except queue.Empty:
                kind, value = "tick", None
            if kind == "stop":
                break
            try:
                self._handle(kind, value)
            except Exception:  # one bad event never stops the screen
                log.exception("handling %s failed", kind)
            self._advance()
            self._send_pop()
            self._send_status_if_due()

    def _seconds_to_next_deadline(self) -> float:
        """How long the loop may wait for an event: until the next spot starts, the current item must be cut
        or its end is overdue, and never more than a few seconds."""
        now = self.clock.now()
        if self.current is None and self._next_spot_due(now):
            return 0.0  # its start passed while the loop was busy since deciding to wait for it
        deadlines = [now + timedelta(seconds=5)]
        upcoming = self.programme.next_spot(now) if self.programme is not None else None
        if upcoming is not None:
            deadlines.append(upcoming.start)
        if self.current is not None:
            if self.current.action.until < self.current.natural_end:
                deadlines.append(self.current.action.until)
            if self.current.deadline is not None:
                deadlines.append(self.current.deadline)
        return max(0.0, (min(deadlines) - now).total_seconds())

    def _handle(self, kind: str, value: Any) -> None:
        if kind == "mqtt":
            topic, payload = value
            what = topic.rsplit("/", 1)[-1]
            if what == "plan":
                try:
                    self._accept_plan(payload)
                except (ValueError, ValidationError, SignatureRefused) as exc:
                    self.state.refused = f"plan refused: {str(exc)[:300]}"
                    log.warning(self.state.refused)
                    self._send_status()
                else:
                    self._send_status()
            elif what == "ack":
                try:
                    ack = PopAck.model_validate_json(payload)
                except ValidationError as exc:
                    log.warning("ignored a malformed ack: %s", exc)
                    return
                self.journal.acknowledge(ack.committed, ack.rejected, batch_id=ack.batch_id)
            elif what == "cmd":
                self._command(payload)
        elif kind == "playback":
            self._playback_event(value)
        elif kind == "connected" or kind == "cache":
            self._send_status()

    def _command(self, payload: bytes) -> None:
        try:
            body = self.verifier.verify(SignedEnvelope.model_validate_json(payload))
            command = Command.model_validate(body)
        except (ValueError, ValidationError, SignatureRefused) as exc:
            self.state.refused = f"command refused: {str(exc)[:300]}"
            log.warning(self.state.refused)
            return
        if command.player_id != self.config.player_id or command.expires_at <= self.clock.now():
            log.info("ignored command %s (another player's, or expired)", command.command_id)
            return
        if command.name == "sync_now":
            self._sync_wanted.set()
        elif command.name == "reload":
            self.state.plan, self.programme = None, None
            self._load_saved_plan()
            self._sync_wanted.set()
        elif command.name == "screenshot":
            path = self.data_dir / "screenshot.png"
            if self.playback.snapshot(path):
                # Sent from a thread of its own: a slow link must not hold up the screen.
                threading.Thread(target=upload_screenshot, daemon=True, name="screenshot", args=(
                    self.config.server_url, self.config.player_id, self.config.password, path)).start()
            else:
                log.info("screenshot asked for, but there is no picture to take (audio, or blank)")
        log.info("command %s done", command.name)

    # -- deciding and playing ------------------------------------------------------------------------------

    def _refresh_outcomes(self) -> None:
        if self.programme is None:
            return
        today = self.programme.local_date(self.clock.now()).isoformat()
        self.state.outcomes = dict(self.journal.spot_log(today))

    def _advance(self) -> None:
        """Start what the programme wants now, unless the right thing is already playing."""
        now = self.clock.now()
        if self.current is not None:
            if self.current.deadline is not None and now >= self.current.deadline:
                self._finish(now, "interrupted", "watchdog: no end from playback")
            elif (self.current.action.kind == "filler" and now >= self.current.action.until
                  and self.current.action.until < self.current.natural_end):
                self._finish(now, "interrupted", "cut at the next spot")
            elif self._next_spot_due(now) and self.current.natural_end - now <= COMPLETION_TOLERANCE:
                # libVLC reports an end some tens of ms late; waiting for it would push back-to-back spots
                # later and later. A play this close to its end is complete (DESIGN's 500 ms).
                self._finish(now, None, None)
            else:
                return
        if self.programme is None:
            return
        for _ in range(100):  # misses are recorded and the programme asked again
            action = self.programme.next_action(now, self.state.outcomes, lambda sha: self.cache.path_for(sha)
                                                is not None)
            if action.kind != "miss":
                break
            self._record_miss(action, now)
        if action.kind in ("blank", "wait"):
            if self.state.now_playing is not None:
                self.playback.blank()
                self.state.now_playing = None
            return
        self._start(action, now)

    def _next_spot_due(self, now: datetime) -> bool:
        upcoming = self.programme.current_spot(now) if self.programme is not None else None
        playing = self.current.action.spot if self.current is not None else None
        return upcoming is not None and upcoming != playing and upcoming.spot_id not in self.state.outcomes

    def _start(self, action: Action, now: datetime) -> None:
        path = self.cache.path_for(action.media)
        entry = self.state.plan.media[action.media]
        token = uuid.uuid4().hex
        planned = action.spot.start if action.kind == "spot" else now
        remaining_ms = action.duration_ms - action.start_offset_ms
        natural_end = now + timedelta(milliseconds=remaining_ms)
        self.current = CurrentPlay(token, action, planned, natural_end, deadline=natural_end + WATCHDOG_GRACE)
        self.playback.play(path, media_kind(entry.mime), token, start_offset_ms=action.start_offset_ms,
                           duration_ms=action.duration_ms)
        self.state.now_playing = {"kind": action.kind, "media": action.media,
                                  "spot_id": action.spot.spot_id if action.spot else None}
        if action.spot is not None:
            log.info("playing %s %s at offset %d ms", action.kind, action.spot.spot_id, action.start_offset_ms)

    def _playback_event(self, event: PlaybackEvent) -> None:
        if self.current is None or event.token != self.current.token:
            return  # a late event of an item already finished
        if event.kind == "started":
            self.current.started_at = event.at
        elif event.kind == "ended":
            self._finish(event.at, None, event.detail)
        elif event.kind == "error":
            self._finish(event.at, "failed", f"playback error: {event.detail}")

    def _finish(self, at: datetime, status: str | None, reason: str | None) -> None:
        play, self.current = self.current, None
        action = play.action
        started = play.started_at or at
        expected = action.duration_ms - action.start_offset_ms
        if status is None:
            status = play_status(started, at, expected)
            if status == "completed" and action.start_offset_ms > 0:
                status, reason = "interrupted", "joined late"  # a partial play does not count
        if action.kind == "filler" and status != "completed" and reason is None:
            reason = "cut"
        record = {
            "play_id": str(uuid.uuid4()), "player_id": self.config.player_id,
            "spot_id": action.spot.spot_id if action.spot else None,
            "campaign_id": action.spot.campaign_id if action.spot else None, "media": action.media,
            "kind": action.kind, "scheduled_start": action.spot.start.isoformat() if action.kind == "spot" else None,
            "started_at": started.isoformat(), "ended_at": at.isoformat(),
            "duration_ms": max(0, int((at - started) / timedelta(milliseconds=1))), "status": status,
            "reason": reason, "plan_version": self.state.plan.version if self.state.plan else None,
        }
        self._append(record, action)
        if status != "completed":
            self.playback.stop()

    def _record_miss(self, action: Action, now: datetime) -> None:
        spot = action.spot
        log.warning("missed spot %s: %s", spot.spot_id, action.reason)
        record = {"play_id": str(uuid.uuid4()), "player_id": self.config.player_id, "spot_id": spot.spot_id,
                  "campaign_id": spot.campaign_id, "media": spot.media, "kind": "spot",
                  "scheduled_start": spot.start.isoformat(), "started_at": now.isoformat(),
                  "ended_at": now.isoformat(), "duration_ms": 0, "status": "missed", "reason": action.reason,
                  "plan_version": self.state.plan.version}
        self._append(record, action)

    def _append(self, record: dict, action: Action) -> None:
        day = None
        if action.spot is not None and self.programme is not None:
            day = self.programme.local_date(action.spot.start).isoformat()
        self.journal.append(record, local_date=day)
        if action.spot is not None:
            spot_id = action.spot.spot_id
            if record["status"] == "completed":
                self.state.outcomes[spot_id] = "made_good" if record["kind"] == "makegood" else "completed"
            elif self.state.outcomes.get(spot_id) not in ("completed", "made_good"):
                self.state.outcomes[spot_id] = record["status"]

    # -- out: proof-of-play and status ----------------------------------------------------------------------

    def _send_pop(self) -> None:
        if not self.client.is_connected():
            return
        for _ in range(4):  # a few batches a turn: a backlog drains without holding up playback
            batch = self.journal.take_batch(self.clock.now(), POP_BATCH, RESEND_AFTER)
            if batch is None:
                return
            batch_id, records = batch
            self.client.publish(player_topic(self.config.player_id, "pop"),
                                canonical_json({"schema": "signage.pop/1", "batch_id": batch_id, "records": records}),
                                qos=1)

    def _send_status_if_due(self) -> None:
        now = self.clock.now()
        if self._last_status is None or now - self._last_status >= STATUS_EVERY:
            self._send_status()

    def _send_status(self) -> None:
        now = self.clock.now()
        self._last_status = now
        if not self.client.is_connected():
            return
        plan = self.state.plan
        ready, missing, size = self.cache.figures(plan.media if plan else {})
        status = Status(player_id=self.config.player_id, state="online", plan_version=plan.version if plan else None,
                        now_playing=self.state.now_playing, cache={"ready": ready, "missing": missing, "bytes": size},
                        journal_backlog=self.journal.backlog(), clock_offset_ms=self.state.clock_offset_ms,
                        software_version=__version__, sent_at=now, refused=self.state.refused)
        self.client.publish(player_topic(self.config.player_id, "status"), canonical_json(status), qos=1, retain=True)

    # -- the cache's own thread -----------------------------------------------------------------------------

    def _cache_loop(self) -> None:
        wait = CACHE_SYNC_EVERY.total_seconds()
        while not self._stopping.is_set():
            self._sync_wanted.wait(timeout=wait)
            self._sync_wanted.clear()
            self._measure_clock_offset()
            plan = self.state.plan
            if plan is None:
                continue
            playing = {self.current.action.media} if self.current is not None else set()
            media = {sha: entry.model_dump() for sha, entry in plan.media.items()}
            try:
                report = self.cache.sync(media, playing)
            except Exception:
                log.exception("the media cache pass failed")
                continue
            for sha, reason in report.failed.items():
                log.warning("media %s not cached: %s", sha[:12], reason)
            # Come back when the first deferred item may be tried again, not a whole period later.
            retries = [at for at in [*report.deferred.values(), *map(self.cache.retry_at, report.failed)]
                       if at is not None]
            now = self.clock.now()
            wait = min([CACHE_SYNC_EVERY.total_seconds()] + [max(0.5, (at - now).total_seconds()) for at in retries])
            self.events.put(("cache", report))

    def _measure_clock_offset(self) -> None:
        """The server's clock against ours, from its HTTP Date header (whole seconds: enough to notice drift)."""
        import urllib.request
        from email.utils import parsedate_to_datetime

        before = self.clock.now()
        try:
            with urllib.request.urlopen(f"{self.config.server_url}/healthz", timeout=10) as response:
                server_time = parsedate_to_datetime(response.headers["Date"])
        except (OSError, ValueError, TypeError, KeyError):
            return
        after = self.clock.now()
        midpoint = before + (after - before) / 2
        self.state.clock_offset_ms = int((server_time - midpoint) / timedelta(milliseconds=1))


def load_config(path: Path) -> PlayerConfig:
    return PlayerConfig.load(path)


__all__ = ["PlayerAgent", "load_config"]
