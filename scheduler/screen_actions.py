"""Remote actions on screens: staff ask a screen for a screenshot, to reload its plan, to sync its media now or to
restart its playback; each becomes a signed command to the screen's player (sent by
scheduler/screen_action_dispatch.py), and the player's status reports what it made of it (`Status.commands`:
done, or refused with the reason).

Here: who may ask (campaigns/fleet_view.py's `require_screen_operator`, within the actor's subtree: another unit's
screen is NotFound), the request stored and audited in the caller's transaction, the outcomes noted at ingest, and
each action's result as staff see it: done, refused (the player's reason), waiting (the player is offline; the
command waits for it until its expiry), sent (the player is online and has not answered yet), queued (not yet
handed to the broker) or expired (no answer before its expiry). The newest screenshot of each screen is a file,
`<data_dir>/screenshots/<screen id>/latest.png`, whose modification time is when the server received it.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from campaigns import fleet_view as fleet
from campaigns.access import Actor
from campaigns.audit import record_change
from campaigns.models import Screen
from campaigns.screen_state import screen_state
from scheduler.models import PlayerCredential, ScreenCommand
from signage.clock import Clock
from signage.errors import Conflict, NotFound
from signage.protocol import CommandOutcome

ScreenAction = Literal["screenshot", "reload", "sync", "restart"]
ACTIONS: tuple[ScreenAction, ...] = ("screenshot", "reload", "sync", "restart")
COMMAND_NAMES: dict[str, str] = {"screenshot": "screenshot", "reload": "reload", "sync": "sync_now",
                                 "restart": "restart"}
ACTION_TTL = timedelta(minutes=10)  # how long a command waits for an offline player
ResultState = Literal["done", "refused", "waiting", "sent", "queued", "expired"]
RESULT_STATES: tuple[ResultState, ...] = ("done", "refused", "waiting", "sent", "queued", "expired")


@dataclass(frozen=True)
class ActionResult:
    command_id: str
    screen_id: str
    action: str
    requested_by: str
    requested_at: datetime
    expires_at: datetime
    state: ResultState
    reason: str | None
    answered_at: datetime | None


def request_action(session: Session, actor: Actor, clock: Clock, screen_id: str, action: ScreenAction) -> ScreenCommand:
    """Store the command for `action` on the screen, audited, in the caller's transaction; the caller commits, then
    has it sent. NotFound for a screen outside the actor's subtree, NotAllowed for a role that may not act on
    screens, Conflict when no player is registered for the screen."""
    screen = fleet.screen_in_scope(session, actor, screen_id)
    fleet.require_screen_operator(actor)
    credential = session.get(PlayerCredential, screen.id)
    if credential is None or credential.revoked_at is not None:
        raise Conflict(f"no player is registered for screen {screen.id}: there is nobody to send the command to",
                       f"register its player first (signage player register {screen.id})")
    now = clock.now()
    command = ScreenCommand(command_id=str(uuid.uuid4()), screen_id=screen.id, action=action,
                            requested_by=actor.username, requested_at=now, expires_at=now + ACTION_TTL)
    session.add(command)
    record_change(session, actor, clock, action=f"screen.{action}", entity_kind="screen", entity_id=screen.id,
                  organisation_id=screen.site.organisation_id,
                  after={"command_id": command.command_id, "expires_at": command.expires_at.isoformat()})
    session.flush()
    return command


def result_of(command: ScreenCommand, online: bool, now: datetime) -> ActionResult:
    if command.outcome in ("done", "refused"):
        state: ResultState = command.outcome
    elif command.expires_at <= now:
        state = "expired"
    elif not online:
        state = "waiting"
    elif command.sent_at is None:
        state = "queued"
    else:
        state = "sent"
    return ActionResult(command.command_id, command.screen_id, command.action, command.requested_by,
                        command.requested_at, command.expires_at, state, command.reason, command.answered_at)


def action_result(session: Session, command: ScreenCommand, now: datetime) -> ActionResult:
    return result_of(command, screen_state(session, command.screen_id, now).state == "online", now)


def recent_results(session: Session, screen: Screen, now: datetime, limit: int = 10) -> list[ActionResult]:
    """The screen's latest actions, newest first (the caller found the screen in the actor's scope)."""
    online = screen_state(session, screen.id, now).state == "online"
    commands = session.scalars(select(ScreenCommand).where(ScreenCommand.screen_id == screen.id)
                               .order_by(ScreenCommand.requested_at.desc()).limit(limit))
    return [result_of(command, online, now) for command in commands]


def action_in_scope(session: Session, actor: Actor, screen_id: str, command_id: str) -> ScreenCommand:
    screen = fleet.screen_in_scope(session, actor, screen_id)
    command = session.get(ScreenCommand, command_id) if len(command_id) <= 36 else None
    if command is None or command.screen_id != screen.id:
        raise NotFound("action", command_id)
    return command


def record_command_outcomes(session: Session, reported: Mapping[str, Iterable[CommandOutcome]],
                            now: datetime) -> int:
    """Note what players reported of the remote actions (player id -> its statuses' outcomes), at ingest, in the
    caller's transaction: the first outcome of each command counts, and only its own screen's. Returns how many
    were noted. One query a round, and none when no status names a command (nearly every round)."""
    by_id = {outcome.command_id: (player_id, outcome) for player_id, outcomes in reported.items()
             for outcome in outcomes}
    if not by_id:
        return 0
    noted = 0
    for command in session.scalars(select(ScreenCommand).where(ScreenCommand.command_id.in_(list(by_id)),
                                                               ScreenCommand.outcome.is_(None))):
        player_id, outcome = by_id[command.command_id]
        if command.screen_id != player_id:
            continue
        command.outcome, command.reason, command.answered_at = outcome.outcome, outcome.reason, now
        noted += 1
    return noted


# -- screenshots --------------------------------------------------------------------------------------------


def screenshot_path(data_dir: Path, screen_id: str) -> Path:
    return data_dir / "screenshots" / screen_id / "latest.png"


def store_screenshot(data_dir: Path, screen_id: str, png: bytes, now: datetime) -> datetime:
    """Keep `png` as the screen's newest screenshot, received at `now` (its file's modification time)."""
    target = screenshot_path(data_dir, screen_id)
    target.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=target.parent, suffix=".part")
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(png)
    os.utime(temporary, (now.timestamp(), now.timestamp()))
    os.replace(temporary, target)
    return now


def screenshot_taken_at(data_dir: Path, screen_id: str) -> datetime | None:
    """When the server received the screen's newest screenshot; None when it has none."""
    try:
        return datetime.fromtimestamp(screenshot_path(data_dir, screen_id).stat().st_mtime, UTC)
    except FileNotFoundError:
        return None


__all__ = ["ACTIONS", "ACTION_TTL", "COMMAND_NAMES", "RESULT_STATES", "ActionResult", "ScreenAction",
           "action_in_scope", "action_result", "recent_results", "record_command_outcomes", "request_action",
           "result_of", "screenshot_path", "screenshot_taken_at", "store_screenshot"]
