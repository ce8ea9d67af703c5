"""The player's alert book: the alert orders this screen received, kept on disk, and what they ask for at an instant.

The pure part of alerts on the player (issue 8): no playback, no clock of its own; every question takes `now`.
An order is *active* at `now` when `starts_at <= now < expires_at` and it was not stopped. Urgent alerts take the
screen over: the one showing is the active one that started last (ties: the greater alert_id). Info text alerts
run as a ticker, their texts joined in order of start. An info media alert's clip fills the gaps between spots.

A stopped order stays in the book, as stopped, until its expiry, so that a start the server sends again (it does
until it sees the start acknowledged) is ignored. Entries past their expiry are dropped when the book is loaded
and by `forget_expired`.

The book lives in `<data_dir>/alerts.json`, replaced atomically (temporary file, fsync, rename) on every change,
so a restart during an alert shows it again for the time left.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from signage.protocol import AlertOrder, format_utc_instant

log = logging.getLogger("signage.player.alerts")

BOOK_SCHEMA = "signage.player-alerts/1"
TICKER_SEPARATOR = "   •   "


@dataclass(frozen=True)
class HeldAlert:
    order: AlertOrder
    stopped_at: datetime | None = None

    def active_at(self, now: datetime) -> bool:
        return self.stopped_at is None and self.order.starts_at <= now < self.order.expires_at

    def over_at(self, now: datetime) -> bool:
        return self.stopped_at is not None or now >= self.order.expires_at


def _by_start(held: HeldAlert) -> tuple[datetime, str]:
    return held.order.starts_at, held.order.alert_id


class AlertBook:
    """The alert orders held by one player, persisted at `path`."""

    def __init__(self, path: Path, held: list[HeldAlert] | None = None) -> None:
        self.path = Path(path)
        self._held: dict[str, HeldAlert] = {item.order.alert_id: item for item in held or []}

    @classmethod
    def load(cls, path: Path, now: datetime) -> AlertBook:
        """The book saved at `path`, without the entries whose expiry has passed by `now`; empty when there is
        none. A file that cannot be read is set aside (logged), never a reason for the screen to stop."""
        book = cls(path)
        if not path.exists():
            return book
        try:
            body = json.loads(path.read_text(encoding="utf-8"))
            if body.get("schema") != BOOK_SCHEMA:
                raise ValueError(f"schema {body.get('schema')!r}, not {BOOK_SCHEMA}")
            for entry in body["alerts"]:
                stopped = entry.get("stopped_at")
                held = HeldAlert(AlertOrder.model_validate(entry["order"]),
                                 datetime.fromisoformat(stopped) if stopped else None)
                book._held[held.order.alert_id] = held
        except (OSError, ValueError, KeyError, TypeError, AttributeError, ValidationError) as exc:
            log.error("the saved alerts in %s are not usable (%s); starting with none", path, str(exc)[:300])
            return cls(path)
        if book.forget_expired(now):
            book.save()
        return book

    def save(self) -> None:
        body = {"schema": BOOK_SCHEMA, "alerts": [
            {"order": held.order.model_dump(mode="json"),
             "stopped_at": format_utc_instant(held.stopped_at) if held.stopped_at else None}
            for held in sorted(self._held.values(), key=_by_start)]}
        temporary = self.path.with_suffix(".tmp")
        with temporary.open("w", encoding="utf-8") as handle:
            json.dump(body, handle, ensure_ascii=False, sort_keys=True)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, self.path)

    # -- changes (each saved at once) --------------------------------------------------------------------

    def add(self, order: AlertOrder) -> bool:
        """Hold a new order; False (and nothing changes) when its id is already held or was stopped."""
        if order.alert_id in self._held:
            return False
        self._held[order.alert_id] = HeldAlert(order)
        self.save()
        return True

    def stop(self, alert_id: str, at: datetime) -> AlertOrder | None:
        """Take an alert off this screen for good (kept, as stopped, until its expiry); returns its order, or None
        when it is not held or was already stopped."""
        held = self._held.get(alert_id)
        if held is None or held.stopped_at is not None:
            return None
        self._held[alert_id] = HeldAlert(held.order, at)
        self.save()
        return held.order

    def forget_expired(self, now: datetime) -> list[AlertOrder]:
        """Drop the entries whose expiry has passed (stopped or not); returns them. Saves when any went."""
        gone = [held.order for held in self._held.values() if now >= held.order.expires_at]
        for order in gone:
            del self._held[order.alert_id]
        if gone:
            self.save()
        return gone

    # -- questions -----------------------------------------------------------------------------------------

    def get(self, alert_id: str) -> AlertOrder | None:
        held = self._held.get(alert_id)
        return held.order if held else None

    def is_stopped(self, alert_id: str) -> bool:
        held = self._held.get(alert_id)
        return held is not None and held.stopped_at is not None

    def active(self, now: datetime) -> list[AlertOrder]:
        """The orders active at `now`, by start (ties by alert_id)."""
        return [held.order for held in sorted(self._held.values(), key=_by_start) if held.active_at(now)]

    def urgent_at(self, now: datetime) -> AlertOrder | None:
        """The urgent alert that has the screen at `now`: of those active, the one that started last."""
        urgent = [order for order in self.active(now) if order.severity == "urgent"]
        return urgent[-1] if urgent else None

    def ticker_alerts(self, now: datetime) -> list[AlertOrder]:
        """The info text alerts active at `now`, by start: what the ticker shows."""
        return [order for order in self.active(now) if order.severity == "info" and order.kind == "text"]

    def ticker_at(self, now: datetime) -> str | None:
        """The ticker's text at `now`, or None when no info text alert is active."""
        texts = [order.text for order in self.ticker_alerts(now)]
        return TICKER_SEPARATOR.join(texts) if texts else None

    def gap_media_at(self, now: datetime, usable: Callable[[AlertOrder], bool] = lambda order: True
                     ) -> AlertOrder | None:
        """The info media alert whose clip fills the gaps at `now`: of those active and `usable` (its file
        cached, say), the one that started last."""
        candidates = [order for order in self.active(now)
                      if order.severity == "info" and order.kind == "media" and usable(order)]
        return candidates[-1] if candidates else None

    def next_change(self, now: datetime) -> datetime | None:
        """The next moment after `now` that an alert not stopped starts or expires; None when nothing is due."""
        moments = [moment for held in self._held.values() if held.stopped_at is None
                   for moment in (held.order.starts_at, held.order.expires_at) if moment > now]
        return min(moments, default=None)

    def held_ids(self, now: datetime) -> list[str]:
        """The alerts held and not over at `now` (future ones included), by start: for the player's status."""
        return [held.order.alert_id for held in sorted(self._held.values(), key=_by_start) if not held.over_at(now)]

    def media_entries(self) -> dict[str, dict[str, Any]]:
        """sha256 -> media entry (as in a plan's media table) of the media alerts held and not stopped: what the
        cache must fetch and keep."""
        return {held.order.media: held.order.media_entry.model_dump()
                for held in self._held.values()
                if held.stopped_at is None and held.order.media is not None and held.order.media_entry is not None}


__all__ = ["BOOK_SCHEMA", "TICKER_SEPARATOR", "AlertBook", "HeldAlert"]
