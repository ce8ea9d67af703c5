"""Driving a real PlayerAgent on virtual time in a test, as `signage simulate` does for a fleet."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from player.agent import PlayerAgent
from player.playback import TimedPlayback
from signage.clock import VirtualClock


def drain(agent: PlayerAgent) -> None:
    """Handle every event waiting on the agent's queue."""
    while not agent.events.empty():
        agent.step(*agent.events.get_nowait())


def run_agent_until(agent: PlayerAgent, playback: TimedPlayback, clock: VirtualClock, end: datetime,
                    on_wake: Callable[[datetime], None] | None = None, max_turns: int = 500_000) -> None:
    """Run the agent's loop on virtual time up to `end`: the clock moves to when the loop would wake, or a timed
    item ends. `on_wake(now)` runs at each moment (a clock jump, say) and may move the clock itself."""
    for _ in range(max_turns):
        drain(agent)
        now = clock.now()
        if now >= end:
            return
        wake = now + timedelta(seconds=agent._seconds_to_next_deadline())
        if playback.ends_at is not None:
            wake = min(wake, playback.ends_at)
        clock.set(max(now, min(wake, end)))
        if on_wake is not None:
            on_wake(clock.now())
        playback.advance()
        if agent.events.empty():
            agent.step("tick")
    raise AssertionError(f"the loop spun without reaching {end.isoformat()}")
