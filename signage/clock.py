"""Time comes from a clock that is passed in, so tests and the simulator can run on virtual time."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo


class Clock(Protocol):
    def now(self) -> datetime:
        """The current instant, timezone-aware, in UTC."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class VirtualClock:
    """A clock that only moves when told to: for tests and the simulator."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("VirtualClock needs a timezone-aware start, e.g. datetime(..., tzinfo=UTC)")
        self._now = start.astimezone(UTC)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def advance(self, delta: timedelta) -> datetime:
        if delta < timedelta(0):
            raise ValueError("a virtual clock does not run backwards; use set() for a jump")
        with self._lock:
            self._now += delta
            return self._now

    def set(self, instant: datetime) -> None:
        if instant.tzinfo is None:
            raise ValueError("set() needs a timezone-aware instant")
        with self._lock:
            self._now = instant.astimezone(UTC)


class OffsetClock:
    """Another clock, some way ahead (or behind, negative): a player whose clock is off, in the simulator."""

    def __init__(self, base: Clock, offset: timedelta) -> None:
        self.base = base
        self.offset = offset

    def now(self) -> datetime:
        return self.base.now() + self.offset


def local_date(instant: datetime, timezone: str) -> date:
    """The calendar date at `instant` for someone standing in `timezone`."""
    if instant.tzinfo is None:
        raise ValueError("local_date() needs a timezone-aware instant")
    return instant.astimezone(ZoneInfo(timezone)).date()


def local_today(clock: Clock, timezone: str) -> date:
    return local_date(clock.now(), timezone)
