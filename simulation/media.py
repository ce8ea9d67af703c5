"""A player's media cache in a simulation: files arrive after the time their bytes take, nothing is written.

It stands in for player/cache.py at the edge the simulation does not run (HTTP downloads, the disk), with the
same answers the agent asks for. The fault file can make downloads fail; a failed file is tried again a minute
later, as the real cache backs off.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from player.cache import CacheCounts, SyncReport
from signage.clock import Clock

RETRY_AFTER = timedelta(seconds=60)
FAILED = "download failed (simulated fault)"


class SimulatedCache:
    def __init__(self, clock: Clock, fails: Callable[[str, datetime], bool], bytes_per_second: float) -> None:
        self.clock = clock
        self._fails = fails
        self._rate = bytes_per_second
        self._ready_at: dict[str, datetime] = {}
        self._sizes: dict[str, int] = {}
        self._retry_at: dict[str, datetime] = {}

    def path_for(self, sha256: str) -> Path | None:
        ready = self._ready_at.get(sha256)
        return Path("/simulated", sha256) if ready is not None and ready <= self.clock.now() else None

    def figures(self, media: dict[str, Any]) -> CacheCounts:
        ready = sum(1 for sha in media if self.path_for(sha) is not None)
        return CacheCounts(ready, len(media) - ready, sum(self._sizes.get(sha, 0) for sha in self._ready_at))

    def sync(self, media: dict[str, Any], playing: set[str], *, ignore_backoff: bool = False) -> SyncReport:
        """Start the download of every file not held; downloads run one after another at the link's speed."""
        now = self.clock.now()
        report = SyncReport()
        free_at = max([now, *(at for at in self._ready_at.values() if at > now)])
        for sha, entry in media.items():
            if sha in self._ready_at:
                continue
            retry = self._retry_at.get(sha)
            if retry is not None and retry > now and not ignore_backoff:
                report.deferred[sha] = retry
                continue
            if self._fails(sha, now):
                report.failed[sha] = FAILED
                self._retry_at[sha] = now + RETRY_AFTER
                continue
            size = entry.get("bytes") if isinstance(entry, dict) else entry.bytes
            self._sizes[sha] = size
            free_at += timedelta(seconds=size / self._rate)
            self._ready_at[sha] = free_at
            self._retry_at.pop(sha, None)
            report.downloaded.append(sha)
        return report

    def retry_at(self, sha256: str) -> datetime | None:
        return self._retry_at.get(sha256)

    def retry_due(self, now: datetime) -> bool:
        return any(at <= now for at in self._retry_at.values())

    def next_change(self, now: datetime) -> datetime | None:
        """When a download completes or a failed one is due again, if ever."""
        upcoming = [at for at in [*self._ready_at.values(), *self._retry_at.values()] if at > now]
        return min(upcoming, default=None)
