"""The cache's passes over the media a player needs (its plan's, and its held alerts' clips): on a thread of their
own, when wanted (a new plan or alert, a sync_now command) or every minute, or by a simulator's hand. Each pass's
report is posted to the agent's loop. The thread also measures the server's clock against the player's."""

from __future__ import annotations

import logging
import threading
import urllib.request
from collections.abc import Callable
from datetime import timedelta
from email.utils import parsedate_to_datetime
from typing import Any

from player.cache import MediaCache
from signage.clock import Clock

log = logging.getLogger("signage.player")

CACHE_SYNC_EVERY = timedelta(seconds=60)


class MediaSync:
    def __init__(self, cache: MediaCache, clock: Clock, server_url: str, post: Callable[[str, Any], None]) -> None:
        self.cache = cache
        self.clock = clock
        self.server_url = server_url
        self.post = post
        self.wanted = threading.Event()
        self.clock_offset_ms: int | None = None

    def run(self, stopping: threading.Event, cache_pass: Callable[[float], float]) -> None:
        """The cache thread: a pass (`cache_pass(wait)`, which says how long to wait for the next) when wanted or
        when the wait ran out, until `stopping`."""
        wait = CACHE_SYNC_EVERY.total_seconds()
        while not stopping.is_set():
            self.wanted.wait(timeout=wait)
            self.wanted.clear()
            offset = server_clock_offset_ms(self.server_url, self.clock)
            if offset is not None:
                self.clock_offset_ms = offset
            wait = cache_pass(wait)

    def take_wish(self) -> bool:
        """Whether a pass is wanted, clearing the wish."""
        wanted = self.wanted.is_set()
        self.wanted.clear()
        return wanted

    def sync(self, media: dict[str, dict[str, Any]], playing: set[str], wait: float) -> float:
        """One pass over `media` (sha256 -> entry), never evicting what is `playing`; posts its report. Returns how
        long to wait before the next pass (`wait` when it could not run)."""
        try:
            report = self.cache.sync(media, playing)
        except Exception:
            log.exception("the media cache pass failed")
            return wait
        for sha, reason in report.failed.items():
            log.warning("media %s not cached: %s", sha[:12], reason)
        # Come back when the first deferred item may be tried again, not a whole period later.
        retries = [at for at in [*report.deferred.values(), *map(self.cache.retry_at, report.failed)]
                   if at is not None]
        now = self.clock.now()
        self.post("cache", report)
        return min([CACHE_SYNC_EVERY.total_seconds()] + [max(0.5, (at - now).total_seconds()) for at in retries])


def server_clock_offset_ms(server_url: str, clock: Clock) -> int | None:
    """The server's clock against ours, from its HTTP Date header (whole seconds: enough to notice drift); None
    when the server does not answer."""
    before = clock.now()
    try:
        with urllib.request.urlopen(f"{server_url}/healthz", timeout=10) as response:
            server_time = parsedate_to_datetime(response.headers["Date"])
    except (OSError, ValueError, TypeError, KeyError):
        return None
    after = clock.now()
    midpoint = before + (after - before) / 2
    return int((server_time - midpoint) / timedelta(milliseconds=1))


__all__ = ["CACHE_SYNC_EVERY", "MediaSync", "server_clock_offset_ms"]
