"""`signage screen screenshot|reload|sync|restart ID --as USER`: remote actions from the server's shell, with the
rules of the screen page's buttons (the user's scope and role, audited under their name); mounted by signage_cli.

The command stores the action in the database; the running server's job sends it to the player within seconds
(scheduler/screen_action_dispatch.py), and its result is read back from the database: done, refused with the
player's reason, waiting while the player is offline (until the command's expiry), or expired.

At the top this module imports Typer and the kernel only (the player's install lists every verb); the server's code
is imported inside the command.
"""

from __future__ import annotations

import json
import time
from typing import Annotated

import typer

from signage.console import JsonOpt, fail, out

screen_app = typer.Typer(help="Screens: ask a screen's player for a screenshot, to reload its plan, to sync its "
                              "media now or to restart playback.", no_args_is_help=True)

ScreenArg = Annotated[str, typer.Argument(help="The screen's id.")]
AsOpt = Annotated[str, typer.Option("--as", help="The staff account the action is taken as: its scope and role "
                                                 "apply, and the audit log names it.")]
WaitOpt = Annotated[float, typer.Option(help="Seconds to wait for the player's answer (0: do not wait).",
                                        min=0, max=600)]
FINAL = ("done", "refused", "expired")


def act(action: str, screen_id: str, username: str, wait: float, as_json: bool) -> None:
    from scheduler.cli import server_modules, server_session

    server_modules()
    from sqlalchemy import select

    from campaigns.access import Actor
    from campaigns.models import User
    from scheduler.models import ScreenCommand
    from scheduler.screen_actions import action_result, request_action
    from signage.clock import SystemClock
    from signage.console import settings
    from signage.errors import Refused

    clock = SystemClock()
    with server_session() as session:
        user = session.scalar(select(User).where(User.username == username))
        if user is None or not user.active:
            raise fail(f"there is no active user {username!r}; name a staff account with --as")
        try:
            command = request_action(session, Actor(user, user.organisation.path, "cli"), clock, screen_id,
                                     action)
        except Refused as exc:
            raise fail(str(exc)) from None
        command_id = command.command_id
    database = server_modules().open_database(settings())
    try:
        deadline = time.monotonic() + wait
        while True:
            with database.sessions() as session:
                result = action_result(session, session.get(ScreenCommand, command_id), clock.now())
            if result.state in FINAL or time.monotonic() >= deadline:
                break
            time.sleep(1)
    finally:
        database.dispose()
    if as_json:
        print(json.dumps({"id": result.command_id, "screen_id": result.screen_id, "action": result.action,
                          "state": result.state, "reason": result.reason,
                          "expires_at": result.expires_at.isoformat()}, ensure_ascii=False))
    else:
        out.print(describe(result))
    if result.state in ("refused", "expired"):
        raise typer.Exit(1)


def describe(result) -> str:
    what = f"{result.action} on {result.screen_id} ({result.command_id})"
    if result.state == "done":
        return f"{what}: done"
    if result.state == "refused":
        return f"{what}: refused by the player: {result.reason}"
    if result.state == "expired":
        return f"{what}: expired at {result.expires_at.isoformat()} without an answer from the player"
    if result.state == "waiting":
        return f"{what}: waiting, the player is offline; the command waits until {result.expires_at.isoformat()}"
    if result.state == "queued":
        return (f"{what}: stored; the running server sends it within seconds (it waits until "
                f"{result.expires_at.isoformat()}); see the screen's page for the answer")
    return f"{what}: sent, awaiting the player's answer until {result.expires_at.isoformat()}"


VERBS = {
    "screenshot": "Ask the screen's player for a screenshot; the screen's page shows it when it arrives.",
    "reload": "Ask the screen's player to reload the plan it holds.",
    "sync": "Ask the screen's player to fetch its plan's media now (retrying what failed).",
    "restart": "Ask the screen's player to restart playback (a new media player; what plays is recorded as cut).",
}


def verb(action: str):
    def command(screen_id: ScreenArg, username: AsOpt, wait: WaitOpt = 30, as_json: JsonOpt = False) -> None:
        act(action, screen_id, username, wait, as_json)

    command.__doc__ = VERBS[action]
    return command


for _action in VERBS:
    screen_app.command(_action)(verb(_action))


__all__ = ["screen_app"]
