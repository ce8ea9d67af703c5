"""Telling people: the in-app notices of each user and their e-mails, for every kind of notice the server makes
(a screen dark in its peak hours and back: scheduler/outage_notices.py; a deadline near, a unit about to go late:
the other noters).

A **noter** is a function `(session, now) -> result` that makes the notices due at `now` with `tell`; it must be
idempotent (the job runs it every minute). `NoticeJob` runs the noters it was given, each in its own transaction,
on the holder of the planning lease only (so two servers never tell twice), then hands the e-mails due to the
mail server: one per notice for users who want them at once, or one a day for those who chose the digest. A
notice is marked sent only once the server took it; one the server refused stays, its attempts counted, for the
next round. The job runs on APScheduler's thread, never on the event loop, so SMTP may block.
"""

from __future__ import annotations

import logging
import smtplib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from campaigns.kinds import Role
from campaigns.models import User
from scheduler.database import Database
from scheduler.models import Notice, ScreenOutage
from signage.clock import Clock
from signage.config import Settings
from signage.db import transaction
from signage.limits import NOTICE_SUBJECT_LENGTH, REASON_LENGTH

log = logging.getLogger("signage.notices")

NOTICE_ROLES = (Role.manager, Role.staff)
RUN_EVERY = timedelta(minutes=1)

Noter = Callable[[Session, datetime], Any]


def people_of(session: Session, organisation_ids: Iterable[str]) -> list[User]:
    """Who a unit's notices go to: the active managers and staff of the given units (heads approve, admins
    administer: neither is told). The one rule for every notice."""
    return list(session.scalars(select(User).where(
        User.organisation_id.in_(list(organisation_ids)), User.active.is_(True), User.role.in_(NOTICE_ROLES))
        .order_by(User.id)))


def tell(session: Session, users: Iterable[User], kind: str, now: datetime, subject: str, body: str,
         link: str | None = None, outage: ScreenOutage | None = None) -> int:
    """A notice to each of `users`, e-mailed to those with an address; returns how many were made."""
    told = 0
    for user in users:
        session.add(Notice(user_id=user.id, outage=outage, kind=kind, subject=subject[:NOTICE_SUBJECT_LENGTH],
                           body=body, link=link, created_at=now, email_due=bool(user.email), email_attempts=0))
        told += 1
    return told


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
        select(Notice, User).join(User, User.id == Notice.user_id)
        .where(Notice.email_due.is_(True), Notice.emailed_at.is_(None), User.email.is_not(None))
        .order_by(Notice.user_id, Notice.created_at, Notice.id)).all()
    mails, digests = [], {}
    for notice, user in pending:
        if not user.notice_digest:
            mails.append(Mail(user.email, notice.subject, notice.body, (notice.id,)))
        elif notice.created_at.astimezone(ZoneInfo(timezone)).date() < today:
            digests.setdefault(user.email, []).append((notice.id, notice.subject, notice.body))
    for address, items in digests.items():
        mails.append(Mail(address, f"Thông báo của hệ thống màn hình: {len(items)} thông báo",
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


class NoticeJob:
    """The job: run each noter, then send what is due; `holds_lease` is the planning service's."""

    def __init__(self, database: Database, clock: Clock, settings: Settings,
                 holds_lease: Callable[[datetime], bool], noters: Mapping[str, Noter],
                 send: Callable[[Settings, Mail], None] = send_mail) -> None:
        self.database = database
        self.clock = clock
        self.settings = settings
        self.holds_lease = holds_lease
        self.noters = dict(noters)
        self.send = send

    def run(self) -> dict[str, Any]:
        """Each noter's result by its name, and "mailed": the mails sent; empty on a server without the lease."""
        now = self.clock.now()
        if not self.holds_lease(now):
            return {}
        results: dict[str, Any] = {}
        for name, noter in self.noters.items():
            try:
                with transaction(self.database.sessions) as session:
                    results[name] = noter(session, now)
            except Exception:  # one noter's fault must not keep the others' notices or the mails back
                log.exception("the %s notices could not be made this round", name)
                results[name] = None
        results["mailed"] = self.send_emails(now)
        return results

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


__all__ = ["NOTICE_ROLES", "RUN_EVERY", "Mail", "NoticeJob", "Noter", "mails_due", "people_of", "send_mail",
           "tell"]
