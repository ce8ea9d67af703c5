"""A campaign's poster made from the template in the browser (/campaigns/{id}/poster): the form, a preview of each
format the campaign's screens have (a PNG drawn by a plain `def` route), and the save, which draws every format
into the unit's media library and adds them to the campaign as versions of one creative (media/poster_creatives.py).

Thin: the campaign is found within the user's scope (another unit's is 404), the domain draws, checks and stores.
"""

from __future__ import annotations

import io
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import RedirectResponse
from PIL import Image
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from campaigns import workflow
from campaigns.access import Actor
from campaigns.models import Campaign
from media.poster_creatives import MAX_FORMATS, make_campaign_poster, poster_sizes
from media.posters import MAX_HOTLINE, MAX_LINK, MAX_TEXT, MAX_TITLE, checked_template, render_poster
from media.store import MediaStore
from media.upload import DEFAULT_DISPLAY_MS
from scheduler.web.auth import PageActorDep
from scheduler.web.deps import ClockDep, LanguageDep, SessionDep, SettingsDep, render
from scheduler.web.forms import FormDep
from scheduler.web.problems import page_not_found, status_of
from signage.errors import Invalid, NotFound, Refused

api = APIRouter(prefix="/api/v1", tags=["posters"])
pages = APIRouter(include_in_schema=False)

FIELDS = ("title", "text", "link", "hotline")
PREVIEW_SIDE = 960  # the preview's longer side: enough to read it, a fraction of a 4K poster's bytes


def _campaign(session: Session, actor: Actor, campaign_id: str) -> tuple[Campaign, bool]:
    try:
        return workflow.find_campaign(session, actor, campaign_id)
    except NotFound as exc:
        raise page_not_found(exc) from None


def _values(form: FormData | None) -> dict[str, str]:
    if form is None:
        return {**dict.fromkeys(FIELDS, ""), "display_s": f"{DEFAULT_DISPLAY_MS / 1000:g}"}
    return {key: str(form.get(key) or "") for key in (*FIELDS, "display_s")}


def _page(request: Request, session: Session, actor: Actor, language: str, campaign: Campaign, owned: bool, *,
          form: FormData | None = None, preview: bool = False, error: str | None = None, status: int = 200,
          saved: list[str] | None = None):
    values = _values(form)
    try:
        sizes = poster_sizes(session, campaign)
    except Invalid as exc:
        sizes, error = [], error or str(exc)
    query = urlencode({key: values[key] for key in FIELDS})
    context: dict[str, Any] = {
        "campaign": campaign, "values": values, "sizes": sizes, "error": error, "saved": saved or [],
        "previews": [(w, h, f"/campaigns/{campaign.id}/poster.png?{query}&width={w}&height={h}") for w, h in sizes]
        if preview and error is None else [],
        "limits": {"title": MAX_TITLE, "text": MAX_TEXT, "link": MAX_LINK, "hotline": MAX_HOTLINE},
        "may_save": "media" in workflow.allowed_actions(actor, campaign, owned),
    }
    response = render(request, "campaign_poster.html", context, language, actor)
    response.status_code = status
    return response


@pages.get("/campaigns/{campaign_id}/poster")
def poster_page(request: Request, campaign_id: str, session: SessionDep, actor: PageActorDep, language: LanguageDep,
                saved: Annotated[list[str] | None, Query()] = None):
    campaign, owned = _campaign(session, actor, campaign_id)
    names = {creative.media_sha256: creative.media.original_name for creative in campaign.creatives}
    return _page(request, session, actor, language, campaign, owned,
                 saved=[names[sha] for sha in (saved or [])[:MAX_FORMATS] if sha in names])


@pages.post("/campaigns/{campaign_id}/poster")
def poster_form(request: Request, campaign_id: str, session: SessionDep, clock: ClockDep, settings: SettingsDep,
                actor: PageActorDep, language: LanguageDep, form: FormDep):
    """`action=preview` shows the poster in each format; `action=save` draws and adds them to the campaign."""
    campaign, owned = _campaign(session, actor, campaign_id)
    try:
        template = checked_template({key: form.get(key) or "" for key in FIELDS})
        if form.get("action") != "save":
            return _page(request, session, actor, language, campaign, owned, form=form, preview=True)
        versions = make_campaign_poster(session, MediaStore(settings.media_dir), actor, clock, settings.timezone,
                                        campaign.id, template, form.get("display_s"))
    except Refused as exc:
        session.rollback()
        return _page(request, session, actor, language, campaign, owned, form=form, error=str(exc),
                     status=status_of(exc))
    session.commit()
    shown = urlencode([("saved", version.asset.sha256) for version in versions])
    return RedirectResponse(f"/campaigns/{campaign.id}/poster?{shown}", status_code=303)


@pages.get("/campaigns/{campaign_id}/poster.png")
def poster_preview(campaign_id: str, session: SessionDep, actor: PageActorDep,
                   title: Annotated[str, Query(max_length=MAX_TITLE * 2)] = "",
                   text: Annotated[str, Query(max_length=MAX_TEXT * 2)] = "",
                   link: Annotated[str, Query(max_length=MAX_LINK * 2)] = "",
                   hotline: Annotated[str, Query(max_length=MAX_HOTLINE * 2)] = "",
                   width: Annotated[int, Query(ge=1, le=100_000)] = 1920,
                   height: Annotated[int, Query(ge=1, le=100_000)] = 1080) -> Response:
    """The poster in one of the campaign's formats, scaled down to PREVIEW_SIDE for the page."""
    campaign, _ = _campaign(session, actor, campaign_id)
    try:
        if (width, height) not in poster_sizes(session, campaign):
            raise Invalid(f"the campaign's screens have no {width}x{height} format",
                          "preview one of the formats the poster page lists")
        template = checked_template({"title": title, "text": text, "link": link, "hotline": hotline})
        png = render_poster(template, campaign.organisation.name, width, height)
    except Refused as exc:
        return Response(str(exc), status_code=status_of(exc), media_type="text/plain; charset=utf-8")
    return Response(_scaled(png), media_type="image/png", headers={"Cache-Control": "no-store"})


def _scaled(png: bytes) -> bytes:
    with Image.open(io.BytesIO(png)) as image:
        image.thumbnail((PREVIEW_SIDE, PREVIEW_SIDE), Image.Resampling.LANCZOS)
        out = io.BytesIO()
        image.save(out, format="PNG")
    return out.getvalue()


__all__ = ["api", "pages"]
