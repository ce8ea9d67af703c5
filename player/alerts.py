"""The player's alert book: the alert orders this screen received, kept on disk.

What the held alerts put on the screen at an instant is decided by player.takeover (pure), from `held()`. The
book has no clock of its own: every question takes `now`.

A stopped order stays in the book, as stopped, until its expiry, so that a start the server sends again (it does
until it sees the start acknowledged) is ignored. Entries past their expiry are dropped when the book is loaded
and by `forget_expired`.

The book lives in `<data_dir>/alerts.json`, replaced atomically (temporary file, fsync, rename) on every change,
so a restart during an alert shows it again for the time left.
"""

from __future__ import annotations

import json
import logging
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from player.files import replace_atomically
from player.takeover import HeldAlert, by_start
from signage.protocol import AlertOrder, format_utc_instant

log = logging.getLogger("signage.player.alerts")

BOOK_SCHEMA = "signage.player-alerts/1"


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
            for held in sorted(self._held.values(), key=by_start)]}
        replace_atomically(self.path, json.dumps(body, ensure_ascii=False, sort_keys=True).encode("utf-8"))

    # -- changes (each saved at once) --------------------------------------------------------------------

    def add(self, order: AlertOrder) -> bool:
        """Hold a new order; False (and nothing changes) when its id is already held or was stopped."""
        if order.alert_id in self._held:
            return False
        self._held[order.alert_id] = HeldAlert(order)
        self.save()
        return True

    def hold(self, order: AlertOrder, now: datetime) -> bool:
        """`add` for an order that has just come: an expired one is not held, and each outcome is logged."""
        if order.expires_at <= now:
            log.warning("alert %s expired at %s, before it reached this player: not shown", order.alert_id,
                        order.expires_at.isoformat())
            return False
        if not self.add(order):
            log.info("alert %s is already held (or was stopped): its start sent again is ignored", order.alert_id)
            return False
        log.info("alert %s (%s %s) held: %s to %s", order.alert_id, order.severity, order.kind,
                 order.starts_at.isoformat(), order.expires_at.isoformat())
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

    def held(self) -> tuple[HeldAlert, ...]:
        """Every order held, stopped or not: what player.takeover decides from."""
        return tuple(self._held.values())

    def held_ids(self, now: datetime) -> list[str]:
        """The alerts held and not over at `now` (future ones included), by start: for the player's status."""
        return [held.order.alert_id for held in sorted(self._held.values(), key=by_start) if not held.over_at(now)]

    def media_entries(self) -> dict[str, dict[str, Any]]:
        """sha256 -> media entry (as in a plan's media table) of the media alerts held and not stopped: what the
        cache must fetch and keep."""
        return {held.order.media: held.order.media_entry.model_dump()
                for held in self._held.values()
                if held.stopped_at is None and held.order.media is not None and held.order.media_entry is not None}


__all__ = ["BOOK_SCHEMA", "AlertBook"]
