"""The fault file (`signage.faults/1`): what goes wrong during a simulation, and when.

Faults are named per player (absolute times), given to a share of the fleet picked with the file's seed (every
day of the run, at local times of each player's site), or global (broker outages, server downtime). `expand`
turns the file into one timeline per player for the simulation.

`offline` means the player's PC is off: nothing plays. `network_down` means it plays on but cannot reach the
broker. A crash kills the agent at once (no ending record for what plays) and starts it again after `down_for_s`.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Annotated, Literal
from zoneinfo import ZoneInfo

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

from campaigns.yaml_source import YamlDocument

FAULT_SCHEMA = "signage.faults/1"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Interval(_Strict):
    from_: AwareDatetime = Field(alias="from")
    to: AwareDatetime

    @model_validator(mode="after")
    def _ordered(self) -> Interval:
        if self.to <= self.from_:
            raise ValueError(f"'to' ({self.to.isoformat()}) must come after 'from' ({self.from_.isoformat()})")
        return self


class Crash(_Strict):
    at: AwareDatetime
    down_for_s: Annotated[float, Field(gt=0, le=7 * 86400)] = 60


class DownloadFailure(Interval):
    media: Annotated[str | None, Field(min_length=4, max_length=64, pattern="^[0-9a-f]+$")] = None  # sha256 prefix


class PlayerFaults(_Strict):
    player: Annotated[str, Field(min_length=2, max_length=63)]
    offline: list[Interval] = []
    network_down: list[Interval] = []
    crashes: list[Crash] = []
    download_failures: list[DownloadFailure] = []
    clock_offset_s: Annotated[float, Field(ge=-86400, le=86400)] = 0


def _local_time(text: str) -> time:
    try:
        return time.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a local time; write it as HH:MM, e.g. 07:30") from None


class DailySpan(_Strict):
    from_: str = Field(alias="from")
    to: str

    @model_validator(mode="after")
    def _ordered(self) -> DailySpan:
        if _local_time(self.to) <= _local_time(self.from_):
            raise ValueError(f"'to' ({self.to}) must come after 'from' ({self.from_}) on the same day")
        return self


class DailyCrash(_Strict):
    between: DailySpan = DailySpan(**{"from": "06:00", "to": "22:00"})
    down_for_s: Annotated[float, Field(gt=0, le=86400)] = 60


class ShareFaults(_Strict):
    """Faults of a share of the fleet's players, every day of the run, at local times of their sites."""

    share: Annotated[float, Field(gt=0, le=1)]
    screen_kinds: list[Literal["lcd", "led", "speaker"]] | None = None
    offline_daily: DailySpan | None = None
    network_down_daily: DailySpan | None = None
    crash_daily: DailyCrash | None = None
    clock_offset_s: Annotated[float, Field(ge=-86400, le=86400)] = 0

    @model_validator(mode="after")
    def _does_something(self) -> ShareFaults:
        if not (self.offline_daily or self.network_down_daily or self.crash_daily or self.clock_offset_s):
            raise ValueError("give at least one of offline_daily, network_down_daily, crash_daily, clock_offset_s")
        return self


class FaultFile(_Strict):
    schema_: Literal["signage.faults/1"] = Field(FAULT_SCHEMA, alias="schema")
    seed: int = 1
    players: list[PlayerFaults] = []
    shares: list[ShareFaults] = []
    broker_outages: list[Interval] = []
    server_downtime: list[Interval] = []

    @field_validator("players")
    @classmethod
    def _each_player_once(cls, value: list[PlayerFaults]) -> list[PlayerFaults]:
        seen = [entry.player for entry in value]
        twice = sorted({player for player in seen if seen.count(player) > 1})
        if twice:
            raise ValueError(f"players named more than once: {', '.join(twice)}; put each player's faults in one entry")
        return value


def read_fault_file(path: Path) -> FaultFile:
    """The fault file at `path`; raises FileRejected naming each problem's line and its fix."""
    return YamlDocument.load(path).validate(FaultFile)


@dataclass(frozen=True, order=True)
class Span:
    start: datetime
    end: datetime


@dataclass
class PlayerTimeline:
    """Everything that goes wrong for one player during the run."""

    offline: list[Span] = field(default_factory=list)
    network_down: list[Span] = field(default_factory=list)
    crashes: list[tuple[datetime, timedelta]] = field(default_factory=list)
    download_failures: list[tuple[Span, str | None]] = field(default_factory=list)
    clock_offset: timedelta = timedelta(0)

    def down_spans(self) -> list[Span]:
        """When the player is not running: its PC off, or its agent dead after a crash."""
        return sorted([*self.offline, *(Span(at, at + down) for at, down in self.crashes)])

    def download_fails(self, sha256: str, at: datetime) -> bool:
        return any(span.start <= at < span.end and (prefix is None or sha256.startswith(prefix))
                   for span, prefix in self.download_failures)


@dataclass
class FaultSchedule:
    players: dict[str, PlayerTimeline]
    broker_outages: list[Span]
    server_downtime: list[Span]

    def of(self, player_id: str) -> PlayerTimeline:
        return self.players.get(player_id) or PlayerTimeline()


def _span(interval: Interval) -> Span:
    return Span(interval.from_, interval.to)


def _daily(span: DailySpan, day: date, zone: ZoneInfo) -> Span:
    start = datetime.combine(day, _local_time(span.from_), zone)
    return Span(start, datetime.combine(day, _local_time(span.to), zone))


def expand(faults: FaultFile, players: Mapping[str, tuple[str, str]], days: Iterable[date]) -> FaultSchedule:
    """One timeline per player. `players`: player id -> (screen kind, site timezone); `days`: the run's local
    dates. Raises ValueError for a named player the fleet lacks."""
    days = list(days)
    unknown = sorted({entry.player for entry in faults.players} - set(players))
    if unknown:
        raise ValueError(f"the fault file names players the fleet lacks: {', '.join(unknown[:10])}")
    timelines: dict[str, PlayerTimeline] = {}
    for entry in faults.players:
        timelines[entry.player] = PlayerTimeline(
            offline=[_span(i) for i in entry.offline], network_down=[_span(i) for i in entry.network_down],
            crashes=[(c.at, timedelta(seconds=c.down_for_s)) for c in entry.crashes],
            download_failures=[(_span(f), f.media) for f in entry.download_failures],
            clock_offset=timedelta(seconds=entry.clock_offset_s))
    chooser = random.Random(faults.seed)
    for rule in faults.shares:
        eligible = sorted(player for player, (kind, _) in players.items()
                          if rule.screen_kinds is None or kind in rule.screen_kinds)
        chosen = chooser.sample(eligible, round(rule.share * len(eligible)))
        for player_id in sorted(chosen):
            timeline = timelines.setdefault(player_id, PlayerTimeline())
            zone = ZoneInfo(players[player_id][1])
            if rule.clock_offset_s:
                timeline.clock_offset += timedelta(seconds=rule.clock_offset_s)
            for day in days:
                if rule.offline_daily:
                    timeline.offline.append(_daily(rule.offline_daily, day, zone))
                if rule.network_down_daily:
                    timeline.network_down.append(_daily(rule.network_down_daily, day, zone))
                if rule.crash_daily:
                    window = _daily(rule.crash_daily.between, day, zone)
                    seconds = (window.end - window.start).total_seconds()
                    at = window.start + timedelta(seconds=round(chooser.uniform(0, seconds)))
                    timeline.crashes.append((at, timedelta(seconds=rule.crash_daily.down_for_s)))
    return FaultSchedule(timelines, [_span(i) for i in faults.broker_outages],
                         [_span(i) for i in faults.server_downtime])
