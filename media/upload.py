"""Staff uploads into the media library.

The multipart body is streamed straight into the store's tmp directory with a running sha256, and
reading stops as soon as the file passes the size limit. The file is then probed: what players cannot
play is refused with the reason, what they can is moved under its sha256 and recorded. The same bytes
uploaded again within the unit's subtree give the item already there; bytes only other units hold give the unit
its own item (media/models.py). Nothing of a refused upload stays on disk.
"""

from __future__ import annotations

import unicodedata
from collections.abc import AsyncIterable
from dataclasses import dataclass, field

import anyio
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from campaigns.access import Actor
from campaigns.audit import record_change
from campaigns.campaign_file import DEFAULT_IMAGE_SECONDS
from campaigns.kinds import MediaKind
from media.models import MediaAsset, held_by
from media.probe import probe
from media.store import Incoming, MediaStore
from media.thumbnails import Thumbnails
from signage.clock import Clock
from signage.errors import Invalid

FILE_FIELD = "file"
FIELD_BYTES = 4096  # the form's other fields are short: an organisation id, a number, a token
MAX_FIELDS = 16
WRITE_BATCH = 1 << 20
FORM_OVERHEAD = 64 * 1024  # multipart boundaries and headers, and those short fields, around the file
MAX_DISPLAY_MS = 3_600_000
DEFAULT_DISPLAY_MS = round(DEFAULT_IMAGE_SECONDS * 1000)
UPLOAD_ACTION = "media.upload"


class TooLarge(Invalid):
    """Over the upload limit (the web layer answers it 413)."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"the file is larger than the {human_bytes(limit)} an upload may be",
                         "shorten or compress it (e.g. re-encode the video at a lower bitrate) and upload it again")


class NotAForm(Invalid):
    """The body is not multipart/form-data at all (the web layer answers it 415)."""


@dataclass
class Received:
    """An uploaded form: its short fields, and its file written to the store's tmp directory."""

    file: Incoming
    filename: str
    fields: dict[str, str] = field(default_factory=dict)

    def discard(self) -> None:
        self.file.discard()


@dataclass
class Accepted:
    asset: MediaAsset
    duplicate: bool


def human_bytes(size: int) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size} {unit}" if unit == "bytes" else f"{size:.1f} {unit}".replace(".0 ", " ")
        size /= 1024
    raise AssertionError("unreachable")


def check_declared_length(content_length: str | None, limit: int) -> None:
    """Refuses before reading anything when the body announces more bytes than the file may have."""
    if content_length is not None and content_length.isdigit() and int(content_length) > limit + FORM_OVERHEAD:
        raise TooLarge(limit)


class _FormReader:
    """python-multipart's callbacks, writing the file part to an Incoming as it arrives."""

    def __init__(self, store: MediaStore, limit: int) -> None:
        self.store, self.limit = store, limit
        self.fields: dict[str, str] = {}
        self.file: Incoming | None = None
        self.filename = ""
        self.ended = False
        self._headers: dict[bytes, bytes] = {}
        self._header = [b"", b""]
        self._name: str | None = None
        self._into_file = False
        self._value = bytearray()

    def callbacks(self) -> dict:
        return {"on_part_begin": self.part_begin, "on_header_field": self.header_field,
                "on_header_value": self.header_value, "on_header_end": self.header_end,
                "on_headers_finished": self.headers_finished, "on_part_data": self.part_data,
                "on_part_end": self.part_end, "on_end": self.end}

    def part_begin(self) -> None:
        self._headers, self._name, self._into_file, self._value = {}, None, False, bytearray()

    def header_field(self, data: bytes, start: int, end: int) -> None:
        self._header[0] += data[start:end]

    def header_value(self, data: bytes, start: int, end: int) -> None:
        self._header[1] += data[start:end]

    def header_end(self) -> None:
        self._headers[self._header[0].strip().lower()] = self._header[1].strip()
        self._header = [b"", b""]

    def headers_finished(self) -> None:
        _, options = parse_options_header(self._headers.get(b"content-disposition", b""))
        self._name = options.get(b"name", b"").decode("utf-8", "replace")
        if self._name != FILE_FIELD:
            if len(self.fields) >= MAX_FIELDS:
                raise Invalid(f"the form has more than {MAX_FIELDS} fields", "send the file and its few options only")
            return
        if self.file is not None:
            raise Invalid("the form carries more than one file", "upload one file at a time")
        self.filename = clean_filename(options.get(b"filename", b"").decode("utf-8", "replace"))
        self.file = self.store.incoming()
        self._into_file = True

    def part_data(self, data: bytes, start: int, end: int) -> None:
        if self._into_file:
            if self.file.size + (end - start) > self.limit:
                raise TooLarge(self.limit)
            self.file.write(data[start:end])
            return
        if len(self._value) + (end - start) > FIELD_BYTES:
            raise Invalid(f"the form field {self._name!r} is longer than {FIELD_BYTES} bytes",
                          "send only the file and short values in the other fields")
        self._value += data[start:end]

    def part_end(self) -> None:
        if not self._into_file and self._name:
            self.fields[self._name] = self._value.decode("utf-8", "replace")
        self._into_file = False

    def end(self) -> None:
        self.ended = True


async def receive_form(chunks: AsyncIterable[bytes], content_type: str, store: MediaStore, limit: int) -> Received:
    """Reads a multipart/form-data body, its `file` part straight to the store's tmp directory; raises
    TooLarge as soon as the file passes `limit` bytes, and Invalid when the body is no proper form."""
    kind, options = parse_options_header(content_type)
    boundary = options.get(b"boundary")
    if kind != b"multipart/form-data" or not boundary:
        raise NotAForm(f"the upload came as {content_type or 'no content type'!r}, not as a form",
                       f"send multipart/form-data with the file in the field {FILE_FIELD!r}")
    reader = _FormReader(store, limit)
    try:
        try:
            parser = MultipartParser(boundary, reader.callbacks())
        except ValueError:
            raise NotAForm("the multipart boundary is not valid", "let the HTTP client choose it") from None
        # Parsing writes the file part to disk and hashes it: blocking work, so it runs on a worker thread,
        # a megabyte at a time to keep the hand-offs few (never more than the limit, so an oversized file is
        # stopped as soon as it passes it).
        pending, batch = bytearray(), min(WRITE_BATCH, limit)
        async for chunk in chunks:
            pending += chunk
            if len(pending) >= batch:
                await anyio.to_thread.run_sync(parser.write, bytes(pending))
                pending.clear()
        await anyio.to_thread.run_sync(_write_rest, parser, bytes(pending))
        if not reader.ended:
            raise Invalid("the upload ended before its form did", "upload the file again")
        if reader.file is None:
            raise Invalid("the form carries no file", f"send the file in the form field {FILE_FIELD!r}")
        if reader.file.size == 0:
            raise Invalid(f"{reader.filename} is empty", "choose the media file itself, not an empty one")
    except MultipartParseError as exc:
        if reader.file is not None:
            reader.file.discard()
        raise Invalid(f"the form could not be read ({exc})", "upload it again as multipart/form-data") from None
    except BaseException:
        if reader.file is not None:
            reader.file.discard()
        raise
    return Received(reader.file, reader.filename, reader.fields)


def _write_rest(parser: MultipartParser, rest: bytes) -> None:
    parser.write(rest)
    parser.finalize()


def clean_filename(name: str) -> str:
    """The file's own name, as kept for people to read: no directories, no control characters."""
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(c for c in unicodedata.normalize("NFC", name) if unicodedata.category(c)[0] != "C").strip()
    return name[:255] or "upload"


def display_ms_from(text: str | None) -> int | None:
    if text is None or not text.strip():
        return None
    value = text.strip()
    if not value.isascii() or not value.isdigit() or not 1 <= int(value) <= MAX_DISPLAY_MS:
        raise Invalid(f"display_ms {value[:20]!r} is not a whole number of milliseconds from 1 to {MAX_DISPLAY_MS}",
                      "give the image's display time in milliseconds, e.g. 10000 for 10 s, or leave it out")
    return int(value)


def display_ms_from_seconds(text: str | None) -> int | None:
    """The web form asks for seconds, as people count them (a comma as the decimal mark too)."""
    if text is None or not text.strip():
        return None
    try:
        seconds = float(text.strip().replace(",", "."))
    except ValueError:
        seconds = -1.0
    if not 0 < seconds <= MAX_DISPLAY_MS / 1000:
        raise Invalid(f"the display time {text.strip()[:20]!r} is not a number of seconds above 0 and at most "
                      f"{MAX_DISPLAY_MS // 1000}",
                      "give the image's display time in seconds, e.g. 10, or leave it empty")
    return max(1, round(seconds * 1000))


def accept_upload(session: Session, store: MediaStore, thumbnails: Thumbnails, received: Received,
                  organisation_id: str, display_ms: int | None, actor: Actor, clock: Clock) -> Accepted:
    """Takes a received file into the library for `organisation_id` (already checked to be within the actor's
    subtree), or raises Invalid with the reason it is refused. Adds rows to the caller's transaction.

    Bytes already in the actor's subtree give that row (`duplicate`). Bytes only other units hold give the unit a
    row of its own over the stored file, as a new file would: nothing tells the uploader that anyone else has it."""
    try:
        sha = received.file.finish()
        existing = session.scalar(held_by(sha, actor.org_ids()))
        if existing is not None:
            received.discard()
            return _duplicate(store, thumbnails, existing)
        # Probed even when another unit holds the bytes: the answer takes as long as for a file new to the server.
        probed = probe(received.file.path, received.filename)
        if display_ms is not None and probed.kind is not MediaKind.image:
            raise Invalid("display_ms is for still images only",
                          "leave it out: a clip or audio file plays for its own length")
        size = received.file.size
        _, new = store.adopt(received.file)
    finally:
        received.discard()  # a no-op once the file is in the store
    thumbnails.ensure(store.path_for(sha), sha, probed.kind, probed.duration_ms)
    asset = MediaAsset(sha256=sha, kind=probed.kind, mime=probed.mime, bytes=size, duration_ms=probed.duration_ms,
                       width=probed.width, height=probed.height, container=probed.container,
                       video_codec=probed.video_codec, audio_codec=probed.audio_codec,
                       original_name=received.filename, organisation_id=organisation_id, created_at=clock.now())
    session.add(asset)
    # MediaAsset has no column for an image's display time yet: the upload's audit entry keeps it.
    after = {"name": asset.original_name, "kind": asset.kind.value, "bytes": size}
    if asset.kind is MediaKind.image:
        after["display_ms"] = display_ms or DEFAULT_DISPLAY_MS
    record_change(session, actor, clock, action=UPLOAD_ACTION, entity_kind="media", entity_id=sha,
                  organisation_id=organisation_id, after=after)
    try:
        session.flush()
    except IntegrityError:
        # The same bytes, uploaded at the same moment by someone else of the unit, were recorded first.
        session.rollback()
        existing = session.scalar(held_by(sha, actor.org_ids()))
        if existing is None:
            if new and session.scalar(held_by(sha)) is None:
                store.remove(sha)
            raise
        return _duplicate(store, thumbnails, existing)
    return Accepted(asset, duplicate=False)


def _duplicate(store: MediaStore, thumbnails: Thumbnails, existing: MediaAsset) -> Accepted:
    thumbnails.ensure(store.path_for(existing.sha256), existing.sha256, existing.kind, existing.duration_ms)
    return Accepted(existing, duplicate=True)


__all__ = ["Accepted", "NotAForm", "Received", "TooLarge", "accept_upload",
           "check_declared_length", "display_ms_from", "display_ms_from_seconds", "human_bytes", "receive_form"]
