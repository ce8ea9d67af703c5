"""The scheduler's own tables: plans, the planning lease, shortfalls, player credentials, proof-of-play, presence,
and the remote actions staff ask of screens."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    ForeignKey,
    Index,
    Integer,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy import false as sa_false
from sqlalchemy.orm import Mapped, mapped_column, relationship

from signage.db import Base, UTCDateTime
from signage.limits import (
    ID_LENGTH,
    NOTICE_LINK_LENGTH,
    NOTICE_SUBJECT_LENGTH,
    PLAY_ID_LENGTH,
    REASON_LENGTH,
    SHA256_LENGTH,
    SPOT_ID_LENGTH,
    TERM_LENGTH,
    VERSION_LENGTH,
)


class PublishedPlan(Base):
    """Every plan version a player was given; the newest row per player is what it should be playing.

    `sequence` orders a player's plans (players take a plan only above the one they hold, never by a clock): one
    counter for the fleet, each new row the largest yet, so a screen removed and added again never starts below
    what its player holds. It is in `body` too, signed; rows stored before migration 0010 have it only here.
    """

    __tablename__ = "published_plans"
    __table_args__ = (UniqueConstraint("player_id", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    player_id: Mapped[str] = mapped_column(ForeignKey("screens.id", ondelete="CASCADE"), index=True)
    version: Mapped[str] = mapped_column(String(SHA256_LENGTH))
    sequence: Mapped[int] = mapped_column(BigInteger, unique=True)
    body: Mapped[str] = mapped_column(Text)  # the plan's canonical JSON, as signed and sent
    valid_from: Mapped[datetime] = mapped_column(UTCDateTime)
    valid_until: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class CommandSequence(Base):
    """The sequence of the last command given to each player: commands are ordered by it, never by a clock."""

    __tablename__ = "command_sequences"

    player_id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    last: Mapped[int] = mapped_column(BigInteger)


class SchedulerLease(Base):
    """Who may plan: one holder at a time, for as long as it keeps renewing."""

    __tablename__ = "scheduler_leases"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    holder: Mapped[str] = mapped_column(String(255))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)


class RecordedShortfall(Base):
    """Spots a campaign was saved without, knowingly: shown in reports as 'no capacity'."""

    __tablename__ = "recorded_shortfalls"
    __table_args__ = (UniqueConstraint("campaign_id", "site_id", "date", "reason"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    campaign_id: Mapped[str] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"), index=True)
    site_id: Mapped[str] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"))
    date: Mapped[date] = mapped_column(Date)
    reason: Mapped[str] = mapped_column(String(64))
    screens: Mapped[int] = mapped_column(Integer)
    missing: Mapped[int] = mapped_column(Integer)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)


class PlayerCredential(Base):
    """A player's secret, kept only as hashes: SHA-256 for HTTP, PBKDF2 in Mosquitto's format for the broker.

    Secrets are 256-bit random tokens, so a fast hash is as safe as a slow one here.
    """

    __tablename__ = "player_credentials"

    player_id: Mapped[str] = mapped_column(ForeignKey("screens.id", ondelete="CASCADE"), primary_key=True)
    secret_sha256: Mapped[str] = mapped_column(String(64))
    broker_hash: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class PlayRecord(Base):
    """One play attempt as the player reported it; a player's `play_id`s are unique forever, so the key is
    (play_id, player_id): two players that happen to make the same id each keep their record (migration 0009)."""

    __tablename__ = "play_records"
    # The proof-of-play log reads a period in this order: the index serves its filter and its order, and holds
    # every column the log's CSV writes, so that SQLite never looks a row up in the table (migration 0008).
    __table_args__ = (PrimaryKeyConstraint("play_id", "player_id"),
                      Index("ix_play_records_log", "local_date", "started_at", "play_id", "player_id", "campaign_id",
                            "ended_at", "scheduled_start", "duration_ms", "media", "kind", "status", "reason"))

    play_id: Mapped[str] = mapped_column(String(PLAY_ID_LENGTH))
    player_id: Mapped[str] = mapped_column(String(ID_LENGTH), index=True)
    spot_id: Mapped[str | None] = mapped_column(String(SPOT_ID_LENGTH))
    campaign_id: Mapped[str | None] = mapped_column(String(ID_LENGTH), index=True)
    media: Mapped[str] = mapped_column(String(SHA256_LENGTH))
    kind: Mapped[str] = mapped_column(String(TERM_LENGTH))
    scheduled_start: Mapped[datetime | None] = mapped_column(UTCDateTime)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime] = mapped_column(UTCDateTime)
    duration_ms: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(TERM_LENGTH))
    reason: Mapped[str | None] = mapped_column(String(REASON_LENGTH))
    plan_version: Mapped[str | None] = mapped_column(String(VERSION_LENGTH))
    local_date: Mapped[date] = mapped_column(Date, index=True)  # in the screen's site timezone
    in_peak: Mapped[bool] = mapped_column(Boolean)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)


class DeliveryRollup(Base):
    """Per screen, campaign and local date: what was delivered, kept in the same transaction as the plays."""

    __tablename__ = "delivery_rollups"

    screen_id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    campaign_id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    local_date: Mapped[date] = mapped_column(Date, primary_key=True)
    completed_in_peak: Mapped[int] = mapped_column(Integer, default=0)  # spots and make-goods that count
    completed_total: Mapped[int] = mapped_column(Integer, default=0)
    makegoods: Mapped[int] = mapped_column(Integer, default=0)
    interrupted: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    missed: Mapped[int] = mapped_column(Integer, default=0)
    media_missing: Mapped[int] = mapped_column(Integer, default=0, server_default="0")  # of failed + missed
    # From the newest plan for the day (set when plans are stored): docs/design.md §4's r, and the spots placed.
    required: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    planned: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    plan_reason: Mapped[str | None] = mapped_column(String(64))  # why planned < required (no capacity, ...)
    # Set when the day is closed (the nightly job): why a short screen-day fell short.
    cause: Mapped[str | None] = mapped_column(String(32))
    closed: Mapped[bool] = mapped_column(Boolean, default=False, server_default=sa_false())


HOURS = tuple(f"h{hour:02d}" for hour in range(24))  # play_hours' columns, one per local hour of the day


class PlayHours(Base):
    """Per local date, site and campaign: the completed spots and make-goods that started in each local hour (the
    site's timezone, as the plays' `local_date`), kept at ingest in the same transaction as the plays. The compliance
    report's chart reads it for its period instead of the log: the chart is by kind of site and the scope an
    organisation subtree, so a site's screens are summed (the plays count where they were played, should a screen
    move). One row a site-day with the hours as columns, clustered by date (SQLite: WITHOUT ROWID), so a period is
    one range of rows: a city of 900 sites keeps 27,000 rows a month, where a row a screen-hour would be nearly as
    many as the plays."""

    __table__ = Table(
        "play_hours", Base.metadata,
        Column("local_date", Date, primary_key=True),
        Column("site_id", String(ID_LENGTH), primary_key=True),
        Column("campaign_id", String(ID_LENGTH), primary_key=True),
        *(Column(name, Integer, nullable=False, default=0, server_default="0") for name in HOURS),
        sqlite_with_rowid=False,
    )


class PlayerPresence(Base):
    """The newest status of each player, and when the server last heard from it."""

    __tablename__ = "player_presence"

    player_id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    state: Mapped[str] = mapped_column(String(TERM_LENGTH))
    plan_version: Mapped[str | None] = mapped_column(String(VERSION_LENGTH))
    now_playing: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True))
    cache_ready: Mapped[int | None] = mapped_column(Integer)
    cache_missing: Mapped[int | None] = mapped_column(Integer)
    cache_bytes: Mapped[int | None] = mapped_column(BigInteger)
    journal_backlog: Mapped[int | None] = mapped_column(Integer)
    clock_offset_ms: Mapped[int | None] = mapped_column(Integer)
    software_version: Mapped[str | None] = mapped_column(String(VERSION_LENGTH))
    refused: Mapped[str | None] = mapped_column(String(REASON_LENGTH))
    # While the player's journal cannot write (docs/files.md): why, plays waiting in memory, plays lost.
    journal_error: Mapped[str | None] = mapped_column(String(REASON_LENGTH))
    journal_unwritten: Mapped[int | None] = mapped_column(Integer)
    journal_refused: Mapped[int | None] = mapped_column(Integer)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_seen: Mapped[datetime] = mapped_column(UTCDateTime)


class PlayerDay(Base):
    """What the server heard from a player on one local date: for uptime, and to tell an offline screen-day
    from one whose player ran without a plan."""

    __tablename__ = "player_days"

    player_id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    local_date: Mapped[date] = mapped_column(Date, primary_key=True, index=True)
    heartbeats: Mapped[int] = mapped_column(Integer, default=0)  # online statuses (every 30 s while running)
    first_seen: Mapped[datetime] = mapped_column(UTCDateTime)
    last_seen: Mapped[datetime] = mapped_column(UTCDateTime)
    had_plan: Mapped[bool] = mapped_column(Boolean, default=False)  # some status that day named a plan version


class AlertDelivery(Base):
    """One alert on one screen: when its command last went out, and what the player acknowledged.

    `started_at` and `ended_at` come from the player's proof-of-play (`kind: alert`, `spot_id` = the alert's id);
    `outcome` is the status of the ending record (completed, interrupted, failed).
    """

    __tablename__ = "alert_deliveries"

    alert_id: Mapped[str] = mapped_column(ForeignKey("alerts.id", ondelete="CASCADE"), primary_key=True)
    screen_id: Mapped[str] = mapped_column(String(ID_LENGTH), primary_key=True)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    sends: Mapped[int] = mapped_column(Integer, default=0)
    stop_sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    outcome: Mapped[str | None] = mapped_column(String(TERM_LENGTH))
    reason: Mapped[str | None] = mapped_column(String(REASON_LENGTH))


class ScreenCommand(Base):
    """A remote action staff asked of a screen (a screenshot, reload the plan, sync media, restart playback): the
    command sent to its player and the outcome the player reported in its status (`done` or `refused`, with the
    reason). `sent_at` is empty until it is handed to the broker; past `expires_at` with no outcome, it expired
    unanswered."""

    __tablename__ = "screen_commands"
    __table_args__ = (Index("ix_screen_commands_screen_requested", "screen_id", "requested_at"),)

    command_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    screen_id: Mapped[str] = mapped_column(ForeignKey("screens.id", ondelete="CASCADE"))
    action: Mapped[str] = mapped_column(String(TERM_LENGTH))
    requested_by: Mapped[str] = mapped_column(String(64))
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    outcome: Mapped[str | None] = mapped_column(String(TERM_LENGTH))
    reason: Mapped[str | None] = mapped_column(String(REASON_LENGTH))
    answered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class ScreenOutage(Base):
    """A screen dark inside its peak hours long enough to tell people (scheduler/outage_notices.py): one row per
    episode, from the notice to its return, so each episode is told once, and its end once."""

    __tablename__ = "screen_outages"
    __table_args__ = (Index("ix_screen_outages_open", "screen_id", "ended_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    screen_id: Mapped[str] = mapped_column(ForeignKey("screens.id", ondelete="CASCADE"))
    dark_since: Mapped[datetime] = mapped_column(UTCDateTime)  # last heard from, or the peak window's start
    noticed_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # back online (or retired: then untold)


class RhythmNotice(Base):
    """What the message-rhythm noter last told about a unit (scheduler/rhythm_notices.py), so each thing is told
    once: `kind` "due", the unit's own reminder, keyed by the due date it was about ("never" for a unit that never
    sent a regular message); "at_risk", its children at risk, keyed by the local date of the parent's notice."""

    __tablename__ = "rhythm_notices"

    organisation_id: Mapped[str] = mapped_column(ForeignKey("organisations.id", ondelete="CASCADE"), primary_key=True)
    kind: Mapped[str] = mapped_column(String(TERM_LENGTH), primary_key=True)
    told_for: Mapped[str] = mapped_column(String(64))
    told_at: Mapped[datetime] = mapped_column(UTCDateTime)


class Notice(Base):
    """One user's in-app notice and its e-mail (scheduler/notices.py): a screen's outage or its end, a deadline
    near, a unit about to go late. Its words are written when it is made (`subject`, `body`, and `link`, the
    page it is about), so the mail and the page say the same. `email_due` when the user had an address then;
    `emailed_at` once the mail server took it (alone, or in the day's digest); failures counted and kept for the
    next round."""

    __tablename__ = "notices"
    __table_args__ = (Index("ix_notices_user_created", "user_id", "created_at"),
                      Index("ix_notices_email_pending", "email_due", "emailed_at"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"))
    outage_id: Mapped[int | None] = mapped_column(ForeignKey("screen_outages.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(TERM_LENGTH))  # offline | back_online | what the other noters tell
    subject: Mapped[str] = mapped_column(String(NOTICE_SUBJECT_LENGTH))
    body: Mapped[str] = mapped_column(Text)
    link: Mapped[str | None] = mapped_column(String(NOTICE_LINK_LENGTH))  # a path of the web UI, e.g. /screens/x
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    email_due: Mapped[bool] = mapped_column(Boolean, default=False)
    emailed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    email_attempts: Mapped[int] = mapped_column(Integer, default=0)
    email_error: Mapped[str | None] = mapped_column(String(REASON_LENGTH))

    outage: Mapped[ScreenOutage | None] = relationship()


class PairingRequest(Base):
    """A screen PC asking to be paired (scheduler/pairing.py): the short code it shows, which staff type on the
    screen's page, and the sha256 of the random secret the PC polls with. Nothing here lets anyone in: the
    player's credentials are made when the PC that holds the secret fetches them, once, after a claim."""

    __tablename__ = "pairing_requests"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    code: Mapped[str] = mapped_column(String(TERM_LENGTH), index=True)
    secret_sha256: Mapped[str] = mapped_column(String(SHA256_LENGTH), unique=True)
    client: Mapped[str | None] = mapped_column(String(64))  # the address the request came from
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    screen_id: Mapped[str | None] = mapped_column(ForeignKey("screens.id", ondelete="CASCADE"))
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    claimed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
