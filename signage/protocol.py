"""The wire contract between the scheduler and the player agents (docs/design.md §3): models and canonical JSON.

This module needs pydantic and nothing of the server: the player agent imports it to check what it receives.
Every model forbids unknown fields, because a payload that does not match the contract exactly is refused.

Instants are written ISO-8601 with their own offset ("2024-08-20T05:30:00+07:00", local to the screen), except
`generated_at`, which is UTC with a "Z". Serialising a parsed plan gives back the same bytes, so a player can
recompute a plan's `version` from what it holds.

Plans and commands are put in order by `sequence`, a number the server's database makes larger for each plan (each
command) it gives a player, never by a clock: a server whose clock jumped ahead and was put right must not lock its
players out of every later plan (issue 16). `plan_order` and `command_order` are the players' rules.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    field_validator,
    model_validator,
)

from signage.limits import ID_LENGTH, PLAY_ID_LENGTH, REASON_LENGTH, SPOT_ID_LENGTH, VERSION_LENGTH
from signage.text import NfcModel

PLAN_SCHEMA = "signage.plan/1"
SHA256_PATTERN = r"^[0-9a-f]{64}$"
# Fields of a plan left out of its version, so that re-issuing an unchanged plan keeps the version.
UNVERSIONED_PLAN_FIELDS = ("version", "generated_at", "sequence")


def format_instant(instant: datetime) -> str:
    """An aware instant as ISO-8601 with its own offset: '2024-08-20T05:30:00+07:00'."""
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError("an instant on the wire needs a timezone")
    return instant.isoformat()


def format_utc_instant(instant: datetime) -> str:
    """An aware instant in UTC with a 'Z': '2024-08-20T00:05:00Z'."""
    return format_instant(instant.astimezone(UTC)).replace("+00:00", "Z")


# The years an instant on the wire may fall in: wide, but far enough from datetime's limits that converting to
# UTC or to a screen's zone cannot overflow (a record dated 9999-12-31T23:59-12:00 once stopped an ingest round).
EARLIEST_INSTANT = datetime(1970, 1, 1, tzinfo=UTC)
LATEST_INSTANT = datetime(9000, 1, 1, tzinfo=UTC)
INT32_MAX = 2**31 - 1  # the database's INTEGER columns
INT64_MAX = 2**63 - 1


def _within_wire_years(instant: datetime) -> datetime:
    try:
        in_range = EARLIEST_INSTANT <= instant.astimezone(UTC) < LATEST_INSTANT
    except OverflowError:
        in_range = False
    if not in_range:
        raise ValueError("an instant on the wire lies between 1970 and 9000")
    return instant


def _without_nul(text: str) -> str:
    # PostgreSQL's text columns cannot hold NUL: one such character would fail the whole ingest transaction.
    if "\x00" in text:
        raise ValueError("text on the wire cannot hold a NUL character")
    return text


# One serialiser for every instant, shared with the planner's fast writer so both give the same bytes.
Instant = Annotated[AwareDatetime, AfterValidator(_within_wire_years),
                    PlainSerializer(format_instant, return_type=str, when_used="json")]
UtcInstant = Annotated[AwareDatetime, AfterValidator(_within_wire_years),
                       PlainSerializer(format_utc_instant, return_type=str, when_used="json")]
Sha256 = Annotated[str, Field(pattern=SHA256_PATTERN)]
WireText = Annotated[str, AfterValidator(_without_nul)]
Identifier = Annotated[WireText, Field(min_length=1, max_length=255)]  # ids made for the wire only (batches, commands)
# Ids that land in a column are bounded by it (signage.limits).
EntityId = Annotated[WireText, Field(min_length=1, max_length=ID_LENGTH)]  # screens (= players), campaigns, alerts
SpotId = Annotated[WireText, Field(min_length=1, max_length=SPOT_ID_LENGTH)]
Version = Annotated[WireText, Field(max_length=VERSION_LENGTH)]
Reason = Annotated[WireText, Field(max_length=REASON_LENGTH)]
SequenceNumber = Annotated[int, Field(ge=1, le=2**63 - 1)]  # the database's BIGINT


class WireModel(NfcModel):
    """What travels over MQTT: no unknown fields, immutable, text in NFC (signage/text.py)."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class TimeSpan(WireModel):
    """[start, end) of a window on one day."""

    start: Instant
    end: Instant

    @model_validator(mode="after")
    def _ends_after_start(self) -> TimeSpan:
        if self.end <= self.start:
            raise ValueError(f"the span ends ({format_instant(self.end)}) before it starts "
                             f"({format_instant(self.start)})")
        return self


class Spot(WireModel):
    """One scheduled play of a campaign's creative."""

    spot_id: SpotId
    campaign_id: EntityId
    media: Sha256
    start: Instant
    duration_ms: int = Field(gt=0)

    @property
    def end(self) -> datetime:
        return self.start + timedelta(milliseconds=self.duration_ms)


class MediaEntry(WireModel):
    """Where to fetch a media file and what it is; `duration_ms` is one play's length (display time for images)."""

    url: str = Field(min_length=1)
    bytes: int = Field(ge=0)
    mime: str = Field(min_length=1)
    duration_ms: int = Field(gt=0)


class Plan(WireModel):
    """What one player plays over its validity: spots at fixed times, filler in between, inside operating hours."""

    schema_: Literal["signage.plan/1"] = Field(PLAN_SCHEMA, alias="schema")
    player_id: EntityId
    version: Sha256
    generated_at: UtcInstant
    # Signed with the rest, left out of the version; absent from plans of a server before the sequence (and from
    # `signage plan` files, which no player takes).
    sequence: SequenceNumber | None = Field(None, exclude_if=lambda value: value is None)
    timezone: str = Field(min_length=1)
    valid_from: Instant
    valid_until: Instant
    operating_hours: list[TimeSpan]
    peak_windows: list[TimeSpan]
    filler: list[Sha256]
    spots: list[Spot]
    media: dict[Sha256, MediaEntry]

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @field_validator("generated_at")
    @classmethod
    def _in_utc(cls, value: datetime) -> datetime:
        return value.astimezone(UTC)

    @model_validator(mode="after")
    def _consistent(self) -> Plan:
        if self.valid_until <= self.valid_from:
            raise ValueError("the plan's valid_until is not after its valid_from")
        for before, after in zip(self.spots, self.spots[1:], strict=False):
            if after.start < before.end:
                raise ValueError(f"spots {before.spot_id} and {after.spot_id} overlap or are not sorted by start")
        for spot in self.spots:
            if not self.valid_from <= spot.start < self.valid_until:
                raise ValueError(f"spot {spot.spot_id} starts outside the plan's validity")
        missing = sorted(({s.media for s in self.spots} | set(self.filler)) - set(self.media))
        if missing:
            raise ValueError(f"the media table lacks {', '.join(missing)}, which spots or filler refer to")
        return self

    def wire_dict(self) -> dict[str, Any]:
        """The plan as the JSON object that goes on the wire."""
        return self.model_dump(mode="json", by_alias=True)

    def computed_version(self) -> str:
        """The version this plan's body calls for; equal to `version` unless the plan was tampered with."""
        return plan_version(self.wire_dict())


def plan_order(held: Plan | None, offered: Plan) -> str:
    """What a player does with a verified plan `offered` for it while holding `held`: "take", "same" (the plan
    held, sent again: nothing to do), or the reason it is refused.

    Sequenced plans go by `sequence` alone: a higher one is taken, a lower or equal one is a replay. The same version
    under a higher sequence is taken too (it was re-issued after others), so that an older plan replayed later is
    still refused. A player still holding a plan from before the sequence takes the first sequenced plan, and from
    then on never an unsequenced one. Between two unsequenced plans (a server from before the sequence) the later
    `generated_at` wins, as it used to.
    """
    if held is None:
        return "take"
    if offered.sequence is not None and held.sequence is not None:
        if offered.sequence > held.sequence:
            return "take"
        if offered.sequence == held.sequence and offered.version == held.version:
            return "same"
        return (f"plan {offered.sequence} is not later than plan {held.sequence}, the one held "
                "(a plan sent again after a newer one)")
    if offered.sequence is not None:
        return "take"
    if held.sequence is not None:
        return f"the plan carries no sequence, and plan {held.sequence} is held (a plan from before the sequence)"
    if offered.version == held.version:
        return "same"
    if offered.generated_at <= held.generated_at:
        return f"the plan of {offered.generated_at.isoformat()} is older than the one held"
    return "take"


def command_order(last_sequence: int | None, command: Command) -> str | None:
    """Why a player refuses `command`, given the highest sequence among the commands it carried out (None before
    any sequenced one); None when it may run it. A command runs only when its sequence is above every one carried
    out: a lower or equal one was sent again, or is stale. Once a sequenced command was carried out, an unsequenced
    one is refused (it comes from before the sequence). How long a command may wait on the way is its MQTT message
    expiry, counted by the broker, not this rule."""
    if command.sequence is None:
        if last_sequence is not None:
            return (f"it carries no sequence, and command {last_sequence} was carried out already "
                    "(a command from before the sequence)")
        return None
    if last_sequence is not None and command.sequence <= last_sequence:
        return (f"its sequence {command.sequence} is not above {last_sequence}, the last one carried out "
                "(sent again, or stale)")
    return None


# ---------------------------------------------------------------------------------------------------------
# Topics (MQTT 5): every player has its own five.

TOPIC_ROOT = "signage/v1/players"
PLAYER_TOPICS = ("plan", "cmd", "pop", "ack", "status")
SHARED_INGEST = "$share/ingest"


def player_topic(player_id: str, kind: str) -> str:
    if kind not in PLAYER_TOPICS:
        raise ValueError(f"unknown topic kind {kind!r}; one of {', '.join(PLAYER_TOPICS)}")
    return f"{TOPIC_ROOT}/{player_id}/{kind}"


def player_of_topic(topic: str) -> tuple[str, str] | None:
    """'signage/v1/players/P/pop' -> ('P', 'pop'); None for anything else."""
    parts = topic.split("/")
    if len(parts) == 5 and "/".join(parts[:3]) == TOPIC_ROOT and parts[4] in PLAYER_TOPICS and parts[3]:
        return parts[3], parts[4]
    return None


# ---------------------------------------------------------------------------------------------------------
# Signed envelopes and commands (server -> player)


class SignedEnvelope(WireModel):
    """A payload with the server's Ed25519 signature over its canonical JSON (taken as it came: normalising it would
    break the signature; the plan or command inside is normalised when it is read)."""

    nfc_input: ClassVar[bool] = False
    payload: dict[str, Any]
    alg: Literal["ed25519"]
    key_id: Annotated[str, Field(min_length=1, max_length=64)]
    sig: Annotated[str, Field(min_length=1, max_length=200)]


COMMAND_SCHEMA = "signage.command/1"
CommandName = Literal["reload", "sync_now", "screenshot", "restart", "alert_start", "alert_stop"]


class Command(WireModel):
    schema_: Literal["signage.command/1"] = Field(COMMAND_SCHEMA, alias="schema")
    command_id: Identifier
    player_id: EntityId
    name: CommandName
    issued_at: UtcInstant
    expires_at: UtcInstant
    args: dict[str, Any] = Field(default_factory=dict)
    sequence: SequenceNumber | None = Field(None, exclude_if=lambda value: value is None)  # as a plan's, per player


AlertSeverity = Literal["info", "urgent"]
AlertKind = Literal["text", "media"]
MAX_ALERT_TEXT = 500


class AlertOrder(WireModel):
    """The args of an `alert_start` command: what to show, how, and from when until when.

    `info` shows `text` as a ticker over whatever plays (a media alert's clip plays in the gaps between spots);
    `urgent` takes the screen over at `starts_at`, cutting what plays, until `expires_at` or an `alert_stop`.
    A media alert's `text` is shown while its file is still being fetched. A text alert sent to a loudspeaker
    carries its text read aloud as `media` and `media_entry` (docs/files.md): played as a media alert's clip is.
    """

    alert_id: EntityId
    severity: AlertSeverity
    kind: AlertKind
    text: Annotated[str, Field(min_length=1, max_length=MAX_ALERT_TEXT)]
    media: Sha256 | None = None
    media_entry: MediaEntry | None = None
    starts_at: UtcInstant
    expires_at: UtcInstant

    @model_validator(mode="after")
    def _consistent(self) -> AlertOrder:
        if self.expires_at <= self.starts_at:
            raise ValueError("the alert expires before it starts")
        if self.kind == "media" and (self.media is None or self.media_entry is None):
            raise ValueError("a media alert names its media and media_entry")
        if self.kind == "text" and (self.media is None) != (self.media_entry is None):
            raise ValueError("a text alert read aloud names its audio in both media and media_entry")
        return self

    @property
    def content(self) -> str:
        """What proof-of-play names as the alert's media: the file's sha256, or that of the text (UTF-8)."""
        return self.media or text_sha256(self.text)


class AlertStop(WireModel):
    """The args of an `alert_stop` command: the alert to take off the screen now."""

    alert_id: EntityId


def text_sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


# ---------------------------------------------------------------------------------------------------------
# Proof of play, acknowledgements and status (player -> server, and the acks back)

PlayKind = Literal["spot", "makegood", "filler", "alert"]
# "started" only for alerts: the player acknowledges an alert's start at once, and its end in a second record.
PlayStatus = Literal["completed", "interrupted", "failed", "missed", "started"]
MAX_BATCH = 5000
MAX_NOW_PLAYING_BYTES = 2000


class PopRecord(WireModel):
    """One play attempt; `play_id` is made by the player and unique forever, so ingest is idempotent."""

    play_id: Annotated[str, Field(min_length=8, max_length=PLAY_ID_LENGTH, pattern=r"^[A-Za-z0-9_.:-]+$")]
    player_id: EntityId
    spot_id: SpotId | None = None
    campaign_id: EntityId | None = None
    media: Sha256
    kind: PlayKind
    scheduled_start: Instant | None = None
    started_at: Instant
    ended_at: Instant
    duration_ms: Annotated[int, Field(ge=0, le=86_400_000)]
    status: PlayStatus
    reason: Reason | None = None
    plan_version: Version | None = None

    @model_validator(mode="after")
    def _consistent(self) -> PopRecord:
        if self.ended_at < self.started_at:
            raise ValueError("ended_at is before started_at")
        if self.kind in ("spot", "makegood") and (self.spot_id is None or self.campaign_id is None):
            raise ValueError(f"a {self.kind} play names its spot_id and campaign_id")
        if self.kind == "alert" and self.spot_id is None:
            raise ValueError("an alert's play names the alert's id in spot_id")
        if self.status == "started" and self.kind != "alert":
            raise ValueError("only an alert's play is acknowledged as started; other plays are recorded once ended")
        return self


class PopBatch(WireModel):
    """Records go in a batch as raw objects: each is validated on its own, so one bad record does not
    cost the others."""

    schema_: Literal["signage.pop/1"] = Field("signage.pop/1", alias="schema")
    batch_id: Identifier
    records: Annotated[list[Any], Field(max_length=MAX_BATCH)]


class PopAck(WireModel):
    schema_: Literal["signage.popack/1"] = Field("signage.popack/1", alias="schema")
    batch_id: Identifier
    committed: list[str]
    rejected: dict[str, str] = Field(default_factory=dict)  # play_id (or "#index") -> why


class CacheFigures(WireModel):
    ready: Annotated[int, Field(ge=0, le=INT32_MAX)]
    missing: Annotated[int, Field(ge=0, le=INT32_MAX)]
    bytes: Annotated[int, Field(ge=0, le=INT64_MAX)]


MAX_COMMAND_OUTCOMES = 50


class CommandOutcome(WireModel):
    """What a player made of one command: carried out (`done`) or `refused`, with the reason. A player names its
    outcomes in its statuses until the command's expiry has passed (and a few minutes at least), so the server
    learns each one whatever status it missed."""

    command_id: Identifier
    outcome: Literal["done", "refused"]
    reason: Reason | None = None
    at: UtcInstant


class Status(WireModel):
    player_id: EntityId
    state: Literal["online", "offline"]
    plan_version: Version | None = None
    now_playing: dict[str, Any] | None = None
    cache: CacheFigures | None = None
    journal_backlog: Annotated[int, Field(ge=0, le=INT32_MAX)] | None = None  # not yet acked: on disk or in memory
    # While the journal cannot write (a full disk): why, how many plays wait in memory, and how many were refused
    # this run because the memory's bound was reached (lost). Left out of the message when none.
    journal_error: Reason | None = None
    journal_unwritten: Annotated[int, Field(ge=0, le=INT32_MAX)] | None = None
    journal_refused: Annotated[int, Field(ge=0, le=INT32_MAX)] | None = None
    clock_offset_ms: Annotated[int, Field(ge=-INT32_MAX, le=INT32_MAX)] | None = None
    software_version: Version | None = None
    sent_at: UtcInstant | None = None
    refused: Reason | None = None  # the last plan or command refused, and why
    alerts: Annotated[list[EntityId], Field(max_length=200)] | None = None  # the alerts held, not yet over
    # The outcomes of the commands received lately; left out of the message while there are none.
    commands: Annotated[list[CommandOutcome], Field(max_length=MAX_COMMAND_OUTCOMES)] | None = None

    @field_validator("now_playing")
    @classmethod
    def _small_plain_json(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        # Stored as JSON as it came: strict JSON (no NaN, which PostgreSQL refuses) and small.
        if value is not None and len(canonical_json(value)) > MAX_NOW_PLAYING_BYTES:
            raise ValueError(f"now_playing takes at most {MAX_NOW_PLAYING_BYTES} bytes of JSON")
        return value


def canonical_json(obj: Any) -> bytes:
    """Canonical JSON (sorted keys, no insignificant whitespace, UTF-8): what is signed and hashed."""
    if isinstance(obj, BaseModel):
        obj = obj.model_dump(mode="json", by_alias=True)
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def plan_version(plan_body: dict[str, Any]) -> str:
    """sha256 hex of the canonical JSON of a plan without its `version`, `generated_at` and `sequence`."""
    body = {key: value for key, value in plan_body.items() if key not in UNVERSIONED_PLAN_FIELDS}
    return hashlib.sha256(canonical_json(body)).hexdigest()


__all__ = [
    "COMMAND_SCHEMA",
    "AlertOrder",
    "AlertStop",
    "PLAN_SCHEMA",
    "Command",
    "CommandOutcome",
    "PopAck",
    "PopBatch",
    "PopRecord",
    "SignedEnvelope",
    "Status",
    "player_of_topic",
    "player_topic",
    "MediaEntry",
    "Plan",
    "Spot",
    "TimeSpan",
    "canonical_json",
    "command_order",
    "format_instant",
    "plan_order",
    "format_utc_instant",
    "plan_version",
]
