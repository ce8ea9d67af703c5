"""Daily time windows and week schedules: operating hours and peak windows of a site.

In files a week schedule is a mapping of day-specs to lists of "HH:MM-HH:MM" windows:

    peak_windows:
      mon-fri: ["08:00-11:00", "14:00-16:30"]
      sat: ["08:00-11:00"]

Day-specs are mon..sun, a range such as mon-fri, or daily; a later key overrides an earlier one
for the days it names. A day that no key names has no windows.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from signage.errors import Invalid

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
MINUTES_PER_DAY = 24 * 60
_CLOCK_RE = re.compile(r"^(\d{1,2}):(\d{2})$")

TIME_FIX = "write times as HH:MM from 00:00 to 24:00, e.g. 08:00-11:30"
WINDOW_FIX = ("write a window as HH:MM-HH:MM with the end after the start, e.g. 08:00-11:00; "
              "a window across midnight is two windows, one on each day")
DAYS_FIX = "use mon, tue, wed, thu, fri, sat, sun, a range such as mon-fri, or daily"


def parse_clock(text: str) -> int:
    """'08:30' -> minutes after midnight; '24:00' is allowed as the end of the day."""
    match = _CLOCK_RE.match(text.strip())
    if not match:
        raise Invalid(f"{text!r} is not a time of day", TIME_FIX)
    hours, minutes = int(match[1]), int(match[2])
    if minutes > 59 or hours > 24 or (hours == 24 and minutes != 0):
        raise Invalid(f"{text!r} is not a time of day", TIME_FIX)
    return hours * 60 + minutes


def format_clock(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


@dataclass(frozen=True, order=True)
class Window:
    """A span of one day, [start, end) in minutes after local midnight."""

    start: int
    end: int

    def __post_init__(self) -> None:
        if not (0 <= self.start < self.end <= MINUTES_PER_DAY):
            raise Invalid(f"{format_clock(self.start)}-{format_clock(self.end)} ends before it starts", WINDOW_FIX)

    @classmethod
    def parse(cls, text: str) -> Window:
        parts = str(text).split("-")
        if len(parts) != 2:
            raise Invalid(f"{text!r} is not a window", WINDOW_FIX)
        start, end = parse_clock(parts[0]), parse_clock(parts[1])
        if end <= start:
            raise Invalid(f"{text!r} ends before it starts", WINDOW_FIX)
        return cls(start, end)

    @property
    def minutes(self) -> int:
        return self.end - self.start

    def contains(self, other: Window) -> bool:
        return self.start <= other.start and other.end <= self.end

    def __str__(self) -> str:
        return f"{format_clock(self.start)}-{format_clock(self.end)}"


def parse_day_spec(spec: str) -> list[int]:
    """'mon-fri' -> [0, 1, 2, 3, 4]; 'daily' -> all seven; 'sat' -> [5]."""
    key = str(spec).strip().lower()
    if key in ("daily", "all", "every day"):
        return list(range(7))
    if key in DAY_NAMES:
        return [DAY_NAMES.index(key)]
    first, sep, last = key.partition("-")
    if sep and first in DAY_NAMES and last in DAY_NAMES:
        a, b = DAY_NAMES.index(first), DAY_NAMES.index(last)
        if a <= b:
            return list(range(a, b + 1))
    raise Invalid(f"{spec!r} is not a day or range of days", DAYS_FIX)


@dataclass(frozen=True)
class WeekSchedule:
    """Windows for each weekday, Monday first; each day's windows sorted and not overlapping."""

    days: tuple[tuple[Window, ...], ...]

    def __post_init__(self) -> None:
        if len(self.days) != 7:
            raise ValueError("a week schedule has exactly seven days")
        for index, windows in enumerate(self.days):
            for before, after in zip(windows, windows[1:], strict=False):
                if after.start < before.end:
                    raise Invalid(f"on {DAY_NAMES[index]} the windows {before} and {after} overlap",
                                  "merge them into one window or move one of them")

    @classmethod
    def from_spec(cls, spec: Mapping[str, Iterable[str]]) -> WeekSchedule:
        days: list[tuple[Window, ...]] = [() for _ in range(7)]
        for day_spec, windows in spec.items():
            if isinstance(windows, str):
                windows = [windows]
            parsed = tuple(sorted(Window.parse(w) for w in windows))
            for day in parse_day_spec(day_spec):
                days[day] = parsed
        return cls(tuple(days))

    @classmethod
    def empty(cls) -> WeekSchedule:
        return cls(tuple(() for _ in range(7)))

    def on(self, day: date) -> tuple[Window, ...]:
        return self.days[day.weekday()]

    def to_spec(self) -> dict[str, list[str]]:
        """The shortest mapping that reads back to the same schedule: runs of equal days become ranges."""
        spec: dict[str, list[str]] = {}
        index = 0
        while index < 7:
            end = index
            while end + 1 < 7 and self.days[end + 1] == self.days[index]:
                end += 1
            if self.days[index]:
                if index == 0 and end == 6:
                    key = "daily"
                elif index == end:
                    key = DAY_NAMES[index]
                else:
                    key = f"{DAY_NAMES[index]}-{DAY_NAMES[end]}"
                spec[key] = [str(w) for w in self.days[index]]
            index = end + 1
        return spec

    def problems_outside(self, outer: WeekSchedule) -> list[str]:
        """Windows of this schedule that do not lie inside a window of `outer` on the same day."""
        problems = []
        for index, windows in enumerate(self.days):
            for window in windows:
                if not any(o.contains(window) for o in outer.days[index]):
                    hours = ", ".join(str(o) for o in outer.days[index]) or "closed"
                    problems.append(
                        f"on {DAY_NAMES[index]} the window {window} is outside operating hours ({hours}); "
                        "move it inside them or widen the operating hours"
                    )
        return problems


def window_instants(day: date, window: Window, timezone: str) -> tuple[datetime, datetime]:
    """The aware start and end instants of a window on a local date (24:00 is the next midnight)."""
    zone = ZoneInfo(timezone)
    midnight = datetime.combine(day, time(0), zone)
    # Wall-clock arithmetic: add minutes to the naive local time and re-attach the zone, so a
    # window keeps its local times on days when the zone changes its offset.
    start = (midnight.replace(tzinfo=None) + timedelta(minutes=window.start)).replace(tzinfo=zone)
    end = (midnight.replace(tzinfo=None) + timedelta(minutes=window.end)).replace(tzinfo=zone)
    return start, end
