"""Remote actions on a screen over HTTP: the API (POST /api/v1/screens/{id}/actions/{action}, the list and one
action's result, the newest screenshot) and the screen page's buttons, with the results shown on the screen page
(`screen_actions_context`, which scheduler/web/routes/fleet.py's screen page adds to its own).

Thin: each route calls scheduler/screen_actions.py (scope, who may, the command stored and audited), commits, and
only then hands the command to the sender (`request.app.state.screen_actions`, None when the server runs without a
broker: the job of a server with one sends it), so that no player answers a command the database does not hold.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Request
from fastapi import Path as PathParam
from fastapi.responses import FileResponse, RedirectResponse
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from campaigns import fleet_view as fleet
from campaigns.access import Actor
from campaigns.models import Screen
from scheduler import screen_actions
from scheduler.models import ScreenCommand
from scheduler.screen_action_dispatch import ScreenActionSender
from scheduler.screen_actions import ActionResult, ResultState, ScreenAction
from scheduler.web.auth import ActorDep, PageActorDep
from scheduler.web.deps import ClockDep, SessionDep, SettingsDep
from scheduler.web.i18n import N_
from scheduler.web.pagination import Page, PageDep, paginate
from scheduler.web.problems import page_not_found
from signage.config import Settings
from signage.errors import Conflict, NotAllowed, NotFound

log = logging.getLogger("signage.screens")

api = APIRouter(prefix="/api/v1", tags=["screens"])
pages = APIRouter(include_in_schema=False)

ScreenId = Annotated[str, PathParam(max_length=63, description="a screen id")]
CommandId = Annotated[str, PathParam(max_length=36, description="an action's command id")]


class ActionOut(BaseModel):
    id: str = Field(description="the command's id")
    screen_id: str
    action: ScreenAction
    requested_by: str
    requested_at: datetime
    expires_at: datetime = Field(description="the command waits for an offline player until then")
    state: ResultState = Field(description="done; refused (the player's reason); waiting (the player is offline); "
                                           "sent (awaiting the player's answer); queued (not yet sent); expired "
                                           "(no answer before expires_at)")
    reason: str | None = Field(description="why the player refused it")
    answered_at: datetime | None = Field(description="when the server learned the player's answer")

    @classmethod
    def of(cls, result: ActionResult) -> ActionOut:
        return cls(id=result.command_id, screen_id=result.screen_id, action=result.action,
                   requested_by=result.requested_by, requested_at=result.requested_at,
                   expires_at=result.expires_at, state=result.state, reason=result.reason,
                   answered_at=result.answered_at)


def send(request: Request, command: ScreenCommand) -> None:
    """Hand a committed command to the players, when the server has a broker. A failure here loses nothing: the
    command is stored, and the sender's job sends what never went out."""
    sender: ScreenActionSender | None = getattr(request.app.state, "screen_actions", None)
    if sender is None:
        return
    try:
        sender.send([command.command_id])
    except Exception:
        log.exception("sending a remote action failed; the job sends it again")


# -- API ------------------------------------------------------------------------------------------------------


@api.post("/screens/{screen_id}/actions/{action}", response_model=ActionOut, status_code=202)
def request_action(screen_id: ScreenId, action: ScreenAction, request: Request, actor: ActorDep,
                   session: SessionDep, clock: ClockDep) -> ActionOut:
    """Ask the screen's player for a screenshot, to reload its plan, to sync its media now, or to restart playback
    (staff and heads of the screen's unit or above). The answer says what became of it: `waiting` while the player
    is offline (until `expires_at`), `sent`, then `done` or `refused` with the player's reason; poll
    GET .../actions/{id}. 409 when no player is registered for the screen."""
    command = screen_actions.request_action(session, actor, clock, screen_id, action)
    session.commit()
    send(request, command)
    session.refresh(command)
    return ActionOut.of(screen_actions.action_result(session, command, clock.now()))


@api.get("/screens/{screen_id}/actions", response_model=Page[ActionOut])
def list_actions(screen_id: ScreenId, actor: ActorDep, session: SessionDep, clock: ClockDep,
                 page: PageDep) -> Page[ActionOut]:
    """The screen's remote actions, newest first, each with its result."""
    screen = fleet.screen_in_scope(session, actor, screen_id)
    query = (select(ScreenCommand).where(ScreenCommand.screen_id == screen.id)
             .order_by(ScreenCommand.requested_at.desc(), ScreenCommand.command_id))
    listed = paginate(session, query, page, lambda command: command)
    now = clock.now()
    return Page(items=[ActionOut.of(screen_actions.action_result(session, command, now)) for command in listed.items],
                total=listed.total, limit=listed.limit, offset=listed.offset)


@api.get("/screens/{screen_id}/actions/{command_id}", response_model=ActionOut)
def get_action(screen_id: ScreenId, command_id: CommandId, actor: ActorDep, session: SessionDep,
               clock: ClockDep) -> ActionOut:
    command = screen_actions.action_in_scope(session, actor, screen_id, command_id)
    return ActionOut.of(screen_actions.action_result(session, command, clock.now()))


@api.get("/screens/{screen_id}/screenshot", response_class=FileResponse,
         responses={200: {"content": {"image/png": {}}, "description": "the newest screenshot; Last-Modified is "
                                                                       "when the server received it"}})
def get_screenshot(screen_id: ScreenId, actor: ActorDep, session: SessionDep, settings: SettingsDep) -> FileResponse:
    screen = fleet.screen_in_scope(session, actor, screen_id)
    path = screen_actions.screenshot_path(settings.data_dir, screen.id)
    if not path.is_file():
        raise NotFound("screenshot", screen.id)
    return FileResponse(path, media_type="image/png", headers={"Cache-Control": "no-store"})


# -- the screen page's buttons -----------------------------------------------------------------------------------


@pages.post("/screens/{screen_id}/actions/{action}")
def request_action_form(screen_id: ScreenId, action: ScreenAction, request: Request, actor: PageActorDep,
                        session: SessionDep, clock: ClockDep) -> RedirectResponse:
    try:
        command = screen_actions.request_action(session, actor, clock, screen_id, action)
    except NotFound as exc:
        raise page_not_found(exc) from None
    except (NotAllowed, Conflict) as exc:
        session.rollback()
        refused = "not_allowed" if isinstance(exc, NotAllowed) else "no_player"
        return RedirectResponse(f"/screens/{screen_id}?refused={refused}#actions", status_code=303)
    session.commit()
    send(request, command)
    return RedirectResponse(f"/screens/{screen_id}?action={command.command_id}#actions", status_code=303)


REFUSALS = {"not_allowed": N_("screenaction.refused.not_allowed"), "no_player": N_("screenaction.refused.no_player")}


def screen_actions_context(request: Request, session: Session, actor: Actor, screen: Screen, settings: Settings,
                           now: datetime) -> dict[str, Any]:
    """What the screen page shows of remote actions: the buttons (for those who may act), the latest actions and
    their results, the action just asked for, and when the newest screenshot came."""
    results = screen_actions.recent_results(session, screen, now)
    asked = request.query_params.get("action")
    return {
        "may_act": fleet.may_operate_screens(actor), "actions": screen_actions.ACTIONS, "action_results": results,
        "action_asked": next((result for result in results if result.command_id == asked), None),
        "action_refused": REFUSALS.get(request.query_params.get("refused", "")),
        "screenshot_at": screen_actions.screenshot_taken_at(settings.data_dir, screen.id),
    }


__all__ = ["ActionOut", "api", "pages", "screen_actions_context"]
