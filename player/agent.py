"""The player agent: one loop that owns playback, the journal and the plan; everything else posts to it.

paho's network thread (player/link.py), libVLC's event thread and the cache's thread (player/media_sync.py) only
put events on the loop's queue. Each turn the loop handles one event, asks what plays now — the alert layer first
(player/takeover.py: an urgent alert's takeover, an info alert's clip in a gap, the ticker), the programme under it
(player/programme.py, played by player/programme_run.py) — and carries that out on playback; every play attempt
is journaled before it is sent (player/proof.py); statuses go out when due (player/status.py). Which commands it
carries out, and the outcomes its statuses report, are player/commands.py's; the plan it holds is verified and kept
by player/plans.py.
"""

from __future__ import annotations

import logging
import queue
import threading
import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from player import link, takeover
from player.alerts import AlertBook
from player.cache import MediaCache
from player.commands import (
    NO_PICTURE,
    CommandGate,
    CommandOutcomes,
    CommandRefused,
    alert_order,
    alert_stop_id,
    send_screenshot,
)
from player.journal import Journal
from player.media_sync import CACHE_SYNC_EVERY, MediaSync
from player.plans import save_plan, saved_plan, verified_plan
from player.playback import Playback, PlaybackEvent
from player.programme import Programme
from player.programme_run import ProgrammeRun, media_kind
from player.proof import ProofOfPlay
from player.status import STATUS_EVERY, StatusTimer, status_message
from signage import __version__
from signage.clock import Clock
from signage.player_config import PlayerConfig
from signage.protocol import AlertOrder, Command, Plan, Status, plan_order, player_topic
from signage.signing import SignatureRefused, Verifier, public_key_from_text

log = logging.getLogger("signage.player")


@dataclass
class AgentState:
    plan: Plan | None = None
    refused: str | None = None
    now_playing: dict[str, Any] | None = None


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
        self.cache = cache if cache is not None else MediaCache(
            self.data_dir / "media", config.server_url, config.player_id, config.password, cache_budget_bytes, clock)
        self.media_sync = MediaSync(self.cache, clock, config.server_url, self._post)
        self.play_filler = play_filler
        self.status_timer = StatusTimer(status_every)
        self.playback_factory = playback_factory
        self.playback: Playback = playback_factory(lambda event: self._post("playback", event))
        self.verifier = Verifier([public_key_from_text(key) for key in config.public_keys])
        self.commands = CommandGate(self.data_dir, self.verifier, config.player_id, clock.now())
        self.outcomes = CommandOutcomes()
        self.state = AgentState()
        self.alerts = AlertBook.load(self.data_dir / "alerts.json", clock.now())
        self.stage = takeover.Stage()  # the alert layer on the screen
        self._clip_token: str | None = None  # playback's token of the alert clip on the screen
        # Replaced whole, never changed in place: the cache's thread reads it.
        self._alert_media: dict[str, dict[str, Any]] = self.alerts.media_entries()
        self._stopping = threading.Event()
        if self._alert_media:
            self.media_sync.wanted.set()
        self.client = client_factory(self) if client_factory is not None else link.make_client(config, self._post)
        self.proof = ProofOfPlay(Journal(self.data_dir / "journal.db", durable=durable_journal), config.player_id,
                                 self.client, self._want_status)
        self.journal = self.proof.journal
        self.programme_run = ProgrammeRun(self.playback, self.cache, self.proof, self._now_playing)
        self._load_saved_plan()

    def _post(self, kind: str, value: Any) -> None:
        self.events.put((kind, value))

    def _want_status(self) -> None:
        self.status_timer.wanted = True

    def _now_playing(self, what: dict[str, Any] | None) -> None:
        self.state.now_playing = what

    # -- the plan ----------------------------------------------------------------------------------------

    def _load_saved_plan(self) -> None:
        payload = saved_plan(self.data_dir)
        if payload is not None:
            try:
                self._accept_plan(payload, save=False)
            except (ValueError, ValidationError) as exc:
                log.error("the saved plan is not usable (%s); waiting for the server's", exc)

    def _accept_plan(self, payload: bytes, save: bool = True) -> None:
        """Verify and take a plan; raises ValueError saying why it is refused."""
        plan = verified_plan(payload, self.verifier, self.config.player_id)
        current = self.state.plan
        order = plan_order(current, plan)
        if order == "same":
            return
        if order != "take":
            raise ValueError(order)
        if save:
            save_plan(self.data_dir, payload)
        self.state.plan = plan
        self.state.refused = None
        if current is not None and current.version == plan.version:
            return  # the plan held, re-issued under a later sequence: kept so older plans stay refused
        self.programme_run.programme = Programme(plan, play_filler=self.play_filler)
        self.media_sync.wanted.set()
        log.info("plan %s taken: %d spots", plan.version[:12], len(plan.spots))

    # -- running -----------------------------------------------------------------------------------------

    def run(self) -> None:
        self.connect()
        syncer = threading.Thread(target=self.media_sync.run, args=(self._stopping, self.cache_pass),
                                  name="cache-sync", daemon=True)
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
        link.connect(self.client, self.config)

    def stop(self) -> None:
        self._stopping.set()
        self.events.put(("stop", None))

    def close(self) -> None:
        """End every alert showing (its ending record says the player stopped), send the broker the plays the
        journal still cannot take, then release playback and the journal. `run` does this when it returns."""
        self._carry_out(takeover.end_showings(self.stage, [showing.order for showing in self.stage.showing],
                                              self.clock.now(), "interrupted", "the player stopped"))
        self.proof.write_unwritten()
        if self.proof.unwritten:
            self.proof.hand_over_before_stopping(self.events)
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
        self.proof.write_unwritten()
        self.proof.send(self.clock.now())
        if self.status_timer.due(self.clock.now()):
            self._send_status()

    def _seconds_to_next_deadline(self) -> float:
        """How long the loop may wait for an event: until the next deadline, and never more than a few
        seconds (statuses and resends are due on those turns)."""
        now = self.clock.now()
        return max(0.0, (min(self.next_deadline(now), now + timedelta(seconds=5)) - now).total_seconds())

    def next_deadline(self, now: datetime) -> datetime:
        """When the screen next needs a turn with no event: the next spot starts, the current item must be
        cut or its end is overdue, an alert starts or ends, the ticker comes or goes, a status is due."""
        run = self.programme_run
        if run.current is None and run.next_spot_due(now):
            return now  # its start passed while the loop was busy since deciding to wait for it
        deadlines = [self.status_timer.next_due(now), *run.wake_moments(now),
                     *takeover.wake_moments(self.stage, now, self.alerts.held(), run.programme)]
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
            elif what == "ack":
                self.proof.take_ack(payload)
            elif what == "cmd":
                self._take_command(payload)
        elif kind == "screenshot":
            self._screenshot_sent(*value)
        elif kind == "playback":
            if self._clip_token is not None and value.token == self._clip_token:
                self._clip_event(value)
            else:
                self.programme_run.playback_event(value)
        elif kind == "connected" or kind == "cache":
            self._send_status()
        elif kind == "start":
            self.programme_run.refresh_outcomes(self.clock.now())

    # -- commands ------------------------------------------------------------------------------------------

    def _take_command(self, payload: bytes) -> None:
        """Admit and carry out a command, noting its outcome for the statuses (a screenshot's when it is sent)."""
        now = self.clock.now()
        try:
            command = self.commands.admit(payload, now)
            if self._command(command):
                self.outcomes.settle(command, None, now)
        except CommandRefused as exc:
            self.state.refused = str(exc)[:500]
            log.warning(self.state.refused)
            if exc.command is not None:
                self.outcomes.refused(exc.command, str(exc), now)
        self._want_status()

    def _command(self, command: Command) -> bool:
        """Carry out a command; False when it finishes later (a screenshot, once sent)."""
        if command.name in ("sync_now", "reload"):
            if command.name == "reload":
                self.state.plan, self.programme_run.programme = None, None
                self._load_saved_plan()
            self.media_sync.wanted.set()
        elif command.name == "screenshot":
            path = self.data_dir / "screenshot.png"
            if not self.playback.snapshot(path):
                raise CommandRefused(f"screenshot {command.command_id} refused: {NO_PICTURE}", command)
            send_screenshot(self.config, path, command, lambda sent, why: self._post("screenshot", (sent, why)))
            return False
        elif command.name == "restart":
            self._restart_playback(command)
        elif command.name == "alert_start":
            self._hold_alert(alert_order(command))
        elif command.name == "alert_stop":
            self._stop_alert(alert_stop_id(command))
        return True

    def _screenshot_sent(self, command: Command, why: str | None) -> None:
        self.outcomes.settle(command, why, self.clock.now())
        self._want_status()

    def _restart_playback(self, command: Command) -> None:
        """A new libVLC media player in place of the one that plays: what was playing is recorded as cut, and the
        next turn starts what is due on the new one (joined where it is)."""
        if self.stage.urgent is not None or self.stage.clip is not None:
            raise CommandRefused(f"restart {command.command_id} refused: an alert has the screen; restart playback "
                                 "once it is over", command)
        if self.programme_run.current is not None:
            self.programme_run.finish(self.clock.now(), "interrupted", "playback restarted by staff")
        self.playback.close()
        self.playback = self.playback_factory(lambda event: self._post("playback", event))
        self.programme_run.playback = self.playback
        self.playback.blank()  # until the next turn plays what is due
        self.state.now_playing = None
        self.stage = replace(self.stage, ticker=takeover.Ticker())  # the new player shows no ticker yet
        log.warning("playback restarted (command %s)", command.command_id)

    def _hold_alert(self, order: AlertOrder) -> None:
        self._want_status()  # held or not, the server learns at once what this player holds
        if self.alerts.hold(order, self.clock.now()) and order.media is not None:
            self._alert_media = self.alerts.media_entries()
            self.media_sync.wanted.set()

    def _stop_alert(self, alert_id: str) -> None:
        now = self.clock.now()
        order = self.alerts.stop(alert_id, now)
        if order is None:
            log.info("alert_stop for %s, which this player does not hold (or already stopped)", alert_id)
            return
        log.info("alert %s stopped by the issuer", alert_id)
        self._alert_media = self.alerts.media_entries()
        self._carry_out(takeover.end_showings(self.stage, [order], now, "completed", "stopped by the issuer"))
        self._want_status()

    # -- deciding and playing ------------------------------------------------------------------------------

    def _advance(self) -> None:
        """Show what is due now: the alert layer's turn (a takeover, or an info clip playing on in a gap), the
        programme's when it has the screen, then what shows over the picture."""
        now, run, held = self.clock.now(), self.programme_run, self.alerts.held()
        turn = takeover.take_turn(self.stage, now, held, run.programme, run.outcomes,
                                  run.current.action if run.current is not None else None, run.cached)
        was, now_urgent = self.stage.urgent, turn.stage.urgent
        if now_urgent is not None and (was is None or was.alert_id != now_urgent.alert_id):
            log.warning("urgent alert %s takes the screen over", now_urgent.alert_id)
        elif now_urgent is None and was is not None:
            log.info("urgent alert %s is over: the programme resumes", was.alert_id)
        self._carry_out(turn, now)
        if self.alerts.forget_expired(now):
            self._alert_media = self.alerts.media_entries()
            self._want_status()
        if self.stage.urgent is not None:
            self.state.now_playing = takeover.alert_now_playing(self.stage.urgent)
        elif turn.programme:
            run.follow(now, lambda: self._fill_gap(now, held), self._blank)
        self._carry_out(takeover.ticker_turn(self.stage, now, held, run.programme))

    def _fill_gap(self, now: datetime, held: tuple[takeover.HeldAlert, ...]) -> bool:
        gap = takeover.fill_gap(self.stage, now, held, self.programme_run.programme, self.programme_run.cached)
        if gap is not None:
            self._carry_out(gap, now)
        return gap is not None

    def _blank(self) -> None:
        if self.state.now_playing is not None:
            self.playback.blank()
            self.state.now_playing = None

    def _carry_out(self, turn: takeover.Turn, now: datetime | None = None) -> None:
        """Do what the alert layer's turn says, in order."""
        self.stage = turn.stage
        for effect in turn.effects:
            if isinstance(effect, takeover.Started):
                self._journal_alert(effect.order, "started", effect.at, effect.at, None)
                log.info("alert %s shows", effect.order.alert_id)
            elif isinstance(effect, takeover.Ended):
                self._journal_alert(effect.order, effect.status, effect.since, effect.at, effect.reason)
                log.info("alert %s over: %s%s", effect.order.alert_id, effect.status,
                         f" ({effect.reason})" if effect.reason else "")
            elif isinstance(effect, takeover.CutItem):
                log.info("%s cut for %s", self.programme_run.current.action.kind, effect.reason)
                self.programme_run.finish(now, "interrupted", effect.reason)
            elif isinstance(effect, takeover.MissSpot):
                self.programme_run.record_miss(effect.spot, effect.reason, now)
            elif isinstance(effect, takeover.PlayClip):
                self._play_clip(effect.clip)
            elif isinstance(effect, takeover.StopClip):
                self._clip_token = None
                self.playback.stop()
            elif isinstance(effect, takeover.Blank):
                self.playback.blank()
            elif isinstance(effect, takeover.ShowTicker):
                self.playback.show_ticker(effect.ticker.text, prominent=effect.ticker.prominent)
            elif isinstance(effect, takeover.StopAlert):
                self.alerts.stop(effect.alert_id, self.clock.now())
                self._alert_media = self.alerts.media_entries()
            if isinstance(effect, (takeover.Started, takeover.Ended, takeover.StopAlert)):
                self._want_status()

    def _play_clip(self, clip: takeover.AlertClip) -> None:
        entry = clip.order.media_entry
        self._clip_token = uuid.uuid4().hex
        self.playback.play(self.cache.path_for(clip.order.media), media_kind(entry.mime), self._clip_token,
                           duration_ms=entry.duration_ms)
        self.state.now_playing = takeover.alert_now_playing(clip.order)

    def _clip_event(self, event: PlaybackEvent) -> None:
        if event.kind == "started":
            return
        if event.kind == "error":
            log.warning("alert %s's clip cannot play: %s", self.stage.clip.order.alert_id, event.detail)
        else:
            order = self.stage.clip.order
            log.info("alert %s's clip %s played to its end", order.alert_id, order.media)
        self._clip_token = None
        self._carry_out(takeover.clip_over(self.stage, event.at, event.detail if event.kind == "error" else None))

    def _journal_alert(self, order: AlertOrder, status: str, started: datetime, ended: datetime,
                       reason: str | None) -> None:
        record = self.programme_run.record(spot_id=order.alert_id, campaign_id=None, media=order.content,
                                           kind="alert", scheduled_start=order.starts_at, started=started,
                                           ended=ended, status=status, reason=reason)
        self.proof.keep(record)  # no local date: like filler, an alert is no campaign's spot

    # -- out: status -------------------------------------------------------------------------------------------

    def _send_status(self) -> None:
        self.status_timer.sent(self.clock.now())
        if self.client.is_connected():
            self.client.publish(player_topic(self.config.player_id, "status"), status_message(self.status()), qos=1,
                                retain=True)

    def status(self) -> Status:
        """This player's status as it would be sent now."""
        now = self.clock.now()
        plan = self.state.plan
        ready, missing, size = self.cache.figures({**(plan.media if plan else {}), **self._alert_media})
        unwritten = self.proof.unwritten
        return Status(player_id=self.config.player_id, state="online", plan_version=plan.version if plan else None,
                      now_playing=self.state.now_playing, cache={"ready": ready, "missing": missing, "bytes": size},
                      journal_backlog=self.proof.backlog(), journal_error=self.proof.error,
                      journal_unwritten=len(unwritten) or None, journal_refused=unwritten.refused or None,
                      clock_offset_ms=self.media_sync.clock_offset_ms, software_version=__version__, sent_at=now,
                      refused=self.state.refused, alerts=self.alerts.held_ids(now)[:200],
                      commands=self.outcomes.current(now) or None)

    # -- the cache's passes -----------------------------------------------------------------------------------

    def cache_pass(self, wait: float = CACHE_SYNC_EVERY.total_seconds()) -> float:
        """One pass of the cache over the plan's media and the held alerts' clips (fetched alike, and kept while
        held); posts its report to the loop. Returns how long to wait before the next pass (`wait` when it
        could not run)."""
        plan, alert_media = self.state.plan, self._alert_media
        if plan is None and not alert_media:
            return wait
        current, clip = self.programme_run.current, self.stage.clip
        playing = {current.action.media} if current is not None else set()
        if clip is not None and clip.order.media is not None:
            playing.add(clip.order.media)
        media = {sha: entry.model_dump() for sha, entry in plan.media.items()} if plan is not None else {}
        media.update(alert_media)
        return self.media_sync.sync(media, playing, wait)


__all__ = ["PlayerAgent"]
