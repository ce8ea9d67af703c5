"""Typed dependencies for routes: the database session, settings, clock, templates and language."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import Depends, Path, Request
from fastapi.templating import Jinja2Templates
from sqlalchemy.orm import Session

from scheduler.web.i18n import N_, language_of
from signage.clock import Clock
from signage.config import Settings


def get_db(request: Request) -> Iterator[Session]:
    with request.app.state.database.sessions() as session:
        yield session


# `async def`: they only read the app's state, and FastAPI runs a plain `def` on its threadpool, a hop there and
# back that costs more than the function (about half a millisecond of CPU per hop; most requests take the clock).
async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


async def get_clock(request: Request) -> Clock:
    return request.app.state.clock


def client_address(request: Request) -> str | None:
    """The address a request came from (login throttling counts failures per address): the socket's peer, unless
    that peer is a trusted proxy (SIGNAGE_TRUSTED_PROXIES). Then X-Forwarded-For is read from the right: each
    proxy appends the address it was reached from, so the right-most address that is not a trusted proxy is the
    client the nearest trusted proxy saw; what lies left of it the client may have made up. Only trusted proxies
    in the header: its left-most. None when there is no peer."""
    settings: Settings = request.app.state.settings
    peer = request.client.host if request.client else None
    if peer is None or not settings.trusts_proxy(peer):
        return peer
    hops = [hop.strip() for header in request.headers.getlist("x-forwarded-for") for hop in header.split(",")]
    hops = [hop for hop in hops if hop]
    for hop in reversed(hops):
        if not settings.trusts_proxy(hop):
            return hop
    return hops[0] if hops else peer


SessionDep = Annotated[Session, Depends(get_db)]
# Integer ids in paths: within the databases' INTEGER, so an absurd id is a 422, not a driver error.
RowId = Annotated[int, Path(ge=1, le=2**31 - 1, description="a numeric id")]
SettingsDep = Annotated[Settings, Depends(get_settings)]
ClockDep = Annotated[Clock, Depends(get_clock)]
ClientAddressDep = Annotated[str | None, Depends(client_address)]
LanguageDep = Annotated[str, Depends(language_of)]


# The web UI's top navigation: (path, message key).
NAV_LINKS = [("/campaigns", N_("nav.campaigns")), ("/messages", N_("rhythm.nav")), ("/alerts", N_("nav.alerts")),
             ("/media", N_("nav.media")),
             ("/screens", N_("nav.screens")), ("/fleet", N_("nav.fleet")), ("/reports", N_("nav.reports")),
             ("/rounds", N_("nav.rounds")),
             ("/notices", N_("nav.notices")), ("/mobile-rounds", N_("mobile.nav"))]


def render(request: Request, name: str, context: dict[str, Any], language: str, actor: Any = None):
    """A page from the app's templates in the request's language (their `_()` reads `lang`); `actor` (the
    signed-in user, campaigns.access.Actor) shows the navigation and gives forms their CSRF token."""
    templates: Jinja2Templates = request.app.state.templates
    response = templates.TemplateResponse(
        request, name, {"timezone": request.app.state.settings.timezone,  # of times shown (formats.py's filters)
                        **context, "lang": language, "actor": actor, "nav_links": NAV_LINKS,
                        "csrf_token": getattr(actor, "csrf_token", None)}
    )
    if request.query_params.get("lang") == language:
        response.set_cookie("lang", language, httponly=True, samesite="lax", max_age=365 * 86400)
    return response
