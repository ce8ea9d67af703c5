"""Alerts out to the players.

An approved alert goes to each target screen as a signed `alert_start` command (docs/design.md §3's `cmd` topic), with
the MQTT message expiry set to the alert's own expiry: a player offline until then never receives it, and one
that comes back before it receives it from its persistent session and shows it for the time left. Stopping an
alert sends `alert_stop` the same way. The players' acknowledgements come back in proof-of-play and are noted by
`alert_delivery.record_alert_acks`, in ingest.

A command can be lost (a player whose session the broker dropped, a server that approved an alert without a
broker connection): `resend_due` sends again to every target screen that was heard from after the last send and
has not acknowledged, every few seconds, until the alert expires.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from campaigns.alerts import alert_screens
from campaigns.campaign_file import DEFAULT_IMAGE_SECONDS
from campaigns.kinds import AlertStatus, MediaKind, ScreenKind
from campaigns.models import Alert
from scheduler.database import Database
from scheduler.models import AlertDelivery, PlayerPresence
from scheduler.mqtt_bridge import CommandOrder, MqttBridge
from scheduler.planner import PlanScreen
from signage.clock import Clock
from signage.db import transaction
from signage.errors import Invalid
from signage.protocol import AlertOrder, AlertStop, MediaEntry

log = logging.getLogger("signage.alerts")

RESEND_AFTER = timedelta(seconds=20)
MIN_STOP_TTL = timedelta(minutes=1)


def alert_order(alert: Alert, *, spoken: bool = False) -> AlertOrder:
    """What the players are told: the alert's content and times, the media's entry as in a plan. `spoken`: the
    order for a loudspeaker, which plays a text alert's words read aloud as its media (media/speech.py)."""
    media, entry = None, None
    asset = alert.spoken if spoken else alert.media
    if asset is not None:
        duration_ms = asset.duration_ms if asset.kind is not MediaKind.image and asset.duration_ms else round(
            DEFAULT_IMAGE_SECONDS * 1000)
        media = asset.sha256
        entry = MediaEntry(url=f"/media/{asset.sha256}", bytes=asset.bytes, mime=asset.mime, duration_ms=duration_ms)
    return AlertOrder(alert_id=alert.id, severity=alert.severity.value, kind=alert.kind.value, text=alert.text,
                      media=media, media_entry=entry, starts_at=alert.starts_at, expires_at=alert.expires_at)


class AlertDispatcher:
    """Sends alerts through the server's MQTT bridge; called by the routes at once and by a job for resends."""

    def __init__(self, database: Database, bridge: MqttBridge, clock: Clock) -> None:
        self.database = database
        self.bridge = bridge
        self.clock = clock

    def publish(self, alert_id: str) -> int:
        """Send an approved alert to all its screens now; returns how many commands went out."""
        with transaction(self.database.sessions) as session:
            alert = session.get(Alert, alert_id)
            if alert is None or alert.status is not AlertStatus.approved or alert.expires_at <= self.clock.now():
                return 0
            sends = self._note_starts(session, alert, alert_screens(session, alert))
        return self._send(sends)

    def stop(self, alert_id: str) -> int:
        """Tell every screen the alert was sent to that it is over."""
        with transaction(self.database.sessions) as session:
            alert = session.get(Alert, alert_id)
            if alert is None or alert.status is not AlertStatus.stopped:
                return 0
            deliveries = list(session.scalars(select(AlertDelivery).where(AlertDelivery.alert_id == alert_id)))
            sends = self._note_stops(alert, deliveries)
        return self._send(sends)

    def resend_due(self) -> int:
        """Send again what was not acknowledged by players heard from since (and send what never went out)."""
        now = self.clock.now()
        sends: list[_Send] = []
        with transaction(self.database.sessions) as session:
            live = session.scalars(select(Alert).where(
                Alert.status.in_((AlertStatus.approved, AlertStatus.stopped)), Alert.expires_at > now))
            for alert in list(live):
                deliveries = {d.screen_id: d for d in session.scalars(
                    select(AlertDelivery).where(AlertDelivery.alert_id == alert.id))}
                heard = _last_heard(session, deliveries)
                if alert.status is AlertStatus.approved:
                    try:
                        screens = alert_screens(session, alert)
                    except Invalid as exc:  # a target left the issuer's subtree since: the others still go out
                        log.warning("alert %s: its targets no longer resolve (%s); not sent again", alert.id, exc)
                        continue
                    due = [screen for screen in screens
                           if _start_due(deliveries.get(screen.id), heard.get(screen.id), alert, now)]
                    sends += self._note_starts(session, alert, due)
                else:
                    due = [d for d in deliveries.values() if _stop_due(d, heard.get(d.screen_id), now)]
                    sends += self._note_stops(alert, due)
        if sends:
            log.info("sending %d alert commands again", len(sends))
        return self._send(sends)

    # The deliveries are noted and committed before their commands go out: a player's acknowledgement can come
    # back faster than the transaction would otherwise end, and must find its delivery there.

    def _note_starts(self, session: Session, alert: Alert, screens: Iterable[PlanScreen]) -> list[_Send]:
        now = self.clock.now()
        order = alert_order(alert).model_dump(mode="json")
        spoken = alert_order(alert, spoken=True).model_dump(mode="json") if alert.spoken is not None else order
        ttl = alert.expires_at - now
        existing = {d.screen_id: d for d in session.scalars(select(AlertDelivery).where(
            AlertDelivery.alert_id == alert.id))}
        sends = []
        for screen in screens:
            delivery = existing.get(screen.id)
            if delivery is None:
                delivery = AlertDelivery(alert_id=alert.id, screen_id=screen.id, sends=0)
                session.add(delivery)
            delivery.sent_at, delivery.sends = now, (delivery.sends or 0) + 1
            args = spoken if screen.kind is ScreenKind.speaker else order
            sends.append(_Send(screen.id, "alert_start", args, ttl))
        return sends

    def _note_stops(self, alert: Alert, deliveries: Iterable[AlertDelivery]) -> list[_Send]:
        now = self.clock.now()
        args = AlertStop(alert_id=alert.id).model_dump(mode="json")
        ttl = max(alert.expires_at - now, MIN_STOP_TTL)
        sends = []
        for delivery in deliveries:
            delivery.stop_sent_at = now
            sends.append(_Send(delivery.screen_id, "alert_stop", args, ttl))
        return sends

    def _send(self, sends: list[_Send]) -> int:
        return len(self.bridge.publish_commands([CommandOrder(send.screen_id, send.name, send.args, send.ttl)
                                                 for send in sends]))


@dataclass(frozen=True)
class _Send:
    screen_id: str
    name: str
    args: dict[str, Any]
    ttl: timedelta


def _last_heard(session: Session, deliveries: dict[str, AlertDelivery]) -> dict[str, datetime]:
    if not deliveries:
        return {}
    return dict(session.execute(select(PlayerPresence.player_id, PlayerPresence.last_seen).where(
        PlayerPresence.player_id.in_(list(deliveries)), PlayerPresence.state == "online")).all())


def _start_due(delivery: AlertDelivery | None, heard: datetime | None, alert: Alert, now: datetime) -> bool:
    if delivery is None or delivery.sent_at is None:
        return True  # never sent (a new screen in the targets, or approved where no broker was reachable)
    if delivery.started_at is not None or delivery.ended_at is not None or now < alert.starts_at:
        return False
    # Heard from after the send, and still no acknowledgement a while later: the command was lost on the way.
    return heard is not None and heard > delivery.sent_at and now - delivery.sent_at >= RESEND_AFTER


def _stop_due(delivery: AlertDelivery, heard: datetime | None, now: datetime) -> bool:
    if delivery.stop_sent_at is None:
        return True
    if delivery.started_at is None or delivery.ended_at is not None:
        return False
    return heard is not None and heard > delivery.stop_sent_at and now - delivery.stop_sent_at >= RESEND_AFTER


__all__ = ["AlertDispatcher", "alert_order"]
