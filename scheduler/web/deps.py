"""Typed dependencies for routes: the database session, settings, clock, templates and language."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import Depends, Path, Request
from fastapi.templating import Jinja2Templates
from sqlalchemy.orm import Session

from scheduler.web.i18n import language_of, translate
from signage.clock import Clock
from signage.config import Settings


def get_db(request: Request) -> Iterator[Session]:
    with request.app.state.database.sessions() as session:
        yield session


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


def get_clock(request: Request) -> Clock:
    return request.app.state.clock


SessionDep = Annotated[Session, Depends(get_db)]
# Integer ids in paths: within the databases' INTEGER, so an absurd id is a 422, not a driver error.
RowId = Annotated[int, Path(ge=1, le=2**31 - 1, description="a numeric id")]
SettingsDep = Annotated[Settings, Depends(get_settings)]
ClockDep = Annotated[Clock, Depends(get_clock)]
LanguageDep = Annotated[str, Depends(language_of)]


# The web UI's top navigation: (path, message key).
NAV_LINKS = [("/campaigns", "nav.campaigns"), ("/alerts", "nav.alerts"), ("/media", "nav.media"),
             ("/screens", "nav.screens"), ("/fleet", "nav.fleet"), ("/reports", "nav.reports")]


def render(request: Request, name: str, context: dict[str, Any], language: str, actor: Any = None):
    """A page from the app's templates, with `t()` bound to the request's language; `actor` (the signed-in
    user, campaigns.access.Actor) shows the navigation and gives forms their CSRF token."""
    templates: Jinja2Templates = request.app.state.templates
    response = templates.TemplateResponse(
        request, name, {**context, "lang": language, "t": lambda key: translate(key, language), "actor": actor,
                        "nav_links": NAV_LINKS, "csrf_token": getattr(actor, "csrf_token", None)}
    )
    if request.query_params.get("lang") == language:
        response.set_cookie("lang", language, httponly=True, samesite="lax", max_age=365 * 86400)
    return response
