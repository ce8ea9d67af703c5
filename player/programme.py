"""What a plan asks of a screen at any moment: the pure part of the agent, tested on virtual time.

Given the plan, the instant and what has happened so far (which spots played, which media are
cached), `next_action` says what to do now: blank the screen outside operating hours, play a spot at
its time (joining it at the right offset when late), make good a spot that could not play at the
next free moment inside the same day's remaining peak windows, or fill the gap with the house loop,
cut at the next spot's start.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from signage.protocol import Plan, Spot

# A spot joined with less than this left is not started (it would only flash): it is made good instead.
MIN_JOIN_REMAINING = timedelta(seconds=2)
# docs/design.md §3: a play is completed when it ran to the media's end within 500 ms.
COMPLETION_TOLERANCE = timedelta(milliseconds=500)
# A spot started this little after its time is on time: it plays whole, not joined part-way.
ON_TIME = COMPLETION_TOLERANCE
# An item whose end playback has not reported this long after it was due is cut by the agent's watchdog.
WATCHDOG_GRACE = timedelta(seconds=3)

SpotOutcome = Literal["completed", "made_good", "interrupted", "failed", "missed"]
DONE: frozenset[str] = frozenset({"completed", "made_good"})


@dataclass(frozen=True)
class Action:
    kind: Literal["blank", "spot", "makegood", "filler", "miss", "wait"]
    until: datetime  # when to look again at the latest (the action's natural end, or the next boundary)
    media: str | None = None
    duration_ms: int | None = None
    start_offset_ms: int = 0
    spot: Spot | None = None
    reason: str | None = None


class Programme:
    def __init__(self, plan: Plan, *, play_filler: bool = True) -> None:
        """`play_filler=False`: the screen stays dark between spots (the simulator's fast mode)."""
        self.plan = plan
        self.play_filler = play_filler
        self.zone = ZoneInfo(plan.timezone)
        self._starts = [spot.start for spot in plan.spots]
        self._filler_index = 0

    # -- the plan's shape -------------------------------------------------------------------------

    def local_date(self, now: datetime) -> date:
        return now.astimezone(self.zone).date()

    def operating_at(self, now: datetime) -> bool:
        return any(span.start <= now < span.end for span in self.plan.operating_hours)

    def open_at(self, now: datetime) -> bool:
        """Whether the screen is open at `now`: inside the plan's validity and its operating hours."""
        return self.plan.valid_from <= now < self.plan.valid_until and self.operating_at(now)

    def peak_at(self, now: datetime) -> bool:
        return any(span.start <= now < span.end for span in self.plan.peak_windows)

    def _peak_end(self, now: datetime) -> datetime | None:
        return next((span.end for span in self.plan.peak_windows if span.start <= now < span.end), None)

    def current_spot(self, now: datetime) -> Spot | None:
        index = bisect_right(self._starts, now) - 1
        if index >= 0 and now < self.plan.spots[index].end:
            return self.plan.spots[index]
        return None

    def next_spot(self, now: datetime) -> Spot | None:
        index = bisect_right(self._starts, now)
        return self.plan.spots[index] if index < len(self.plan.spots) else None

    def spots_on(self, day: date) -> list[Spot]:
        return [spot for spot in self.plan.spots if self.local_date(spot.start) == day]

    # -- decisions ----------------------------------------------------------------------------------

    def owed_makegoods(self, now: datetime, outcomes: Mapping[str, SpotOutcome]) -> list[Spot]:
        """Today's spots whose time has passed without a completed play, oldest first."""
        today = self.local_date(now)
        return [spot for spot in self.spots_on(today)
                if spot.end <= now and outcomes.get(spot.spot_id) not in DONE]

    def next_action(self, now: datetime, outcomes: Mapping[str, SpotOutcome],
                    cached: Callable[[str], bool]) -> Action:
        """What to do now. `outcomes` by spot id (what the journal knows); `cached(sha)` says whether a
        file is ready to play. A spot that cannot play at its time comes back as a "miss" for the agent to
        record (and later make good); the agent then calls again."""
        if not self.open_at(now):
            return Action("blank", until=self._next_boundary(now))
        boundary = self._next_boundary(now)

        spot = self.current_spot(now)
        if spot is not None and spot.spot_id not in outcomes:
            if not cached(spot.media):
                return Action("miss", until=now, spot=spot, reason="media not cached")
            late = now - spot.start
            if late <= ON_TIME:
                late = timedelta(0)  # the loop's own latency: play it whole, as planned
            elif spot.end - now < MIN_JOIN_REMAINING:
                return Action("miss", until=now, spot=spot, reason="too late to join")
            offset = int(late / timedelta(milliseconds=1))
            return Action("spot", until=spot.end, media=spot.media, duration_ms=spot.duration_ms,
                          start_offset_ms=offset, spot=spot)

        peak_end = self._peak_end(now)
        if peak_end is not None:
            room_until = min(peak_end, boundary)
            for owed in self.owed_makegoods(now, outcomes):
                length = timedelta(milliseconds=owed.duration_ms)
                if cached(owed.media) and now + length <= room_until:
                    return Action("makegood", until=now + length, media=owed.media, duration_ms=owed.duration_ms,
                                  spot=owed)

        filler = self._next_filler(cached)
        if filler is not None:
            sha, duration_ms = filler
            return Action("filler", until=min(now + timedelta(milliseconds=duration_ms), boundary), media=sha,
                          duration_ms=duration_ms)
        return Action("wait", until=boundary, reason="nothing cached to fill with")

    def gap_end(self, now: datetime) -> datetime:
        """Where the gap the programme fills at `now` ends: the next spot, the end of operating hours or of the
        plan."""
        hours = self.plan.operating_hours
        ends = [self.plan.valid_until, *(span.end for span in hours if span.start <= now < span.end)]
        upcoming = self.next_spot(now)
        if upcoming is not None:
            ends.append(upcoming.start)
        return min(ends)

    def _next_boundary(self, now: datetime) -> datetime:
        """The next moment the programme changes: a spot starts or ends, operating hours open or close."""
        candidates = [self.plan.valid_until, self.plan.valid_from] if now < self.plan.valid_from else [
            self.plan.valid_until]
        upcoming = self.next_spot(now)
        if upcoming is not None:
            candidates.append(upcoming.start)
        candidates += [t for span in self.plan.operating_hours for t in (span.start, span.end) if t > now]
        return min(candidates)

    def _next_filler(self, cached: Callable[[str], bool]) -> tuple[str, int] | None:
        loop = self.plan.filler if self.play_filler else []
        for step in range(len(loop)):
            sha = loop[(self._filler_index + step) % len(loop)]
            if cached(sha):
                self._filler_index = (self._filler_index + step + 1) % len(loop)
                return sha, self.plan.media[sha].duration_ms
        return None


def play_status(started: datetime, ended: datetime, expected_ms: int) -> Literal["completed", "interrupted"]:
    """Completed when the play lasted its full length, within the 500 ms of docs/design.md §3."""
    lasted = ended - started
    return "completed" if lasted + COMPLETION_TOLERANCE >= timedelta(milliseconds=expected_ms) else "interrupted"
