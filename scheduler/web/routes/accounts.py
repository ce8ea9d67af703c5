"""Signing in and out (web and API), the signed-in user, users of one's subtree and API tokens."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Form, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse
from pydantic import BaseModel, Field, ValidationError
from sqlalchemy import select

from campaigns import accounts as account_rules
from campaigns.access import not_found
from campaigns.accounts import (
    LoginRefused,
    LoginThrottled,
    authenticate,
    close_session,
    issue_api_token,
    open_session,
    user_in_scope,
)
from campaigns.kinds import Role
from campaigns.models import ApiToken, User
from scheduler.web.auth import SESSION_COOKIE, ActorDep, PageActorDep
from scheduler.web.deps import ClientAddressDep, ClockDep, LanguageDep, RowId, SessionDep, SettingsDep, render
from scheduler.web.i18n import N_
from scheduler.web.pagination import Page, PageDep, paginate
from scheduler.web.problems import Problem

pages = APIRouter(include_in_schema=False)
api = APIRouter(prefix="/api/v1", tags=["accounts"])


def safe_next(target: str | None) -> str:
    """Only a path of this site: never an open redirect to somewhere else."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


@pages.get("/login")
def login_page(request: Request, language: LanguageDep, next: str | None = None):
    return render(request, "login.html", {"next": safe_next(next), "error": None}, language)


@pages.post("/login")
def login(request: Request, session: SessionDep, clock: ClockDep, settings: SettingsDep, language: LanguageDep,
          client: ClientAddressDep, username: Annotated[str, Form(max_length=64)],
          password: Annotated[str, Form(max_length=1024)], next: Annotated[str, Form(max_length=2000)] = "/"):
    try:
        user = authenticate(session, username.strip(), password, clock, client)
    except (LoginRefused, LoginThrottled) as exc:
        session.commit()  # the failure counts even though the answer is an error
        key, status = (N_("login.throttled"), 429) if isinstance(exc, LoginThrottled) else (N_("login.refused"), 401)
        response = render(request, "login.html", {"next": safe_next(next), "error": key, "username": username},
                          language)
        response.status_code = status
        if isinstance(exc, LoginThrottled):
            response.headers["Retry-After"] = str(exc.retry_after_seconds)
        return response
    token, _ = open_session(session, user, clock, settings.session_hours)
    session.commit()
    response = RedirectResponse(safe_next(next), status_code=303)
    response.set_cookie(SESSION_COOKIE, token, max_age=settings.session_hours * 3600, httponly=True,
                        samesite="lax", secure=settings.secure_cookies, path="/")
    return response


@pages.post("/logout")
def logout(request: Request, session: SessionDep, actor: PageActorDep):
    close_session(session, request.cookies.get(SESSION_COOKIE, ""))
    session.commit()
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


# -- API --------------------------------------------------------------------------------------------------


# PostgreSQL cannot store NUL in text: a user name (kept by the login throttle) or a token's name holding one is
# refused as the request's error, never left to fail on the write.
NO_NUL = r"^[^\x00]*$"


class TokenRequest(BaseModel):
    username: str = Field(max_length=64, pattern=NO_NUL)
    password: str = Field(max_length=1024)
    name: str = Field("api", max_length=255, pattern=NO_NUL, description="what the token is for, shown in the token "
                      "list")
    days: int | None = Field(90, ge=1, le=3650, description="lifetime in days; null for no expiry")


class TokenForm(BaseModel):
    """The same request as the OAuth2 password grant's form (RFC 6749 §4.3), with the fields of FastAPI's
    OAuth2PasswordRequestForm, which client libraries send. `scope`, `client_id` and `client_secret` are taken and
    not used: a token carries its user's role, nothing narrower."""

    grant_type: Literal["password"] = "password"
    username: str = Field(max_length=64, pattern=NO_NUL)
    password: str = Field(max_length=1024)
    scope: str = Field("", max_length=1000)
    client_id: str = Field("", max_length=255)
    client_secret: str = Field("", max_length=1024)
    name: str = Field("api", max_length=255, pattern=NO_NUL, description="what the token is for, shown in the token "
                      "list")
    days: int = Field(90, ge=1, le=3650, description="lifetime in days")


FORM = "application/x-www-form-urlencoded"
# The body is read by token_request, not by FastAPI (which takes one media type per body): the schema says both.
TOKEN_BODY: dict[str, Any] = {"requestBody": {"required": True, "content": {
    "application/json": {"schema": TokenRequest.model_json_schema()},
    FORM: {"schema": TokenForm.model_json_schema()},
}}}


async def token_request(request: Request) -> TokenRequest:
    """The token request, as JSON or as the OAuth2 password form; refused as FastAPI refuses a body (422) or with
    415 for another media type. Awaits the body on the event loop and touches no database."""
    media_type = request.headers.get("content-type", "application/json").partition(";")[0].strip().lower()
    try:
        if media_type == FORM:
            form = TokenForm.model_validate(dict(await request.form()))
            return TokenRequest(username=form.username, password=form.password, name=form.name, days=form.days)
        if media_type == "application/json" or media_type.endswith("+json"):
            return TokenRequest.model_validate_json(await request.body())
    except ValidationError as exc:
        raise RequestValidationError([{**error, "loc": ("body", *error["loc"])} for error in
                                      exc.errors(include_url=False, include_context=False, include_input=False)],
                                     ) from None
    raise Problem(415, f"the body is {media_type}: send the user name and password as JSON (application/json) or "
                       f"as the OAuth2 password form ({FORM})")


class TokenIssued(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_at: datetime | None


# Where notices are e-mailed; "" clears it (notices then stay in the app).
Email = Annotated[str, Field(max_length=254, pattern=f"^$|{account_rules.EMAIL_PATTERN}",
                             description='an e-mail address, or "" for none')]


class UserOut(BaseModel):
    id: int
    username: str
    full_name: str
    role: Role
    organisation_id: str
    active: bool
    email: str | None = None
    notice_digest: bool = False

    @classmethod
    def of(cls, user: User) -> UserOut:
        return cls(id=user.id, username=user.username, full_name=user.full_name, role=user.role,
                   organisation_id=user.organisation_id, active=user.active, email=user.email,
                   notice_digest=bool(user.notice_digest))


class UserCreate(BaseModel):
    username: str = Field(min_length=3, max_length=64)
    full_name: str = Field(min_length=1, max_length=255)
    role: Role
    organisation_id: str = Field(max_length=63)
    password: str = Field(max_length=1024)
    email: Email | None = None


class NoticeSettings(BaseModel):
    email: Email | None = None
    notice_digest: bool | None = Field(None, description="true: notices e-mailed once a day, in one digest")


class UserUpdate(NoticeSettings):
    full_name: str | None = Field(None, min_length=1, max_length=255)
    role: Role | None = None
    active: bool | None = None


class TokenOut(BaseModel):
    id: int
    name: str
    created_at: datetime
    expires_at: datetime | None
    revoked: bool


@api.post("/auth/token", response_model=TokenIssued, status_code=201, openapi_extra=TOKEN_BODY,
          responses={401: {"description": "wrong user name or password"},
                     413: {"description": "the body is larger than the limit"},
                     415: {"description": "the body is neither JSON nor the OAuth2 password form"},
                     422: {"description": "a field is missing or not valid"},
                     429: {"description": "too many failures: wait for Retry-After seconds"}})
def api_token(body: Annotated[TokenRequest, Depends(token_request)], session: SessionDep, clock: ClockDep,
              client: ClientAddressDep) -> TokenIssued:
    """A bearer token for a user name and password, sent as JSON or as the OAuth2 password form
    (`application/x-www-form-urlencoded`: `grant_type=password`, `username`, `password`), as OAuth2 client
    libraries send it; throttled like the login page."""
    try:
        user = authenticate(session, body.username, body.password, clock, client)
    except LoginThrottled as exc:
        session.commit()
        raise Problem(429, f"{exc}; wait before trying again", {"Retry-After": str(exc.retry_after_seconds)}) from None
    except LoginRefused:
        session.commit()
        raise Problem(401, f"wrong user name or password; check both (after {account_rules.FREE_FAILURES} failures "
                           "from one address, that address waits before trying the name again, longer each time)",
                      ) from None
    token, row = issue_api_token(session, user, body.name, clock, body.days)
    session.commit()
    return TokenIssued(access_token=token, expires_at=row.expires_at)


@api.get("/me", response_model=UserOut)
def me(actor: ActorDep) -> UserOut:
    return UserOut.of(actor.user)


@api.patch("/me", response_model=UserOut)
def change_my_notices(body: NoticeSettings, actor: ActorDep, session: SessionDep) -> UserOut:
    """Where your notices are e-mailed, and whether at once or in a daily digest."""
    user = session.get(User, actor.user.id)
    account_rules.set_notice_address(user, body.email, body.notice_digest)
    session.commit()
    return UserOut.of(user)


@api.get("/me/tokens", response_model=list[TokenOut])
def my_tokens(actor: ActorDep, session: SessionDep) -> list[TokenOut]:
    rows = session.scalars(select(ApiToken).where(ApiToken.user_id == actor.user.id).order_by(ApiToken.id)).all()
    return [TokenOut(id=r.id, name=r.name, created_at=r.created_at, expires_at=r.expires_at, revoked=r.revoked)
            for r in rows]


@api.delete("/me/tokens/{token_id}", status_code=204)
def revoke_my_token(token_id: RowId, actor: ActorDep, session: SessionDep) -> None:
    row = session.get(ApiToken, token_id)
    if row is None or row.user_id != actor.user.id:
        raise not_found("token", str(token_id))
    row.revoked = True
    session.commit()


@api.get("/users", response_model=Page[UserOut])
def list_users(actor: ActorDep, session: SessionDep, page: PageDep, role: Role | None = None,
               organisation_id: str | None = None) -> Page[UserOut]:
    query = select(User).where(User.organisation_id.in_(actor.org_ids())).order_by(User.username)
    if role is not None:
        query = query.where(User.role == role)
    if organisation_id is not None:
        query = query.where(User.organisation_id == organisation_id)
    return paginate(session, query, page, UserOut.of)


@api.get("/users/{user_id}", response_model=UserOut)
def get_user(user_id: RowId, actor: ActorDep, session: SessionDep) -> UserOut:
    return UserOut.of(user_in_scope(session, actor, user_id))


@api.post("/users", response_model=UserOut, status_code=201)
def add_user(body: UserCreate, actor: ActorDep, session: SessionDep, clock: ClockDep) -> UserOut:
    user = account_rules.add_user(session, actor, clock, username=body.username, full_name=body.full_name,
                                  role=body.role, organisation_id=body.organisation_id, password=body.password,
                                  email=body.email)
    session.commit()
    return UserOut.of(user)


@api.patch("/users/{user_id}", response_model=UserOut)
def change_user(user_id: RowId, body: UserUpdate, actor: ActorDep, session: SessionDep) -> UserOut:
    user = account_rules.change_user(session, actor, user_id, full_name=body.full_name, role=body.role,
                                     active=body.active, email=body.email, notice_digest=body.notice_digest)
    session.commit()
    return UserOut.of(user)
