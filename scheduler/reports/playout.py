"""The proof-of-play log in the UK Playout File Format, so that tools which read Playout files read ours.

The format is Outsmart's "Playout Digital File Format", version 1.7 of 8 December 2023
(github.com/Outsmart-OOH/PlayoutReportingStandard, Playout/playout-digital-file-format.md): CSV in UTF-8 (no byte
order mark), no header record, every record ended by a Unix line feed, no padding, and these 19 fields in this
order (* mandatory). Our mapping from the proof-of-play log's keys:

    frameid*               the screen: `frame_ids[player_id]` when screens have SPACE frame ids (integers SPACE
                           issues), else player_id itself (a player drives one screen); readable, but SPACE's own
                           validation would refuse a non-integer
    startdate              started_at in UTC, yyyy-mm-ddThh:mm:ss.sss
    startutcoffset         the offset of the screen's timezone at that moment, ±hh:mm (+07:00 in Hà Nội)
    enddate                ended_at in UTC, as startdate
    endutcoffset           as startutcoffset, at ended_at
    spotlength             duration_ms: the specification counts spot length in milliseconds, not seconds
    shareoftime            empty: a spot has the whole screen (no scrollers)
    orderid*               campaign_id
    lineid                 empty: there are no OpenDirect order lines
    spacebuyerid*          `space_buyer_id` if given, else empty (SPACE ids belong to UK buyers and brands, which
    spaceagencyid          `space_agency_id`     Hà Nội's campaigns do not have)
    spacebrandid*          `space_brand_id`
    buyercampaignref       campaign_name (cut to 64 characters)
    creativeid*            media: the creative's sha256, 64 hex characters, the field's maximum
    creativename*          media_name (cut to 128 characters), or the campaign's name when there is none
    thirdpartycreativeref  empty
    creativetriggerevent   kind: "spot" for a planned play, "makegood" for a make-good
    playerref              player_id (cut to 36 characters)
    mediaownerplayoutref*  play_id: made by the player, unique forever, as the field asks

Every text field starting like a formula (=, +, -, @, a tab or a carriage return) gets a leading apostrophe before
it is cut to its length (scheduler/reports/formulas.py: the rule of every CSV and XLSX we write); numbers stay numbers.

Only completed plays of campaigns are playouts: failed, missed and interrupted attempts did not play out, and the
house filler loop has no campaign (no order). `statuses` widens the selection for an internal audit.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Collection, Iterable, Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from scheduler.reports.exports import EPOCH, EPOCH_ORDINAL, MILLIS, Output, binary_output, clock_times, zone_offset
from scheduler.reports.formulas import inert

PLAYOUT_FIELDS = (
    "frameid", "startdate", "startutcoffset", "enddate", "endutcoffset", "spotlength", "shareoftime", "orderid",
    "lineid", "spacebuyerid", "spaceagencyid", "spacebrandid", "buyercampaignref", "creativeid", "creativename",
    "thirdpartycreativeref", "creativetriggerevent", "playerref", "mediaownerplayoutref",
)
DEFAULT_TIMEZONE = "Asia/Ho_Chi_Minh"


def _text(value: Any, limit: int) -> str:
    """A typed name on one line, unpadded, never a formula, within the field's length."""
    if value is None:
        return ""
    return inert(" ".join(str(value).split()))[:limit]


def _token(value: Any, limit: int) -> str:
    """An id as it is (a single token already), never a formula, within the field's length."""
    return inert(str(value))[:limit]


def _offset_text(offset: timedelta | None) -> str:
    minutes = round((offset or timedelta()).total_seconds() / 60)
    return f"{'-' if minutes < 0 else '+'}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def _instant(value: datetime | str) -> datetime:
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _instants(default_zone: str) -> Callable[[Any, str | None], tuple[str, str]]:
    """An instant as the format's UTC text (always milliseconds) and its zone's offset (±hh:mm), put together
    from cached pieces as exports._iso_text does: a log of millions of plays spends most of its time here."""
    times, millis = clock_times(), MILLIS
    days: dict[int, str] = {}
    zones: dict[str, ZoneInfo] = {}
    offsets: dict[tuple[str, int], tuple[int, str] | None] = {}

    def texts(value: Any, zone_name: str | None) -> tuple[str, str]:
        if value.__class__ is not datetime or value.tzinfo is None:
            value = _instant(value)
        name = zone_name or default_zone
        since = value - EPOCH
        day, second = since.days, since.seconds
        key = (name, day * 96 + second // 900)
        try:
            offset = offsets[key]
        except KeyError:
            zone = zones.get(name) or zones.setdefault(name, ZoneInfo(name))
            offset = offsets[key] = zone_offset(zone, key[1])
        # None: a clock change inside the quarter hour, or an offset in seconds (the format has minutes).
        offset_text = offset[1] if offset is not None else _offset_text(value.astimezone(zones[name]).utcoffset())
        prefix = days.get(day)
        if prefix is None:
            prefix = days[day] = date.fromordinal(day + EPOCH_ORDINAL).isoformat() + "T"
        return prefix + times[second] + millis[since.microseconds // 1000], offset_text

    return texts


def _record_maker(timezone: str, frame_ids: Mapping[str, int] | None, space_buyer_id: int | None,
                  space_agency_id: int | None, space_brand_id: int | None) -> Callable[[Mapping[str, Any]], list]:
    instants = _instants(timezone)
    buyer = "" if space_buyer_id is None else space_buyer_id
    agency = "" if space_agency_id is None else space_agency_id
    brand = "" if space_brand_id is None else space_brand_id

    def record(row: Mapping[str, Any]) -> list[Any]:
        zone = row.get("timezone")
        start, start_offset = instants(row["started_at"], zone)
        end, end_offset = instants(row["ended_at"], zone)
        player = row["player_id"]
        campaign_name = row.get("campaign_name")
        # Ids (slugs, sha256, the player's play id) are single tokens already; only typed names are tidied.
        return [
            inert(player) if frame_ids is None else inert(frame_ids.get(player, player)),  # SPACE's are integers
            start, start_offset, end, end_offset, int(row["duration_ms"]), "",
            _token(row["campaign_id"], 256), "", buyer, agency, brand,
            _text(campaign_name, 64),
            _token(row["media"], 64),
            _text(row.get("media_name") or campaign_name or row["media"], 128),
            "",
            _token(row.get("kind") or "", 64),
            _token(player, 36),
            _token(row["play_id"], 48),
        ]

    return record


def playout_record(row: Mapping[str, Any], *, timezone: str = DEFAULT_TIMEZONE,
                   frame_ids: Mapping[str, int] | None = None, space_buyer_id: int | None = None,
                   space_agency_id: int | None = None, space_brand_id: int | None = None) -> list[Any]:
    """One proof-of-play record as the 19 Playout fields (see the module's mapping)."""
    return _record_maker(timezone, frame_ids, space_buyer_id, space_agency_id, space_brand_id)(row)


def write_playout_csv(rows: Iterable[Mapping[str, Any]], out: Output, *, header: bool = False,
                      timezone: str = DEFAULT_TIMEZONE, frame_ids: Mapping[str, int] | None = None,
                      space_buyer_id: int | None = None, space_agency_id: int | None = None,
                      space_brand_id: int | None = None, statuses: Collection[str] = ("completed",)) -> int:
    """Writes the playouts among `rows` (dicts with the proof-of-play log's keys; a row may carry its screen's
    "timezone", else `timezone` applies) and returns how many records it wrote. Rows stream: a generator over
    millions of plays is never held. The specification has no header record; `header=True` adds the field names
    as a first line for people reading the file, not for Playout."""
    record = _record_maker(timezone, frame_ids, space_buyer_id, space_agency_id, space_brand_id)
    wanted = frozenset(statuses)
    written = 0

    def records():
        nonlocal written
        for row in rows:
            if row.get("status") in wanted and row.get("campaign_id"):
                written += 1
                yield record(row)

    with binary_output(out) as stream:
        text = io.TextIOWrapper(stream, encoding="utf-8", newline="")
        try:
            writer = csv.writer(text, lineterminator="\n")
            if header:
                writer.writerow(PLAYOUT_FIELDS)
            writer.writerows(records())
            text.flush()
        finally:
            text.detach()  # the caller's stream stays open
    return written
