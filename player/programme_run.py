"""The programme run on one screen: what player/programme.py asks for, started on playback at its time, cut when it
must be, finished or missed, and each attempt recorded with its outcome (through player/proof.py).

The outcome of each spot today (`outcomes`) is what the programme decides make-goods from; it is read back from the
journal at start. An item is finished when playback reports its end, when it must be cut (the next spot is due, the
clock was set back under it, the watchdog found its end overdue), or when an urgent alert takes the screen.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from player.playback import Playback, PlaybackEvent
from player.programme import COMPLETION_TOLERANCE, WATCHDOG_GRACE, Action, Programme, SpotOutcome, play_status
from player.proof import ProofOfPlay
from signage.protocol import Spot

log = logging.getLogger("signage.player")

CLOCK_SET_BACK = "the clock was set back during the play"
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


class ProgrammeRun:
    """The programme's items on this screen. `cached(sha)` says whether a file is ready; `now_playing` is what the
    status says plays (the agent's, which an alert sets too)."""

    def __init__(self, playback: Playback, cache, proof: ProofOfPlay, now_playing: Callable[[dict | None], None]):
        self.playback = playback
        self.cache = cache
        self.proof = proof
        self.set_now_playing = now_playing
        self.programme: Programme | None = None
        self.current: CurrentPlay | None = None
        self.outcomes: dict[str, SpotOutcome] = {}

    def cached(self, sha: str) -> bool:
        return self.cache.path_for(sha) is not None

    def refresh_outcomes(self, now: datetime) -> None:
        """Today's spot outcomes as the journal has them (at start)."""
        if self.programme is not None:
            self.outcomes = dict(self.proof.journal.spot_log(self.programme.local_date(now).isoformat()))

    def follow(self, now: datetime, fill_gap: Callable[[], bool], blank: Callable[[], None]) -> None:
        """Start what the programme wants now, unless the right thing is already playing. In a gap (filler, or
        nothing to play) `fill_gap()` may take the screen (an alert's clip; True when it did); `blank()` darkens the
        screen where the programme shows nothing."""
        if self.current is not None:
            if self.current.started_at is not None and now < self.current.started_at - COMPLETION_TOLERANCE:
                # Its end and the watchdog are on the old time line: waiting for them would hold the screen.
                self.finish(now, "interrupted", CLOCK_SET_BACK)
            elif self.current.deadline is not None and now >= self.current.deadline:
                self.finish(now, "interrupted", "watchdog: no end from playback")
            elif (self.current.action.kind == "filler" and now >= self.current.action.until
                  and self.current.action.until < self.current.natural_end):
                self.finish(now, "interrupted", "cut at the next spot")
            elif self.next_spot_due(now) and self.current.natural_end - now <= COMPLETION_TOLERANCE:
                # libVLC reports an end some tens of ms late; waiting for it would push back-to-back spots
                # later and later. A play this close to its end is complete (the 500 ms of docs/design.md §3).
                self.finish(now, None, None)
            else:
                return
        if self.programme is None:
            return
        for _ in range(100):  # misses are recorded and the programme asked again
            action = self.programme.next_action(now, self.outcomes, self.cached)
            if action.kind != "miss":
                break
            self.record_miss(action.spot, action.reason, now)
        if action.kind in ("filler", "wait") and fill_gap():
            return
        if action.kind in ("blank", "wait"):
            blank()
            return
        self._start(action, now)

    def next_spot_due(self, now: datetime) -> bool:
        """Whether a spot's time has come that is neither playing nor recorded."""
        upcoming = self.programme.current_spot(now) if self.programme is not None else None
        playing = self.current.action.spot if self.current is not None else None
        return upcoming is not None and upcoming != playing and upcoming.spot_id not in self.outcomes

    def wake_moments(self, now: datetime) -> list[datetime]:
        """When the programme next needs a turn: the next spot starts, the item must be cut or its end is overdue."""
        moments = []
        upcoming = self.programme.next_spot(now) if self.programme is not None else None
        if upcoming is not None:
            moments.append(upcoming.start)
        if self.current is not None:
            if self.current.action.until < self.current.natural_end:
                moments.append(self.current.action.until)
            if self.current.deadline is not None:
                moments.append(self.current.deadline)
        return moments

    def _start(self, action: Action, now: datetime) -> None:
        entry = self.programme.plan.media[action.media]
        token = uuid.uuid4().hex
        planned = action.spot.start if action.kind == "spot" else now
        natural_end = now + timedelta(milliseconds=action.duration_ms - action.start_offset_ms)
        self.current = CurrentPlay(token, action, planned, natural_end, deadline=natural_end + WATCHDOG_GRACE)
        self.playback.play(self.cache.path_for(action.media), media_kind(entry.mime), token,
                           start_offset_ms=action.start_offset_ms, duration_ms=action.duration_ms)
        self.set_now_playing({"kind": action.kind, "media": action.media,
                              "spot_id": action.spot.spot_id if action.spot else None})
        if action.spot is not None:
            log.info("playing %s %s at offset %d ms", action.kind, action.spot.spot_id, action.start_offset_ms)

    def playback_event(self, event: PlaybackEvent) -> None:
        if self.current is None or event.token != self.current.token:
            return  # a late event of an item already finished
        if event.kind == "started":
            self.current.started_at = event.at
        elif event.kind == "ended":
            self.finish(event.at, None, event.detail)
        elif event.kind == "error":
            self.finish(event.at, "failed", f"playback error: {event.detail}")

    def finish(self, at: datetime, status: str | None, reason: str | None) -> None:
        """The item playing is over at `at`: `status` None when it ran to its end (completed if it lasted)."""
        play, self.current = self.current, None
        action = play.action
        started = play.started_at or at
        if at < started:
            # The clock was set back while it played: how long it lasted is unknown, and a record cannot end before
            # it starts (the journal would refuse it and the play would be lost). It counts as cut short.
            at, status, reason = started, "interrupted", CLOCK_SET_BACK
        if status is None:
            status = play_status(started, at, action.duration_ms - action.start_offset_ms)
            if status == "completed" and action.start_offset_ms > 0:
                status, reason = "interrupted", "joined late"  # a partial play does not count
        if action.kind == "filler" and status != "completed" and reason is None:
            reason = "cut"
        self._keep(self.record(
            spot_id=action.spot.spot_id if action.spot else None,
            campaign_id=action.spot.campaign_id if action.spot else None, media=action.media, kind=action.kind,
            scheduled_start=action.spot.start if action.kind == "spot" else None, started=started, ended=at,
            status=status, reason=reason), action.spot)
        if status != "completed":
            self.playback.stop()

    def record_miss(self, spot: Spot, reason: str, now: datetime) -> None:
        log.warning("missed spot %s: %s", spot.spot_id, reason)
        self._keep(self.record(spot_id=spot.spot_id, campaign_id=spot.campaign_id, media=spot.media, kind="spot",
                               scheduled_start=spot.start, started=now, ended=now, status="missed", reason=reason),
                   spot)

    def record(self, **fields) -> dict[str, Any]:
        """A proof-of-play record under the plan this screen follows."""
        return self.proof.record(plan_version=self.programme.plan.version if self.programme else None, **fields)

    def _keep(self, record: dict, spot: Spot | None) -> None:
        day = self.programme.local_date(spot.start).isoformat() if spot is not None and self.programme else None
        self.proof.keep(record, day)
        if spot is not None:
            if record["status"] == "completed":
                self.outcomes[spot.spot_id] = "made_good" if record["kind"] == "makegood" else "completed"
            elif self.outcomes.get(spot.spot_id) not in ("completed", "made_good"):
                self.outcomes[spot.spot_id] = record["status"]


__all__ = ["CLOCK_SET_BACK", "CurrentPlay", "ProgrammeRun", "media_kind"]
