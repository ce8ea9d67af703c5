"""A player's status out: when one is due (every so often, and at once when something changed), and its message."""

from __future__ import annotations

from datetime import datetime, timedelta

from signage.protocol import Status, canonical_json

STATUS_EVERY = timedelta(seconds=30)
# Status fields sent only while they say something: a server from before them refuses a status carrying them.
JOURNAL_TROUBLE_FIELDS = ("journal_error", "journal_unwritten", "journal_refused")
SOMETIMES_SENT = (*JOURNAL_TROUBLE_FIELDS, "commands")


class StatusTimer:
    """When this player's status is next due: `every` after the last, or at once when `wanted`."""

    def __init__(self, every: timedelta = STATUS_EVERY) -> None:
        self.every = every
        self.last_sent: datetime | None = None
        self.wanted = False

    def due(self, now: datetime) -> bool:
        return self.wanted or self.last_sent is None or now - self.last_sent >= self.every

    def next_due(self, now: datetime) -> datetime:
        return (self.last_sent or now) + self.every

    def sent(self, now: datetime) -> None:
        self.last_sent = now
        self.wanted = False


def status_message(status: Status) -> bytes:
    """The status as published (retained), without the journal's trouble fields and the commands' outcomes while
    they say nothing."""
    body = status.model_dump(mode="json")
    for name in SOMETIMES_SENT:
        if body[name] is None:
            del body[name]
    return canonical_json(body)


__all__ = ["JOURNAL_TROUBLE_FIELDS", "STATUS_EVERY", "StatusTimer", "status_message"]
