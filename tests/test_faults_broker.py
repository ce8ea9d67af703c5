"""Fault: Mosquitto restarted while new plans go out to many players (issue 9, fault suite).

Sixteen real player agents (tests/test_faults_offline.py's VirtualScreen: journal, signature checks, "never an
older plan") hold their plans; a campaign change re-plans them all and the broker is restarted half-way through
publishing the new plans; a second change follows once it is back. Every player ends up holding the server's
newest plan, the server hears each one confirm it, and the ledger's figures are those of that plan.
"""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import select

from campaigns.models import Campaign, Screen
from signage.db import transaction
from tests import test_faults_offline as offline
from tests.test_faults_offline import CAMPAIGN, HANOI, VirtualScreen, wait_until

pytestmark = pytest.mark.faults

database_url = offline.database_url
players_dir = offline.players_dir
fault_stack = offline.fault_stack

PLAYERS = 16
FRIDAY = date(2024, 8, 23)


def change_plays_per_day(stack, plays: int) -> None:
    """Staff change the campaign; the server's 1-second job re-plans a moment later."""
    with transaction(stack.database.sessions) as session:
        session.get(Campaign, CAMPAIGN).plays_per_day = plays
    stack.clock.advance(timedelta(seconds=2))


def test_a_broker_restarted_while_plans_go_out_leaves_every_player_on_the_newest_plan(fault_stack):
    stack = fault_stack
    with stack.database.sessions() as session:
        ids = sorted(session.scalars(select(Screen.id).where(Screen.kind == "lcd",
                                                             ~Screen.id.startswith("hn-hadong-phula"))))[:PLAYERS]
    screens = [VirtualScreen(stack, player_id) for player_id in ids]
    try:
        for screen in screens:
            screen.connect()
        first = {s.config.player_id: s.held_version() for s in screens}

        publish = stack.bridge.publish_plans

        def publish_across_a_restart(planned) -> None:
            half = len(planned.changed) // 2
            publish(planned.changed[:half])
            stack.broker.restart()  # the broker goes down with the first half in flight
            publish(planned.changed[half:])  # queued by the server's client until the broker is back

        stack.planning.on_plans_changed = publish_across_a_restart
        change_plays_per_day(stack, 12)
        assert set(stack.planning.tick().changed) >= set(ids)
        stack.planning.on_plans_changed = lambda planned: publish(planned.changed)
        change_plays_per_day(stack, 11)
        assert set(stack.planning.tick().changed) >= set(ids)

        def converged() -> bool:
            for screen in screens:
                screen.drain()
            return all(s.held_version() == stack.latest_version(s.config.player_id) for s in screens)

        wait_until(converged, 60, "players never all held their newest plan")
        wait_until(lambda: all(stack.confirmed_version(p) == stack.latest_version(p) for p in ids), 30,
                   "the server never heard every player confirm its newest plan")
        for screen in screens:
            player_id = screen.config.player_id
            assert screen.held_version() != first[player_id]
            assert screen.agent.state.refused is None or "is not later than" in screen.agent.state.refused
            friday = [s for s in screen.agent.state.plan.spots
                      if s.campaign_id == CAMPAIGN and s.start.astimezone(HANOI).date() == FRIDAY]
            row = stack.ledger(player_id)[FRIDAY]
            assert (row.required, row.planned) == (11, len(friday)), player_id
    finally:
        for screen in screens:
            screen.close()
