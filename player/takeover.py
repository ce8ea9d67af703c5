"""What the alerts put on the screen at any instant: the pure part of alerts on the player, tested on virtual time.

Given the alert layer as it stands (`Stage`), the instant, the alerts held, the programme and what the programme
has playing, each function returns the layer as it must stand now and the effects that take it there (`Turn`):
no MQTT, no playback, no disk and no clock of its own. The agent carries the effects out, in order.

The rules (issue 8):
- An alert is *active* at `now` when `starts_at <= now < expires_at` and it was not stopped.
- Urgent alerts take the screen over, in or out of operating hours: the one that has it is the active urgent alert
  that started last (ties: the greater alert_id). The programme's item is cut, recorded `interrupted` with the
  reason `urgent alert <id>`; the spot whose time it is, if not yet recorded, is recorded `missed` with that
  reason (and each spot coming due meanwhile likewise); the programme makes them good afterwards as usual.
- A taken-over screen plays the alert's clip, again and again until expiry, once it is cached; until then, or when
  the clip cannot play, it shows the alert's text large over black.
- Info text alerts run as a ticker over the programme, their texts joined in order of start, inside operating
  hours only (and never over a takeover). An info media alert's clip fills the programme's gaps (where filler
  would play, or nothing), cut at the gap's end: of those whose clip can play, the one that started last.
  A text alert read aloud (a loudspeaker's: its audio in `media`) is played as a media alert's clip is, never
  shown as a ticker.
- An alert *shows* from the first turn it is on the screen: a `started` record. Its showing ends with one record
  of the outcome: `completed` at expiry or when the issuer stops it, `failed` when an info clip cannot play (the
  alert is then over on this screen), `interrupted` when the player stops.
- An alert clip whose end is overdue by the watchdog's grace is cut; the next turn plays it again if still due.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from player.programme import WATCHDOG_GRACE, Action, Programme, SpotOutcome
from signage.protocol import AlertOrder, Spot

TICKER_SEPARATOR = "   •   "


@dataclass(frozen=True)
class HeldAlert:
    """An alert order this player holds; `stopped_at` once its issuer stopped it (or its clip failed)."""

    order: AlertOrder
    stopped_at: datetime | None = None

    def active_at(self, now: datetime) -> bool:
        return self.stopped_at is None and self.order.starts_at <= now < self.order.expires_at

    def over_at(self, now: datetime) -> bool:
        return self.stopped_at is not None or now >= self.order.expires_at


def by_start(held: HeldAlert) -> tuple[datetime, str]:
    return held.order.starts_at, held.order.alert_id


# -- which alerts ask for the screen ------------------------------------------------------------------------------

def active(held: Iterable[HeldAlert], now: datetime) -> list[AlertOrder]:
    """The orders active at `now`, by start (ties by alert_id)."""
    return [item.order for item in sorted(held, key=by_start) if item.active_at(now)]


def urgent_at(held: Iterable[HeldAlert], now: datetime) -> AlertOrder | None:
    """The urgent alert that has the screen at `now`: of those active, the one that started last."""
    urgent = [order for order in active(held, now) if order.severity == "urgent"]
    return urgent[-1] if urgent else None


def ticker_alerts(held: Iterable[HeldAlert], now: datetime) -> list[AlertOrder]:
    """The info text alerts active at `now`, by start: what the ticker shows (not those read aloud)."""
    return [order for order in active(held, now)
            if order.severity == "info" and order.kind == "text" and order.media is None]


def gap_clip_at(held: Iterable[HeldAlert], now: datetime, playable: Callable[[AlertOrder], bool]) -> AlertOrder | None:
    """The info alert whose clip (a media alert's, or a text's read aloud) fills the gaps at `now`: of those active
    and `playable`, the last started."""
    candidates = [order for order in active(held, now)
                  if order.severity == "info" and order.media is not None and playable(order)]
    return candidates[-1] if candidates else None


def next_change(held: Iterable[HeldAlert], now: datetime) -> datetime | None:
    """The next moment after `now` that an alert not stopped starts or expires; None when nothing is due."""
    moments = [moment for item in held if item.stopped_at is None
               for moment in (item.order.starts_at, item.order.expires_at) if moment > now]
    return min(moments, default=None)


# -- the layer and its effects ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class AlertClip:
    """An alert's clip on the screen: an urgent alert's (looped until expiry), or an info alert's in a gap."""

    order: AlertOrder
    until: datetime  # cut here at the latest: the alert's expiry, or the gap's end
    deadline: datetime  # its end is overdue from here: the watchdog cuts it


@dataclass(frozen=True)
class Showing:
    order: AlertOrder
    since: datetime


@dataclass(frozen=True)
class Ticker:
    """What shows over the picture: the info alerts' ticker, or an urgent alert's text (`prominent`, over black)."""

    text: str | None = None
    prominent: bool = False


@dataclass(frozen=True)
class Stage:
    """The alert layer as it stands on the screen."""

    urgent: AlertOrder | None = None  # the urgent alert that has the screen
    text_up: bool = False  # its text is shown over black (no clip plays)
    clip: AlertClip | None = None
    showing: tuple[Showing, ...] = ()  # by when each began to show (this run)
    unplayable: frozenset[str] = frozenset()  # urgent alerts whose clip failed: their text shows instead
    ticker: Ticker = field(default_factory=Ticker)  # what playback was last told to show over the picture

    def shows(self, alert_id: str) -> bool:
        return any(showing.order.alert_id == alert_id for showing in self.showing)


@dataclass(frozen=True)
class Started:
    """The alert begins to show on this screen: its `started` record."""

    order: AlertOrder
    at: datetime


@dataclass(frozen=True)
class Ended:
    """The alert's showing is over: its record, from `since` to `at`."""

    order: AlertOrder
    since: datetime
    at: datetime
    status: str
    reason: str | None


@dataclass(frozen=True)
class CutItem:
    """Cut the programme's item, recorded `interrupted` for `reason`."""

    reason: str


@dataclass(frozen=True)
class MissSpot:
    spot: Spot
    reason: str


@dataclass(frozen=True)
class PlayClip:
    clip: AlertClip


@dataclass(frozen=True)
class StopClip:
    pass


@dataclass(frozen=True)
class Blank:
    pass


@dataclass(frozen=True)
class ShowTicker:
    ticker: Ticker


@dataclass(frozen=True)
class StopAlert:
    """The alert is over on this screen for good: the book holds it as stopped."""

    alert_id: str


Effect = Started | Ended | CutItem | MissSpot | PlayClip | StopClip | Blank | ShowTicker | StopAlert


@dataclass(frozen=True)
class Turn:
    stage: Stage
    effects: tuple[Effect, ...] = ()
    programme: bool = False  # the programme has the screen: the agent follows it this turn


class _Changes:
    """A turn being worked out: the stage as it goes, and the effects in order."""

    def __init__(self, stage: Stage) -> None:
        self.stage = stage
        self.effects: list[Effect] = []

    def turn(self, programme: bool = False) -> Turn:
        return Turn(self.stage, tuple(self.effects), programme)

    def show(self, order: AlertOrder, now: datetime) -> None:
        if not self.stage.shows(order.alert_id):
            self.stage = replace(self.stage, showing=(*self.stage.showing, Showing(order, now)))
            self.effects.append(Started(order, now))

    def cut_clip(self) -> None:
        if self.stage.clip is not None:
            self.stage = replace(self.stage, clip=None)
            self.effects.append(StopClip())

    def play_clip(self, order: AlertOrder, now: datetime, until: datetime) -> None:
        clip = AlertClip(order, until, now + timedelta(milliseconds=order.media_entry.duration_ms) + WATCHDOG_GRACE)
        self.show(order, now)
        self.stage = replace(self.stage, clip=clip)
        self.effects.append(PlayClip(clip))

    def end_showing(self, order: AlertOrder, now: datetime, status: str, reason: str | None) -> None:
        if self.stage.clip is not None and self.stage.clip.order.alert_id == order.alert_id:
            self.cut_clip()
        for showing in self.stage.showing:
            if showing.order.alert_id == order.alert_id:
                self.stage = replace(self.stage, showing=tuple(s for s in self.stage.showing if s is not showing))
                self.effects.append(Ended(order, showing.since, now, status, reason))


def clip_playable(stage: Stage, order: AlertOrder, cached: Callable[[str], bool]) -> bool:
    """Whether an alert's clip can play: a media alert, its file `cached`, and not found unplayable."""
    return order.media is not None and order.alert_id not in stage.unplayable and cached(order.media)


# -- the turns ----------------------------------------------------------------------------------------------------

def take_turn(stage: Stage, now: datetime, held: Sequence[HeldAlert], programme: Programme | None,
              outcomes: Mapping[str, SpotOutcome], playing: Action | None, cached: Callable[[str], bool]) -> Turn:
    """The alert layer at `now`, before the programme: showings of expired alerts end; an urgent alert takes the
    screen (or keeps it, or gives it back); an info clip in a gap plays on until its time. `playing` is the
    programme's item on the screen, `outcomes` the spots recorded so far, `cached(sha)` whether a file is ready.
    The turn's `programme` says whether the programme has the screen now."""
    changes = _Changes(stage)
    for showing in stage.showing:
        if now >= showing.order.expires_at:
            changes.end_showing(showing.order, now, "completed", None)
    urgent = urgent_at(held, now)
    if urgent is None:
        if changes.stage.urgent is not None:  # the takeover is over: the programme resumes at once
            changes.cut_clip()
            changes.stage = replace(changes.stage, urgent=None, text_up=False)
        clip = changes.stage.clip  # an info alert's clip in a gap
        if clip is not None and now < min(clip.until, clip.deadline):
            return changes.turn()
        changes.cut_clip()
        return changes.turn(programme=True)

    reason = f"urgent alert {urgent.alert_id}"
    if playing is not None:
        changes.effects.append(CutItem(reason))
    clip = changes.stage.clip
    if clip is not None and (clip.order.alert_id != urgent.alert_id or now >= clip.deadline):
        changes.cut_clip()
    spot = programme.current_spot(now) if programme is not None else None
    cut_spot = playing.spot.spot_id if playing is not None and playing.spot is not None else None
    if spot is not None and spot.spot_id not in outcomes and spot.spot_id != cut_spot:  # the cut one is recorded
        changes.effects.append(MissSpot(spot, reason))
    if changes.stage.urgent is None or changes.stage.urgent.alert_id != urgent.alert_id:
        changes.stage = replace(changes.stage, urgent=urgent, text_up=False)
    changes.show(urgent, now)
    if clip_playable(changes.stage, urgent, cached):
        if changes.stage.clip is None:
            changes.play_clip(urgent, now, until=urgent.expires_at)
        changes.stage = replace(changes.stage, text_up=False)
    elif not changes.stage.text_up:
        changes.cut_clip()
        changes.effects.append(Blank())
        changes.stage = replace(changes.stage, text_up=True)
    return changes.turn()


def fill_gap(stage: Stage, now: datetime, held: Sequence[HeldAlert], programme: Programme,
             cached: Callable[[str], bool]) -> Turn | None:
    """An info alert's clip where the programme has a gap at `now` (filler, or nothing), cut at the gap's end;
    None when no info clip can play."""
    order = gap_clip_at(held, now, lambda order: clip_playable(stage, order, cached))
    if order is None:
        return None
    changes = _Changes(stage)
    changes.play_clip(order, now, until=programme.gap_end(now))
    return changes.turn()


def ticker_turn(stage: Stage, now: datetime, held: Sequence[HeldAlert], programme: Programme | None) -> Turn:
    """What shows over the picture at `now`, after the programme's turn: a takeover's text while it has no clip,
    or the info alerts' ticker while the programme is in its operating hours."""
    changes = _Changes(stage)
    wanted = Ticker()
    if stage.urgent is not None:
        if stage.text_up:
            wanted = Ticker(stage.urgent.text, prominent=True)
    elif programme is not None and programme.open_at(now):
        orders = ticker_alerts(held, now)
        for order in orders:
            changes.show(order, now)
        if orders:
            wanted = Ticker(TICKER_SEPARATOR.join(order.text for order in orders))
    if wanted != stage.ticker:
        changes.stage = replace(changes.stage, ticker=wanted)
        changes.effects.append(ShowTicker(wanted))
    return changes.turn()


def clip_over(stage: Stage, at: datetime, error: str | None) -> Turn:
    """The alert clip on the screen ended (`error` None) or could not play. The next turn plays it again if it is
    still due; an urgent clip that cannot play gives way to the alert's text, an info alert is over."""
    order = stage.clip.order
    changes = _Changes(replace(stage, clip=None))
    if error is None:
        return changes.turn()
    if order.severity == "urgent":
        changes.stage = replace(changes.stage, unplayable=stage.unplayable | {order.alert_id})
        return changes.turn()
    changes.effects.append(StopAlert(order.alert_id))
    changes.end_showing(order, at, "failed", f"playback error: {error}")
    return changes.turn()


def end_showings(stage: Stage, orders: Iterable[AlertOrder], now: datetime, status: str,
                 reason: str | None) -> Turn:
    """These alerts are over on this screen (stopped by the issuer, or the player stops): the clip of one is cut,
    and each that showed gets its ending record."""
    changes = _Changes(stage)
    for order in orders:
        changes.end_showing(order, now, status, reason)
    return changes.turn()


def wake_moments(stage: Stage, now: datetime, held: Sequence[HeldAlert], programme: Programme | None
                 ) -> list[datetime]:
    """When the alert layer next needs a turn with no event: an alert starts or ends, the clip is due to end, the
    ticker comes or goes with operating hours."""
    moments = []
    change = next_change(held, now)
    if change is not None:
        moments.append(change)
    if stage.clip is not None:
        moments.append(min(stage.clip.until, stage.clip.deadline))
    if programme is not None and ticker_alerts(held, now):
        moments += [moment for span in programme.plan.operating_hours for moment in (span.start, span.end)
                    if moment > now]
    return moments


def alert_now_playing(order: AlertOrder) -> dict[str, str]:
    """What the status says plays while an alert has the screen (or its clip fills a gap)."""
    return {"kind": "alert", "alert_id": order.alert_id, "media": order.content}


__all__ = ["TICKER_SEPARATOR", "AlertClip", "Blank", "CutItem", "Effect", "Ended", "HeldAlert", "MissSpot",
           "PlayClip", "ShowTicker", "Showing", "Stage", "Started", "StopAlert", "StopClip", "Ticker", "Turn",
           "active", "alert_now_playing", "by_start", "clip_over", "clip_playable", "end_showings", "fill_gap",
           "gap_clip_at", "next_change", "take_turn", "ticker_alerts", "ticker_turn", "urgent_at", "wake_moments"]
