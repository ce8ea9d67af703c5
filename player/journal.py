"""The player's proof-of-play journal: every play attempt on disk before it is sent (docs/design.md §3, issue 5 item 6).

A local SQLite file in WAL mode with `synchronous=FULL`, so `append` returns only once the record is in the
write-ahead log and fsynced: a `kill -9` or a power cut after that cannot lose it. Rows leave the journal only
when the server's PopAck names them: committed ones are deleted, rejected ones move to `dead_letter` (kept for
inspection, never sent again). `play_id` is the primary key, so a record is never held twice; the server's
ingest is idempotent by `play_id`, so sending a record again after a lost ack is harmless.

Sending order (`take_batch`): a batch holds up to `limit` records that are due (never sent, or sent more than
`resend_after` ago without an ack). When more are due than fit, the newer half of the batch is the NEWEST due
records and the rest the OLDEST due ones. Live plays (the newest) therefore go out in the very next batch even
behind a week-long backlog, so the server's compliance figures for today stay current, while the backlog still
drains from its oldest end at half a batch per round trip at least. Within a batch records are in journal
order (oldest first).

`spot_log` remembers, per local date and spot, the best outcome so far, written in the same transaction as the
record, so that an agent restarted mid-day knows which of today's spots played or were made good, even after
the records themselves were acknowledged and deleted. Outcomes: "completed" (the spot itself played through),
"made_good" (a make-good for it completed), otherwise the status of the latest attempt ("interrupted",
"failed", "missed"). A better outcome is never replaced by a worse one.

One connection, guarded by a lock: the agent's thread and a reader (status, a CLI) may share one Journal.

A write the disk refuses (full, a file size limit, an I/O error) raises `JournalUnwritable` and leaves the journal as
it was. The agent then holds the plays in memory (`UnwrittenPlays`) and writes them here, in play order, once the
journal takes writes again (docs/files.md, "The player's journal on a full disk").
"""

from __future__ import annotations

import json
import logging
import sqlite3
import threading
import uuid
from collections import deque
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from signage.protocol import MAX_BATCH, PopRecord, canonical_json

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
# Plays held in memory while the journal cannot write: over a day of 10-second items back to back, a few tens of MB.
MAX_UNWRITTEN = 10_000
SPOT_KINDS = ("spot", "makegood")
MADE_GOOD = "made_good"
# Higher wins in spot_log; equal ranks below "made good" are replaced by the latest attempt.
OUTCOME_RANK = {"completed": 3, MADE_GOOD: 2}

SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,  -- journal order; AUTOINCREMENT: never reused after a delete
    play_id TEXT NOT NULL UNIQUE,
    body TEXT NOT NULL,                     -- the validated record, canonical JSON
    batch_id TEXT,                          -- the last batch it went out in; NULL: never sent
    batch_pos INTEGER,                      -- its index in that batch, for a PopAck's "#index" rejections
    sent_at INTEGER                         -- when it last went out, microseconds since the epoch (UTC)
);
CREATE INDEX IF NOT EXISTS records_batch ON records (batch_id);
CREATE TABLE IF NOT EXISTS dead_letter (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    play_id TEXT NOT NULL UNIQUE,
    body TEXT NOT NULL,
    reason TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS spot_log (
    local_date TEXT NOT NULL,               -- YYYY-MM-DD in the screen's timezone
    spot_id TEXT NOT NULL,
    status TEXT NOT NULL,                   -- completed | made_good | interrupted | failed | missed
    play_id TEXT NOT NULL,                  -- the play that gave this outcome
    at TEXT NOT NULL,                       -- that play's started_at
    PRIMARY KEY (local_date, spot_id)
);
"""


class JournalClosed(RuntimeError):
    pass


class JournalUnwritable(RuntimeError):
    """The journal's file refused a write (full disk, file size limit, I/O error); nothing of that call was kept."""


def _micros(instant: datetime) -> int:
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError("the journal needs timezone-aware instants, e.g. clock.now()")
    delta = instant.astimezone(UTC) - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _check_date(text: str, what: str) -> str:
    try:
        return date.fromisoformat(text).isoformat()
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be a local date like 2024-08-20, not {text!r}") from None


def _validation_problems(exc: ValidationError) -> str:
    problems = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error["loc"]) or "record"
        problems.append(f"{where}: {error['msg']}")
    return "; ".join(problems)


class Journal:
    """The durable proof-of-play journal at `path` (created with its folder when missing)."""

    def __init__(self, path: Path, *, durable: bool = True) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        # Autocommit mode: transactions are opened explicitly with BEGIN IMMEDIATE below.
        connection = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        try:
            connection.execute("PRAGMA busy_timeout = 10000")
            mode = connection.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise RuntimeError(f"{self.path} cannot use SQLite's WAL mode (got {mode!r}); keep the player's "
                                   "data_dir on a local disk, not a network share")
            connection.execute(f"PRAGMA synchronous = {'FULL' if durable else 'OFF'}")
            connection.execute("PRAGMA foreign_keys = ON")
            version = connection.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise RuntimeError(f"{self.path} was written by a newer player (journal schema {version}); "
                                   "upgrade this player's software before running it on this journal")
            connection.executescript(f"BEGIN IMMEDIATE; {SCHEMA} PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;")
        except BaseException:
            connection.close()
            raise
        self._db: sqlite3.Connection | None = connection

    # -- plumbing ------------------------------------------------------------------------------------------

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """The connection, under the lock, inside one IMMEDIATE transaction committed (fsynced) on success.
        SQLite's own errors (the disk refusing a write, mostly at COMMIT) come out as JournalUnwritable."""
        with self._lock:
            db = self._open()
            try:
                db.execute("BEGIN IMMEDIATE")
                try:
                    yield db
                    db.execute("COMMIT")
                except BaseException:
                    if db.in_transaction:
                        db.execute("ROLLBACK")
                    raise
            except sqlite3.Error as exc:
                raise JournalUnwritable(f"the journal {self.path} cannot write: {exc}") from exc

    @contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            yield self._open()

    def _open(self) -> sqlite3.Connection:
        if self._db is None:
            raise JournalClosed(f"the journal {self.path} is closed")
        return self._db

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writing -------------------------------------------------------------------------------------------

    def append(self, record: dict[str, Any], *, local_date: str | None = None) -> None:
        """Write one play attempt; it is on disk (fsynced) when this returns.

        `local_date` (YYYY-MM-DD, the screen's local day of the spot) is required for kinds spot and makegood,
        whose outcome also goes into the spot log in the same transaction. Appending a record whose play_id
        the journal already holds with the same content does nothing (a retry is safe); with other content,
        or a play_id already dead-lettered, it is refused. Raises ValueError naming what is wrong.
        """
        try:
            model = PopRecord.model_validate(record)
        except ValidationError as exc:
            play_id = record.get("play_id") if isinstance(record, dict) else None
            raise ValueError(f"not a proof-of-play record (play_id {play_id!r}): {_validation_problems(exc)}") \
                from None
        body = canonical_json(model).decode()
        day = None
        if model.kind in SPOT_KINDS:
            if local_date is None:
                raise ValueError(f"a {model.kind} record needs local_date= (the screen's local day of spot "
                                 f"{model.spot_id}) for the spot log")
            day = _check_date(local_date, "local_date")
        with self._transaction() as db:
            held = db.execute("SELECT body FROM records WHERE play_id = ?", (model.play_id,)).fetchone()
            if held is not None:
                if held[0] == body:
                    return
                raise ValueError(f"the journal already holds another record with play_id {model.play_id}; "
                                 "play ids must be unique forever (make them with uuid4)")
            dead = db.execute("SELECT reason FROM dead_letter WHERE play_id = ?", (model.play_id,)).fetchone()
            if dead is not None:
                raise ValueError(f"play_id {model.play_id} was already rejected by the server ({dead[0]}); "
                                 "a new play attempt needs a new play_id")
            db.execute("INSERT INTO records (play_id, body) VALUES (?, ?)", (model.play_id, body))
            if day is not None:
                assert model.spot_id is not None
                outcome = model.status
                if model.kind == "makegood" and model.status == "completed":
                    outcome = MADE_GOOD
                self._log_spot(db, day, model.spot_id, outcome, model.play_id, model.started_at.isoformat())

    @staticmethod
    def _log_spot(db: sqlite3.Connection, day: str, spot_id: str, outcome: str, play_id: str, at: str) -> None:
        held = db.execute("SELECT status FROM spot_log WHERE local_date = ? AND spot_id = ?",
                          (day, spot_id)).fetchone()
        if held is not None and OUTCOME_RANK.get(held[0], 1) > OUTCOME_RANK.get(outcome, 1):
            return
        if held is not None and held[0] in OUTCOME_RANK and held[0] == outcome:
            return  # the first play that achieved the best outcome keeps the row
        db.execute("INSERT OR REPLACE INTO spot_log (local_date, spot_id, status, play_id, at) "
                   "VALUES (?, ?, ?, ?, ?)", (day, spot_id, outcome, play_id, at))

    def take_batch(self, now: datetime, limit: int, resend_after: timedelta) -> tuple[str, list[dict]] | None:
        """The next batch to publish: (batch_id, records), or None when nothing is due.

        Due: not acknowledged, and never sent or last sent at least `resend_after` before `now`. The records
        returned are marked sent in a new batch (uuid4) at `now`, in the same transaction. Order: see the
        module's docstring (newest half, oldest half; journal order within the batch).
        """
        if not 1 <= limit <= MAX_BATCH:
            raise ValueError(f"a batch holds 1 to {MAX_BATCH} records (the PopBatch limit), not {limit}")
        if resend_after <= timedelta(0):
            raise ValueError("resend_after must be positive, or a record would go out again before its ack")
        at, due_before = _micros(now), _micros(now - resend_after)
        due = "(sent_at IS NULL OR sent_at <= ?)"
        with self._transaction() as db:
            newest = db.execute(f"SELECT seq FROM records WHERE {due} ORDER BY seq DESC LIMIT ?",
                                (due_before, (limit + 1) // 2)).fetchall()
            if not newest:
                return None
            chosen = {row[0] for row in newest}
            oldest = db.execute(f"SELECT seq FROM records WHERE {due} AND seq < ? ORDER BY seq LIMIT ?",
                                (due_before, min(chosen), limit - len(chosen))).fetchall()
            chosen.update(row[0] for row in oldest)
            batch_id = str(uuid.uuid4())
            records = []
            for position, seq in enumerate(sorted(chosen)):
                body = db.execute("SELECT body FROM records WHERE seq = ?", (seq,)).fetchone()[0]
                db.execute("UPDATE records SET batch_id = ?, batch_pos = ?, sent_at = ? WHERE seq = ?",
                           (batch_id, position, at, seq))
                records.append(json.loads(body))
        return batch_id, records

    def acknowledge(self, committed: list[str], rejected: dict[str, str], *, batch_id: str | None = None) -> None:
        """Apply a PopAck: committed play_ids are deleted, rejected ones move to the dead letters with the
        server's reason. A rejection keyed "#index" (a record the server could not even read a play_id from)
        is resolved against `batch_id`'s records when given, and ignored otherwise. Unknown play_ids (already
        acknowledged, say) are ignored, so a repeated ack is harmless."""
        with self._transaction() as db:
            for play_id in committed:
                db.execute("DELETE FROM records WHERE play_id = ?", (play_id,))
            for key, reason in rejected.items():
                if key.startswith("#"):
                    row = None
                    if batch_id is not None and key[1:].isdigit():
                        row = db.execute("SELECT play_id, body FROM records WHERE batch_id = ? AND batch_pos = ?",
                                         (batch_id, int(key[1:]))).fetchone()
                else:
                    row = db.execute("SELECT play_id, body FROM records WHERE play_id = ?", (key,)).fetchone()
                if row is None:
                    log.warning("the server rejected %s (%s), which the journal does not hold", key, reason)
                    continue
                db.execute("INSERT OR REPLACE INTO dead_letter (play_id, body, reason) VALUES (?, ?, ?)",
                           (row[0], row[1], str(reason)))
                db.execute("DELETE FROM records WHERE play_id = ?", (row[0],))
                log.error("the server rejected play %s: %s (kept in the journal's dead letters)", row[0], reason)

    def prune_spot_log(self, before: str) -> None:
        """Forget the spot log of local dates before `before` (YYYY-MM-DD)."""
        day = _check_date(before, "before")
        with self._transaction() as db:
            db.execute("DELETE FROM spot_log WHERE local_date < ?", (day,))

    # -- reading -------------------------------------------------------------------------------------------

    def spot_log(self, local_date: str) -> dict[str, str]:
        """spot_id -> best outcome so far on that local date: "completed", "made_good", or the latest
        attempt's status ("interrupted", "failed", "missed")."""
        day = _check_date(local_date, "local_date")
        with self._reading() as db:
            rows = db.execute("SELECT spot_id, status FROM spot_log WHERE local_date = ? ORDER BY spot_id",
                              (day,)).fetchall()
        return dict(rows)

    def appended(self) -> int:
        """How many records were ever appended (AUTOINCREMENT never reuses a seq): with the backlog and the
        dead letters, what a check of loss needs after acknowledged records are gone."""
        with self._reading() as db:
            row = db.execute("SELECT seq FROM sqlite_sequence WHERE name = 'records'").fetchone()
        return row[0] if row else 0

    def backlog(self) -> int:
        """Records not yet acknowledged (sent or not)."""
        with self._reading() as db:
            return db.execute("SELECT COUNT(*) FROM records").fetchone()[0]

    def dead_letters(self) -> list[tuple[str, str]]:
        """(play_id, reason) of every record the server rejected, oldest first."""
        with self._reading() as db:
            return db.execute("SELECT play_id, reason FROM dead_letter ORDER BY seq").fetchall()


class UnwrittenPlays:
    """Play attempts the journal could not write yet, in play order, held in memory until it can (a full disk).

    The agent hands every play to `hold`, then calls `write_to`, so a new play never overtakes one held and the
    journal stays in play order. Bounded by `limit`: when that many are held, a newer play is refused, counted in
    `refused` and logged, and the older ones stay (what is held is always an unbroken run of the oldest plays).
    """

    def __init__(self, limit: int = MAX_UNWRITTEN) -> None:
        if limit < 1:
            raise ValueError(f"the memory backlog must hold at least one play, not {limit}")
        self.limit = limit
        self.refused = 0
        self._held: deque[tuple[dict[str, Any], str | None]] = deque()

    def __len__(self) -> int:
        return len(self._held)

    def hold(self, record: dict[str, Any], local_date: str | None = None) -> bool:
        """Keep one play attempt behind those held; False (the play refused and counted) when `limit` are held."""
        if len(self._held) >= self.limit:
            self.refused += 1
            log.error("play %s lost: the journal cannot write and %d plays already wait in memory (%d lost so far)",
                      record.get("play_id"), len(self._held), self.refused)
            return False
        self._held.append((record, local_date))
        return True

    def write_to(self, journal: Journal) -> None:
        """Append the held plays to `journal`, oldest first, each dropped from memory once it is on disk. Raises
        JournalUnwritable at the first the journal refuses: it and the ones after it stay held. A record the
        journal finds invalid can never be written: it is logged and dropped, as it would have been at once."""
        while self._held:
            record, local_date = self._held[0]
            try:
                journal.append(record, local_date=local_date)
            except ValueError:
                log.exception("play %s cannot be journaled", record.get("play_id"))
            self._held.popleft()

    def records(self) -> list[dict[str, Any]]:
        """The held records, oldest first."""
        return [record for record, _ in self._held]

    def forget(self, play_ids: Iterable[str]) -> None:
        """Drop the held plays the server has answered for (sent straight to it, the journal being unwritable)."""
        answered = set(play_ids)
        self._held = deque(item for item in self._held if item[0]["play_id"] not in answered)


__all__ = ["MADE_GOOD", "MAX_UNWRITTEN", "Journal", "JournalClosed", "JournalUnwritable", "UnwrittenPlays"]
