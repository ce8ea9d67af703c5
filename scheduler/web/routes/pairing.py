"""Pairing a screen PC with a code over HTTP (scheduler/pairing.py): the PC's two calls (ask for a code, then poll
for its config with its secret) and the staff's claim, in the API and from the screen page's form.

The PC's calls carry no credentials (it has none yet): what proves it is the secret only it knows."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi import Path as PathParam
from fastapi.responses import JSONResponse, RedirectResponse
from pydantic import BaseModel, Field

from scheduler import pairing
from scheduler.web.auth import ActorDep, PageActorDep
from scheduler.web.deps import ClientAddressDep, ClockDep, SessionDep, SettingsDep
from scheduler.web.problems import Problem, ProblemRoute, page_not_found
from signage.errors import Conflict, NotAllowed, NotFound
from signage.signing import Signer

api = APIRouter(route_class=ProblemRoute)
pages = APIRouter(include_in_schema=False)

ScreenId = Annotated[str, PathParam(max_length=63, description="a screen id")]
Secret = Annotated[str, Field(min_length=32, max_length=128, description="a random secret the PC made; only its "
                                                                          "sha256 is kept")]


class PairingAsk(BaseModel):
    secret: Secret


class PairingCode(BaseModel):
    code: str = Field(description="what the screen shows, e.g. ABC-DEF", examples=["ABC-DEF"])
    expires_at: datetime


class PairingWaiting(BaseModel):
    state: str = Field("waiting", description="no one has typed the code yet")
    expires_at: datetime


class PairingClaim(BaseModel):
    code: str = Field(min_length=1, max_length=32, description="the code the screen shows (case, spaces and "
                                                                "dashes do not matter)", examples=["ABC-DEF"])
    replace: bool = Field(False, description="true to pair a screen that has a player already: the new PC's "
                                             "credentials replace the old one's, which stops playing")


class PairingClaimed(BaseModel):
    screen_id: str
    claimed_by: str
    claimed_at: datetime


# -- the screen PC's calls ----------------------------------------------------------------------------------------


@api.post("/players/pairing", response_model=PairingCode, status_code=201, tags=["pairing"],
          responses={429: {"description": "too many open codes from this address: wait for Retry-After seconds"}})
def ask_for_code(body: PairingAsk, session: SessionDep, clock: ClockDep, client: ClientAddressDep) -> PairingCode:
    """A screen PC without a config asks for a short code to show on its screen; it then polls
    POST /players/pairing/config with the same secret."""
    try:
        request = pairing.request_pairing(session, clock, body.secret, client)
    except pairing.PairingThrottled as exc:
        raise Problem(429, f"{exc}; a PC needs one code at a time", {"Retry-After": str(exc.retry_after_seconds)}
                      ) from None
    session.commit()
    return PairingCode(code=pairing.shown_code(request.code), expires_at=request.expires_at)


@api.post("/players/pairing/config", status_code=200, tags=["pairing"],
          responses={200: {"description": "the player's config (its secret included): served once"},
                     202: {"model": PairingWaiting, "description": "not claimed yet: ask again in a few seconds"},
                     404: {"description": "no request has this secret"},
                     410: {"description": "the code expired unclaimed, or the config was fetched already"}})
def fetch_config(body: PairingAsk, request: Request, session: SessionDep, clock: ClockDep,
                 settings: SettingsDep) -> Any:
    """The PC's poll: 202 while nobody has typed its code, then its player's config once (credentials made now,
    as `signage player register` makes them), then 410."""
    try:
        answer = pairing.fetch_config(session, clock, body.secret, settings, Signer.load_or_create(settings.data_dir),
                                      str(request.base_url).rstrip("/"))
    except pairing.PairingExpired:
        raise Problem(410, "the pairing code expired before anyone typed it; ask for a new code") from None
    except pairing.PairingAlreadyFetched:
        raise Problem(410, "this pairing's config was fetched already; it is served once: pair the PC again "
                           "for new credentials") from None
    if isinstance(answer, pairing.Waiting):
        return JSONResponse(PairingWaiting(expires_at=answer.expires_at).model_dump(mode="json"), status_code=202)
    session.commit()
    return JSONResponse(answer.model_dump(mode="json", by_alias=True), headers={"Cache-Control": "no-store"})


# -- the staff's claim --------------------------------------------------------------------------------------------


@api.post("/api/v1/screens/{screen_id}/pairing", response_model=PairingClaimed, tags=["screens"],
          responses={409: {"description": "the screen is retired, or has a player already and `replace` is not "
                                          "true"},
                     422: {"description": "the code is wrong, expired or used already"},
                     429: {"description": "too many wrong codes from this address: wait for Retry-After seconds"}})
def claim_code(screen_id: ScreenId, body: PairingClaim, actor: ActorDep, session: SessionDep, clock: ClockDep,
               client: ClientAddressDep) -> PairingClaimed:
    """Pair the screen with the PC that shows this code (staff and heads of the screen's unit or above): the PC
    then fetches its player's credentials and config, once, and starts. Audited."""
    try:
        claimed = pairing.claim_code(session, actor, clock, screen_id, body.code, client, body.replace)
    except pairing.PairingThrottled as exc:
        session.commit()
        raise Problem(429, f"{exc}; wait before trying again", {"Retry-After": str(exc.retry_after_seconds)}) from None
    except pairing.CodeRefused:
        session.commit()  # a wrong code is counted
        raise
    session.commit()
    return PairingClaimed(screen_id=claimed.screen_id, claimed_by=claimed.claimed_by, claimed_at=claimed.claimed_at)


@pages.post("/screens/{screen_id}/pairing")
def claim_code_form(screen_id: ScreenId, code: Annotated[str, Form(max_length=32)], actor: PageActorDep,
                    session: SessionDep, clock: ClockDep, client: ClientAddressDep,
                    replace: Annotated[bool, Form()] = False) -> RedirectResponse:
    try:
        pairing.claim_code(session, actor, clock, screen_id, code, client, replace)
    except NotFound as exc:
        raise page_not_found(exc) from None
    except (NotAllowed, Conflict) as exc:
        session.rollback()
        refused = ("not_allowed" if isinstance(exc, NotAllowed) else "unconfirmed"
                   if isinstance(exc, pairing.ReplaceUnconfirmed) else "retired")
        return RedirectResponse(f"/screens/{screen_id}?pairing={refused}#pairing", status_code=303)
    except pairing.PairingThrottled:
        session.commit()
        return RedirectResponse(f"/screens/{screen_id}?pairing=throttled#pairing", status_code=303)
    except pairing.CodeRefused as exc:
        session.commit()
        return RedirectResponse(f"/screens/{screen_id}?pairing={exc.kind}#pairing", status_code=303)
    session.commit()
    return RedirectResponse(f"/screens/{screen_id}?pairing=paired#pairing", status_code=303)
