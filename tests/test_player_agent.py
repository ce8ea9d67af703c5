"""The agent's own decisions, on a virtual clock with the timed playback backend (no broker needed)."""

from datetime import datetime, timedelta

import pytest

from player.agent import PlayerAgent
from player.playback import TimedPlayback
from signage.clock import VirtualClock
from signage.player_config import PlayerConfig
from signage.protocol import canonical_json
from signage.signing import Signer, public_key_text
from tests.test_player_programme import HANOI, make_plan


def idle_agent(tmp_path, now: datetime) -> PlayerAgent:
    signer = Signer.load_or_create(tmp_path / "server")
    plan = make_plan(filler=())  # nothing to fill with: the agent is idle between spots
    data = tmp_path / "player"
    data.mkdir()
    (data / "plan.json").write_bytes(signer.envelope_json(canonical_json(plan)))
    config = PlayerConfig(player_id="hn-test-001", broker_port=9, username="u", password="p",
                          server_url="http://127.0.0.1:9", public_keys=[public_key_text(signer.public_key)],
                          data_dir=str(data), headless=True)
    clock = VirtualClock(now)
    return PlayerAgent(config, clock, lambda post: TimedPlayback(post, clock=clock))


def test_an_idle_agent_wakes_at_the_next_spots_start_not_later(tmp_path):
    agent = idle_agent(tmp_path, datetime(2024, 8, 20, 8, 9, 58, 500000, tzinfo=HANOI))
    assert agent.state.plan is not None and agent.programme_run.current is None
    assert agent._seconds_to_next_deadline() == timedelta(seconds=1.5).total_seconds()


def test_an_agent_loads_its_saved_plan_at_start_and_refuses_a_plan_for_another_player(tmp_path):
    agent = idle_agent(tmp_path, datetime(2024, 8, 20, 8, 0, tzinfo=HANOI))
    assert agent.state.plan.player_id == "hn-test-001"
    other = make_plan().model_copy(update={"player_id": "hn-other-001"})
    signer = Signer.load_or_create(tmp_path / "server")
    with pytest.raises(ValueError, match="not this player"):
        agent._accept_plan(signer.envelope_json(canonical_json(other)))
    assert agent.state.plan.player_id == "hn-test-001"


def test_a_spot_whose_start_passed_while_the_loop_was_busy_is_not_waited_past(tmp_path):
    # The loop decided "wait" a moment before 08:10:00, then spent past it sending; the spot is due now, and the
    # next one is a minute away: the loop must not sleep towards that one (found by bench/player_timing.py).
    agent = idle_agent(tmp_path, datetime(2024, 8, 20, 8, 10, 0, 300000, tzinfo=HANOI))
    assert agent.programme_run.current is None
    assert agent._seconds_to_next_deadline() == 0.0
