"""Counters of one worker process's players, in shared memory: the worker writes them, the run reads them."""

from __future__ import annotations

import time
from collections.abc import Iterable

FIELDS = ("connected", "connects", "connect_failures", "refused_connections", "plans_taken", "plans_refused",
          "commands", "commands_refused", "statuses", "sent", "acked", "resent", "rejected", "bad_acks",
          "last_connect_at", "last_plan_at")
_INDEX = {name: i for i, name in enumerate(FIELDS)}


class Tally:
    def __init__(self, array) -> None:
        self.array = array

    @classmethod
    def shared(cls, context) -> Tally:
        """A tally in shared memory of a multiprocessing context, to hand to a worker process."""
        return cls(context.RawArray("d", len(FIELDS)))

    def add(self, name: str, amount: float = 1) -> None:
        self.array[_INDEX[name]] += amount

    def stamp(self, name: str) -> None:
        """Set a `*_at` field to the wall-clock time now (comparable across processes)."""
        self.array[_INDEX[name]] = time.time()

    def get(self, name: str) -> float:
        return self.array[_INDEX[name]]


def total(tallies: Iterable[Tally], name: str) -> int:
    return int(sum(t.get(name) for t in tallies))


def latest(tallies: Iterable[Tally], name: str) -> float:
    return max(t.get(name) for t in tallies)
