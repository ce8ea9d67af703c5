"""Proof-of-play and status in: validated record by record, stored once, rolled up in the same transaction.

A batch is never refused whole for one bad record: good records are committed and acked, bad ones
are named with the reason in the same ack, and logged with the player. A record claiming to come
from another player than the one whose topic carried it is refused as forged. Every field the wire
lets through fits its column (signage.limits), so no value can fail the round's transaction; should
the database refuse a batch all the same, its records are stored one by one and the refused one is
named (ingest_pop_record_by_record). A message that is not a batch is logged and dropped.

Idempotency is per player: a record is the same record when its (player_id, play_id) is, so a play_id
that another player happened to use is stored for this one too, never acked without being stored.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from pydantic import Field, TypeAdapter, ValidationError
from sqlalchemy import or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from campaigns.models import Screen, Site
from campaigns.revision import current_revision
from campaigns.windows import WeekSchedule
from scheduler.alert_delivery import record_alert_acks
from scheduler.ledger import dialect_insert, note_heartbeats, reassess_closed_days
from scheduler.models import DeliveryRollup, PlayerPresence, PlayRecord
from scheduler.play_hours import count_play_hours
from scheduler.screen_actions import record_command_outcomes
from signage.db import transaction
from signage.protocol import MAX_BATCH, CommandOutcome, Identifier, PopAck, PopBatch, PopRecord, Status

log = logging.getLogger("signage.ingest")

COUNTED_KINDS = ("spot", "makegood")
ROLLUP_COUNTERS = ("completed_in_peak", "completed_total", "makegoods", "interrupted", "failed", "missed",
                   "media_missing")


@dataclass(frozen=True)
class ScreenCalendar:
    timezone: str
    peak_windows: WeekSchedule

    def locate(self, instant: datetime) -> tuple[date, bool]:
        """The local date of an instant at this screen, and whether it falls in a peak window of that date."""
        local = instant.astimezone(ZoneInfo(self.timezone))
        minute = local.hour * 60 + local.minute
        day = local.date()
        return day, any(w.start <= minute < w.end for w in self.peak_windows.on(day))


class ScreenDirectory:
    """Every screen's zone and peak windows, reloaded when the planning revision moves."""

    def __init__(self) -> None:
        self._revision: int | None = None
        self._screens: dict[str, ScreenCalendar] = {}
        self._places: dict[str, tuple[str, str]] = {}

    def refresh(self, session: Session) -> None:
        revision = current_revision(session)
        if revision == self._revision:
            return
        sites = {site.id: ScreenCalendar(site.timezone, site.effective_peak_windows())
                 for site in session.scalars(select(Site))}
        screens = session.execute(select(Screen.id, Screen.site_id)).all()
        self._screens = {screen_id: sites[site_id] for screen_id, site_id in screens}
        self._places = {screen_id: (site_id, sites[site_id].timezone) for screen_id, site_id in screens}
        self._revision = revision

    def get(self, player_id: str) -> ScreenCalendar | None:
        return self._screens.get(player_id)

    def place_of(self, player_id: str) -> tuple[str, str] | None:
        """The screen's site and that site's timezone."""
        return self._places.get(player_id)


class _ValidBatch(PopBatch):
    records: Annotated[list[PopRecord], Field(max_length=MAX_BATCH)]


_WHOLE_BATCH = TypeAdapter(_ValidBatch)
_BATCH_ID = TypeAdapter(Identifier)
_PLAY_ID = TypeAdapter(Annotated[str, PopRecord.model_fields["play_id"]])


@dataclass
class IngestOutcome:
    acks: list[tuple[str, PopAck]] = field(default_factory=list)
    inserted: int = 0
    duplicates: int = 0
    rejected: Counter = field(default_factory=Counter)  # reason -> count
    statuses: int = 0


@dataclass
class _ReadBatch:
    """A pop message read: its records validated one by one, the good ones as rows ready to store."""

    player_id: str
    batch_id: str
    accepted: list[str]  # play_ids, in the batch's order
    rejected: dict[str, str]  # play_id (or "#index") -> why
    rows: dict[tuple[str, str], dict[str, Any]]  # by (player_id, play_id)

    def ack(self) -> PopAck:
        return PopAck(batch_id=self.batch_id, committed=self.accepted, rejected=self.rejected)


def _insert_ignoring_duplicates(session: Session):
    dialect = session.get_bind().dialect.name
    module = postgresql if dialect == "postgresql" else sqlite
    return module.insert(PlayRecord).on_conflict_do_nothing(index_elements=["play_id", "player_id"])


def _rollup_upsert(session: Session, rows: list[dict[str, Any]]) -> None:
    dialect = session.get_bind().dialect.name
    module = postgresql if dialect == "postgresql" else sqlite
    statement = module.insert(DeliveryRollup)
    counters = ROLLUP_COUNTERS
    statement = statement.on_conflict_do_update(
        index_elements=["screen_id", "campaign_id", "local_date"],
        set_={name: getattr(DeliveryRollup, name) + getattr(statement.excluded, name) for name in counters},
    )
    session.execute(statement, rows)


def _short(error: ValidationError) -> str:
    first = error.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "record"
    return f"{where}: {first['msg']}"[:300]


def _name_of(raw: Any, index: int) -> str:
    """How an ack names a record that failed validation: by its play_id when that is a valid one, which the player
    can look up; else as "#index", its place in the batch (the agent's journal finds it by the batch it sent). A
    play_id cut to length, or one holding NUL, would name nothing the player holds: sent again forever."""
    play_id = raw.get("play_id") if isinstance(raw, dict) else None
    try:
        return _PLAY_ID.validate_python(play_id)
    except ValidationError:
        return f"#{index}"


def _read_batch(player_id: str, payload: bytes, calendar: ScreenCalendar | None, now: datetime,
                outcome: IngestOutcome) -> _ReadBatch | None:
    """Validate one pop message that `player_id`'s topic carried. None when it is not a batch at all (logged; acked
    with "#batch" when its batch_id can be read); else its good records as rows and its bad ones named."""
    try:
        # Nearly every batch is wholly good: validate it in one pass, and only a batch that fails
        # goes through the record-by-record path that keeps its good records.
        batch = _WHOLE_BATCH.validate_json(payload)
        records = batch.records
    except ValidationError:
        batch, records = None, None
    try:
        if batch is None:
            batch = PopBatch.model_validate_json(payload)
    except ValidationError as exc:
        outcome.rejected["malformed batch"] += 1
        log.warning("refused a proof-of-play batch from %s: %s", player_id, _short(exc))
        batch_id = _batch_id_of(payload)
        if batch_id is not None:
            outcome.acks.append((player_id, PopAck(batch_id=batch_id, committed=[],
                                                   rejected={"#batch": _short(exc)})))
        return None
    read = _ReadBatch(player_id, batch.batch_id, [], {}, {})
    for index, raw in enumerate(records if records is not None else batch.records):
        if records is not None:
            record = raw
        else:
            try:
                record = PopRecord.model_validate(raw)
            except ValidationError as exc:
                read.rejected[_name_of(raw, index)] = _short(exc)
                continue
        if record.player_id != player_id:
            read.rejected[record.play_id] = f"forged: the record names {record.player_id!r} but came from {player_id!r}"
            continue
        if calendar is None:
            read.rejected[record.play_id] = f"unknown player {player_id!r}"
            continue
        read.accepted.append(record.play_id)
        if (player_id, record.play_id) not in read.rows:
            local_day, in_peak = calendar.locate(record.started_at)
            read.rows[(player_id, record.play_id)] = {**record.__dict__, "local_date": local_day, "in_peak": in_peak,
                                                      "received_at": now}
    for reason in read.rejected.values():
        outcome.rejected[reason.split(":")[0]] += 1
    if read.rejected:
        log.warning("refused %d of %d proof-of-play records from %s, e.g. %s", len(read.rejected),
                    len(batch.records), player_id, next(iter(read.rejected.values())))
    return read


def ingest_pop(session: Session, messages: list[tuple[str, bytes]], directory: ScreenDirectory,
               now: datetime) -> IngestOutcome:
    """Store the proof-of-play batches that players (named by their topics) sent, in the caller's transaction."""
    outcome = IngestOutcome()
    directory.refresh(session)
    batches = [read for player_id, payload in messages
               if (read := _read_batch(player_id, payload, directory.get(player_id), now, outcome)) is not None]
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for read in batches:
        for key, row in read.rows.items():
            rows.setdefault(key, row)
    outcome.inserted = _store_rows(session, list(rows.values()), directory)
    outcome.duplicates = len(rows) - outcome.inserted
    outcome.acks.extend((read.player_id, read.ack()) for read in batches)
    return outcome


def ingest_pop_record_by_record(sessions: sessionmaker[Session], player_id: str, payload: bytes,
                                directory: ScreenDirectory, now: datetime) -> IngestOutcome:
    """Store one pop message that failed to store whole (a database error that validation did not foresee): each
    record in a transaction of its own, so one record never holds the good ones back. A record the database refuses
    for what it holds (PEP 249's DataError or IntegrityError: a value out of range, a constraint) is rejected by
    name with the database's reason. Any other error (the database unreachable, locked) stops there: what was
    stored is acked, and the rest is left unacked for the player to send again."""
    outcome = IngestOutcome()
    with transaction(sessions) as session:
        directory.refresh(session)
    read = _read_batch(player_id, payload, directory.get(player_id), now, outcome)
    if read is None:
        return outcome
    stored: set[str] = set()
    for position, row in enumerate(read.rows.values()):
        try:
            with transaction(sessions) as session:
                inserted = _store_rows(session, [row], directory)
        except Exception as error:
            if not _refused_for_what_it_holds(error):
                log.error("storing a batch from %s record by record stopped at play %s (%s); its last %d records "
                          "are left for the player to send again", player_id, row["play_id"],
                          _database_reason(error), len(read.rows) - position)
                break
            read.rejected[row["play_id"]] = f"the database refused it: {_database_reason(error)}"
            outcome.rejected["refused by the database"] += 1
            log.error("the database refused play %s from %s: %s", row["play_id"], player_id, _database_reason(error))
            continue
        stored.add(row["play_id"])
        outcome.inserted += inserted
        outcome.duplicates += 1 - inserted
    read.accepted = [play_id for play_id in read.accepted if play_id in stored]
    outcome.acks.append((player_id, read.ack()))
    return outcome


def _refused_for_what_it_holds(error: BaseException) -> bool:
    """Whether the database refused the values themselves, which sending them again cannot cure. SQLAlchemy wraps
    the driver's errors; SQLite's fast path (_store_sqlite) raises sqlite3's own."""
    if isinstance(error, DBAPIError) and error.connection_invalidated:
        return False
    return isinstance(error, (DataError, IntegrityError, sqlite3.DataError, sqlite3.IntegrityError))


def _database_reason(error: BaseException) -> str:
    cause = error.orig if isinstance(error, DBAPIError) else error
    lines = str(cause).strip().splitlines() or [""]
    return f"{type(cause).__name__}: {lines[0]}"[:300]


def ingest_messages(session: Session, pops: list[tuple[str, bytes]], statuses: list[tuple[str, bytes]],
                    directory: ScreenDirectory, now: datetime) -> IngestOutcome:
    """One round of what players sent, (player id, payload) each: proof-of-play batches, then statuses, in the
    caller's transaction. `statuses` of the outcome counts the statuses taken; the acks go out after commit."""
    outcome = ingest_pop(session, pops, directory, now)
    directory.refresh(session)
    outcome.statuses = ingest_statuses(session, statuses, now, directory)
    return outcome


def _store_rows(session: Session, rows: list[dict[str, Any]], directory: ScreenDirectory) -> int:
    """Insert the rows whose (player_id, play_id) is new, with their roll-ups (the ledger's and the hours') and
    alert acknowledgements; returns how many were new."""
    inserted = _store(session, rows) if rows else set()
    new_rows = [row for row in rows if (row["player_id"], row["play_id"]) in inserted]
    _roll_up(session, new_rows)
    count_play_hours(session, new_rows, directory.place_of)
    record_alert_acks(session, new_rows)
    return len(new_rows)


def _store(session: Session, rows: list[dict[str, Any]]) -> set[tuple[str, str]]:
    """Insert the rows whose (player_id, play_id) is new; returns those keys."""
    if session.get_bind().dialect.name == "sqlite":
        return _store_sqlite(session, rows)
    statement = _insert_ignoring_duplicates(session).returning(PlayRecord.player_id, PlayRecord.play_id)
    inserted: set[tuple[str, str]] = set()
    for start in range(0, len(rows), 2000):
        inserted.update((player_id, play_id) for player_id, play_id in session.execute(statement,
                                                                                      rows[start:start + 2000]))
    return inserted


_COLUMNS = ["play_id", "player_id", "spot_id", "campaign_id", "media", "kind", "scheduled_start", "started_at",
            "ended_at", "duration_ms", "status", "reason", "plan_version", "local_date", "in_peak", "received_at"]
if set(_COLUMNS) != {column.key for column in PlayRecord.__table__.columns}:
    raise RuntimeError("play_records has columns that the SQLite fast path does not write: update _store_sqlite")
_SQLITE_INSERT = (f"INSERT INTO {PlayRecord.__tablename__} ({', '.join(_COLUMNS)}) "
                  f"VALUES ({', '.join('?' for _ in _COLUMNS)})")


def _sqlite_instant(value: datetime | None) -> str | None:
    # SQLAlchemy's own SQLite DATETIME text (UTC, as UTCDateTime stores it), written without its
    # per-value processors: at ingest rates they cost more than the insert itself.
    if value is None:
        return None
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


def _store_sqlite(session: Session, rows: list[dict[str, Any]]) -> set[tuple[str, str]]:
    """SQLite has one writer at a time, so 'which are new' then a plain bulk insert cannot race."""
    connection = session.connection()
    existing: set[tuple[str, str]] = set()
    ids = [row["play_id"] for row in rows]
    for start in range(0, len(ids), 900):  # by play_id, the key's first column; the player is told apart here
        existing.update((player_id, play_id) for player_id, play_id in connection.execute(
            select(PlayRecord.player_id, PlayRecord.play_id).where(PlayRecord.play_id.in_(ids[start:start + 900]))))
    new = [row for row in rows if (row["player_id"], row["play_id"]) not in existing]
    received = _sqlite_instant(new[0]["received_at"]) if new else None  # one per round
    values = [(row["play_id"], row["player_id"], row["spot_id"], row["campaign_id"], row["media"], row["kind"],
               _sqlite_instant(row["scheduled_start"]), _sqlite_instant(row["started_at"]),
               _sqlite_instant(row["ended_at"]), row["duration_ms"], row["status"], row["reason"],
               row["plan_version"], row["local_date"].isoformat(), row["in_peak"], received) for row in new]
    cursor = connection.connection.dbapi_connection.cursor()
    try:
        cursor.executemany(_SQLITE_INSERT, values)
    finally:
        cursor.close()
    return {(row["player_id"], row["play_id"]) for row in new}


def _roll_up(session: Session, rows: list[dict[str, Any]]) -> None:
    totals: dict[tuple[str, str, date], Counter] = {}
    for row in rows:
        if row["campaign_id"] is None or row["kind"] not in COUNTED_KINDS:
            continue
        counts = totals.setdefault((row["player_id"], row["campaign_id"], row["local_date"]), Counter())
        if row["status"] == "completed":
            counts["completed_total"] += 1
            counts["completed_in_peak"] += row["in_peak"]
            counts["makegoods"] += row["kind"] == "makegood"
        else:
            counts[row["status"]] += 1
            counts["media_missing"] += row["status"] in ("failed", "missed") and "media" in (row["reason"] or "")
    if totals:
        _rollup_upsert(session, [{"screen_id": s, "campaign_id": c, "local_date": d,
                                  **{n: counts[n] for n in ROLLUP_COUNTERS}}
                                 for (s, c, d), counts in sorted(totals.items())])
        reassess_closed_days(session, totals.keys())


def _batch_id_of(payload: bytes) -> str | None:
    try:
        value = json.loads(payload).get("batch_id")
    except (ValueError, AttributeError, RecursionError):  # RecursionError: JSON nested deeper than Python parses
        return None
    try:
        return _BATCH_ID.validate_python(value)  # what a PopAck can carry back
    except ValidationError:
        return None


def _valid_status(player_id: str, payload: bytes) -> Status | None:
    try:
        status = Status.model_validate_json(payload)
    except ValidationError as exc:
        log.warning("refused a status from %s: %s", player_id, _short(exc))
        return None
    if status.player_id != player_id:
        log.warning("refused a status from %s claiming to be %s", player_id, status.player_id)
        return None
    return status


def _presence_of(status: Status, now: datetime) -> dict[str, Any]:
    row: dict[str, Any] = {"player_id": status.player_id, "state": status.state, "last_seen": now}
    if status.state == "online":
        cache = status.cache
        row.update(plan_version=status.plan_version, now_playing=status.now_playing,
                   journal_backlog=status.journal_backlog, journal_error=status.journal_error,
                   journal_unwritten=status.journal_unwritten, journal_refused=status.journal_refused,
                   clock_offset_ms=status.clock_offset_ms,
                   software_version=status.software_version, refused=status.refused, sent_at=status.sent_at)
        if cache is not None:
            row.update(cache_ready=cache.ready, cache_missing=cache.missing, cache_bytes=cache.bytes)
    return row


def _upsert_presence(session: Session, rows: list[dict[str, Any]]) -> None:
    """Each row replaces the columns it carries (an offline Will carries only state and last_seen), unless the
    stored status was sent later than it: with several ingest processes, a player's statuses can be stored out of
    order (consecutive ones shared out to two processes; every process handed all retained statuses again when it
    subscribes after a broker restart, found by signage loadtest)."""
    for columns in {tuple(row) for row in rows}:
        statement = dialect_insert(session, PlayerPresence)
        statement = statement.on_conflict_do_update(
            index_elements=["player_id"],
            set_={name: getattr(statement.excluded, name) for name in columns if name != "player_id"},
            where=or_(statement.excluded.sent_at.is_(None), PlayerPresence.sent_at.is_(None),
                      statement.excluded.sent_at >= PlayerPresence.sent_at))
        session.execute(statement, [row for row in rows if tuple(row) == columns])


def ingest_statuses(session: Session, statuses: list[tuple[str, bytes]], now: datetime,
                    directory: ScreenDirectory | None = None) -> int:
    """Record players' statuses (or their Last Wills' `offline`), (player id, payload) each, in arrival order:
    a player's last one in the round is its presence. Malformed and forged ones are logged and skipped; returns
    how many were taken. With the screen directory, online statuses also count towards the players' days in
    the ledger. Two statements a round, whatever its size: statuses come from every player every 30 s."""
    newest: dict[str, dict[str, Any]] = {}
    beats: dict[tuple[str, date], tuple[int, bool]] = {}
    outcomes: dict[str, list[CommandOutcome]] = {}
    taken = 0
    for player_id, payload in statuses:
        status = _valid_status(player_id, payload)
        if status is None:
            continue
        taken += 1
        newest[player_id] = _presence_of(status, now)
        if status.commands:
            outcomes.setdefault(player_id, []).extend(status.commands)
        calendar = directory.get(player_id) if directory is not None else None
        if status.state == "online" and calendar is not None:
            key = (player_id, calendar.locate(now)[0])
            count, had_plan = beats.get(key, (0, False))
            beats[key] = (count + 1, had_plan or status.plan_version is not None)
    if newest:
        _upsert_presence(session, list(newest.values()))
        session.expire_all()  # rows of the identity map may be older than what was just written
    note_heartbeats(session, beats, now)
    record_command_outcomes(session, outcomes, now)
    return taken


def ingest_status(session: Session, player_id: str, payload: bytes, now: datetime,
                  directory: ScreenDirectory | None = None) -> bool:
    """Record one player's status; False, logged, when it is malformed or forged (see ingest_statuses)."""
    return ingest_statuses(session, [(player_id, payload)], now, directory) == 1


__all__ = ["IngestOutcome", "ScreenCalendar", "ScreenDirectory", "ingest_messages", "ingest_pop",
           "ingest_pop_record_by_record", "ingest_status", "ingest_statuses"]
