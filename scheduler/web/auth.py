"""Who is asking: the signed-in user of a request, from a bearer token or the session cookie, and the CSRF check
of cookie-authenticated writes.

Routes take `ActorDep` (the API: 401 problem+json when nobody is signed in) or `PageActorDep` (the web UI: a
redirect to the login page). Both are plain `def`s: they query the database, so FastAPI runs them on its
threadpool, never on the event loop. Only the reading of a browser form's CSRF token is `async` (it awaits the
form's body and touches no database); its result is handed to them as a parameter.
"""

from __future__ import annotations

import hmac
from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPBasic, HTTPBasicCredentials
from sqlalchemy.orm import Session

from campaigns.access import Actor
from campaigns.accounts import session_for_token, user_for_api_token
from scheduler.players import player_secret_matches
from scheduler.web.deps import ClockDep, SessionDep, get_db
from scheduler.web.problems import Problem
from signage.clock import Clock

SESSION_COOKIE = "signage_session"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}
CSRF_REFUSED = ("the form's CSRF token is missing or stale; reload the page and send it again (API clients: send "
                f"the {CSRF_HEADER} header, or use a bearer token)")


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def _needs_csrf(request: Request) -> bool:
    """Only a write signed in by the session cookie (not by a bearer token) is checked."""
    return (request.method not in SAFE_METHODS and bearer_token(request) is None
            and SESSION_COOKIE in request.cookies)


async def csrf_token_sent(request: Request) -> str | None:
    """The CSRF token a cookie-authenticated write sent: its header, or a browser form's `csrf_token` field.
    Awaits the form (Starlette keeps it parsed for the route's own use) and touches no database."""
    if not _needs_csrf(request):
        return None
    sent = request.headers.get(CSRF_HEADER)
    if sent:
        return sent
    content_type = request.headers.get("content-type", "")
    if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        form = await request.form()
        value = form.get(CSRF_FIELD)
        return value if isinstance(value, str) else None
    return None


def csrf_header_sent(request: Request) -> str | None:
    """The CSRF header alone: for uploads, whose form is not parsed before it is streamed under a size limit."""
    return request.headers.get(CSRF_HEADER)


CsrfDep = Annotated[str | None, Depends(csrf_token_sent)]


def find_actor(request: Request, session: Session, clock: Clock, csrf_sent: str | None, *,
               csrf_in_stream: bool = False) -> Actor | None:
    """The signed-in user, or None. `csrf_sent`: the token the request sent (`csrf_token_sent`). `csrf_in_stream`:
    a browser form's CSRF token is left for the route to check as it streams the body (uploads: parsing the whole
    form first would spool the file before any size limit)."""
    token = bearer_token(request)
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
        if csrf_sent is None or not hmac.compare_digest(csrf_sent, row.csrf_token):
            raise Problem(403, CSRF_REFUSED)
    return actor


def signed_in(actor: Actor | None) -> Actor:
    """The API's answer when nobody is signed in: 401 problem+json."""
    if actor is None:
        raise Problem(401, "sign in first: send 'Authorization: Bearer <token>' (POST /api/v1/auth/token gives "
                           "one) or log in on /login", {"WWW-Authenticate": "Bearer"})
    return actor


def signed_in_page(request: Request, actor: Actor | None) -> Actor:
    """The web UI's answer when nobody is signed in: to the login page, and back here afterwards."""
    if actor is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise HTTPException(303, "sign in first", headers={"Location": f"/login?next={quote(target, safe='')}"})
    return actor


def current_actor(request: Request, session: SessionDep, clock: ClockDep, csrf_sent: CsrfDep) -> Actor:
    return signed_in(find_actor(request, session, clock, csrf_sent))


def current_page_actor(request: Request, session: SessionDep, clock: ClockDep, csrf_sent: CsrfDep) -> Actor:
    return signed_in_page(request, find_actor(request, session, clock, csrf_sent))


ActorDep = Annotated[Actor, Depends(current_actor)]
PageActorDep = Annotated[Actor, Depends(current_page_actor)]


# -- players: HTTP Basic with the player's id and secret ---------------------------------------------------------

REALM = "signage-media"


def unauthorised(detail: str) -> Problem:
    return Problem(401, detail, {"WWW-Authenticate": f'Basic realm="{REALM}"'})


class PlayerBasic(HTTPBasic):
    def make_not_authenticated_error(self) -> HTTPException:
        return unauthorised("send HTTP Basic credentials: the player id as user name and the player's secret as "
                            "password (both are in the player's config file from `signage player register`)")


player_basic = PlayerBasic(realm=REALM, description="user name: the player id; password: the player's secret")

# Scope "function": the session gives its connection back to the pool before the file streams, since a
# download over 4G may take minutes and would otherwise hold a database connection all along.
ShortSessionDep = Annotated[Session, Depends(get_db, scope="function")]


def authenticated_player(credentials: Annotated[HTTPBasicCredentials, Depends(player_basic)],
                         session: ShortSessionDep) -> str:
    """The id of the player whose credentials came with the request, checked against the database each time
    (one SHA-256 compare), so that a revocation takes effect on the next request."""
    if not player_secret_matches(session, credentials.username, credentials.password):
        raise unauthorised(f"player {credentials.username!r} is unknown, revoked, or sent another secret; "
                           "register it again with `signage player register` and use the new config file")
    return credentials.username


PlayerDep = Annotated[str, Depends(authenticated_player)]
