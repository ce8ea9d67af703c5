"""Media for players: GET/HEAD /media/{sha256}, authenticated per player, with ETag and single byte ranges; or,
behind nginx (SIGNAGE_MEDIA_ACCEL_REDIRECT), authenticated here and sent by nginx.

A stored file never changes (its name is its sha256), so its strong ETag is the sha256 itself and
caches may keep it for a year. Ranges let a player on a flaky 4G link resume a download.
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import Response, StreamingResponse
from sqlalchemy.orm import Session

from media.models import MediaAsset, held_by
from media.store import MediaStore
from scheduler.web.auth import PlayerDep, ShortSessionDep
from scheduler.web.deps import SettingsDep
from scheduler.web.problems import Problem, ProblemRoute, problem_response

log = logging.getLogger(__name__)

SHA256_RE = re.compile(r"[0-9a-f]{64}")
IMMUTABLE = "public, max-age=31536000, immutable"
CHUNK = 64 * 1024  # per connection in flight: small, since many players may download at once
SPEC_RE = re.compile(r"([0-9]*)-([0-9]*)")  # [0-9], not \d: int() would take other scripts' digits too


class RangeNotSatisfiable(ValueError):
    """A well-formed byte range that lies wholly past the end of the file: answered with 416."""

    def __init__(self, size: int) -> None:
        super().__init__(f"no byte of the requested range exists in a file of {size} bytes")
        self.size = size


def parse_range(header: str, size: int) -> tuple[int, int] | None:
    """The inclusive (first, last) byte positions a `Range` header asks of a `size`-byte file.

    None means "send the whole file": the header is malformed, names another unit, or asks for several
    ranges (RFC 9110 lets a server ignore a Range header, and players only ever ask for one range, so
    multipart/byteranges is not worth its complexity). Raises RangeNotSatisfiable for a single
    well-formed range that no byte of the file satisfies.
    """
    unit, equals, range_set = header.partition("=")
    if not equals or unit.strip().lower() != "bytes":
        return None
    specs = [spec.strip() for spec in range_set.split(",") if spec.strip()]
    if len(specs) != 1:
        return None
    match = SPEC_RE.fullmatch(specs[0])
    if match is None or match.group(1) == match.group(2) == "":
        return None
    first_text, last_text = match.groups()
    if first_text == "":
        suffix = int(last_text)
        if suffix == 0 or size == 0:
            raise RangeNotSatisfiable(size)
        return max(size - suffix, 0), size - 1
    first = int(first_text)
    if last_text and int(last_text) < first:
        return None
    if first >= size:
        raise RangeNotSatisfiable(size)
    return first, min(int(last_text), size - 1) if last_text else size - 1


def etag_matches(header: str, etag: str, *, weak: bool) -> bool:
    """Whether an If-None-Match (weak comparison) or If-Range (strong) header names our ETag."""
    tags = [tag.strip() for tag in header.split(",")]
    if weak:
        return "*" in tags or etag in {tag.removeprefix("W/") for tag in tags}
    return etag in tags


api = APIRouter(tags=["media"], route_class=ProblemRoute)
pages = APIRouter(include_in_schema=False)


@api.get("/media/{sha256}", summary="Download a media file (single byte ranges supported)")
@api.head("/media/{sha256}", summary="A media file's headers")
def media_file(sha256: str, request: Request, player: PlayerDep, session: ShortSessionDep,
               settings: SettingsDep) -> Response:
    path, asset = find_media(session, MediaStore(settings.media_dir), sha256)
    if settings.media_accel_redirect:
        return accel_redirect(settings.media_accel_redirect, path.relative_to(settings.media_dir), asset.mime)
    return media_response(path, asset.mime, sha256, request.method, request.headers.get("range"),
                          request.headers.get("if-range"), request.headers.get("if-none-match"))


def find_media(session: Session, store: MediaStore, sha256: str) -> tuple[Path, MediaAsset]:
    # The pattern is checked before anything is joined to a path, so no id can lead outside the store.
    if SHA256_RE.fullmatch(sha256) is None:
        raise Problem(404, f"{sha256[:80]!r} is not a media id: ids are sha256 digests, 64 lowercase hex "
                           "characters, as listed in the player's plan")
    asset = session.scalar(held_by(sha256).limit(1))  # any unit's row: the file is the same
    if asset is None:
        raise Problem(404, f"no media file has the sha256 {sha256}; fetch the player's current plan, "
                           "which lists the media it needs")
    path = store.path_for(sha256)
    if not path.is_file():
        log.error("media %s (%s) is in the library but its file %s is missing", sha256, asset.original_name, path)
        raise Problem(404, f"the media file {sha256} is in the library but missing from the server's store; "
                           "an operator should import its campaign file again to restore it")
    return path, asset


def accel_redirect(prefix: str, relative: Path, mime: str) -> Response:
    """Hands the transfer to nginx: an empty answer naming the file under nginx's internal location, so no worker
    is held for the minutes a download over 4G takes. nginx keeps Content-Type and Cache-Control from it and does
    Range, HEAD and If-None-Match itself (with its own ETag, which players do not depend on)."""
    return Response(headers={"X-Accel-Redirect": prefix + relative.as_posix(), "Content-Type": mime,
                             "Cache-Control": IMMUTABLE})


def media_response(path: Path, mime: str, sha256: str, method: str, range_header: str | None,
                   if_range: str | None, if_none_match: str | None) -> Response:
    size = path.stat().st_size
    etag = f'"{sha256}"'
    headers = {"ETag": etag, "Cache-Control": IMMUTABLE, "Accept-Ranges": "bytes"}
    if if_none_match is not None and etag_matches(if_none_match, etag, weak=True):
        return Response(status_code=304, headers=headers)
    # Ranges are defined for GET only (RFC 9110 §14.2); an If-Range other than our ETag (an older ETag or a
    # date) means the client's partial copy is not this file, so it gets the whole file.
    span = None
    if method == "GET" and range_header is not None and (if_range is None
                                                         or etag_matches(if_range, etag, weak=False)):
        try:
            span = parse_range(range_header, size)
        except RangeNotSatisfiable as exc:
            # No caching headers: a cache that keys on the URL alone must not keep this answer for the file.
            return problem_response(416, f"{exc}; ask for bytes=N- with N below {size}, or drop the Range header",
                                    {"Accept-Ranges": "bytes", "Content-Range": f"bytes */{size}"})
    first, last = span or (0, size - 1)
    length = last - first + 1 if size else 0
    headers.update({"Content-Type": mime, "Content-Length": str(length)})
    status = 200
    if span is not None:
        status = 206
        headers["Content-Range"] = f"bytes {first}-{last}/{size}"
    if method == "HEAD":
        return Response(status_code=status, headers=headers)
    return StreamingResponse(file_chunks(path, first, length), status_code=status, headers=headers)


async def file_chunks(path: Path, offset: int, length: int) -> AsyncIterator[bytes]:
    async with await anyio.open_file(path, "rb") as handle:
        await handle.seek(offset)
        while length > 0:
            chunk = await handle.read(min(CHUNK, length))
            if not chunk:
                raise RuntimeError(f"{path} ended {length} bytes early: the media store was changed underneath")
            length -= len(chunk)
            yield chunk


__all__ = ["RangeNotSatisfiable", "accel_redirect", "api", "etag_matches", "media_response", "pages", "parse_range"]
