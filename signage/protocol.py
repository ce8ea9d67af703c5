"""The wire contract between the scheduler and the player agents (DESIGN §3): models and canonical JSON.

This module needs pydantic and nothing of the server: the player agent imports it to check what it receives.
Every model forbids unknown fields, because a payload that does not match the contract exactly is refused.

Instants are written ISO-8601 with their own offset ("2024-08-20T05:30:00+07:00", local to the screen), except
`generated_at`, which is UTC with a "Z". Serialising a parsed plan gives back the same bytes, so a player can
recompute a plan's `version` from what it holds.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, PlainSerializer, field_validator, model_validator

PLAN_SCHEMA = "signage.plan/1"
SHA256_PATTERN = r"^[0-9a-f]{64}$"
# Fields of a plan left out of its version, so that re-issuing an unchanged plan keeps the version.
UNVERSIONED_PLAN_FIELDS = ("version", "generated_at")


def format_instant(instant: datetime) -> str:
    """An aware instant as ISO-8601 with its own offset: '2024-08-20T05:30:00+07:00'."""
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise ValueError("an instant on the wire needs a timezone")
    return instant.isoformat()


def format_utc_instant(instant: datetime) -> str:
    """An aware instant in UTC with a 'Z': '2024-08-20T00:05:00Z'."""
    return format_instant(instant.astimezone(UTC)).replace("+00:00", "Z")


# One serialiser for every instant, shared with the planner's fast writer so both give the same bytes.
Instant = Annotated[AwareDatetime, PlainSerializer(format_instant, return_type=str, when_used="json")]
UtcInstant = Annotated[AwareDatetime, PlainSerializer(format_utc_instant, return_type=str, when_used="json")]
Sha256 = Annotated[str, Field(pattern=SHA256_PATTERN)]
Identifier = Annotated[str, Field(min_length=1, max_length=255)]


class WireModel(BaseModel):
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

    spot_id: Identifier
    campaign_id: Identifier
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
    player_id: Identifier
    version: Sha256
    generated_at: UtcInstant
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


def canonical_json(obj: Any) -> bytes:
    """Canonical JSON (sorted keys, no insignificant whitespace, UTF-8): what is signed and hashed."""
    if isinstance(obj, BaseModel):
        obj = obj.model_dump(mode="json", by_alias=True)
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode()


def plan_version(plan_body: dict[str, Any]) -> str:
    """sha256 hex of the canonical JSON of a plan without its `version` and `generated_at`."""
    body = {key: value for key, value in plan_body.items() if key not in UNVERSIONED_PLAN_FIELDS}
    return hashlib.sha256(canonical_json(body)).hexdigest()


__all__ = [
    "PLAN_SCHEMA",
    "MediaEntry",
    "Plan",
    "Spot",
    "TimeSpan",
    "canonical_json",
    "format_instant",
    "format_utc_instant",
    "plan_version",
]
