"""The three measurements, each against the running stand: a campaign change until every player confirmed its new
plan, proof-of-play ingest with every player sending, and a broker restart until every player is back in step."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
from sqlalchemy import func, select

from loadtest.stand import confirmed_players, wait_until
from loadtest.swarm import Swarm
from scheduler.database import Database
from scheduler.models import PlayRecord
from scheduler.plan_store import newest_versions

Update = Callable[[float, str], None]  # (how far, what to say) for the progress display
POLL_S = 0.25


class MeasureFailed(RuntimeError):
    """A phase could not do what it measures (the API refused the change, ...)."""


def _answered(answer: httpx.Response, doing: str) -> dict:
    if answer.is_error:
        raise MeasureFailed(f"the API refused to {doing}: {answer.status_code} {answer.text[:500]}")
    return answer.json()


def _newest(database: Database) -> dict[str, str]:
    with database.sessions() as session:
        return newest_versions(session)


def _rows(database: Database) -> int:
    with database.sessions() as session:
        return session.scalar(select(func.count()).select_from(PlayRecord)) or 0


def _elapsed_since(began: float) -> float:
    return round(time.perf_counter() - began, 3)


@dataclass
class ReplanFigures:
    plays_per_day_before: int
    plays_per_day_after: int
    api_call_s: float
    plans_stored_s: float | None  # every player's new plan in the database
    plans_taken_s: float | None  # every player verified and took its new plan (the players' own clocks)
    confirmed_s: float | None  # every player's status with the new version stored by the server: the figure
    confirmed: int
    players: int


def measure_replan(database: Database, api: httpx.Client, campaign_id: str, swarm: Swarm, ids: list[str],
                   timeout: float, update: Update) -> ReplanFigures:
    """Raise the campaign's plays_per_day through the API (as staff would) and time the fleet's confirmations."""
    old = _newest(database)
    before = _answered(api.get(f"/api/v1/campaigns/{campaign_id}"), "show the campaign")["plays_per_day"]
    taken_before = swarm.total("plans_taken")
    began_wall, began = time.time(), time.perf_counter()
    answer = api.patch(f"/api/v1/campaigns/{campaign_id}", json={"plays_per_day": before + 1})
    api_s = _elapsed_since(began)
    _answered(answer, "change the campaign's plays_per_day")
    stored_s = taken_s = confirmed_s = None
    confirmed = 0
    tick = threading.Event()
    while time.perf_counter() - began < timeout:
        newest = _newest(database)
        renewed = {p: v for p, v in newest.items() if p in old and v != old[p]}
        if stored_s is None and len(renewed) >= len(ids):
            stored_s = _elapsed_since(began)
        if taken_s is None and swarm.total("plans_taken") - taken_before >= len(ids):
            taken_s = round(swarm.latest("last_plan_at") - began_wall, 3)
        confirmed = confirmed_players(database, ids, renewed)
        update(confirmed, f"{len(renewed)} new plans stored, {confirmed} confirmed")
        if confirmed >= len(ids):
            confirmed_s = _elapsed_since(began)
            break
        tick.wait(POLL_S)
    return ReplanFigures(before, before + 1, api_s, stored_s, taken_s, confirmed_s, confirmed, len(ids))


@dataclass
class IngestFigures:
    seconds: float
    batch: int
    window: int
    records_sent: int  # records the players made in the sending window
    records_committed: int  # rows committed by the server in the same window
    committed_per_s: float  # the figure
    drained_s: float | None  # after the window, until the last record was acknowledged
    backlog_after_drain: int
    records_resent: int  # sent again after waiting resend_after for their ack (the server deduplicates them)


def measure_ingest(database: Database, swarm: Swarm, seconds: float, batch: int, window: int, drain_timeout: float,
                   server_idle: Callable[[], bool], update: Update) -> IngestFigures:
    """Every player sends proof-of-play for `seconds`, each keeping `window` batches of `batch` records awaiting
    their ack; the rate is the rows the server committed in that time. Returns once every record is acknowledged
    and the server has worked through what is queued for it (batches sent again while their ack was on its way),
    so that the next phase starts on an idle server."""
    rows_before, sent_before, resent_before = _rows(database), swarm.total("sent"), swarm.total("resent")
    swarm.send_pop(seconds, batch, window)
    began = time.perf_counter()
    tick = threading.Event()
    while (left := seconds - (time.perf_counter() - began)) > 0:
        tick.wait(min(left, 1.0))
        elapsed = time.perf_counter() - began
        committed = _rows(database) - rows_before
        update(min(elapsed, seconds), f"{committed:,} committed, {committed / elapsed:,.0f} records/s")
    committed, elapsed = _rows(database) - rows_before, time.perf_counter() - began
    sent = swarm.total("sent") - sent_before
    update(seconds, f"{committed:,} committed in {elapsed:.1f} s; waiting for the last acks")
    drain_began = time.perf_counter()
    backlog = swarm.drain(drain_timeout)
    drained_s = None if backlog else _elapsed_since(drain_began)
    wait_until(server_idle, drain_timeout)
    return IngestFigures(seconds, batch, window, sent, committed, round(committed / elapsed, 1), drained_s, backlog,
                         swarm.total("resent") - resent_before)


@dataclass
class StormFigures:
    broker_restart_s: float  # the supervisor's stop (Mosquitto saves its state) and start, until it runs again
    reconnected_s: float | None  # every player connected and subscribed again
    synchronised_s: float | None  # every player's status after the restart, naming its current plan: the figure
    reconnected: int
    synchronised: int
    players: int
    statuses_sent: int  # by the players from the restart until every one was in step


def measure_storm(database: Database, broker, swarm: Swarm, ids: list[str], timeout: float,
                  update: Update) -> StormFigures:
    """Restart Mosquitto with the real supervisor: every player loses its connection and comes back at once."""
    newest = _newest(database)
    connects_before, statuses_before = swarm.total("connects"), swarm.total("statuses")
    since, began_wall, began = datetime.now(UTC), time.time(), time.perf_counter()
    broker.restart()
    restart_s = _elapsed_since(began)
    reconnected_s = synchronised_s = None
    reconnected = synchronised = 0
    tick = threading.Event()
    while time.perf_counter() - began < timeout:
        reconnected = min(swarm.total("connected"), swarm.total("connects") - connects_before)
        if reconnected_s is None and reconnected >= len(ids):
            reconnected_s = round(swarm.latest("last_connect_at") - began_wall, 3)
        synchronised = confirmed_players(database, ids, newest, since)
        update(synchronised, f"{reconnected} reconnected, {synchronised} in step")
        if synchronised >= len(ids):
            synchronised_s = _elapsed_since(began)
            break
        tick.wait(POLL_S)
    return StormFigures(restart_s, reconnected_s, synchronised_s, reconnected, synchronised, len(ids),
                        swarm.total("statuses") - statuses_before)
