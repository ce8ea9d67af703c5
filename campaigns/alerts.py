"""Alerts to the public: a unit's messages, as a ticker over whatever plays (info) or a takeover (urgent).

Plain functions over the database, knowing nothing of HTTP nor of MQTT (scheduler/alert_dispatch.py sends them).
The rules:
- Communications staff and heads of unit issue alerts for screens of their own unit's subtree: a ward its own
  screens, a district its subtree, the city everything. Targets use the campaigns' targeting shape and rule
  (`checked_targets`), so a target outside the issuer's subtree is refused, named, with the fix.
- A unit that requires it (`Organisation.alerts_need_approval`) sends its staff's alerts only after its head of unit
  approves them; a head's (or an admin's) own alert needs no second approval.
- An alert shows from `starts_at` (now, when not given) until `expires_at`, unless it is stopped before. Its phase
  (`alert_phase`) follows from its status and the clock: pending, rejected, scheduled, active, ended, stopped.

Errors are the kernel's (signage/errors.py): `Invalid`, `NotFound` (not within the user's organisation),
`NotAllowed`, `Conflict`.
"""

from __future__ import annotations

import logging
import secrets
from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, ConfigDict, Field, field_validator
from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from campaigns.access import Actor
from campaigns.audit import record_change
from campaigns.kinds import AlertKind, AlertSeverity, AlertStatus, MediaKind, Role, ScreenKind
from campaigns.models import Alert, Organisation
from campaigns.workflow import (
    EDITORS,
    checked_targets,
    is_slug,
    plain_text,
    screens_hit,
)
from media.models import MediaAsset, held_by
from media.speech import SpeechFailed, spoken_asset
from media.store import MediaStore
from scheduler.planner import PlanScreen
from signage.clock import Clock
from signage.errors import Conflict, Invalid, NotAllowed, NotFound
from signage.protocol import MAX_ALERT_TEXT
from signage.text import NfcModel

log = logging.getLogger("signage.alerts")

ALERT = "alert"
APPROVERS = (Role.head,)  # "the head of unit's approval" (admins may do everything)
MAX_SHOWING = timedelta(days=30)
MAX_LEAD = timedelta(days=366)
MIN_SHOWING = timedelta(seconds=10)
DEFAULT_SHOWING = timedelta(hours=1)
Phase = Literal["pending", "rejected", "scheduled", "active", "ended", "stopped"]
PHASES: tuple[Phase, ...] = ("pending", "rejected", "scheduled", "active", "ended", "stopped")


class AlertIn(NfcModel):
    """A new alert. Without `starts_at` it starts at once; without `expires_at` it shows for an hour."""

    model_config = ConfigDict(extra="forbid")
    title: Annotated[str, Field(min_length=1, max_length=255)]
    text: Annotated[str, Field(min_length=1, max_length=MAX_ALERT_TEXT)]
    severity: AlertSeverity = AlertSeverity.info
    kind: AlertKind = AlertKind.text
    media: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")] | None = None
    starts_at: AwareDatetime | None = None
    expires_at: AwareDatetime | None = None
    organisation_id: str | None = None  # the issuing unit: the user's own unit when not given
    targets: dict[str, list[str]]

    @field_validator("title", "text")
    @classmethod
    def _stripped(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("is empty: write what the public should read")
        return value


def new_alert_id(now: datetime) -> str:
    return f"alert-{now:%Y%m%d}-{secrets.token_hex(4)}"


def alert_phase(alert: Alert, now: datetime) -> Phase:
    if alert.status is AlertStatus.pending:
        return "pending"
    if alert.status is AlertStatus.rejected:
        return "rejected"
    if alert.status is AlertStatus.stopped:
        return "stopped"
    if now < alert.starts_at:
        return "scheduled"
    return "active" if now < alert.expires_at else "ended"


def went_out(alert: Alert) -> bool:
    """Whether the alert reached screens at all: approved, and not stopped before its start."""
    return alert.status is AlertStatus.approved or (
        alert.status is AlertStatus.stopped and alert.stopped_at is not None and alert.stopped_at > alert.starts_at
        and alert.approved_at is not None)


def find_alert(session: Session, actor: Actor, alert_id: str) -> Alert:
    """The alert, if its issuing unit is within the user's subtree; NotFound otherwise (the same as missing)."""
    alert = session.get(Alert, alert_id) if is_slug(alert_id) else None
    if alert is None or not actor.sees_organisation(session, alert.organisation_id):
        raise NotFound(ALERT, alert_id)
    return alert


def alerts_query(session: Session, actor: Actor, *, phase: Phase | None = None, organisation_id: str | None = None,
                 severity: AlertSeverity | None = None, now: datetime | None = None) -> Select:
    """The alerts of the user's subtree, newest start first; `phase` needs `now`."""
    query = select(Alert).where(Alert.organisation_id.in_(actor.org_ids()))
    if organisation_id is not None:
        path = session.scalar(select(Organisation.path).where(Organisation.id == organisation_id))
        if path is None or not actor.sees_organisation(session, organisation_id):
            raise NotFound("organisation", organisation_id)
        query = query.where(Alert.organisation_id.in_(
            select(Organisation.id).where(Organisation.path.startswith(path, autoescape=True))))
    if severity is not None:
        query = query.where(Alert.severity == severity)
    if phase is not None:
        if now is None:
            raise ValueError("filtering alerts by phase needs the time")
        query = query.where(*_phase_filter(phase, now))
    return query.order_by(Alert.starts_at.desc(), Alert.id)


def _phase_filter(phase: Phase, now: datetime) -> list:
    approved = Alert.status == AlertStatus.approved
    return {
        "pending": [Alert.status == AlertStatus.pending],
        "rejected": [Alert.status == AlertStatus.rejected],
        "stopped": [Alert.status == AlertStatus.stopped],
        "scheduled": [approved, Alert.starts_at > now],
        "active": [approved, Alert.starts_at <= now, Alert.expires_at > now],
        "ended": [approved, Alert.expires_at <= now],
    }[phase]


def alert_screens(session: Session, alert: Alert) -> list[PlanScreen]:
    """The enabled screens the alert's targets hit now, by the planner's own targeting rule, that can show it."""
    audio = alert.media is not None and alert.media.kind is MediaKind.audio or alert.spoken_sha256 is not None
    return _able(_hit(session, alert.organisation_id, alert.targets), audio)


def targeted_speakers(session: Session, alert: Alert) -> int:
    """The enabled loudspeakers the alert's targets hit now, whether or not they can play it."""
    return sum(1 for screen in _hit(session, alert.organisation_id, alert.targets) if screen.kind is ScreenKind.speaker)


def _hit(session: Session, owner: str, targets: dict[str, list[str]]) -> list[PlanScreen]:
    path = session.scalar(select(Organisation.path).where(Organisation.id == owner))
    return screens_hit(session, path, checked_targets(session, owner, targets).rows())


def _able(hit: list[PlanScreen], audio: bool) -> list[PlanScreen]:
    # A loudspeaker shows no text nor picture: it takes part only in alerts that are sound (or text read aloud).
    return [screen for screen in hit if audio or screen.kind is not ScreenKind.speaker]


def describe_alert(alert: Alert, now: datetime) -> dict[str, Any]:
    return {
        "id": alert.id, "organisation_id": alert.organisation_id, "title": alert.title, "text": alert.text,
        "severity": alert.severity.value, "kind": alert.kind.value, "media": alert.media_sha256,
        "spoken": alert.spoken_sha256,
        "starts_at": alert.starts_at, "expires_at": alert.expires_at, "targets": alert.targets,
        "status": alert.status.value, "phase": alert_phase(alert, now), "created_by": alert.created_by,
        "created_at": alert.created_at, "approved_by": alert.approved_by, "approved_at": alert.approved_at,
        "review_note": alert.review_note, "stopped_by": alert.stopped_by, "stopped_at": alert.stopped_at,
    }


def _audit(session: Session, actor: Actor, clock: Clock, alert: Alert, action: str,
           after: dict[str, Any] | None = None) -> None:
    record_change(session, actor, clock, action=action, entity_kind=ALERT, entity_id=alert.id,
                  organisation_id=alert.organisation_id, after=after)


def _times(data: AlertIn, now: datetime) -> tuple[datetime, datetime]:
    # A start a moment in the past (the form was filled in a while ago) means now: a screen cannot show the past.
    starts = max(data.starts_at or now, now)
    if starts - now > MAX_LEAD:
        raise Invalid(f"the alert starts on {starts.date()}, more than a year ahead", "start it within a year")
    expires = data.expires_at or starts + DEFAULT_SHOWING
    if expires <= now:
        raise Invalid(f"the alert expires at {expires.isoformat()}, which has passed",
                      "give an expiry in the future (or leave it out: an hour from the start)")
    if expires - starts < MIN_SHOWING:
        raise Invalid(f"the alert would show for {(expires - starts).total_seconds():.0f} s",
                      f"let it show at least {MIN_SHOWING.seconds} seconds: move its expiry later")
    if expires - starts > MAX_SHOWING:
        raise Invalid(f"the alert would show for {(expires - starts).days} days",
                      f"an alert shows at most {MAX_SHOWING.days} days; for longer, make a campaign")
    return starts, expires


def _media(session: Session, actor: Actor, data: AlertIn) -> MediaAsset | None:
    if data.kind is AlertKind.text:
        if data.media is not None:
            raise Invalid("a text alert has no media", "choose kind media, or leave the media out")
        return None
    if data.media is None:
        raise Invalid("a media alert names its media", "choose a clip or an image from the media library")
    asset = session.scalar(held_by(data.media, actor.org_ids()))
    if asset is None:
        raise Invalid(f"there is no media {data.media} in your unit's library",
                      "upload the file to the media library first, then choose it")
    return asset


def _read_aloud(session: Session, actor: Actor, clock: Clock, store: MediaStore | None, data: AlertIn, owner: str,
                hit: list[PlanScreen]) -> MediaAsset | None:
    """A text alert's words spoken for the loudspeakers among its targets; None when there are none, or when the
    speech cannot be made: the alert still goes to its displays, and its page says the speakers do not get it."""
    if store is None or data.kind is not AlertKind.text or all(screen.kind is not ScreenKind.speaker for screen in hit):
        return None
    try:
        return spoken_asset(session, store, actor, clock, data.text, data.title, owner)
    except SpeechFailed as exc:
        log.warning("the alert text for %s could not be read aloud, its loudspeakers will not get it: %s", owner, exc)
        return None


def create_alert(session: Session, actor: Actor, clock: Clock, data: AlertIn, store: MediaStore | None = None
                 ) -> Alert:
    """Issue an alert: approved at once, or pending when the unit requires its head's approval. With the media
    `store`, a text alert to loudspeakers is read aloud for them (media/speech.py)."""
    if not actor.has_role(*EDITORS):
        raise NotAllowed(f"your role ({actor.role.value}) may not issue alerts",
                         "it takes a communications staff or head of unit account")
    owner = data.organisation_id or actor.user.organisation_id
    if not is_slug(owner) or not actor.sees_organisation(session, owner):
        raise NotFound("organisation", owner)
    plain_text(data.title, "title", required=True, limit=255)
    plain_text(data.text, "text", required=True, limit=MAX_ALERT_TEXT)
    checked_targets(session, owner, data.targets)
    now = clock.now()
    starts, expires = _times(data, now)
    asset = _media(session, actor, data)
    hit = _hit(session, owner, data.targets)
    audio = asset is not None and asset.kind is MediaKind.audio
    speakable = store is not None and data.kind is AlertKind.text
    if not _able(hit, audio or speakable):
        raise Invalid("the targets hit no enabled screen that can show the alert (loudspeakers play only sound)",
                      "choose organisations, sites or screens that have displays, or a sound file for loudspeakers")
    # Read aloud only once the alert is known to go out: nothing of a refused alert stays in the store.
    spoken = _read_aloud(session, actor, clock, store, data, owner, hit)
    if not _able(hit, audio or spoken is not None):
        raise Invalid("the targets are loudspeakers only, and the text could not be read aloud on the server",
                      "ask the operator to check espeak-ng (setup.sh installs it), or target displays too")
    organisation = session.get(Organisation, owner)
    needs_approval = organisation.alerts_need_approval and not actor.has_role(*APPROVERS)
    alert = Alert(id=new_alert_id(now), organisation_id=owner, title=data.title, text=data.text,
                  severity=data.severity, kind=data.kind, media_sha256=asset.sha256 if asset else None,
                  media_organisation_id=asset.organisation_id if asset else None,
                  spoken_sha256=spoken.sha256 if spoken else None,
                  spoken_organisation_id=spoken.organisation_id if spoken else None,
                  starts_at=starts, expires_at=expires, targets={k: v for k, v in data.targets.items() if v},
                  status=AlertStatus.pending if needs_approval else AlertStatus.approved,
                  created_by=actor.username, created_at=now)
    if not needs_approval:
        alert.approved_by, alert.approved_at = actor.username, now
    session.add(alert)
    session.flush()
    after = {"title": alert.title, "severity": alert.severity.value, "kind": alert.kind.value,
             "starts_at": starts.isoformat(), "expires_at": expires.isoformat(), "targets": alert.targets,
             "status": alert.status.value}
    if spoken is not None:
        after["spoken"] = spoken.sha256
    _audit(session, actor, clock, alert, "create", after)
    return alert


def _reviewable(session: Session, actor: Actor, alert: Alert, now: datetime, to: str) -> None:
    if not actor.has_role(*APPROVERS):
        raise NotAllowed(f"your role ({actor.role.value}) may not {to} alerts", "it takes the head of unit")
    if alert.status is not AlertStatus.pending:
        raise Conflict(f"the alert is {alert_phase(alert, now)}; only a pending alert is approved or rejected",
                       "nothing to do")


def approve_alert(session: Session, actor: Actor, clock: Clock, alert_id: str, note: str | None = None) -> Alert:
    alert = find_alert(session, actor, alert_id)
    now = clock.now()
    _reviewable(session, actor, alert, now, "approve")
    if alert.expires_at <= now:
        raise Conflict("the alert expired while it waited for approval", "issue it again with new times")
    alert.status, alert.approved_by, alert.approved_at = AlertStatus.approved, actor.username, now
    alert.review_note = plain_text(note, "note", required=False)
    # Approved late: it starts now, not in the past, so the players show it for the time it has left.
    alert.starts_at = max(alert.starts_at, now)
    _audit(session, actor, clock, alert, "approve", {"note": alert.review_note})
    return alert


def reject_alert(session: Session, actor: Actor, clock: Clock, alert_id: str, note: str | None) -> Alert:
    alert = find_alert(session, actor, alert_id)
    _reviewable(session, actor, alert, clock.now(), "reject")
    alert.status = AlertStatus.rejected
    alert.review_note = plain_text(note, "note", required=True)
    _audit(session, actor, clock, alert, "reject", {"note": alert.review_note})
    return alert


def stop_alert(session: Session, actor: Actor, clock: Clock, alert_id: str, reason: str | None = None) -> Alert:
    """Take the alert off every screen now (or withdraw it before its start)."""
    alert = find_alert(session, actor, alert_id)
    if not actor.has_role(*EDITORS, *APPROVERS, Role.manager):
        raise NotAllowed(f"your role ({actor.role.value}) may not stop alerts",
                         "it takes a communications staff, head of unit or manager account")
    now = clock.now()
    phase = alert_phase(alert, now)
    if phase not in ("scheduled", "active", "pending"):
        raise Conflict(f"the alert is {phase}; only a pending, scheduled or active alert is stopped", "nothing to do")
    alert.status, alert.stopped_by, alert.stopped_at = AlertStatus.stopped, actor.username, now
    _audit(session, actor, clock, alert, "stop", {"reason": plain_text(reason, "reason", required=False),
                                                  "phase": phase})
    return alert


__all__ = ["ALERT", "PHASES", "AlertIn", "alert_phase", "alert_screens", "alerts_query", "approve_alert",
           "create_alert", "describe_alert", "find_alert", "reject_alert", "stop_alert", "targeted_speakers",
           "went_out"]
