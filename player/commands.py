"""Which signed commands a player carries out, the record of those it did (`<data_dir>/commands.json`), and the
outcome of each that its statuses report to the server.

A command is carried out once: it must verify, be for this player, come in order (its sequence above the last
carried out; docs/files.md, "the ordering rule") and, when unsequenced (a server from before the sequence), not
have expired by its own `expires_at` nor been carried out already. What each command does is the agent's; a
screenshot is sent from a thread of its own (`send_screenshot`), and its outcome is known when the upload ends.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from pydantic import ValidationError

from player.files import replace_atomically
from player.uploads import upload_screenshot
from signage.player_config import PlayerConfig
from signage.protocol import (
    MAX_COMMAND_OUTCOMES,
    AlertOrder,
    AlertStop,
    Command,
    CommandOutcome,
    SignedEnvelope,
    command_order,
)
from signage.signing import SignatureRefused, Verifier

log = logging.getLogger("signage.player")


# A command's outcome is reported at least this long, however soon the command expires: a status or two is lost
# now and then, and the player's clock may be behind the server's.
OUTCOME_KEPT_AT_LEAST = timedelta(minutes=5)
NO_PICTURE = "there is no picture to take: nothing is shown, or only sound plays"
# The commands whose outcome the statuses report: the remote actions staff ask for. An alert's start and end are
# acknowledged in its proof-of-play; and a server from before `Status.commands`, which sends only alerts, still
# takes every status.
REPORTED_COMMANDS = ("screenshot", "reload", "sync_now", "restart")


class CommandRefused(Exception):
    """A command this player does not carry out; the message says why (for the status's `refused`, and for the
    command's outcome when the command could be read)."""

    def __init__(self, message: str, command: Command | None = None) -> None:
        super().__init__(message)
        self.command = command


class CommandGate:
    """The commands carried out so far: the highest sequence, and the ids of the unsequenced ones not yet expired."""

    def __init__(self, data_dir: Path, verifier: Verifier, player_id: str, now: datetime) -> None:
        self.path = data_dir / "commands.json"
        self.verifier = verifier
        self.player_id = player_id
        self.last_sequence, self.done = self._load(now)

    def admit(self, payload: bytes, now: datetime) -> Command:
        """The command in a signed envelope, recorded as carried out; raises CommandRefused saying why not."""
        try:
            command = Command.model_validate(self.verifier.verify(SignedEnvelope.model_validate_json(payload)))
        except (ValueError, ValidationError, SignatureRefused) as exc:
            raise CommandRefused(f"command refused: {str(exc)[:300]}") from None
        refused = f"command {command.command_id} refused"
        if command.player_id != self.player_id:
            raise CommandRefused(f"{refused}: it is for {command.player_id}", command)
        out_of_order = command_order(self.last_sequence, command)
        if out_of_order is not None:
            raise CommandRefused(f"{refused}: {out_of_order}", command)
        # A sequenced command waited no longer than its MQTT message expiry, which the broker counts; only an
        # unsequenced one (a server from before the sequence) is judged by its expires_at, the server's clock.
        if command.sequence is None and command.expires_at <= now:
            raise CommandRefused(f"{refused}: it expired at {command.expires_at.isoformat()}", command)
        if command.command_id in self.done:
            raise CommandRefused(f"{refused}: it was carried out already (sent again)", command)
        self._remember(command, now)
        return command

    def _load(self, now: datetime) -> tuple[int | None, dict[str, datetime]]:
        """What the file says was carried out. (The file of a player from before the sequence holds the ids
        alone.)"""
        try:
            saved = json.loads(self.path.read_text(encoding="utf-8"))
            if "done" in saved and isinstance(saved["done"], dict):
                last = saved.get("last_sequence")
                last = int(last) if last is not None else None
                saved = saved["done"]
            else:
                last = None
            done = {str(key): datetime.fromisoformat(value) for key, value in saved.items()}
        except FileNotFoundError:
            return None, {}
        except (ValueError, TypeError, AttributeError) as exc:
            # Starting afresh takes the next sequenced command whatever its number: one replay at worst, never a
            # player locked out of commands.
            log.error("the record of commands carried out is not readable (%s); starting afresh", exc)
            return None, {}
        return last, {key: expires for key, expires in done.items() if expires > now}

    def _remember(self, command: Command, now: datetime) -> None:
        self.done = {key: expires for key, expires in self.done.items() if expires > now}
        if command.sequence is not None:
            self.last_sequence = command.sequence
        else:
            self.done[command.command_id] = command.expires_at
        replace_atomically(self.path, json.dumps({"last_sequence": self.last_sequence, "done": {
            key: value.isoformat() for key, value in self.done.items()}}).encode("utf-8"))


@dataclass(frozen=True)
class _Outcome:
    outcome: CommandOutcome
    kept_until: datetime


class CommandOutcomes:
    """The outcomes of the remote actions received lately (REPORTED_COMMANDS), for the statuses: each is reported
    until its command's expiry has passed (and OUTCOME_KEPT_AT_LEAST after it came), the newest MAX_COMMAND_OUTCOMES
    at most. Kept in memory: a player that restarts has no outcome to report, and the server shows the command
    expired unanswered."""

    def __init__(self) -> None:
        self._outcomes: dict[str, _Outcome] = {}

    def done(self, command: Command, now: datetime) -> None:
        self._note(command, "done", None, now)

    def refused(self, command: Command, reason: str, now: datetime) -> None:
        self._note(command, "refused", reason, now)

    def settle(self, command: Command, why: str | None, now: datetime) -> None:
        """A command that finished: done when `why` is None, else refused for that reason (logged either way)."""
        if why is None:
            self.done(command, now)
            log.info("command %s done", command.name)
        else:
            self.refused(command, why, now)
            log.warning(why)

    def _note(self, command: Command, outcome: str, reason: str | None, now: datetime) -> None:
        if command.name not in REPORTED_COMMANDS:
            return
        command_id, expires_at = command.command_id, command.expires_at
        self._outcomes.pop(command_id, None)
        self._outcomes[command_id] = _Outcome(
            CommandOutcome(command_id=command_id, outcome=outcome, reason=reason[:500] if reason else None, at=now),
            max(expires_at, now + OUTCOME_KEPT_AT_LEAST))
        while len(self._outcomes) > MAX_COMMAND_OUTCOMES:
            del self._outcomes[next(iter(self._outcomes))]

    def current(self, now: datetime) -> list[CommandOutcome]:
        """The outcomes still to report, oldest first (forgetting those past their time)."""
        self._outcomes = {key: kept for key, kept in self._outcomes.items() if kept.kept_until > now}
        return [kept.outcome for kept in self._outcomes.values()]


ScreenshotSent = Callable[[Command, str | None], None]


def send_screenshot(config: PlayerConfig, path: Path, command: Command, sent: ScreenshotSent) -> None:
    """Upload the picture at `path` from a thread of its own (a slow link must not hold up the screen), then call
    `sent(command, None)`, or `sent(command, why)` when it did not go. `sent` runs on that thread."""

    def upload() -> None:
        went = upload_screenshot(config.server_url, config.player_id, config.password, path)
        sent(command, None if went else f"the screenshot could not be sent to {config.server_url}")

    threading.Thread(target=upload, daemon=True, name="screenshot").start()


def alert_order(command: Command) -> AlertOrder:
    """The order an `alert_start` command carries; raises CommandRefused naming each problem."""
    try:
        return AlertOrder.model_validate(command.args)
    except ValidationError as exc:
        raise CommandRefused(f"alert_start {command.command_id} refused: {validation_problems(exc)}",
                             command) from None


def alert_stop_id(command: Command) -> str:
    """The alert an `alert_stop` command takes off the screen; raises CommandRefused naming each problem."""
    try:
        return AlertStop.model_validate(command.args).alert_id
    except ValidationError as exc:
        raise CommandRefused(f"alert_stop {command.command_id} refused: {validation_problems(exc)}",
                             command) from None


def validation_problems(exc: ValidationError) -> str:
    """Each problem pydantic found, as 'field: message', on one line."""
    return "; ".join(f"{'.'.join(str(part) for part in error['loc']) or 'args'}: {error['msg']}"
                     for error in exc.errors())


__all__ = ["NO_PICTURE", "REPORTED_COMMANDS", "CommandGate", "CommandOutcomes", "CommandRefused", "alert_order",
           "alert_stop_id", "send_screenshot", "validation_problems"]
