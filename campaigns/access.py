"""Who is asking, and what they may see: the signed-in user (session cookie or bearer token), CSRF checks,
roles, and the organisation subtree that filters every query.

Routes take `ActorDep` (the API: 401 problem+json when nobody is signed in) or `PageActorDep` (the web UI: a
redirect to the login page). Scope filters come from the actor: `actor.org_ids()` is a subquery of the
organisations in the user's subtree, to be used in `where(X.organisation_id.in_(actor.org_ids()))`.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, HTTPException, Request
from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from campaigns.accounts import session_for_token, user_for_api_token
from campaigns.kinds import Role
from campaigns.models import Organisation, User
from scheduler.deps import ClockDep, SessionDep
from scheduler.problems import Problem

SESSION_COOKIE = "signage_session"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


@dataclass
class Actor:
    user: User
    org_path: str
    via: str  # "session" or "token"
    csrf_token: str | None = None

    @property
    def username(self) -> str:
        return self.user.username

    @property
    def role(self) -> Role:
        return self.user.role

    def org_ids(self) -> Select:
        """The ids of the organisations in the user's subtree, as a subquery for `in_()`."""
        return select(Organisation.id).where(Organisation.path.startswith(self.org_path, autoescape=True))

    def sees_organisation(self, session: Session, organisation_id: str | None) -> bool:
        if organisation_id is None:
            return False
        path = session.scalar(select(Organisation.path).where(Organisation.id == organisation_id))
        return path is not None and path.startswith(self.org_path)

    def has_role(self, *roles: Role) -> bool:
        return self.user.role is Role.admin or self.user.role in roles

    def require(self, *roles: Role, to: str) -> None:
        """403 unless the user has one of `roles` (admins may do everything within their subtree)."""
        if not self.has_role(*roles):
            names = " or ".join(role.value for role in roles)
            raise Problem(403, f"your role ({self.user.role.value}) may not {to}; it takes a {names} account")


def not_found(kind: str, ref: str) -> Problem:
    """The same answer for 'does not exist' and 'not yours': another unit's data is not even acknowledged."""
    return Problem(404, f"there is no {kind} {ref!r} within your organisation; check the id (lists under /api/v1 "
                        "show what you can reach)")


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


async def _csrf_token_sent(request: Request) -> str | None:
    sent = request.headers.get(CSRF_HEADER)
    if sent:
        return sent
    content_type = request.headers.get("content-type", "")
    if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        form = await request.form()  # Starlette keeps the parsed form for the route's own Form() parameters
        value = form.get(CSRF_FIELD)
        return value if isinstance(value, str) else None
    return None


async def find_actor(request: Request, session: Session, clock, *, csrf_in_stream: bool = False) -> Actor | None:
    """The signed-in user, or None. `csrf_in_stream`: a browser form's CSRF token is left for the route to check
    as it streams the body (uploads: parsing the whole form first would spool the file before any size limit)."""
    token = _bearer(request)
    if token is not None:
        user = user_for_api_token(session, token, clock)
        if user is None:
            raise Problem(401, "the bearer token is unknown, revoked or expired; get a new one with POST "
                               "/api/v1/auth/token", {"WWW-Authenticate": 'Bearer error="invalid_token"'})
        return Actor(user, user.organisation.path, "token")
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie is None:
        return None
    row = session_for_token(session, cookie, clock)
    if row is None:
        return None
    actor = Actor(row.user, row.user.organisation.path, "session", row.csrf_token)
    if request.method not in SAFE_METHODS:
        if csrf_in_stream and CSRF_HEADER not in request.headers:
            return actor
        sent = await _csrf_token_sent(request)
        if sent is None or not hmac.compare_digest(sent, row.csrf_token):
            raise Problem(403, f"the form's CSRF token is missing or stale; reload the page and send it again (API "
                               f"clients: send the {CSRF_HEADER} header, or use a bearer token)")
    return actor


async def current_actor(request: Request, session: SessionDep, clock: ClockDep) -> Actor:
    actor = await find_actor(request, session, clock)
    if actor is None:
        raise Problem(401, "sign in first: send 'Authorization: Bearer <token>' (POST /api/v1/auth/token gives "
                           "one) or log in on /login", {"WWW-Authenticate": "Bearer"})
    return actor


async def current_page_actor(request: Request, session: SessionDep, clock: ClockDep) -> Actor:
    actor = await find_actor(request, session, clock)
    if actor is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise HTTPException(303, "sign in first", headers={"Location": f"/login?next={quote(target, safe='')}"})
    return actor


ActorDep = Annotated[Actor, Depends(current_actor)]
PageActorDep = Annotated[Actor, Depends(current_page_actor)]
