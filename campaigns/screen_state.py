"""Each screen's live state, from what its player last reported (PlayerPresence) and the plans it was sent.

A screen is online while its player's newest status says so and came less than ONLINE_WITHIN ago: players
report every 30 seconds, so a silence of two minutes means the link or the player is down even when no Last
Will arrived. A screen that never reported is "never", which is not the same trouble as "offline".

What needs action first (`attention`, the health page's order and the notices' rule): a screen dark during its
peak hours now, then one offline, then one that plays but is degraded, then the rest; screens never connected
come last, in a group of their own (a screen not yet installed is not an outage).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, and_, not_, select
from sqlalchemy.orm import Session

from campaigns.models import Alert, Campaign, Site
from campaigns.windows import window_instants
from media.models import MediaAsset
from scheduler.models import PlayerPresence
from scheduler.plan_store import newest_versions
from signage.protocol import Plan

ONLINE_WITHIN = timedelta(minutes=2)
ScreenStateName = Literal["online", "offline", "never"]
STATES: tuple[ScreenStateName, ...] = ("online", "offline", "never")


# Degraded: a player that plays, but whose figures say something will go wrong.
JOURNAL_BACKLOG_LIMIT = 500  # plays not yet acknowledged: about four hours of a busy screen's plays
CLOCK_OFFSET_LIMIT_MS = 2000  # proof-of-play stamped by a clock further off than this misleads the reports
Attention = Literal["dark_in_peak", "offline", "degraded", "ok", "never", "retired"]
ATTENTION_ORDER: tuple[Attention, ...] = ("dark_in_peak", "offline", "degraded", "ok", "never", "retired")


@dataclass(frozen=True)
class ScreenState:
    screen_id: str
    state: ScreenStateName
    last_seen: datetime | None = None
    plan_sent: str | None = None  # the newest plan version the server published for this screen
    plan_confirmed: str | None = None  # the plan version the player says it holds
    now_playing: dict[str, Any] | None = None
    cache_ready: int | None = None
    cache_missing: int | None = None
    cache_bytes: int | None = None
    journal_backlog: int | None = None
    journal_error: str | None = None
    journal_refused: int | None = None
    clock_offset_ms: int | None = None
    software_version: str | None = None
    refused: str | None = None

    @property
    def plan_current(self) -> bool | None:
        """Whether the player holds the newest plan; None when there is nothing to compare."""
        if self.plan_sent is None or self.state == "never":
            return None
        return self.plan_confirmed == self.plan_sent

    @property
    def cache_complete(self) -> bool | None:
        if self.cache_missing is None:
            return None
        return self.cache_missing == 0

    @property
    def troubles(self) -> tuple[str, ...]:
        """Why an online screen is degraded: words of a fixed vocabulary (`health.trouble.*` in the catalogues)."""
        if self.state != "online":
            return ()
        found = []
        if self.cache_missing:
            found.append("cache_missing")
        if self.journal_error or self.journal_refused:
            found.append("journal_failing")
        if self.journal_backlog is not None and self.journal_backlog > JOURNAL_BACKLOG_LIMIT:
            found.append("journal_backlog")
        if self.clock_offset_ms is not None and abs(self.clock_offset_ms) > CLOCK_OFFSET_LIMIT_MS:
            found.append("clock_offset")
        if self.refused:
            found.append("refused")
        return tuple(found)


def peak_since(site: Site, now: datetime) -> datetime | None:
    """When the span of `site`'s peak windows within its operating hours that holds `now` began; None outside."""
    zone = site.timezone
    today = now.astimezone(ZoneInfo(zone)).date()
    for day in (today - timedelta(days=1), today):  # yesterday's 24:00 end is today's midnight
        peaks = [window_instants(day, w, zone) for w in site.effective_peak_windows().on(day)]
        hours = [window_instants(day, w, zone) for w in site.effective_operating_hours().on(day)]
        for peak_start, peak_end in peaks:
            for open_start, open_end in hours:
                start, end = max(peak_start, open_start), min(peak_end, open_end)
                if start <= now < end:
                    return start
    return None


def attention(state: ScreenState, site: Site, now: datetime, retired: bool = False) -> Attention:
    if retired:  # out of service: nothing to act on, kept findable in a group of its own
        return "retired"
    if state.state == "never":
        return "never"
    if state.state == "offline":
        return "dark_in_peak" if peak_since(site, now) is not None else "offline"
    return "degraded" if state.troubles else "ok"


def dark_since(state: ScreenState, site: Site, now: datetime) -> datetime | None:
    """Since when a screen has been dark inside its peak hours (the later of its last report and the span's start);
    None when it is not (online, never connected, or outside them)."""
    if state.state != "offline":
        return None
    since = peak_since(site, now)
    if since is None:
        return None
    return max(since, state.last_seen) if state.last_seen is not None else since


def _online(now: datetime) -> ColumnElement[bool]:
    return and_(PlayerPresence.state == "online", PlayerPresence.last_seen >= now - ONLINE_WITHIN)


def state_condition(state: ScreenStateName, now: datetime) -> ColumnElement[bool]:
    """A filter for a query outer-joined to PlayerPresence on the screen's id (see `with_presence`)."""
    if state == "never":
        return PlayerPresence.player_id.is_(None)
    if state == "online":
        return _online(now)
    return and_(PlayerPresence.player_id.is_not(None), not_(_online(now)))


def state_name(presence: PlayerPresence | None, now: datetime) -> ScreenStateName:
    if presence is None:
        return "never"
    if presence.state == "online" and presence.last_seen >= now - ONLINE_WITHIN:
        return "online"
    return "offline"


def screen_states(session: Session, screen_ids: Collection[str], now: datetime) -> dict[str, ScreenState]:
    """The state of each of `screen_ids` (a page's worth: the ids go into one IN list)."""
    ids = sorted(set(screen_ids))
    if not ids:
        return {}
    presences = {row.player_id: row for row in
                 session.scalars(select(PlayerPresence).where(PlayerPresence.player_id.in_(ids)))}
    sent = newest_versions(session, ids)
    return {screen_id: state_of(screen_id, presences.get(screen_id), sent.get(screen_id), now) for screen_id in ids}


def state_of(screen_id: str, presence: PlayerPresence | None, plan_sent: str | None, now: datetime) -> ScreenState:
    """One screen's state from its presence row and the newest plan version published for it."""
    name = state_name(presence, now)
    if presence is None:
        return ScreenState(screen_id, name, plan_sent=plan_sent)
    # A Last Will carries only `offline`: the figures are those of the last status that had them.
    return ScreenState(
        screen_id, name, last_seen=presence.last_seen, plan_sent=plan_sent,
        plan_confirmed=presence.plan_version, now_playing=presence.now_playing if name == "online" else None,
        cache_ready=presence.cache_ready, cache_missing=presence.cache_missing, cache_bytes=presence.cache_bytes,
        journal_backlog=presence.journal_backlog, journal_error=presence.journal_error,
        journal_refused=presence.journal_refused, clock_offset_ms=presence.clock_offset_ms,
        software_version=presence.software_version, refused=presence.refused,
    )


def screen_state(session: Session, screen_id: str, now: datetime) -> ScreenState:
    return screen_states(session, [screen_id], now)[screen_id]


@dataclass(frozen=True)
class PlayingNow:
    """What a screen plays now, by name (the player reports a kind, a media sha256, a spot id or an alert id)."""

    kind: str  # spot, makegood, filler, alert
    campaign_name: str | None = None  # of a spot or make-good
    media_name: str | None = None
    alert_title: str | None = None


def playing_now(session: Session, now_playing: dict[str, Any] | None, plan: Plan | None) -> PlayingNow | None:
    """`now_playing` named: a spot's or make-good's campaign found by its spot in the screen's `plan`, the file by
    the name the campaign's unit gave it (for filler, a unit whose campaign the plan holds), an alert by its title.
    Whatever cannot be named stays None: the page says what kind of thing plays, never a hash in its place."""
    if not now_playing:
        return None
    kind = str(now_playing.get("kind") or "")
    if kind == "alert":
        return PlayingNow(kind, alert_title=session.scalar(select(Alert.title).where(
            Alert.id == str(now_playing.get("alert_id") or ""))))
    spots = plan.spots if plan is not None else []
    spot_id, media = now_playing.get("spot_id"), now_playing.get("media")
    campaign_id = next((s.campaign_id for s in spots if s.spot_id == spot_id), None) if spot_id else None
    campaign_ids = [campaign_id] if campaign_id else sorted({s.campaign_id for s in spots})
    if not campaign_ids:
        return PlayingNow(kind)
    named = session.execute(
        select(Campaign.name, MediaAsset.original_name)
        .outerjoin(MediaAsset, (MediaAsset.sha256 == str(media or "")) & (MediaAsset.organisation_id
                                                                          == Campaign.organisation_id))
        .where(Campaign.id.in_(campaign_ids))
        .order_by(MediaAsset.original_name.is_(None), Campaign.id).limit(1)).first()
    if named is None:
        return PlayingNow(kind)
    return PlayingNow(kind, campaign_name=named[0] if campaign_id else None, media_name=named[1])
