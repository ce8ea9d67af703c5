"""The media library over HTTP: the JSON API under /api/v1/media and the staff pages under /media.

Thin routes over media/library.py (scoped queries, deletion, the acceptance of an upload) and media/upload.py
(the form streamed to disk under a size limit). The players' own download route, GET /media/{sha256}, is in
media_files.py; the detail page is therefore at /media/{sha256}/details.

Uploads stream the request body, so their routes are `async`; they take no database session: the signed-in user
is found by a plain `def` dependency on the threadpool, and the upload's database work runs on the threadpool too,
in a session of its own, closed before the answer.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import FileResponse, RedirectResponse
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from campaigns.access import Actor
from campaigns.audit import full_names
from campaigns.kinds import CampaignStatus, MediaKind, Role, ScreenKind
from campaigns.schema_types import SLUG_PATTERN
from media import library
from media.library import InUse, asset_in_scope, stored_file
from media.models import MediaAsset, held_by
from media.store import SHA256_RE, MediaStore
from media.thumbnails import Thumbnails
from media.upload import (
    DEFAULT_DISPLAY_MS,
    MAX_DISPLAY_MS,
    Accepted,
    NotAForm,
    TooLarge,
    check_declared_length,
    human_bytes,
    receive_form,
)
from scheduler.web.auth import (
    CSRF_FIELD,
    CSRF_HEADER,
    ActorDep,
    PageActorDep,
    csrf_header_sent,
    find_actor,
    signed_in,
    signed_in_page,
)
from scheduler.web.deps import ClockDep, LanguageDep, SessionDep, SettingsDep, render
from scheduler.web.pagination import Page, PageDep, PageParams, paginate
from scheduler.web.problems import Problem, status_of
from scheduler.web.routes.media_files import media_response
from signage.clock import Clock
from signage.config import Settings
from signage.errors import Conflict, Invalid

api = APIRouter(prefix="/api/v1", tags=["media"])
pages = APIRouter(include_in_schema=False)

PRIVATE_CACHE = "private, max-age=31536000, immutable"  # by sha256, so never stale; but only for the signed-in


# -- what the library shows --------------------------------------------------------------------------------


class CampaignRef(BaseModel):
    id: str
    name: str
    status: CampaignStatus
    organisation_id: str


class MediaOut(BaseModel):
    sha256: str
    name: str = Field(description="the file's name when it was uploaded or imported")
    kind: MediaKind
    screen_kinds: list[ScreenKind] = Field(description="the screens it plays on: audio is for speaker screens")
    mime: str
    bytes: int
    duration_ms: int | None = Field(description="a clip's or audio file's own length; null for images")
    display_ms: int = Field(description="how long it plays: an image's display time (10 s unless set at upload), "
                                        "a clip's or audio file's own length")
    width: int | None
    height: int | None
    container: str | None
    video_codec: str | None
    audio_codec: str | None
    organisation_id: str
    organisation_name: str
    created_at: datetime
    uploaded_by: str | None = Field(description="the user who uploaded it; null for media from a campaign file")
    thumbnail_url: str | None = Field(description="a small JPEG preview; null for audio")
    content_url: str
    used_by: list[CampaignRef] = Field(description="the campaigns using it, of those within your organisation")


class MediaUploaded(MediaOut):
    duplicate: bool = Field(description="true when the same bytes were already in the library: this is that item")


def describe(session: Session, actor: Actor, assets: Sequence[MediaAsset]) -> list[MediaOut]:
    used = library.campaigns_using(session, assets, actor)
    uploads = library.uploads_of(session, assets)
    names = library.organisation_names(session, {asset.organisation_id for asset in assets})
    views = []
    for asset in assets:
        upload = uploads.get(library.key_of(asset))
        if asset.kind is MediaKind.image:
            display_ms = ((upload.after or {}).get("display_ms") if upload else None) or DEFAULT_DISPLAY_MS
        else:
            display_ms = asset.duration_ms or 0
        url = f"/api/v1/media/{asset.sha256}"
        views.append(MediaOut(
            sha256=asset.sha256, name=asset.original_name, kind=asset.kind,
            screen_kinds=[ScreenKind.speaker] if asset.kind is MediaKind.audio else [ScreenKind.lcd, ScreenKind.led],
            mime=asset.mime, bytes=asset.bytes, duration_ms=asset.duration_ms, display_ms=display_ms,
            width=asset.width, height=asset.height, container=asset.container, video_codec=asset.video_codec,
            audio_codec=asset.audio_codec, organisation_id=asset.organisation_id,
            organisation_name=names.get(asset.organisation_id, asset.organisation_id), created_at=asset.created_at,
            uploaded_by=upload.username if upload else None,
            thumbnail_url=None if asset.kind is MediaKind.audio else f"{url}/thumbnail", content_url=f"{url}/content",
            used_by=[CampaignRef(id=c.id, name=c.name, status=c.status, organisation_id=c.organisation_id)
                     for c in used.get(library.key_of(asset), [])]))
    return views


def list_library(session: Session, actor: Actor, page: PageParams, kind: MediaKind | None,
                 organisation_id: str | None, q: str | None) -> Page[MediaOut]:
    rows = paginate(session, library.library_query(session, actor, kind, organisation_id, q), page, lambda a: a)
    return Page[MediaOut](items=describe(session, actor, rows.items), total=rows.total, limit=rows.limit,
                          offset=rows.offset)


# -- uploads -------------------------------------------------------------------------------------------------


@dataclass
class Uploader:
    actor: Actor
    csrf_token: str | None = None  # a browser session's token, still to be found in the form's csrf_token field


def _uploader(request: Request, clock: Clock, page: bool) -> Uploader:
    # A session of its own, closed here: the upload that follows may stream for minutes, holding no connection.
    with request.app.state.database.sessions() as session:
        found = find_actor(request, session, clock, csrf_header_sent(request), csrf_in_stream=True)
    actor = signed_in_page(request, found) if page else signed_in(found)
    # A browser form without the CSRF header carries its token in the body, with the file: checked as it streams.
    deferred = actor.via == "session" and CSRF_HEADER not in request.headers
    return Uploader(actor, actor.csrf_token if deferred else None)


def api_uploader(request: Request, clock: ClockDep) -> Uploader:
    return _uploader(request, clock, page=False)


def page_uploader(request: Request, clock: ClockDep) -> Uploader:
    return _uploader(request, clock, page=True)


def upload_refused(exc: Invalid) -> Problem | None:
    """What only HTTP has a status for: a body over the limit (413), or not a form at all (415)."""
    if isinstance(exc, TooLarge):
        return Problem(413, str(exc))
    if isinstance(exc, NotAForm):
        return Problem(415, str(exc))
    return None


def _refusal_status(exc: Invalid | Conflict) -> int:
    problem = upload_refused(exc) if isinstance(exc, Invalid) else None
    return problem.status_code if problem is not None else status_of(exc)


async def take_upload(request: Request, settings: Settings, uploader: Uploader, accept) -> Any:
    """Streams the request's form into the store, then runs `accept(session, store, received)` on the threadpool in
    a session of its own; raises Invalid or Conflict (what is wrong with the file), NotAllowed or NotFound (who may
    not upload, or where to), or Problem (a stale CSRF token)."""
    library.may_upload(uploader.actor)
    store, limit = MediaStore(settings.media_dir), settings.max_upload_bytes
    check_declared_length(request.headers.get("content-length"), limit)
    received = await receive_form(request.stream(), request.headers.get("content-type", ""), store, limit)
    try:
        sent = received.fields.get(CSRF_FIELD, "")
        if uploader.csrf_token is not None and not hmac.compare_digest(sent.encode(), uploader.csrf_token.encode()):
            raise Problem(403, "the form's CSRF token is missing or stale; reload the page and send it again")
        return await run_in_threadpool(_in_session, request, accept, store, received)
    finally:
        received.discard()


def _in_session(request: Request, work, *args: Any) -> Any:
    with request.app.state.database.sessions() as session:
        return work(session, *args)


UPLOAD_BODY: dict[str, Any] = {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
    "type": "object", "required": ["file"],
    "properties": {
        "file": {"type": "string", "format": "binary",
                 "description": "the media file: H.264/H.265/VP8/VP9/MPEG-4 video in MP4/MOV/MKV/WebM, "
                                "AAC/MP3/Opus/Vorbis audio, or a PNG/JPEG image"},
        "organisation_id": {"type": "string", "pattern": SLUG_PATTERN,
                            "description": "the owning unit, within yours (default: your own)"},
        "display_ms": {"type": "integer", "minimum": 1, "maximum": MAX_DISPLAY_MS,
                       "description": "images only: how long the image is shown (default 10000)"},
    }}}}}}


# -- API -------------------------------------------------------------------------------------------------------


@api.get("/media", response_model=Page[MediaOut])
def list_media(actor: ActorDep, session: SessionDep, page: PageDep, kind: MediaKind | None = None,
               organisation_id: Annotated[str | None, Query(pattern=SLUG_PATTERN, description=(
                   "only this unit's media and its sub-units'"))] = None,
               q: Annotated[str | None, Query(max_length=200, description="the file name contains this")] = None,
               ) -> Page[MediaOut]:
    return list_library(session, actor, page, kind, organisation_id, q)


@api.post("/media", response_model=MediaUploaded, status_code=201, openapi_extra=UPLOAD_BODY,
          responses={200: {"model": MediaUploaded, "description": "the same bytes were already in the library"},
                     409: {"description": "the same bytes are held by another unit"},
                     413: {"description": "the file is larger than the upload limit"},
                     415: {"description": "the body is not multipart/form-data"},
                     422: {"description": "the file is refused: what is wrong and what players take"}})
async def upload_media(request: Request, response: Response, settings: SettingsDep, clock: ClockDep,
                       uploader: Annotated[Uploader, Depends(api_uploader)]) -> MediaUploaded:
    """Upload a media file (multipart, field `file`); it is probed and refused, with the reason, when players
    cannot play it. The same bytes uploaded again answer 200 with the item already there."""
    actor = uploader.actor

    def accept(session: Session, store: MediaStore, received) -> tuple[Accepted, MediaOut]:
        accepted = library.accept(session, store, received, actor, clock, seconds_field=False)
        (view,) = describe(session, actor, [accepted.asset])
        return accepted, view

    try:
        accepted, view = await take_upload(request, settings, uploader, accept)
    except Invalid as exc:
        raise upload_refused(exc) or exc from None
    if accepted.duplicate:
        response.status_code = 200
    return MediaUploaded(**view.model_dump(), duplicate=accepted.duplicate)


@api.get("/media/{sha256}", response_model=MediaOut)
def get_media(sha256: str, actor: ActorDep, session: SessionDep) -> MediaOut:
    (view,) = describe(session, actor, [asset_in_scope(session, actor, sha256)])
    return view


@api.get("/media/{sha256}/thumbnail", response_class=FileResponse,
         responses={200: {"content": {"image/jpeg": {}}, "description": "a JPEG at most 320 pixels wide"}})
def media_thumbnail(sha256: str, actor: ActorDep, session: SessionDep, settings: SettingsDep) -> FileResponse:
    asset = asset_in_scope(session, actor, sha256)
    if asset.kind is MediaKind.audio:
        raise Problem(404, f"{asset.original_name} is audio and has no thumbnail; listen to it at "
                           f"/api/v1/media/{sha256}/content")
    store = MediaStore(settings.media_dir)
    path = Thumbnails.beside(store).ensure(stored_file(store, asset), sha256, asset.kind, asset.duration_ms)
    if path is None:
        raise Problem(404, f"no thumbnail could be made of {asset.original_name}; see the file itself at "
                           f"/api/v1/media/{sha256}/content")
    return FileResponse(path, media_type="image/jpeg", headers={"Cache-Control": PRIVATE_CACHE})


@api.get("/media/{sha256}/content", response_class=Response,
         responses={200: {"content": {"video/mp4": {}, "audio/mpeg": {}, "image/png": {}},
                          "description": "the file (single byte ranges supported)"}})
def media_content(sha256: str, request: Request, actor: ActorDep, session: SessionDep,
                  settings: SettingsDep) -> Response:
    """The file itself, for previews (players use GET /media/{sha256})."""
    asset = asset_in_scope(session, actor, sha256)
    path = stored_file(MediaStore(settings.media_dir), asset)
    response = media_response(path, asset.mime, sha256, request.method, request.headers.get("range"),
                              request.headers.get("if-range"), request.headers.get("if-none-match"))
    if response.status_code < 400:
        response.headers["Cache-Control"] = PRIVATE_CACHE
        response.headers["Content-Disposition"] = f"inline; filename*=UTF-8''{quote(asset.original_name, safe='')}"
    return response


@api.delete("/media/{sha256}", status_code=204,
            responses={409: {"description": "campaigns still use it; they are named"}})
def delete_media(sha256: str, actor: ActorDep, session: SessionDep, settings: SettingsDep, clock: ClockDep) -> None:
    """Delete a file no campaign uses."""
    library.delete_media(session, actor, clock, sha256)
    session.commit()
    library.remove_files(session, settings, sha256)


# -- pages -----------------------------------------------------------------------------------------------------

PAGE_SIZE = 50


def _page_context(session: Session, actor: Actor, settings: Settings, language: str, kind: str | None,
                  org: str | None, q: str | None, offset: int) -> dict[str, Any]:
    kind_filter = MediaKind(kind) if kind in MediaKind.__members__ else None
    org_filter = org if org and re.fullmatch(SLUG_PATTERN, org) else None
    q = (q or "")[:200]
    listing = list_library(session, actor, PageParams(limit=PAGE_SIZE, offset=max(offset, 0)), kind_filter,
                           org_filter, q)
    organisations = library.visible_organisations(session, actor)
    base_depth = actor.org_path.count("/")

    def page_url(new_offset: int) -> str:
        params = {k: v for k, v in (("kind", kind_filter), ("org", org_filter), ("q", q)) if v}
        return "/media?" + urlencode({**params, "offset": new_offset})

    return {
        "listing": listing, "kind": kind_filter, "org": org_filter, "q": q, "kinds": list(MediaKind),
        "organisations": [(o, o.path.count("/") - base_depth) for o in organisations],
        "can_upload": actor.has_role(Role.staff), "max_upload": human_bytes(settings.max_upload_bytes),
        "max_upload_bytes": settings.max_upload_bytes,
        "prev_url": page_url(max(listing.offset - PAGE_SIZE, 0)) if listing.offset > 0 else None,
        "next_url": page_url(listing.offset + PAGE_SIZE) if listing.offset + PAGE_SIZE < listing.total else None,
        **formatters(language),
    }


def formatters(language: str) -> dict[str, Any]:
    decimal = "," if language == "vi" else "."

    def size(value: int) -> str:
        return human_bytes(value).replace(".", decimal)

    def duration(ms: int | None) -> str:
        if ms is None:
            return "—"
        seconds = ms / 1000
        if seconds < 60:
            return f"{seconds:.1f} s".replace(".0 ", " ").replace(".", decimal)
        minutes, rest = divmod(round(seconds), 60)
        return f"{minutes}:{rest:02d}"

    return {"human_size": size, "human_duration": duration}


@pages.get("/media")
def library_page(request: Request, session: SessionDep, settings: SettingsDep, language: LanguageDep,
                 actor: PageActorDep, kind: str | None = None, org: str | None = None, q: str | None = None,
                 offset: Annotated[int, Query(ge=0, le=10**9)] = 0, notice: str | None = None,
                 item: str | None = None):
    context = _page_context(session, actor, settings, language, kind, org, q, offset)
    shown = None
    if notice in ("uploaded", "duplicate") and item and SHA256_RE.fullmatch(item):
        shown = session.scalar(held_by(item, actor.org_ids()))
    context.update(notice=notice if notice in ("uploaded", "duplicate", "deleted") else None, notice_item=shown,
                   error=None)
    return render(request, "media_library.html", context, language, actor)


@pages.post("/media")
async def upload_from_page(request: Request, settings: SettingsDep, clock: ClockDep, language: LanguageDep,
                           uploader: Annotated[Uploader, Depends(page_uploader)]):
    actor = uploader.actor

    def accept(session: Session, store: MediaStore, received) -> Accepted:
        return library.accept(session, store, received, actor, clock, seconds_field=True)

    try:
        accepted = await take_upload(request, settings, uploader, accept)
    except (Invalid, Conflict) as exc:
        context = await run_in_threadpool(_in_session, request, _page_context, actor, settings, language, None,
                                          None, None, 0)
        context.update(notice=None, notice_item=None, error=exc)
        response = render(request, "media_library.html", context, language, actor)
        response.status_code = _refusal_status(exc)
        return response
    notice = "duplicate" if accepted.duplicate else "uploaded"
    return RedirectResponse(f"/media?notice={notice}&item={accepted.asset.sha256}", status_code=303)


@pages.get("/media/{sha256}/details")
def detail_page(sha256: str, request: Request, session: SessionDep, language: LanguageDep, actor: PageActorDep):
    return _render_detail(request, session, language, actor, asset_in_scope(session, actor, sha256), None)


def _render_detail(request: Request, session: Session, language: str, actor: Actor, asset: MediaAsset,
                   error: InUse | None):
    (view,) = describe(session, actor, [asset])
    context = {"item": view, "error": error, "can_delete": actor.has_role(Role.staff),
               "people": full_names(session, [view.uploaded_by]), **formatters(language)}
    response = render(request, "media_detail.html", context, language, actor)
    if error is not None:
        response.status_code = status_of(error)
    return response


@pages.post("/media/{sha256}/delete")
def delete_from_page(sha256: str, request: Request, session: SessionDep, settings: SettingsDep, clock: ClockDep,
                     language: LanguageDep, actor: PageActorDep):
    try:
        library.delete_media(session, actor, clock, sha256)
    except InUse as exc:
        session.rollback()
        return _render_detail(request, session, language, actor, asset_in_scope(session, actor, sha256), exc)
    session.commit()
    library.remove_files(session, settings, sha256)
    return RedirectResponse("/media?notice=deleted", status_code=303)
