"""Only one scheduler plans at a time, even with two server processes on one database.

The lease is a row; taking it is one UPDATE that succeeds only for its holder or once it has
expired, which both SQLite and PostgreSQL apply atomically.
"""

from __future__ import annotations

import os
import socket
import uuid
from datetime import datetime, timedelta

from sqlalchemy import or_, update
from sqlalchemy.orm import Session, sessionmaker

from scheduler.models import SchedulerLease

PLANNER_LEASE = "planner"
LEASE_SECONDS = 15


def make_holder_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Lease:
    def __init__(self, sessions: sessionmaker[Session], holder: str, name: str = PLANNER_LEASE,
                 seconds: int = LEASE_SECONDS) -> None:
        self.sessions = sessions
        self.holder = holder
        self.name = name
        self.duration = timedelta(seconds=seconds)

    def acquire(self, now: datetime) -> bool:
        """Take or renew the lease; False while another holder's lease runs."""
        with self.sessions() as session, session.begin():
            taken = session.execute(
                update(SchedulerLease)
                .where(SchedulerLease.name == self.name,
                       or_(SchedulerLease.holder == self.holder, SchedulerLease.expires_at <= now))
                .values(holder=self.holder, expires_at=now + self.duration)
            )
            return taken.rowcount == 1

    def release(self, now: datetime) -> None:
        with self.sessions() as session, session.begin():
            session.execute(update(SchedulerLease)
                            .where(SchedulerLease.name == self.name, SchedulerLease.holder == self.holder)
                            .values(holder="", expires_at=now))


def lease_holder(session: Session, now: datetime, name: str = PLANNER_LEASE) -> str | None:
    """Who holds the lease now, or None when nobody does (never taken, released, or expired)."""
    row = session.get(SchedulerLease, name)
    return row.holder if row is not None and row.holder and row.expires_at > now else None
