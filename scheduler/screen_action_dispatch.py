"""Remote actions out to the players: each stored command (scheduler/screen_actions.py) goes once through the
server's MQTT bridge, signed, under the player's next sequence, with an MQTT message expiry of the time it has
left, so an offline player gets it from its persistent session if it comes back before then.

A command is marked sent and committed before it goes out, so the player's answer always finds it. The routes send
at once; a job sends what was stored without a broker connection at hand (by `signage screen ...`, or by a server
running without one) while it has not expired.
"""

from __future__ import annotations

import logging
from collections.abc import Collection

from sqlalchemy import update

from scheduler.database import Database
from scheduler.models import ScreenCommand
from scheduler.mqtt_bridge import CommandOrder, MqttBridge
from scheduler.screen_actions import COMMAND_NAMES
from signage.clock import Clock
from signage.db import transaction

log = logging.getLogger("signage.screens")


class ScreenActionSender:
    def __init__(self, database: Database, bridge: MqttBridge, clock: Clock) -> None:
        self.database = database
        self.bridge = bridge
        self.clock = clock

    def send(self, command_ids: Collection[str]) -> int:
        """Send these stored commands if they have not gone yet and have not expired; returns how many went."""
        return self._send(ScreenCommand.command_id.in_(list(command_ids))) if command_ids else 0

    def send_due(self) -> int:
        """Send every stored command that has not gone and has not expired (the job)."""
        sent = self._send(None)
        if sent:
            log.info("sent %d remote actions stored without a broker at hand", sent)
        return sent

    def _send(self, which) -> int:
        now = self.clock.now()
        claim = update(ScreenCommand).where(ScreenCommand.sent_at.is_(None), ScreenCommand.expires_at > now)
        if which is not None:
            claim = claim.where(which)
        # Claimed by one statement: the route and the job never both send the same command.
        with transaction(self.database.sessions) as session:
            claimed = session.execute(claim.values(sent_at=now).returning(
                ScreenCommand.command_id, ScreenCommand.screen_id, ScreenCommand.action,
                ScreenCommand.expires_at)).all()
        return len(self.bridge.publish_commands([
            CommandOrder(screen_id, COMMAND_NAMES[action], {}, expires_at - now, command_id)
            for command_id, screen_id, action, expires_at in claimed]))


__all__ = ["ScreenActionSender"]
