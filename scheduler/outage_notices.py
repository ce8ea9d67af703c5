"""Telling people when a screen goes dark in its peak hours, and when it is back: an in-app notice to each of the
unit's managers and staff (`recipients`), and an e-mail to those with an address (at once, or in a daily digest).

A scheduled job (scheduler/jobs.py), on the holder of the planning lease only, so two servers never tell twice:
`note_outages` opens an episode (`ScreenOutage`) once a screen has been dark `offline_notice_minutes` inside its peak
windows and operating hours (campaigns/screen_state.py's rule, the health page's), with a notice per recipient, and
closes it with a "back online" notice when the screen reports again; `send_emails` then hands what is due to the
mail server. A notice is marked sent only once the server took it; one the server refused stays, its attempts
counted, for the next round. The job runs on APScheduler's thread, never on the event loop, so SMTP may block.
"""

from __future__ import annotations

import logging
import smtplib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload

from campaigns.kinds import Role
from campaigns.models import Organisation, Screen, Site, User
from campaigns.screen_state import dark_since, screen_states
from scheduler.database import Database
from scheduler.models import Notice, PlayerPresence, ScreenOutage
from signage.clock import Clock
from signage.config import Settings
from signage.db import transaction
from signage.limits import REASON_LENGTH

log = logging.getLogger("signage.notices")

NOTICE_ROLES = (Role.manager, Role.staff)
RUN_EVERY = timedelta(minutes=1)
KINDS = ("offline", "back_online")


def recipients(session: Session, site: Site, include_parent: bool) -> list[User]:
    """Who is told about a screen of `site`: the active managers and staff of the site's own unit, and with
    `include_parent` (SIGNAGE_OFFLINE_NOTICE_PARENT) those of the unit above it. The one rule for every notice."""
    units = [site.organisation_id]
    if include_parent:
        parent = session.scalar(select(Organisation.parent_id).where(Organisation.id == site.organisation_id))
        if parent is not None:
            units.append(parent)
    return list(session.scalars(select(User).where(User.organisation_id.in_(units), User.active.is_(True),
                                                   User.role.in_(NOTICE_ROLES)).order_by(User.id)))


def _tell(session: Session, outage: ScreenOutage, kind: str, users: list[User], now: datetime) -> int:
    for user in users:
        session.add(Notice(user_id=user.id, outage=outage, kind=kind, created_at=now, email_due=bool(user.email),
                           email_attempts=0))
    return len(users)


def note_outages(session: Session, now: datetime, after: timedelta, include_parent: bool) -> tuple[int, int]:
    """Open an episode for each screen in service dark in its peak hours for `after` or longer, close the open
    ones whose screen reports again; returns (opened, closed). Idempotent: an open episode is never opened again."""
    open_outages = {o.screen_id: o for o in session.scalars(select(ScreenOutage).where(
        ScreenOutage.ended_at.is_(None)))}
    heard = select(PlayerPresence.player_id)
    screens = {s.id: s for s in session.scalars(
        select(Screen).options(joinedload(Screen.site)).where(
            Screen.in_service, Screen.id.in_(heard) | Screen.id.in_(list(open_outages))))}
    states = screen_states(session, list(screens), now)
    opened = closed = 0
    for screen_id, outage in open_outages.items():
        screen, state = screens.get(screen_id), states.get(screen_id)
        if screen is None:  # disabled or retired meanwhile: the episode ends untold
            outage.ended_at = now
        elif state is not None and state.state == "online":
            outage.ended_at = now
            _tell(session, outage, "back_online", recipients(session, screen.site, include_parent), now)
            closed += 1
    for screen_id, screen in screens.items():
        if screen_id in open_outages:
            continue
        since = dark_since(states[screen_id], screen.site, now)
        if since is None or now - since < after:
            continue
        outage = ScreenOutage(screen_id=screen_id, dark_since=since, noticed_at=now)
        session.add(outage)
        _tell(session, outage, "offline", recipients(session, screen.site, include_parent), now)
        opened += 1
    return opened, closed


# -- the words -------------------------------------------------------------------------------------------------

def _local(instant: datetime, zone: str) -> str:
    return instant.astimezone(ZoneInfo(zone)).strftime("%H:%M %d/%m/%Y")


def notice_text(notice: Notice, screen: Screen) -> tuple[str, str]:
    """A notice's subject and body, in Vietnamese (the language of the unit's staff; the page offers English)."""
    site, outage = screen.site, notice.outage
    where = f"{screen.name} — {site.name}"
    if notice.kind == "offline":
        return (f"Màn hình mất kết nối trong giờ cao điểm: {where}",
                f"Màn hình {screen.name} ({screen.id}) tại {site.name} không hoạt động từ "
                f"{_local(outage.dark_since, site.timezone)}, trong giờ cao điểm của điểm đặt.\n"
                f"Hãy kiểm tra nguồn điện, mạng và máy phát của màn hình.")
    return (f"Màn hình đã hoạt động trở lại: {where}",
            f"Màn hình {screen.name} ({screen.id}) tại {site.name} đã hoạt động trở lại lúc "
            f"{_local(outage.ended_at or notice.created_at, site.timezone)} "
            f"(mất kết nối từ {_local(outage.dark_since, site.timezone)}).")


# -- the e-mails -----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Mail:
    to: str
    subject: str
    body: str
    notice_ids: tuple[int, ...]


def mails_due(session: Session, now: datetime, timezone: str) -> list[Mail]:
    """One mail per notice for users who want them at once; for those who chose the digest, one mail a day with
    the notices of the days before today (local time in `timezone`)."""
    today = now.astimezone(ZoneInfo(timezone)).date()
    pending = session.execute(
        select(Notice, User, Screen).join(User, User.id == Notice.user_id)
        .join(ScreenOutage, ScreenOutage.id == Notice.outage_id).join(Screen, Screen.id == ScreenOutage.screen_id)
        .options(joinedload(Screen.site), joinedload(Notice.outage))
        .where(Notice.email_due.is_(True), Notice.emailed_at.is_(None), User.email.is_not(None))
        .order_by(Notice.user_id, Notice.created_at, Notice.id)).all()
    mails, digests = [], {}
    for notice, user, screen in pending:
        subject, body = notice_text(notice, screen)
        if not user.notice_digest:
            mails.append(Mail(user.email, subject, body, (notice.id,)))
        elif notice.created_at.astimezone(ZoneInfo(timezone)).date() < today:
            digests.setdefault(user.email, []).append((notice.id, subject, body))
    for address, items in digests.items():
        mails.append(Mail(address, f"Tình trạng màn hình: {len(items)} thông báo",
                          "\n\n".join(f"• {subject}\n{body}" for _, subject, body in items),
                          tuple(notice_id for notice_id, _, _ in items)))
    return mails


def send_mail(settings: Settings, mail: Mail) -> None:
    """Through the SMTP server of the settings (STARTTLS and login when set); raises what the server answered."""
    message = EmailMessage()
    message["From"] = settings.smtp_from
    message["To"] = mail.to
    message["Subject"] = mail.subject
    message.set_content(mail.body)
    with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=settings.smtp_timeout) as smtp:
        if settings.smtp_starttls:
            smtp.starttls()
        if settings.smtp_user:
            smtp.login(settings.smtp_user, settings.smtp_password.get_secret_value() if settings.smtp_password
                       else "")
        smtp.send_message(message)


class OutageNotices:
    """The job: note outages, then send what is due; `holds_lease` is the planning service's."""

    def __init__(self, database: Database, clock: Clock, settings: Settings,
                 holds_lease: Callable[[datetime], bool], send: Callable[[Settings, Mail], None] = send_mail) -> None:
        self.database = database
        self.clock = clock
        self.settings = settings
        self.holds_lease = holds_lease
        self.send = send

    def run(self) -> tuple[int, int, int]:
        """(episodes opened, episodes closed, mails sent); nothing on a server that does not hold the lease."""
        now = self.clock.now()
        if not self.holds_lease(now):
            return 0, 0, 0
        with transaction(self.database.sessions) as session:
            opened, closed = note_outages(session, now, timedelta(minutes=self.settings.offline_notice_minutes),
                                          self.settings.offline_notice_parent)
        if opened or closed:
            log.info("outages: %d screens dark in their peak hours told, %d back told", opened, closed)
        return opened, closed, self.send_emails(now)

    def send_emails(self, now: datetime) -> int:
        if not self.settings.smtp_host:
            return 0
        with self.database.sessions() as session:
            mails = mails_due(session, now, self.settings.timezone)
        sent = 0
        for mail in mails:
            try:
                self.send(self.settings, mail)
            except (OSError, smtplib.SMTPException) as exc:  # the server is down or refused: kept for next round
                reason = f"{type(exc).__name__}: {exc}"[:REASON_LENGTH]
                log.warning("could not e-mail a notice to %s: %s", mail.to, reason)
                with transaction(self.database.sessions) as session:
                    for notice in session.scalars(select(Notice).where(Notice.id.in_(mail.notice_ids))):
                        notice.email_attempts += 1
                        notice.email_error = reason
                break  # the rest would most likely fail alike; they go next round, in order
            with transaction(self.database.sessions) as session:
                for notice in session.scalars(select(Notice).where(Notice.id.in_(mail.notice_ids))):
                    notice.emailed_at = now
                    notice.email_error = None
            sent += 1
        return sent


__all__ = ["KINDS", "Mail", "NOTICE_ROLES", "OutageNotices", "mails_due", "note_outages", "notice_text",
           "recipients", "send_mail"]
