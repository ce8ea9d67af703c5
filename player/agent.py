"""The player agent: one loop that owns playback, the journal and the plan; everything else posts to it.

paho's network thread, libVLC's event thread and the cache's download thread only put events on
the loop's queue. The loop asks the programme what to play, drives playback, writes every play
attempt to the journal before it is published, and sends proof-of-play, status and acks.

Alerts (issue 8) come as signed commands and go into the alert book (player/alerts.py). An urgent alert takes
the screen over, in or out of operating hours: what plays is cut (recorded `interrupted`), spots whose time
comes meanwhile are recorded `missed`, both naming the alert, and the programme makes them good afterwards as
usual. Its clip loops until expiry; until the clip is cached (or if it cannot play) its text is shown large over
black. Info alerts run as a ticker over the programme (text) or fill the gaps between spots (a clip), inside
operating hours only. Each showing of an alert is acknowledged in proof-of-play: a `started` record when it
first shows, and one with its outcome when it is over.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import threading
import time
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

from player.alerts import TICKER_SEPARATOR, AlertBook
from player.cache import MediaCache
from player.journal import Journal, JournalUnwritable, UnwrittenPlays
from player.playback import Playback, PlaybackEvent
from player.programme import COMPLETION_TOLERANCE, Action, Programme, SpotOutcome, play_status
from player.uploads import upload_screenshot
from signage import __version__
from signage.clock import Clock
from signage.player_config import PlayerConfig
from signage.protocol import (
    AlertOrder,
    AlertStop,
    Command,
    Plan,
    PopAck,
    SignedEnvelope,
    Status,
    canonical_json,
    command_order,
    plan_order,
    player_topic,
)
from signage.signing import SignatureRefused, Verifier, public_key_from_text

log = logging.getLogger("signage.player")

STATUS_EVERY = timedelta(seconds=30)
CACHE_SYNC_EVERY = timedelta(seconds=60)
POP_BATCH = 500
RESEND_AFTER = timedelta(seconds=30)
WATCHDOG_GRACE = timedelta(seconds=3)
CLOCK_SET_BACK = "the clock was set back during the play"
SESSION_EXPIRY_SECONDS = 7 * 24 * 3600
# How long a stopping agent waits for the server's acks of the plays it could not journal (sent straight to it).
STOP_ACK_WAIT = timedelta(seconds=5)
# Status fields sent only while they say something: a server from before them refuses a status carrying them.
JOURNAL_TROUBLE_FIELDS = ("journal_error", "journal_unwritten", "journal_refused")
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
class AlertPlay:
    """An alert's clip on the screen: an urgent alert's, looped until expiry, or an info alert's in a gap."""

    token: str
    order: AlertOrder
    until: datetime  # cut here at the latest: the gap's end (or the alert's expiry)
    deadline: datetime  # its end is overdue: the watchdog cuts it


@dataclass
class Takeover:
    """An urgent alert has the screen; `text_up` while its text is shown over black (no clip)."""

    order: AlertOrder
    text_up: bool = False


@dataclass(frozen=True)
class Showing:
    order: AlertOrder
    since: datetime


@dataclass
class AgentState:
    plan: Plan | None = None
    refused: str | None = None
    outcomes: dict[str, SpotOutcome] = field(default_factory=dict)
    now_playing: dict[str, Any] | None = None
    clock_offset_ms: int | None = None
    journal_error: str | None = None  # the journal's last refused write, until it writes again with nothing held


class PlayerAgent:
    """One screen's agent. `client_factory(agent)` and `cache` replace the MQTT client and the media cache
    (the simulator's network and disk: signage simulate); `durable_journal=False` skips the journal's fsyncs
    (only for a simulation, where no power is cut)."""

    def __init__(self, config: PlayerConfig, clock: Clock, playback_factory, *, cache_budget_bytes: int = 20 << 30,
                 client_factory=None, cache=None, durable_journal: bool = True, play_filler: bool = True,
                 status_every: timedelta = STATUS_EVERY):
        self.config = config
        self.clock = clock
        self.data_dir = Path(config.data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.events: queue.Queue[tuple[str, Any]] = queue.Queue()
        self.journal = Journal(self.data_dir / "journal.db", durable=durable_journal)
        self.unwritten = UnwrittenPlays()  # plays the journal could not write yet (a full disk)
        self.stop_ack_wait = STOP_ACK_WAIT
        self.cache = cache if cache is not None else MediaCache(
            self.data_dir / "media", config.server_url, config.player_id, config.password, cache_budget_bytes, clock)
        self.play_filler = play_filler
        self.status_every = status_every
        self.playback: Playback = playback_factory(lambda event: self.events.put(("playback", event)))
        self.verifier = Verifier([public_key_from_text(key) for key in config.public_keys])
        self.state = AgentState()
        self.programme: Programme | None = None
        self.current: CurrentPlay | None = None
        self.alerts = AlertBook.load(self.data_dir / "alerts.json", clock.now())
        self.alert_play: AlertPlay | None = None
        self.takeover: Takeover | None = None
        self.showing: dict[str, Showing] = {}  # alert_id -> since when it shows on this screen (this run)
        self._unplayable: set[str] = set()  # urgent alerts whose clip failed: their text is shown instead
        self._ticker: tuple[str | None, bool] = (None, False)  # what playback was last told to show over the picture
        # Replaced whole, never changed in place: the cache's thread reads it.
        self._alert_media: dict[str, dict[str, Any]] = self.alerts.media_entries()
        self._stopping = threading.Event()
        self._sync_wanted = threading.Event()
        if self._alert_media:
            self._sync_wanted.set()
        self._status_wanted = False
        self._last_status: datetime | None = None
        self._last_sync: datetime | None = None
        self._last_sequence, self._commands_done = self._load_commands_done()
        self.client = client_factory(self) if client_factory is not None else self._make_client()
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
        order = plan_order(current, plan)
        if order == "same":
            return
        if order != "take":
            raise ValueError(order)
        if save:
            temporary = self._plan_file().with_suffix(".tmp")
            temporary.write_bytes(payload)
            with temporary.open("rb") as handle:
                os.fsync(handle.fileno())
            os.replace(temporary, self._plan_file())
        self.state.plan = plan
        self.state.refused = None
        if current is not None and current.version == plan.version:
            return  # the plan held, re-issued under a later sequence: kept so older plans stay refused
        self.programme = Programme(plan, play_filler=self.play_filler)
        self._sync_wanted.set()
        log.info("plan %s taken: %d spots", plan.version[:12], len(plan.spots))

    # -- running -----------------------------------------------------------------------------------------

    def run(self) -> None:
        self.connect()
        syncer = threading.Thread(target=self._cache_loop, name="cache-sync", daemon=True)
        syncer.start()
        try:
            self._loop()
        finally:
            try:
                self.close()  # while paho still runs: close may hand the broker what the journal could not take
            finally:
                self.client.loop_stop()

    def connect(self) -> None:
        """Start paho's network thread towards the broker (persistent session); it reconnects by itself. `run`
        does this first; a simulator driving `step` on virtual time calls it alone."""
        properties = Properties(PacketTypes.CONNECT)
        properties.SessionExpiryInterval = SESSION_EXPIRY_SECONDS
        self.client.connect_async(self.config.broker_host, self.config.broker_port, keepalive=30,
                                  clean_start=False, properties=properties)
        self.client.loop_start()

    def stop(self) -> None:
        self._stopping.set()
        self.events.put(("stop", None))

    def close(self) -> None:
        """End every alert showing (its ending record says the player stopped), send the broker the plays the
        journal still cannot take, then release playback and the journal. `run` does this when it returns."""
        self._end_all_showings(self.clock.now(), "interrupted", "the player stopped")
        self._write_unwritten()
        if self.unwritten:
            self._send_unwritten_before_stopping()
        self.playback.close()
        self.journal.close()

    def _loop(self) -> None:
        self.step("start")
        while not self._stopping.is_set():
            timeout = self._seconds_to_next_deadline()
            try:
                kind, value = self.events.get(timeout=timeout)
            except queue.Empty:
                kind, value = "tick", None
            if kind == "stop":
                break
            self.step(kind, value)

    def step(self, kind: str = "tick", value: Any = None) -> None:
        """One turn of the loop: handle one event (from the queue; "tick" when the wait ran out, "start" first),
        then play what is due now and send what is due. A simulator on virtual time calls it the same way."""
        try:
            self._handle(kind, value)
        except Exception:  # one bad event never stops the screen
            log.exception("handling %s failed", kind)
        self._advance()
        self._write_unwritten()
        self._send_pop()
        self._send_status_if_due()

    def _seconds_to_next_deadline(self) -> float:
        """How long the loop may wait for an event: until the next deadline, and never more than a few
        seconds (statuses and resends are due on those turns)."""
        now = self.clock.now()
        return max(0.0, (min(self.next_deadline(now), now + timedelta(seconds=5)) - now).total_seconds())

    def next_deadline(self, now: datetime) -> datetime:
        """When the screen next needs a turn with no event: the next spot starts, the current item must be
        cut or its end is overdue, an alert starts or ends, the ticker comes or goes, a status is due."""
        if self.current is None and self._next_spot_due(now):
            return now  # its start passed while the loop was busy since deciding to wait for it
        deadlines = [(self._last_status or now) + self.status_every]
        upcoming = self.programme.next_spot(now) if self.programme is not None else None
        if upcoming is not None:
            deadlines.append(upcoming.start)
        if self.current is not None:
            if self.current.action.until < self.current.natural_end:
                deadlines.append(self.current.action.until)
            if self.current.deadline is not None:
                deadlines.append(self.current.deadline)
        change = self.alerts.next_change(now)
        if change is not None:
            deadlines.append(change)
        if self.alert_play is not None:
            deadlines.append(min(self.alert_play.until, self.alert_play.deadline))
        if self.state.plan is not None and self.alerts.ticker_alerts(now):
            # The ticker comes and goes with operating hours.
            deadlines += [moment for span in self.state.plan.operating_hours for moment in (span.start, span.end)
                          if moment > now]
        return max(now, min(deadlines))

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
                try:
                    self.journal.acknowledge(ack.committed, ack.rejected, batch_id=ack.batch_id)
                except JournalUnwritable as exc:
                    self._journal_refused(exc)  # the records stay, go again later, and the server acks them again
                else:
                    self._journal_wrote()
            elif what == "cmd":
                self._command(payload)
        elif kind == "playback":
            self._playback_event(value)
        elif kind == "connected" or kind == "cache":
            self._send_status()
        elif kind == "start":
            self._refresh_outcomes()

    def _command(self, payload: bytes) -> None:
        try:
            body = self.verifier.verify(SignedEnvelope.model_validate_json(payload))
            command = Command.model_validate(body)
        except (ValueError, ValidationError, SignatureRefused) as exc:
            self._refuse_command(f"command refused: {str(exc)[:300]}")
            return
        now = self.clock.now()
        if command.player_id != self.config.player_id:
            self._refuse_command(f"command {command.command_id} refused: it is for {command.player_id}")
            return
        out_of_order = command_order(self._last_sequence, command)
        if out_of_order is not None:
            self._refuse_command(f"command {command.command_id} refused: {out_of_order}")
            return
        # A sequenced command waited no longer than its MQTT message expiry, which the broker counts; only an
        # unsequenced one (a server from before the sequence) is judged by its expires_at, the server's clock.
        if command.sequence is None and command.expires_at <= now:
            self._refuse_command(f"command {command.command_id} refused: it expired at "
                                 f"{command.expires_at.isoformat()}")
            return
        if command.command_id in self._commands_done:
            self._refuse_command(f"command {command.command_id} refused: it was carried out already (sent again)")
            return
        self._remember_command(command, now)
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
        elif command.name == "alert_start":
            self._alert_start(command)
        elif command.name == "alert_stop":
            self._alert_stop(command)
        log.info("command %s done", command.name)

    def _refuse_command(self, reason: str) -> None:
        self.state.refused = reason[:500]
        log.warning(self.state.refused)
        self._status_wanted = True

    def _commands_file(self) -> Path:
        return self.data_dir / "commands.json"

    def _load_commands_done(self) -> tuple[int | None, dict[str, datetime]]:
        """The highest sequence of the commands carried out, and the ids of the unsequenced ones not yet expired:
        a command sent again is not run again. (The file of a player from before the sequence holds the ids
        alone.)"""
        try:
            saved = json.loads(self._commands_file().read_text(encoding="utf-8"))
            if "done" in saved and isinstance(saved["done"], dict):
                last = saved.get("last_sequence")
                last = int(last) if last is not None else None
                saved = saved["done"]
            else:
                last = None
            done = {str(key): datetime.fromisoformat(value) for key, value in saved.items()}
        except FileNotFoundError:
            return None, {}
        except (ValueError, TypeError, AttributeError) as exc:
            # Starting afresh takes the next sequenced command whatever its number: one replay at worst, never a
            # player locked out of commands.
            log.error("the record of commands carried out is not readable (%s); starting afresh", exc)
            return None, {}
        now = self.clock.now()
        return last, {key: expires for key, expires in done.items() if expires > now}

    def _remember_command(self, command: Command, now: datetime) -> None:
        self._commands_done = {key: expires for key, expires in self._commands_done.items() if expires > now}
        if command.sequence is not None:
            self._last_sequence = command.sequence
        else:
            self._commands_done[command.command_id] = command.expires_at
        temporary = self._commands_file().with_suffix(".tmp")
        temporary.write_text(json.dumps({"last_sequence": self._last_sequence, "done": {
            key: value.isoformat() for key, value in self._commands_done.items()}}), encoding="utf-8")
        with temporary.open("rb") as handle:
            os.fsync(handle.fileno())
        os.replace(temporary, self._commands_file())

    # -- alerts: the orders ----------------------------------------------------------------------------------

    def _alert_start(self, command: Command) -> None:
        try:
            order = AlertOrder.model_validate(command.args)
        except ValidationError as exc:
            self._refuse_command(f"alert_start {command.command_id} refused: {validation_problems(exc)}")
            return
        now = self.clock.now()
        if order.expires_at <= now:
            log.warning("alert %s expired at %s, before it reached this player: not shown", order.alert_id,
                        order.expires_at.isoformat())
            return
        self._status_wanted = True  # held or not, the server learns at once what this player holds
        if not self.alerts.add(order):
            log.info("alert %s is already held (or was stopped): its start sent again is ignored", order.alert_id)
            return
        log.info("alert %s (%s %s) held: %s to %s", order.alert_id, order.severity, order.kind,
                 order.starts_at.isoformat(), order.expires_at.isoformat())
        if order.media is not None:
            self._alert_media = self.alerts.media_entries()
            self._sync_wanted.set()

    def _alert_stop(self, command: Command) -> None:
        try:
            alert_id = AlertStop.model_validate(command.args).alert_id
        except ValidationError as exc:
            self._refuse_command(f"alert_stop {command.command_id} refused: {validation_problems(exc)}")
            return
        now = self.clock.now()
        order = self.alerts.stop(alert_id, now)
        if order is None:
            log.info("alert_stop for %s, which this player does not hold (or already stopped)", alert_id)
            return
        log.info("alert %s stopped by the issuer", alert_id)
        self._alert_media = self.alerts.media_entries()
        self._end_showing(order, now, "completed", "stopped by the issuer")
        self._status_wanted = True

    # -- deciding and playing ------------------------------------------------------------------------------

    def _refresh_outcomes(self) -> None:
        if self.programme is None:
            return
        today = self.programme.local_date(self.clock.now()).isoformat()
        self.state.outcomes = dict(self.journal.spot_log(today))

    def _advance(self) -> None:
        """Show what is due now: an urgent alert's takeover, or else the programme (with an info alert's clip in
        its gaps); then the ticker."""
        now = self.clock.now()
        self._settle_alerts(now)
        urgent = self.alerts.urgent_at(now)
        if urgent is not None:
            self._take_over(urgent, now)
        else:
            if self.takeover is not None:
                self._end_takeover()
            self._follow_programme(now)
        self._update_ticker(now)

    def _follow_programme(self, now: datetime) -> None:
        """Start what the programme wants now, unless the right thing is already playing."""
        if self.alert_play is not None:  # an info alert's clip in a gap
            if now < min(self.alert_play.until, self.alert_play.deadline):
                return
            self._cut_alert_play()
        if self.current is not None:
            if self.current.started_at is not None and now < self.current.started_at - COMPLETION_TOLERANCE:
                # Its end and the watchdog are on the old time line: waiting for them would hold the screen.
                self._finish(now, "interrupted", CLOCK_SET_BACK)
            elif self.current.deadline is not None and now >= self.current.deadline:
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
        if action.kind in ("filler", "wait"):
            clip = self.alerts.gap_media_at(now, lambda order: self._alert_file(order) is not None)
            if clip is not None:
                self._play_alert(clip, now, until=self._gap_end(now))
                return
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
        if self.alert_play is not None and event.token == self.alert_play.token:
            self._alert_play_event(event)
            return
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
        if at < started:
            # The clock was set back while it played: how long it lasted is unknown, and a record cannot end before
            # it starts (the journal would refuse it and the play would be lost). It counts as cut short.
            at, status, reason = started, "interrupted", CLOCK_SET_BACK
        if status is None:
            status = play_status(started, at, expected)
            if status == "completed" and action.start_offset_ms > 0:
                status, reason = "interrupted", "joined late"  # a partial play does not count
        if action.kind == "filler" and status != "completed" and reason is None:
            reason = "cut"
        record = self._play_record(
            spot_id=action.spot.spot_id if action.spot else None,
            campaign_id=action.spot.campaign_id if action.spot else None, media=action.media, kind=action.kind,
            scheduled_start=action.spot.start if action.kind == "spot" else None, started=started, ended=at,
            status=status, reason=reason)
        self._append(record, action)
        if status != "completed":
            self.playback.stop()

    def _record_miss(self, action: Action, now: datetime) -> None:
        spot = action.spot
        log.warning("missed spot %s: %s", spot.spot_id, action.reason)
        record = self._play_record(spot_id=spot.spot_id, campaign_id=spot.campaign_id, media=spot.media, kind="spot",
                                   scheduled_start=spot.start, started=now, ended=now, status="missed",
                                   reason=action.reason)
        self._append(record, action)

    def _play_record(self, *, spot_id: str | None, campaign_id: str | None, media: str, kind: str,
                     scheduled_start: datetime | None, started: datetime, ended: datetime, status: str,
                     reason: str | None) -> dict[str, Any]:
        """A proof-of-play record (DESIGN §3) of this player, under the plan it holds."""
        return {"play_id": str(uuid.uuid4()), "player_id": self.config.player_id, "spot_id": spot_id,
                "campaign_id": campaign_id, "media": media, "kind": kind,
                "scheduled_start": scheduled_start.isoformat() if scheduled_start else None,
                "started_at": started.isoformat(), "ended_at": ended.isoformat(),
                "duration_ms": max(0, int((ended - started) / timedelta(milliseconds=1))), "status": status,
                "reason": reason, "plan_version": self.state.plan.version if self.state.plan else None}

    def _append(self, record: dict, action: Action) -> None:
        day = None
        if action.spot is not None and self.programme is not None:
            day = self.programme.local_date(action.spot.start).isoformat()
        self._journal(record, day)
        if action.spot is not None:
            spot_id = action.spot.spot_id
            if record["status"] == "completed":
                self.state.outcomes[spot_id] = "made_good" if record["kind"] == "makegood" else "completed"
            elif self.state.outcomes.get(spot_id) not in ("completed", "made_good"):
                self.state.outcomes[spot_id] = record["status"]

    # -- alerts on the screen ---------------------------------------------------------------------------------

    def _settle_alerts(self, now: datetime) -> None:
        """End the showings of alerts that expired, and forget the orders past their expiry."""
        for showing in list(self.showing.values()):
            if now >= showing.order.expires_at:
                self._end_showing(showing.order, now, "completed", None)
        if self.alerts.forget_expired(now):
            self._alert_media = self.alerts.media_entries()
            self._status_wanted = True

    def _take_over(self, order: AlertOrder, now: datetime) -> None:
        """An urgent alert has the screen: cut what plays, record the spots it keeps off, show the alert."""
        reason = f"urgent alert {order.alert_id}"
        if self.current is not None:
            log.info("%s cut for %s", self.current.action.kind, reason)
            self._finish(now, "interrupted", reason)
        if self.alert_play is not None and (self.alert_play.order.alert_id != order.alert_id
                                            or now >= self.alert_play.deadline):
            self._cut_alert_play()
        self._miss_spot_under_takeover(now, reason)
        if self.takeover is None or self.takeover.order.alert_id != order.alert_id:
            log.warning("urgent alert %s takes the screen over", order.alert_id)
            self.takeover = Takeover(order)
        self._show(order, now)
        if self._alert_file(order) is not None:
            if self.alert_play is None:
                self._play_alert(order, now, until=order.expires_at)
            self.takeover.text_up = False
        elif not self.takeover.text_up:
            self._cut_alert_play()
            self.playback.blank()
            self.takeover.text_up = True
        self.state.now_playing = {"kind": "alert", "alert_id": order.alert_id, "media": order.content}

    def _miss_spot_under_takeover(self, now: datetime, reason: str) -> None:
        spot = self.programme.current_spot(now) if self.programme is not None else None
        if spot is not None and spot.spot_id not in self.state.outcomes:
            self._record_miss(Action("miss", until=now, spot=spot, reason=reason), now)

    def _end_takeover(self) -> None:
        log.info("urgent alert %s is over: the programme resumes", self.takeover.order.alert_id)
        self._cut_alert_play()
        self.takeover = None

    def _alert_file(self, order: AlertOrder) -> Path | None:
        """The cached clip of a media alert that can play; None for a text alert, or a clip not cached (yet) or
        found unplayable."""
        if order.media is None or order.alert_id in self._unplayable:
            return None
        return self.cache.path_for(order.media)

    def _gap_end(self, now: datetime) -> datetime:
        """Where the gap the programme fills at `now` ends: the next spot, the end of operating hours or of the
        plan."""
        plan = self.state.plan
        ends = [plan.valid_until, *(span.end for span in plan.operating_hours if span.start <= now < span.end)]
        upcoming = self.programme.next_spot(now)
        if upcoming is not None:
            ends.append(upcoming.start)
        return min(ends)

    def _play_alert(self, order: AlertOrder, now: datetime, until: datetime) -> None:
        entry = order.media_entry
        token = uuid.uuid4().hex
        self.alert_play = AlertPlay(token, order, until,
                                    now + timedelta(milliseconds=entry.duration_ms) + WATCHDOG_GRACE)
        self._show(order, now)
        self.playback.play(self._alert_file(order), media_kind(entry.mime), token, duration_ms=entry.duration_ms)
        self.state.now_playing = {"kind": "alert", "alert_id": order.alert_id, "media": order.content}

    def _cut_alert_play(self) -> None:
        if self.alert_play is not None:
            self.alert_play = None
            self.playback.stop()

    def _alert_play_event(self, event: PlaybackEvent) -> None:
        if event.kind == "started":
            return
        order, self.alert_play = self.alert_play.order, None  # an end: the next turn plays it again if still due
        if event.kind != "error":
            return
        log.warning("alert %s's clip cannot play: %s", order.alert_id, event.detail)
        if order.severity == "urgent":
            self._unplayable.add(order.alert_id)  # its text takes the screen instead
            return
        # An info alert has no other way to show: it is over on this screen.
        self.alerts.stop(order.alert_id, event.at)
        self._alert_media = self.alerts.media_entries()
        self._end_showing(order, event.at, "failed", f"playback error: {event.detail}")
        self._status_wanted = True

    def _update_ticker(self, now: datetime) -> None:
        """Tell playback what to show over the picture, when that changed: an urgent alert's text over black,
        or the info alerts' ticker while the programme is in its operating hours."""
        wanted: tuple[str | None, bool] = (None, False)
        if self.takeover is not None:
            if self.takeover.text_up:
                wanted = (self.takeover.order.text, True)
        elif self._screen_open(now):
            orders = self.alerts.ticker_alerts(now)
            for order in orders:
                self._show(order, now)
            if orders:
                wanted = (TICKER_SEPARATOR.join(order.text for order in orders), False)
        if wanted != self._ticker:
            self.playback.show_ticker(wanted[0], prominent=wanted[1])
            self._ticker = wanted

    def _screen_open(self, now: datetime) -> bool:
        plan = self.state.plan
        return (plan is not None and self.programme is not None and plan.valid_from <= now < plan.valid_until
                and self.programme.operating_at(now))

    def _show(self, order: AlertOrder, now: datetime) -> None:
        """Note that an alert shows on this screen: a `started` record the first time (this run)."""
        if order.alert_id in self.showing:
            return
        self.showing[order.alert_id] = Showing(order, now)
        self._append_alert(order, "started", now, now, None)
        self._status_wanted = True
        log.info("alert %s shows", order.alert_id)

    def _end_showing(self, order: AlertOrder, now: datetime, status: str, reason: str | None) -> None:
        """An alert is over on this screen: its clip is cut, and its showing (if it showed) gets its ending record."""
        if self.alert_play is not None and self.alert_play.order.alert_id == order.alert_id:
            self._cut_alert_play()
        showing = self.showing.pop(order.alert_id, None)
        if showing is not None:
            self._append_alert(order, status, showing.since, now, reason)
            log.info("alert %s over: %s%s", order.alert_id, status, f" ({reason})" if reason else "")
        self._status_wanted = True

    def _end_all_showings(self, now: datetime, status: str, reason: str) -> None:
        for showing in list(self.showing.values()):
            self._end_showing(showing.order, now, status, reason)

    def _append_alert(self, order: AlertOrder, status: str, started: datetime, ended: datetime,
                      reason: str | None) -> None:
        record = self._play_record(spot_id=order.alert_id, campaign_id=None, media=order.content, kind="alert",
                                   scheduled_start=order.starts_at, started=started, ended=ended, status=status,
                                   reason=reason)
        self._journal(record)  # no local date: like filler, an alert is no campaign's spot

    # -- the journal, and what it cannot write -----------------------------------------------------------------

    def _journal(self, record: dict[str, Any], local_date: str | None = None) -> None:
        """Journal a play attempt behind those still waiting in memory; what the journal cannot write now waits
        there too, and is tried again every turn."""
        self.unwritten.hold(record, local_date)
        self._write_unwritten()

    def _write_unwritten(self) -> None:
        if not self.unwritten:
            return
        try:
            self.unwritten.write_to(self.journal)
        except JournalUnwritable as exc:
            self._journal_refused(exc)
        else:
            self._journal_wrote()

    def _journal_refused(self, exc: JournalUnwritable) -> None:
        if self.state.journal_error is None:
            log.error("%s; plays wait in memory (%d now) and are written when it can", exc, len(self.unwritten))
            self._status_wanted = True
        self.state.journal_error = str(exc)[:500]

    def _journal_wrote(self) -> None:
        if self.state.journal_error is not None and not self.unwritten:
            log.warning("the journal writes again; every play is on disk")
            self.state.journal_error = None
            self._status_wanted = True

    def _send_unwritten_before_stopping(self) -> None:
        """The player stops while its journal still cannot write: the plays held in memory would die with the
        process, so they go to the broker as they are, and the server's acks are awaited for a moment. What is
        not acknowledged by then is lost, and the log names it."""
        if self.client.is_connected():
            records = self.unwritten.records()
            batches = {}
            for start in range(0, len(records), POP_BATCH):
                batch_id = str(uuid.uuid4())
                batches[batch_id] = records[start:start + POP_BATCH]
                self._publish_pop(batch_id, batches[batch_id])
            log.warning("stopping with the journal unwritable: %d plays sent to the broker directly", len(records))
            self._await_acks(batches, self.stop_ack_wait)
        if self.unwritten:
            log.error("stopping with %d plays neither journaled nor acknowledged, lost: %s", len(self.unwritten),
                      " ".join(record["play_id"] for record in self.unwritten.records()))

    def _await_acks(self, batches: dict[str, list[dict[str, Any]]], wait: timedelta) -> None:
        """Take the server's acks of `batches` (sent from memory) off the queue until all came or `wait` passed in
        real time; the plays they answer for leave memory. Nothing else is handled: the player is stopping."""
        deadline = time.monotonic() + wait.total_seconds()
        while batches and (left := deadline - time.monotonic()) > 0:
            try:
                kind, value = self.events.get(timeout=left)
            except queue.Empty:
                return
            if kind != "mqtt" or value[0] != player_topic(self.config.player_id, "ack"):
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

    # -- out: proof-of-play and status ----------------------------------------------------------------------

    def _send_pop(self) -> None:
        if not self.client.is_connected() or self.unwritten:
            return  # plays waiting in memory: the journal cannot write, nor mark a batch sent
        for _ in range(4):  # a few batches a turn: a backlog drains without holding up playback
            try:
                batch = self.journal.take_batch(self.clock.now(), POP_BATCH, RESEND_AFTER)
            except JournalUnwritable as exc:
                self._journal_refused(exc)
                return
            if batch is None:
                return
            self._journal_wrote()
            self._publish_pop(*batch)

    def _publish_pop(self, batch_id: str, records: list[dict[str, Any]]) -> None:
        self.client.publish(player_topic(self.config.player_id, "pop"),
                            canonical_json({"schema": "signage.pop/1", "batch_id": batch_id, "records": records}),
                            qos=1)

    def _send_status_if_due(self) -> None:
        now = self.clock.now()
        if self._status_wanted or self._last_status is None or now - self._last_status >= self.status_every:
            self._send_status()

    def _send_status(self) -> None:
        self._last_status = self.clock.now()
        self._status_wanted = False
        if not self.client.is_connected():
            return
        body = self.status().model_dump(mode="json")
        for name in JOURNAL_TROUBLE_FIELDS:
            if body[name] is None:
                del body[name]
        self.client.publish(player_topic(self.config.player_id, "status"), canonical_json(body), qos=1, retain=True)

    def status(self) -> Status:
        """This player's status as it would be sent now."""
        now = self.clock.now()
        plan = self.state.plan
        ready, missing, size = self.cache.figures({**(plan.media if plan else {}), **self._alert_media})
        return Status(player_id=self.config.player_id, state="online", plan_version=plan.version if plan else None,
                      now_playing=self.state.now_playing, cache={"ready": ready, "missing": missing, "bytes": size},
                      journal_backlog=self.journal.backlog() + len(self.unwritten),
                      journal_error=self.state.journal_error, journal_unwritten=len(self.unwritten) or None,
                      journal_refused=self.unwritten.refused or None, clock_offset_ms=self.state.clock_offset_ms,
                      software_version=__version__, sent_at=now, refused=self.state.refused,
                      alerts=self.alerts.held_ids(now)[:200])

    # -- the cache's own thread -----------------------------------------------------------------------------

    def _cache_loop(self) -> None:
        wait = CACHE_SYNC_EVERY.total_seconds()
        while not self._stopping.is_set():
            self._sync_wanted.wait(timeout=wait)
            self._sync_wanted.clear()
            self._measure_clock_offset()
            wait = self.cache_pass(wait)

    def take_cache_wish(self) -> bool:
        """Whether a cache pass is wanted (a new plan or alert, a sync_now command), clearing the wish: for a
        simulator, which makes the passes itself instead of the cache thread."""
        wanted = self._sync_wanted.is_set()
        self._sync_wanted.clear()
        return wanted

    def cache_pass(self, wait: float = CACHE_SYNC_EVERY.total_seconds()) -> float:
        """One pass of the cache over the plan's media and the held alerts' clips (fetched alike, and kept while
        held); posts its report to the loop. Returns how long to wait before the next pass (`wait` when it
        could not run)."""
        plan, alert_media = self.state.plan, self._alert_media
        if plan is None and not alert_media:
            return wait
        current, alert_play = self.current, self.alert_play
        playing = {current.action.media} if current is not None else set()
        if alert_play is not None and alert_play.order.media is not None:
            playing.add(alert_play.order.media)
        media = {sha: entry.model_dump() for sha, entry in plan.media.items()} if plan is not None else {}
        media.update(alert_media)
        try:
            report = self.cache.sync(media, playing)
        except Exception:
            log.exception("the media cache pass failed")
            return wait
        for sha, reason in report.failed.items():
            log.warning("media %s not cached: %s", sha[:12], reason)
        # Come back when the first deferred item may be tried again, not a whole period later.
        retries = [at for at in [*report.deferred.values(), *map(self.cache.retry_at, report.failed)]
                   if at is not None]
        now = self.clock.now()
        self.events.put(("cache", report))
        return min([CACHE_SYNC_EVERY.total_seconds()] + [max(0.5, (at - now).total_seconds()) for at in retries])

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


def validation_problems(exc: ValidationError) -> str:
    """Each problem pydantic found, as 'field: message', on one line."""
    return "; ".join(f"{'.'.join(str(part) for part in error['loc']) or 'args'}: {error['msg']}"
                     for error in exc.errors())


def load_config(path: Path) -> PlayerConfig:
    return PlayerConfig.load(path)


__all__ = ["PlayerAgent", "load_config"]
