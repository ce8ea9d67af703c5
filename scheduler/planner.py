"""The planner (docs/design.md §4): screens and campaigns in, one Plan per player out. A pure, deterministic function.

No database and no clock: the caller resolves screens, campaigns and targets into the frozen dataclasses below
and passes `generated_at`. The same inputs give byte-identical plans.

How a day is planned on a screen:
- A campaign's window for the day is the site's peak windows (policy `peak`), its operating hours (`operating`)
  or the campaign's own windows (`explicit`), always intersected with operating hours: a screen is off outside
  them. Days on which that window is empty ask nothing of the campaign (a ward office on Sunday).
- The `r` spots spread over the window taken as one timeline of length W: the j-th (1-based) aims to start at
  offset (j − ½)·W/r and moves to the nearest free whole second (nearest on that timeline, earlier on a tie).
- Operating hours are cut at the peak-window edges into cells (each peak window is one cell); all campaign spots
  together take at most `max_share` of each cell, and a spot never straddles two cells or two windows.
- Two spots of one campaign keep at least one spot length (the campaign's longest creative) apart when the day
  allows it; otherwise they may come closer, never overlap.
- Higher priority places first, ties by campaign id; a spot that finds no room is a shortfall, "no capacity".
- Creatives rotate round-robin, continuing from day to day (day d starts at ordinal(d)·r mod n), so each gets an
  even share. Speakers take audio creatives only, LCD and LED screens video and images only.

Versions of a creative (creatives sharing a `slot`: one per language, per screen format) fill one place in that
rotation, and a play of any version is one play of the campaign (one spot under its id: counts, compliance, the
ledger and proof-of-play know the campaign, not the version). Where a slot is due on a screen:
- format: of the slot's versions the screen can play, those whose media resolution is the screen's; else those of
  the screen's orientation (a landscape screen takes landscape media, by the media's width and height); else all;
- language: at a site whose audience is international (`PlanScreen.international_audience`, the site's setting or
  its kind's default) the slot's plays of the day go through its languages in turn, Vietnamese first, then a
  version of no language, then the others in their order; elsewhere the Vietnamese (or language-less) version
  plays, else the first.
- A campaign's spot length, for the gap between its spots, stays its longest creative, versions included.

A spot's id is 32 hex digits: 16 from sha256 of the player id, then 16 from sha256 of (campaign id, local
date, j). It stays the same when a re-plan moves the spot, and is unique across players and days.

Screens that agree on timezone, windows, media they can play, house loop and, per campaign, whether they are
targeted and at which rate, share one computation (a placement); per player only the player id and the spot
ids differ. Day layouts are shared further, between placements and days that ask for the same thing.
"""

from __future__ import annotations

import hashlib
import json
import re
from bisect import bisect_left, bisect_right
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from functools import cached_property
from zoneinfo import ZoneInfo

from campaigns.kinds import MediaKind, Orientation, ScreenKind, SiteKind, WindowPolicy
from campaigns.windows import WeekSchedule, Window, window_instants
from signage.protocol import PLAN_SCHEMA, MediaEntry, Plan, canonical_json, format_instant, format_utc_instant

NO_CAPACITY = "no capacity"
NO_PLAYABLE_CREATIVE = "no playable creative"
DEFAULT_MAX_SHARE = 0.5
FIRST_LANGUAGE = "vi"
TARGET_KINDS = ("organisation", "site_kind", "site", "screen", "group")

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_SECOND_MS = 1000

# Intervals are [lo, hi) in milliseconds of real time after the local midnight of their day.
Interval = tuple[int, int]


def _check_org_path(path: str, what: str) -> None:
    if not (path.startswith("/") and path.endswith("/")):
        raise ValueError(f"{what} {path!r} is not an organisation path; write it like /hn/hn-hadong/ "
                         "(leading and trailing slash), as Organisation.path stores it")


@dataclass(frozen=True, slots=True)
class PlanCreative:
    """One media file as a campaign plays it; `duration_ms` is one play (the display time for an image).

    Creatives of a campaign that share a `slot` are versions of one creative (None: a slot of its own); `language`
    is the version's ("vi", "en"...; None: any), `width` and `height` the media's pixels (None for audio).
    """

    sha256: str
    kind: MediaKind
    mime: str
    bytes: int
    duration_ms: int
    slot: int | None = None
    language: str | None = None
    width: int | None = None
    height: int | None = None

    def __post_init__(self) -> None:
        if not _SHA256.match(self.sha256):
            raise ValueError(f"{self.sha256!r} is not a sha256 in lowercase hex")
        if self.duration_ms <= 0:
            raise ValueError(f"the creative {self.sha256[:12]} lasts {self.duration_ms} ms; give it a positive "
                             "duration (an image's display time, a clip's length)")


@dataclass(frozen=True, slots=True)
class PlanScreen:
    """A screen (its id is the player id) with what the planner needs of its site and organisation.

    `house_loop` is the screen's organisation's own filler loop, when staff set one. `width`, `height` and
    `orientation` choose among a creative's versions by format, `international_audience` by language.
    """

    id: str
    kind: ScreenKind
    site_id: str
    site_kind: SiteKind
    timezone: str
    organisation_path: str
    operating_hours: WeekSchedule
    peak_windows: WeekSchedule
    group_ids: frozenset[str] = frozenset()
    house_loop: tuple[PlanCreative, ...] = ()
    width: int | None = None
    height: int | None = None
    orientation: Orientation | None = None
    international_audience: bool = False

    def __post_init__(self) -> None:
        _check_org_path(self.organisation_path, f"screen {self.id}: the organisation path")
        ZoneInfo(self.timezone)  # an unknown zone fails here, naming itself, not deep inside planning

    def can_play(self, kind: MediaKind) -> bool:
        return (kind is MediaKind.audio) == (self.kind is ScreenKind.speaker)

    @property
    def format(self) -> tuple[int | None, int | None, Orientation | None]:
        """Resolution and orientation (given, else from the resolution): what chooses among versions by format."""
        return self.width, self.height, self.orientation or _orientation(self.width, self.height)


@dataclass(frozen=True, slots=True)
class PlanOverride:
    """A head of unit's raise of the rate on the screens of one organisation subtree or one site."""

    plays_per_day: int
    organisation_path: str | None = None
    site_id: str | None = None

    def __post_init__(self) -> None:
        if (self.organisation_path is None) == (self.site_id is None):
            raise ValueError("an override applies to exactly one organisation path or one site id")
        if self.organisation_path is not None:
            _check_org_path(self.organisation_path, "the override's organisation path")

    def covers(self, organisation_path: str, site_id: str | None) -> bool:
        """Whether it covers the screens of a site (its id and its organisation's path) or, with no site id, of a
        whole organisation."""
        if self.organisation_path is not None:
            return organisation_path.startswith(self.organisation_path)
        return site_id == self.site_id


@dataclass(frozen=True, slots=True)
class PlanCampaign:
    """A campaign with its targets already resolved (see `resolve_targets` for the stored (kind, ref) rows).

    A screen is targeted when it lies in one of `target_org_paths` (or, when only site kinds are given, in the
    owner's subtree `organisation_path`) and its site kind is among `target_site_kinds` (any when empty), or it
    is in `target_sites`, `target_screens`, or a member of one of `target_groups`.
    """

    id: str
    organisation_path: str
    start_date: date
    end_date: date
    creatives: tuple[PlanCreative, ...]
    plays_per_day: int = 10
    window_policy: WindowPolicy = WindowPolicy.peak
    explicit_windows: WeekSchedule | None = None
    priority: int = 0
    target_org_paths: frozenset[str] = frozenset()
    target_site_kinds: frozenset[SiteKind] = frozenset()
    target_sites: frozenset[str] = frozenset()
    target_screens: frozenset[str] = frozenset()
    target_groups: frozenset[str] = frozenset()
    overrides: tuple[PlanOverride, ...] = ()

    def __post_init__(self) -> None:
        _check_org_path(self.organisation_path, f"campaign {self.id}: the owner's organisation path")
        for path in self.target_org_paths:
            _check_org_path(path, f"campaign {self.id}: the target")
        if self.end_date < self.start_date:
            raise ValueError(f"campaign {self.id} ends ({self.end_date}) before it starts ({self.start_date})")
        if self.plays_per_day < 1:
            raise ValueError(f"campaign {self.id} asks for {self.plays_per_day} plays a day; ask for at least 1")
        if (self.window_policy is WindowPolicy.explicit) != (self.explicit_windows is not None):
            raise ValueError(f"campaign {self.id}: explicit_windows goes with window_policy explicit, and only "
                             "with it")

    def targets(self, screen: PlanScreen) -> bool:
        kind_ok = not self.target_site_kinds or screen.site_kind in self.target_site_kinds
        roots = self.target_org_paths or ((self.organisation_path,) if self.target_site_kinds else ())
        if kind_ok and any(screen.organisation_path.startswith(root) for root in roots):
            return True
        return (screen.site_id in self.target_sites or screen.id in self.target_screens
                or not self.target_groups.isdisjoint(screen.group_ids))

    def required_plays(self, screen: PlanScreen) -> int:
        """The campaign's rate, raised by the overrides that cover the screen."""
        return raised_rate(self.plays_per_day, self.overrides, screen.organisation_path, screen.site_id)[0]

    def active_on(self, day: date) -> bool:
        return self.start_date <= day <= self.end_date


def raised_rate(plays_per_day: int, overrides: Iterable[PlanOverride], organisation_path: str,
                site_id: str | None = None) -> tuple[int, PlanOverride | None]:
    """The rate a campaign gets on the screens of a site (or, with no site id, of an organisation): its own,
    raised by the highest override that covers them; and that override (the first of equals), None when the
    campaign's own rate stands. The one rule for the planner and for every page that shows a rate."""
    raised = None
    for override in overrides:
        if (override.plays_per_day > (raised.plays_per_day if raised else plays_per_day)
                and override.covers(organisation_path, site_id)):
            raised = override
    return (raised.plays_per_day if raised else plays_per_day), raised


def resolve_targets(rows: Iterable[tuple[str, str]], organisation_paths: Mapping[str, str]) -> dict[str, frozenset]:
    """Stored (kind, ref) target rows as PlanCampaign keyword arguments; organisation ids become paths."""
    found: dict[str, set] = {kind: set() for kind in TARGET_KINDS}
    for kind, ref in rows:
        if kind not in found:
            raise ValueError(f"unknown target kind {kind!r}; expected one of {', '.join(TARGET_KINDS)}")
        if kind == "organisation":
            if ref not in organisation_paths:
                raise ValueError(f"the target organisation {ref!r} is unknown")
            found[kind].add(organisation_paths[ref])
        elif kind == "site_kind":
            found[kind].add(SiteKind(ref))
        else:
            found[kind].add(ref)
    return {"target_org_paths": frozenset(found["organisation"]), "target_site_kinds": frozenset(found["site_kind"]),
            "target_sites": frozenset(found["site"]), "target_screens": frozenset(found["screen"]),
            "target_groups": frozenset(found["group"])}


def _orientation(width: int | None, height: int | None) -> Orientation | None:
    if not width or not height or width == height:
        return None
    return Orientation.landscape if width > height else Orientation.portrait


def creative_slots(creatives: Sequence[PlanCreative]) -> list[tuple[PlanCreative, ...]]:
    """A campaign's creatives as its slots, in the order they first appear: each slot the versions of one
    creative (a creative of no slot is one of its own)."""
    slots: dict[object, list[PlanCreative]] = {}
    for index, creative in enumerate(creatives):
        slots.setdefault(("own", index) if creative.slot is None else creative.slot, []).append(creative)
    return [tuple(versions) for versions in slots.values()]


def versions_to_play(versions: Sequence[PlanCreative], screen: PlanScreen) -> tuple[PlanCreative, ...]:
    """The versions of one slot that a screen plays in turn (the module's rules: format, then language); one,
    except at a site with an international audience; none when it can play none."""
    playable = [v for v in versions if screen.can_play(v.kind)]
    width, height, orientation = screen.format
    fitting = ([v for v in playable if width and (v.width, v.height) == (width, height)]
               or [v for v in playable if orientation and _orientation(v.width, v.height) is orientation]
               or playable)
    by_language: dict[str | None, PlanCreative] = {}
    for version in fitting:
        by_language.setdefault(version.language, version)
    if not by_language:
        return ()
    home = by_language.get(FIRST_LANGUAGE) or by_language.get(None) or fitting[0]
    if not screen.international_audience:
        return (home,)
    first = [v for v in (by_language.get(FIRST_LANGUAGE), by_language.get(None)) if v is not None]
    return (*first, *(v for language, v in by_language.items() if language not in (FIRST_LANGUAGE, None)))


@dataclass(frozen=True, slots=True)
class SummaryRow:
    """Required and planned spots of one campaign on one screen-day; `reason` says why some are missing."""

    campaign_id: str
    screen_id: str
    site_id: str
    date: date
    required: int
    planned: int
    shortfall: int
    reason: str | None


@dataclass(frozen=True, slots=True)
class SiteShortfall:
    """Spots of a campaign that could not be planned on one site on one day, and on how many of its screens."""

    campaign_id: str
    site_id: str
    date: date
    reason: str
    screens: int
    missing: int


# ---------------------------------------------------------------------------------------------------------
# Intervals and time


def _intersect(a: Sequence[Interval], b: Sequence[Interval]) -> list[Interval]:
    out, i, j = [], 0, 0
    while i < len(a) and j < len(b):
        lo, hi = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
        if lo < hi:
            out.append((lo, hi))
        if a[i][1] < b[j][1]:
            i += 1
        else:
            j += 1
    return out


def _subtract(a: Sequence[Interval], b: Sequence[Interval]) -> list[Interval]:
    out = []
    for lo, hi in a:
        cursor = lo
        for b_lo, b_hi in b:
            if b_hi <= cursor or b_lo >= hi:
                continue
            if b_lo > cursor:
                out.append((cursor, b_lo))
            cursor = max(cursor, b_hi)
        if cursor < hi:
            out.append((cursor, hi))
    return out


def _ceil_second(ms: int) -> int:
    return -(-ms // _SECOND_MS) * _SECOND_MS


def _floor_second(ms: int) -> int:
    return ms // _SECOND_MS * _SECOND_MS


@dataclass(frozen=True, slots=True)
class _DayFrame:
    """A local date in a zone: its midnight as an instant, and a fast writer for instants on that day."""

    zone: ZoneInfo
    day: date
    midnight: datetime
    midnight_ts: int
    prefix: str  # "2024-08-20T"
    suffix: str | None  # "+07:00" when the offset holds all day, else None

    def instant(self, ms: int) -> datetime:
        return datetime.fromtimestamp(self.midnight_ts + ms / _SECOND_MS, self.zone)

    def format(self, ms: int) -> str:
        """Same text as format_instant(self.instant(ms)) for a whole second, without building a datetime."""
        if self.suffix is None:
            return format_instant(self.instant(ms))
        seconds = ms // _SECOND_MS
        return f"{self.prefix}{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}{self.suffix}"


def _make_frame(zone: ZoneInfo, day: date) -> _DayFrame:
    midnight = datetime.combine(day, time(0), zone)
    following = datetime.combine(day + timedelta(days=1), time(0), zone)
    constant = midnight.utcoffset() == following.utcoffset()
    text = midnight.isoformat()  # "2024-08-20T00:00:00+07:00"
    return _DayFrame(zone, day, midnight, round(midnight.timestamp()), text[:11], text[19:] if constant else None)


# ---------------------------------------------------------------------------------------------------------
# Laying out one day: pure arithmetic on intervals, shared by every placement that asks the same


@dataclass(frozen=True, slots=True)
class _Segment:
    """A piece of a campaign's window inside one cell; `base` is its offset on the concatenated window."""

    lo: int
    hi: int
    base: int
    cell: int


@dataclass(frozen=True, slots=True)
class _Demand:
    """What one campaign asks of a day: r spots of the given durations spread over its segments."""

    segments: tuple[_Segment, ...]
    durations: tuple[int, ...]  # one per spot, in target order (the rotation already applied)
    separation: int  # wanted gap between two of its spots


@dataclass(frozen=True, slots=True)
class _Layout:
    placed: tuple[tuple[int, int, int], ...]  # (start ms, demand index, spot index j from 0), sorted by start
    planned: tuple[int, ...]  # per demand


class _Timeline:
    """Occupied spans of one screen-day, sorted; they never overlap, so the ends are sorted too."""

    __slots__ = ("starts", "ends")

    def __init__(self) -> None:
        self.starts: list[int] = []
        self.ends: list[int] = []

    def add(self, start: int, end: int) -> None:
        index = bisect_left(self.starts, start)
        self.starts.insert(index, start)
        self.ends.insert(index, end)

    def first_free_from(self, s: int, length: int, gap: int) -> int:
        """The earliest whole second ≥ s at which [s, s + length) keeps `gap` clear of every span."""
        starts, ends = self.starts, self.ends
        while True:
            i = bisect_right(ends, s - gap)
            if i < len(starts) and starts[i] < s + length + gap:
                s = _ceil_second(ends[i] + gap)
            else:
                return s

    def last_free_from(self, s: int, length: int, gap: int) -> int:
        """The latest whole second ≤ s at which [s, s + length) keeps `gap` clear of every span."""
        starts, ends = self.starts, self.ends
        while True:
            i = bisect_left(starts, s + length + gap) - 1
            if i >= 0 and ends[i] + gap > s:
                s = _floor_second(starts[i] - gap - length)
            else:
                return s


def _rightward(lo: int, last_start: int, t: int, length: int, screen: _Timeline, own: _Timeline,
               separation: int) -> int | None:
    """The earliest free whole second at or after t (and lo) that still fits before the segment ends."""
    s = max(_ceil_second(t), _ceil_second(lo))
    while s <= last_start:
        moved = screen.first_free_from(s, length, 0)
        if separation:
            moved = own.first_free_from(moved, length, separation)
        if moved == s:
            return s
        s = moved
    return None


def _leftward(lo: int, last_start: int, t: int, length: int, screen: _Timeline, own: _Timeline,
              separation: int) -> int | None:
    """The latest free whole second at or before t (and the segment's last start) that is not before lo."""
    s = min(_floor_second(t), _floor_second(last_start))
    while s >= lo:
        moved = screen.last_free_from(s, length, 0)
        if separation:
            moved = own.last_free_from(moved, length, separation)
        if moved == s:
            return s
        s = moved
    return None


def _fits(segment: _Segment, s: int, length: int, screen: _Timeline, own: _Timeline, separation: int) -> bool:
    return (segment.lo <= s <= segment.hi - length and screen.first_free_from(s, length, 0) == s
            and (not separation or own.first_free_from(s, length, separation) == s))


def _place_spot(demand: _Demand, target: int, length: int, screen: _Timeline, own: _Timeline, budget: list[int],
                separation: int) -> tuple[int, int] | None:
    """(start, cell) of the free whole second nearest to `target` on the demand's timeline (earlier on a tie)."""
    segments = demand.segments
    # Most spots land at their target. Window edges fall on whole minutes, so starts are whole seconds on the
    # joined timeline too, and only the two either side of the target lie closer than a second.
    before, after = _floor_second(target), _ceil_second(target)
    near, far = (before, after) if target - before <= after - target else (after, before)
    for offset in (near, far) if near != far else (near,):
        for segment in segments:
            s = segment.lo + offset - segment.base
            if budget[segment.cell] >= length and _fits(segment, s, length, screen, own, separation):
                return s, segment.cell

    best: tuple[int, int] | None = None
    best_distance = 0
    for segment in segments:
        if budget[segment.cell] < length or segment.hi - segment.lo < length:
            continue
        first_offset, last_offset = segment.base, segment.base + segment.hi - segment.lo - length
        closest = first_offset - target if target < first_offset else max(0, target - last_offset)
        if best is not None and closest >= best_distance:
            continue
        t = segment.lo + target - segment.base
        last_start = segment.hi - length
        left = _leftward(segment.lo, last_start, t, length, screen, own, separation)
        right = _rightward(segment.lo, last_start, t, length, screen, own, separation)
        for start in (left, right):
            if start is not None and (best is None or abs(start - t) < best_distance):
                best, best_distance = (start, segment.cell), abs(start - t)
    return best


def _lay_out_day(budgets: tuple[int, ...], demands: tuple[_Demand, ...]) -> _Layout:
    """Place each demand's spots in order (demands come in priority order)."""
    budget = list(budgets)
    screen = _Timeline()
    placed: list[tuple[int, int, int]] = []
    planned: list[int] = []
    for index, demand in enumerate(demands):
        own = _Timeline()
        total = sum(s.hi - s.lo for s in demand.segments)
        r = len(demand.durations)
        count = 0
        for j, length in enumerate(demand.durations):
            target = (2 * j + 1) * total // (2 * r)
            found = _place_spot(demand, target, length, screen, own, budget, demand.separation)
            if found is None and demand.separation:
                found = _place_spot(demand, target, length, screen, own, budget, 0)
            if found is None:
                continue
            start, cell = found
            screen.add(start, start + length)
            own.add(start, start + length)
            budget[cell] -= length
            placed.append((start, index, j))
            count += 1
        planned.append(count)
    placed.sort()
    return _Layout(tuple(placed), tuple(planned))


# ---------------------------------------------------------------------------------------------------------
# Placements: one computation per class of equal screens


@dataclass(frozen=True, slots=True)
class _ClassRow:
    campaign_id: str
    date: date
    required: int
    planned: int
    reason: str | None


@dataclass(frozen=True, slots=True)
class _DayResult:
    spots: tuple[tuple[str, str], ...]  # per spot, its JSON split where the player's token goes
    shas: frozenset[str]
    rows: tuple[_ClassRow, ...]


# Per campaign of several versions in a slot (by index in priority order): per slot, the indices in its creatives of
# the versions a screen plays in turn.
VersionChoice = tuple[tuple[int, tuple[tuple[int, ...], ...]], ...]


@dataclass(frozen=True, slots=True)
class _PlacementKey:
    timezone: str
    operating_hours: WeekSchedule
    peak_windows: WeekSchedule
    speaker: bool
    rates: tuple[tuple[int, int], ...]  # (campaign index in priority order, required plays per day)
    house_loop: tuple[PlanCreative, ...]
    versions: VersionChoice = ()


@dataclass(slots=True)
class _Placement:
    """A plan with the player left out: JSON templates around the player id, and the spots split at tokens."""

    body: tuple[str, str, str]  # head, between player id and spots, tail: the versioned body
    full: tuple[str, str, str, str]  # the same with generated_at, and the tail split where the version goes
    spot_pieces: list[str]
    rows: tuple[_ClassRow, ...]
    screens: list[PlanScreen]
    valid: tuple[datetime, datetime]  # valid_from, valid_until: as in the JSON, for the store's columns


# Plans are written from per-placement JSON templates rather than through the models: at fleet scale that is
# some two million spots, which pydantic would serialise in about ten times the time budget. The markers below
# stand where per-player text goes; tests hold the result byte-equal to canonical_json(Plan).
_PLAYER = "\x00player"
_SPOTS = "\x00spots"
_VERSION = "\x00version"
_TOKEN = "\x00token"
_START = "\x00start"


def _split_on(text: str, *markers: str) -> list[str]:
    """Split canonical JSON at the given marker strings (each must occur exactly once, in this order)."""
    parts: list[str] = []
    rest = text
    for marker in markers:
        quoted = json.dumps(marker)
        before, found, rest = rest.partition(quoted)
        if not found or quoted in rest:
            raise ValueError("a campaign id, timezone or media field contains a NUL character")
        parts.append(before)
    parts.append(rest)
    return parts


class _Planner:
    def __init__(self, campaigns: Sequence[PlanCampaign], first_day: date, days: int, generated_at: datetime,
                 max_share: float, filler: tuple[PlanCreative, ...]) -> None:
        self.campaigns = campaigns
        self.dates = tuple(first_day + timedelta(days=k) for k in range(days))
        self.generated_at = format_utc_instant(generated_at)
        self.max_share = max_share
        self.filler = filler
        self._frames: dict[tuple[str, date], _DayFrame] = {}
        self._intervals: dict[tuple[str, date, tuple[Window, ...]], tuple[Interval, ...]] = {}
        self._layouts: dict[tuple[tuple[int, ...], tuple[_Demand, ...]], _Layout] = {}
        self._days: dict[tuple, _DayResult] = {}
        self._slots: dict[tuple[str, date, int], str] = {}
        self._spot_json: dict[tuple[str, str, int], tuple[str, str, str]] = {}
        self.layouts_computed = 0

    # -- time --------------------------------------------------------------------------------------------

    def frame(self, timezone: str, day: date) -> _DayFrame:
        key = (timezone, day)
        if key not in self._frames:
            self._frames[key] = _make_frame(ZoneInfo(timezone), day)
        return self._frames[key]

    def intervals(self, timezone: str, day: date, windows: tuple[Window, ...]) -> tuple[Interval, ...]:
        key = (timezone, day, windows)
        if key not in self._intervals:
            midnight = self.frame(timezone, day).midnight_ts
            spans = (window_instants(day, w, timezone) for w in windows)
            self._intervals[key] = tuple((round((s.timestamp() - midnight) * _SECOND_MS),
                                          round((e.timestamp() - midnight) * _SECOND_MS)) for s, e in spans)
        return self._intervals[key]

    # -- one placement -----------------------------------------------------------------------------------

    def place(self, key: _PlacementKey, screens: list[PlanScreen]) -> _Placement:
        sample = screens[0]
        # Screens of one placement agree on the versions they play (key.versions), so the sample's are theirs.
        playable = {index: _Playable(tuple(s for s in (versions_to_play(v, sample)
                                                       for v in creative_slots(self.campaigns[index].creatives)) if s),
                                     max((c.duration_ms for c in self.campaigns[index].creatives
                                          if sample.can_play(c.kind)), default=0))
                    for index, _ in key.rates}
        spots: list[tuple[str, str]] = []
        shas: set[str] = set()
        rows: list[_ClassRow] = []
        for day in self.dates:
            result = self.day(key, day, playable)
            spots.extend(result.spots)
            shas |= result.shas
            rows.extend(result.rows)
        filler = self.filler_for(key, sample, playable)
        known = {c.sha256: c for c in self.filler if sample.can_play(c.kind)}
        known |= {c.sha256: c for c in key.house_loop if sample.can_play(c.kind)}
        media = self.media_table(shas | set(filler),
                                 [*known.values(), *(c for p in playable.values() for c in p.creatives)])
        return self.templates(key, sample.timezone, filler, media, spots, tuple(rows), screens)

    def day(self, key: _PlacementKey, day: date, playable: Mapping[int, _Playable]) -> _DayResult:
        tz = key.timezone
        operating = self.intervals(tz, day, key.operating_hours.on(day))
        peak = _intersect(self.intervals(tz, day, key.peak_windows.on(day)), operating)
        active = tuple((index, r) for index, r in key.rates if self.campaigns[index].active_on(day))
        memo_key = (tz, day, key.speaker, operating, tuple(peak), active, key.versions)
        if memo_key in self._days:
            return self._days[memo_key]

        cells = sorted([*peak, *_subtract(operating, peak)])
        budgets = tuple(int(self.max_share * (hi - lo)) for lo, hi in cells)
        demands: list[_Demand] = []
        asked: list[tuple[PlanCampaign, int, tuple[PlanCreative, ...]]] = []
        rows: list[_ClassRow] = []
        for index, r in active:
            campaign = self.campaigns[index]
            window = self.campaign_window(campaign, tz, day, operating, peak)
            if not window:
                continue
            slots = playable[index].slots
            if not slots:
                rows.append(_ClassRow(campaign.id, day, r, 0, NO_PLAYABLE_CREATIVE))
                continue
            order = _rotation(slots, day.toordinal() * r, r)
            demands.append(_Demand(_segments(window, cells), tuple(c.duration_ms for c in order),
                                   playable[index].longest))
            asked.append((campaign, r, order))

        layout = self.layout(budgets, tuple(demands))
        frame = self.frame(tz, day)
        spots = []
        for start, index, j in layout.placed:
            campaign, _, order = asked[index]
            creative = order[j]
            head, middle, tail = self.spot_json(campaign.id, creative.sha256, creative.duration_ms)
            spots.append((head, f"{self.slot_token(campaign.id, day, j + 1)}{middle}{frame.format(start)}{tail}"))
        for (campaign, r, _), planned in zip(asked, layout.planned, strict=True):
            rows.append(_ClassRow(campaign.id, day, r, planned, NO_CAPACITY if planned < r else None))
        rows.sort(key=lambda row: row.campaign_id)
        shas = frozenset(asked[index][2][j].sha256 for _, index, j in layout.placed)
        result = _DayResult(tuple(spots), shas, tuple(rows))
        self._days[memo_key] = result
        return result

    def campaign_window(self, campaign: PlanCampaign, tz: str, day: date, operating: tuple[Interval, ...],
                        peak: list[Interval]) -> list[Interval]:
        if campaign.window_policy is WindowPolicy.operating:
            return list(operating)
        if campaign.window_policy is WindowPolicy.explicit:
            assert campaign.explicit_windows is not None  # PlanCampaign guarantees it
            return _intersect(self.intervals(tz, day, campaign.explicit_windows.on(day)), operating)
        return peak

    def layout(self, budgets: tuple[int, ...], demands: tuple[_Demand, ...]) -> _Layout:
        key = (budgets, demands)
        if key not in self._layouts:
            self._layouts[key] = _lay_out_day(budgets, demands)
            self.layouts_computed += 1
        return self._layouts[key]

    # -- JSON pieces -------------------------------------------------------------------------------------

    def slot_token(self, campaign_id: str, day: date, index: int) -> str:
        key = (campaign_id, day, index)
        if key not in self._slots:
            self._slots[key] = hashlib.sha256(f"{campaign_id}\n{day.isoformat()}\n{index}".encode()).hexdigest()[:16]
        return self._slots[key]

    def spot_json(self, campaign_id: str, sha: str, duration_ms: int) -> tuple[str, str, str]:
        """A spot's canonical JSON split where the spot id's player token and the start go."""
        key = (campaign_id, sha, duration_ms)
        if key not in self._spot_json:
            text = canonical_json({"campaign_id": campaign_id, "duration_ms": duration_ms, "media": sha,
                                   "spot_id": _TOKEN, "start": _START}).decode()
            head, middle, tail = _split_on(text, _TOKEN, _START)
            # The spot id is the player token followed by the slot token; the start follows the middle.
            self._spot_json[key] = (head + '"', '"' + middle + '"', '"' + tail)
        return self._spot_json[key]

    def filler_for(self, key: _PlacementKey, sample: PlanScreen, playable: Mapping[int, _Playable]) -> list[str]:
        for loop in (key.house_loop, self.filler):
            shas = list(dict.fromkeys(c.sha256 for c in loop if sample.can_play(c.kind)))
            if shas:
                return shas
        return sorted({c.sha256 for p in playable.values() for c in p.creatives})

    @staticmethod
    def media_table(shas: Collection[str], creatives: Iterable[PlanCreative]) -> dict[str, dict]:
        # One file may be shown for different times by different campaigns: the table gives the shortest.
        chosen: dict[str, PlanCreative] = {}
        for creative in creatives:
            have = chosen.get(creative.sha256)
            if have is None or (creative.duration_ms, creative.bytes, creative.mime) < (
                    have.duration_ms, have.bytes, have.mime):
                chosen[creative.sha256] = creative
        return {sha: MediaEntry(url=f"/media/{sha}", bytes=chosen[sha].bytes, mime=chosen[sha].mime,
                                duration_ms=chosen[sha].duration_ms).model_dump(mode="json") for sha in sorted(shas)}

    def templates(self, key: _PlacementKey, tz: str, filler: list[str], media: dict[str, dict],
                  spots: list[tuple[str, str]], rows: tuple[_ClassRow, ...], screens: list[PlanScreen]) -> _Placement:
        last = self.dates[-1] + timedelta(days=1)
        valid = (self.frame(tz, self.dates[0]).midnight, datetime.combine(last, time(0), ZoneInfo(tz)))
        operating, peak = [], []
        for day in self.dates:
            operating.extend(_spans(day, key.operating_hours.on(day), tz))
            peak.extend(_spans(day, key.peak_windows.on(day), tz))
        body = {"schema": PLAN_SCHEMA, "player_id": _PLAYER, "timezone": tz,
                "valid_from": format_instant(valid[0]), "valid_until": format_instant(valid[1]),
                "operating_hours": operating, "peak_windows": peak, "filler": filler, "media": media,
                "spots": _SPOTS}
        body_parts = _split_on(canonical_json(body).decode(), _PLAYER, _SPOTS)
        full = {**body, "generated_at": self.generated_at, "version": _VERSION}
        full_parts = _split_on(canonical_json(full).decode(), _PLAYER, _SPOTS, _VERSION)
        return _Placement((body_parts[0], body_parts[1], body_parts[2]),
                          (full_parts[0], full_parts[1], full_parts[2], full_parts[3]),
                          _join_pieces(spots), rows, screens, valid)


@dataclass(frozen=True, slots=True)
class _Playable:
    """What a placement's screens play of one campaign: per slot, the versions in turn; and its spot length."""

    slots: tuple[tuple[PlanCreative, ...], ...]
    longest: int

    @property
    def creatives(self) -> Iterator[PlanCreative]:
        return (c for versions in self.slots for c in versions)


def _rotation(slots: tuple[tuple[PlanCreative, ...], ...], start: int, r: int) -> tuple[PlanCreative, ...]:
    """The day's r creatives: slots round-robin from `start`; a slot's versions in turn over its plays of the day."""
    turns = [0] * len(slots)
    order = []
    for j in range(r):
        slot = (start + j) % len(slots)
        versions = slots[slot]
        order.append(versions[turns[slot] % len(versions)])
        turns[slot] += 1
    return tuple(order)


def _segments(window: list[Interval], cells: list[Interval]) -> tuple[_Segment, ...]:
    segments = []
    base = 0
    for lo, hi in window:
        for cell_index, (cell_lo, cell_hi) in enumerate(cells):
            a, b = max(lo, cell_lo), min(hi, cell_hi)
            if a < b:
                segments.append(_Segment(a, b, base + a - lo, cell_index))
        base += hi - lo
    return tuple(segments)


def _spans(day: date, windows: tuple[Window, ...], tz: str) -> list[dict[str, str]]:
    return [{"start": format_instant(s), "end": format_instant(e)}
            for s, e in (window_instants(day, w, tz) for w in windows)]


def _join_pieces(spots: list[tuple[str, str]]) -> list[str]:
    """The spots array as pieces that `token.join(pieces)` turns into JSON with the player's token in every id."""
    if not spots:
        return ["[]"]
    pieces = ["[" + spots[0][0]]
    for (_, rest), (head, _) in zip(spots, spots[1:], strict=False):
        pieces.append(rest + "," + head)
    pieces.append(spots[-1][1] + "]")
    return pieces


def _player_token(player_id: str) -> str:
    return hashlib.sha256(f"player\n{player_id}".encode()).hexdigest()[:16]


# ---------------------------------------------------------------------------------------------------------
# The result


class _Plans(Mapping[str, Plan]):
    """Plans by player id, each built (and validated) when asked for: 10,000 of them at once would not fit."""

    def __init__(self, result: PlanningResult) -> None:
        self._result = result

    def __getitem__(self, player_id: str) -> Plan:
        return self._result.plan(player_id)

    def __iter__(self) -> Iterator[str]:
        return iter(self._result.player_ids)

    def __len__(self) -> int:
        return len(self._result.player_ids)


class PlanningResult:
    """Plans for every player and the per campaign and screen-day summary.

    `plan_json(player_id)` gives the canonical JSON of a plan (what is signed and published) fast and without
    building models; `plans[player_id]` and `plan(player_id)` give the validated Plan model.
    """

    def __init__(self, placements: list[_Placement], first_day: date, days: int, layouts_computed: int) -> None:
        self._placements = placements
        self._placement_of: dict[str, _Placement] = {s.id: p for p in placements for s in p.screens}
        self._screen_of: dict[str, PlanScreen] = {s.id: s for p in placements for s in p.screens}
        self.player_ids: tuple[str, ...] = tuple(sorted(self._placement_of))
        self.first_day = first_day
        self.days = days
        self.plans: Mapping[str, Plan] = _Plans(self)
        self.placement_count = len(placements)
        self.layouts_computed = layouts_computed

    def _parts(self, player_id: str) -> tuple[_Placement, str, str]:
        try:
            placement = self._placement_of[player_id]
        except KeyError:
            raise KeyError(f"no screen {player_id!r} was planned") from None
        spots = _player_token(player_id).join(placement.spot_pieces)
        return placement, json.dumps(player_id, ensure_ascii=False), spots

    def version(self, player_id: str) -> str:
        placement, player, spots = self._parts(player_id)
        head, middle, tail = placement.body
        return hashlib.sha256(f"{head}{player}{middle}{spots}{tail}".encode()).hexdigest()

    def plan_json(self, player_id: str) -> bytes:
        """The plan's canonical JSON, byte for byte what canonical_json(self.plan(player_id)) gives."""
        placement, player, spots = self._parts(player_id)
        head, middle, tail = placement.body
        version = hashlib.sha256(f"{head}{player}{middle}{spots}{tail}".encode()).hexdigest()
        head, middle, before_version, after_version = placement.full
        return f'{head}{player}{middle}{spots}{before_version}"{version}"{after_version}'.encode()

    def plan(self, player_id: str) -> Plan:
        return Plan.model_validate_json(self.plan_json(player_id))

    def validity(self, player_id: str) -> tuple[datetime, datetime]:
        """The plan's valid_from and valid_until, without reading its JSON."""
        try:
            return self._placement_of[player_id].valid
        except KeyError:
            raise KeyError(f"no screen {player_id!r} was planned") from None

    @cached_property
    def summary(self) -> tuple[SummaryRow, ...]:
        """Per screen (by id), local date and campaign id: required, planned, shortfall and its reason."""
        return tuple(self.summary_of(self.player_ids))

    def summary_of(self, player_ids: Iterable[str]) -> Iterator[SummaryRow]:
        """The summary's rows of some players only (those whose plans changed, say)."""
        for player_id in player_ids:
            placement, screen = self._placement_of[player_id], self._screen_of[player_id]
            yield from (SummaryRow(r.campaign_id, player_id, screen.site_id, r.date, r.required, r.planned,
                                   r.required - r.planned, r.reason) for r in placement.rows)

    def shortfall_rows(self) -> Iterator[tuple[PlanScreen, _ClassRow]]:
        for placement in self._placements:
            short = [row for row in placement.rows if row.planned < row.required]
            for screen in placement.screens if short else ():
                for row in short:
                    yield screen, row


def capacity_shortfalls(result: PlanningResult, campaign_ids: Collection[str] | None = None) -> list[SiteShortfall]:
    """Screen-days that fall short of their required spots, by campaign, site, local date and reason.

    What the capacity check shows when a campaign is saved: which sites, which days, how many spots are missing
    and on how many screens. Reasons: "no capacity", "no playable creative".
    """
    grouped: dict[tuple[str, str, date, str], list[int]] = {}
    for screen, row in result.shortfall_rows():
        if campaign_ids is not None and row.campaign_id not in campaign_ids:
            continue
        key = (row.campaign_id, screen.site_id, row.date, row.reason or NO_CAPACITY)
        counts = grouped.setdefault(key, [0, 0])
        counts[0] += 1
        counts[1] += row.required - row.planned
    return [SiteShortfall(c, site, day, reason, screens, missing)
            for (c, site, day, reason), (screens, missing) in sorted(grouped.items())]


def plan_fleet(screens: Iterable[PlanScreen], campaigns: Iterable[PlanCampaign], first_day: date, days: int,
               generated_at: datetime, *, max_share: float = DEFAULT_MAX_SHARE,
               filler: Sequence[PlanCreative] = ()) -> PlanningResult:
    """Plan local days first_day .. first_day + days − 1 for every screen.

    `filler` is the fleet's house loop, used on screens whose organisation has none of its own (house_loop);
    without either, a screen's filler is the playable creatives of the campaigns it takes in these days.
    """
    if days < 1:
        raise ValueError(f"plan at least one day (got days={days})")
    if generated_at.tzinfo is None or generated_at.utcoffset() is None:
        raise ValueError("generated_at needs a timezone, e.g. datetime(..., tzinfo=UTC)")
    if not 0 < max_share <= 1:
        raise ValueError(f"max_share is a share of each window, above 0 and at most 1 (got {max_share})")
    screens = sorted(screens, key=lambda s: s.id)
    _require_unique([s.id for s in screens], "screen")
    campaign_list = list(campaigns)
    _require_unique([c.id for c in campaign_list], "campaign")
    last_day = first_day + timedelta(days=days - 1)
    live = sorted((c for c in campaign_list if c.start_date <= last_day and c.end_date >= first_day),
                  key=lambda c: (-c.priority, c.id))

    planner = _Planner(live, first_day, days, generated_at, max_share, tuple(filler))
    named_screens = frozenset().union(*(c.target_screens for c in live))
    versioned = {index: creative_slots(c.creatives) for index, c in enumerate(live)
                 if len(creative_slots(c.creatives)) < len(c.creatives)}
    choices: dict[tuple, VersionChoice] = {}
    rates_of_profile: dict[tuple, tuple[tuple[int, int], ...]] = {}
    classes: dict[_PlacementKey, list[PlanScreen]] = {}
    for screen in screens:
        # What decides targeting and rates; a screen's own id only when some campaign names it.
        profile = (screen.organisation_path, screen.site_id, screen.site_kind, screen.group_ids,
                   screen.id if screen.id in named_screens else None)
        rates = rates_of_profile.get(profile)
        if rates is None:
            rates = tuple((index, c.required_plays(screen)) for index, c in enumerate(live) if c.targets(screen))
            rates_of_profile[profile] = rates
        key = _PlacementKey(screen.timezone, screen.operating_hours, screen.peak_windows,
                            screen.kind is ScreenKind.speaker, rates, screen.house_loop,
                            _version_choice(screen, rates, versioned, choices))
        classes.setdefault(key, []).append(screen)

    placements = [planner.place(key, members) for key, members in classes.items()]
    return PlanningResult(placements, first_day, days, planner.layouts_computed)


def _version_choice(screen: PlanScreen, rates: tuple[tuple[int, int], ...],
                    versioned: Mapping[int, list[tuple[PlanCreative, ...]]],
                    memo: dict[tuple, VersionChoice]) -> VersionChoice:
    """Which versions the screen plays of the campaigns it takes that have versions (empty when none has)."""
    indices = tuple(index for index, _ in rates if index in versioned)
    if not indices:
        return ()
    memo_key = (indices, screen.kind is ScreenKind.speaker, screen.format, screen.international_audience)
    if memo_key not in memo:
        memo[memo_key] = tuple(
            (index, tuple(tuple(versions.index(v) for v in versions_to_play(versions, screen))
                          for versions in versioned[index]))
            for index in indices)
    return memo[memo_key]


def _require_unique(ids: list[str], what: str) -> None:
    seen: set[str] = set()
    for identifier in ids:
        if identifier in seen:
            raise ValueError(f"two {what}s have the id {identifier!r}; ids must be unique")
        seen.add(identifier)


__all__ = [
    "DEFAULT_MAX_SHARE",
    "FIRST_LANGUAGE",
    "NO_CAPACITY",
    "NO_PLAYABLE_CREATIVE",
    "PlanCampaign",
    "PlanCreative",
    "PlanOverride",
    "PlanScreen",
    "PlanningResult",
    "SiteShortfall",
    "SummaryRow",
    "capacity_shortfalls",
    "creative_slots",
    "plan_fleet",
    "raised_rate",
    "resolve_targets",
    "versions_to_play",
]
