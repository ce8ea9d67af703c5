"""Plans and commands are ordered by a sequence the server's database keeps, never by its clock (issue 16).

A plan signed while the server's clock ran a year ahead was taken; once the clock was put right, every genuine plan
was refused as "older than the one held" until that date. Real parts: the planner and plan storage on both
databases, the signed envelopes the bridge publishes, and the player agent's own handling of what arrives on its
plan and cmd topics (no broker: the agent's loop is handed the messages as paho would).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from campaigns.fleet_file import import_fleet
from player.agent import PlayerAgent
from player.playback import TimedPlayback
from scheduler.mqtt_bridge import next_command_sequences, signed_plans
from scheduler.plan_store import with_sequence
from scheduler.planning import plan_and_store
from signage.clock import VirtualClock
from signage.db import transaction
from signage.player_config import PlayerConfig
from signage.protocol import Plan, canonical_json, plan_version, player_topic
from signage.signing import Signer, public_key_text
from tests.conftest import FLEET_FILE
from tests.test_player_programme import make_plan

PLAYER = "hn-nb-t2-001"
A_YEAR = timedelta(days=365)


def agent_for(tmp_path, signer: Signer, clock: VirtualClock, player_id: str = PLAYER) -> PlayerAgent:
    config = PlayerConfig(player_id=player_id, broker_port=9, username="u", password="p",
                          server_url="http://127.0.0.1:9", public_keys=[public_key_text(signer.public_key)],
                          data_dir=str(tmp_path / "player"), headless=True)
    return PlayerAgent(config, clock, lambda post: TimedPlayback(post, clock=clock))


def hand_plan(agent: PlayerAgent, envelope: bytes) -> None:
    agent.step("mqtt", (player_topic(agent.config.player_id, "plan"), envelope))


def hand_command(agent: PlayerAgent, envelope: bytes) -> None:
    agent.step("mqtt", (player_topic(agent.config.player_id, "cmd"), envelope))


def plan_round(database, signer: Signer, now: datetime) -> tuple[str, bytes]:
    """A planning round at the server's `now`, and the player's newest plan as the bridge publishes it."""
    with transaction(database.sessions) as session:
        plan_and_store(session, now)
    envelope = signed_plans(database, signer, [PLAYER])[PLAYER]
    return json.loads(envelope)["payload"]["version"], envelope


def test_a_plan_signed_while_the_servers_clock_ran_a_year_ahead_does_not_lock_the_player_out(
        database, settings, clock, tmp_path):
    with transaction(database.sessions) as session:
        import_fleet(session, FLEET_FILE, settings.timezone)
    signer = Signer.load_or_create(settings.data_dir)
    agent = agent_for(tmp_path, signer, clock)
    ahead_version, ahead = plan_round(database, signer, clock.now() + A_YEAR)  # the server's clock jumped
    hand_plan(agent, ahead)
    assert agent.state.plan.version == ahead_version
    genuine_version, genuine = plan_round(database, signer, clock.now())  # and was put right
    assert genuine_version != ahead_version
    hand_plan(agent, genuine)
    assert (agent.state.plan.version, agent.state.refused) == (genuine_version, None)
    hand_plan(agent, ahead)  # the year-ahead plan replayed: older by sequence, whatever its generated_at
    assert agent.state.plan.version == genuine_version and "not later than" in agent.state.refused
    agent.close()
    again = agent_for(tmp_path, signer, clock)  # what it holds survives a restart, so the replay stays refused
    hand_plan(again, ahead)
    assert again.state.plan.version == genuine_version and "not later than" in again.state.refused
    again.close()


def test_a_plan_reissued_after_another_is_taken_again_so_the_other_replayed_stays_refused(
        database, settings, clock, tmp_path):
    with transaction(database.sessions) as session:
        import_fleet(session, FLEET_FILE, settings.timezone)
    signer = Signer.load_or_create(settings.data_dir)
    agent = agent_for(tmp_path, signer, clock)
    first_version, first = plan_round(database, signer, clock.now())
    hand_plan(agent, first)
    _, second = plan_round(database, signer, clock.now() + timedelta(days=1))  # missed by the player
    third_version, third = plan_round(database, signer, clock.now())  # the first plan again, under a new sequence
    assert third_version == first_version
    hand_plan(agent, third)
    hand_plan(agent, second)
    assert agent.state.plan.version == first_version and "not later than" in agent.state.refused
    agent.close()


def test_the_sequence_is_signed_but_not_part_of_the_version(clock):
    plan = make_plan()
    body = canonical_json(plan)
    sequenced = with_sequence(body, 41)
    assert Plan.model_validate_json(sequenced).sequence == 41
    assert canonical_json(Plan.model_validate_json(sequenced)) == sequenced  # still canonical
    assert plan_version(json.loads(sequenced)) == plan.version
    assert canonical_json(plan) == body  # a plan without a sequence writes none


def test_a_player_holding_a_plan_from_before_the_sequence_takes_the_first_sequenced_plan(clock, tmp_path):
    signer = Signer.load_or_create(tmp_path / "server")
    old = make_plan().model_copy(update={"generated_at": datetime(2099, 1, 1, tzinfo=UTC)})  # signed a clock ahead
    data = tmp_path / "player"
    data.mkdir()
    (data / "plan.json").write_bytes(signer.envelope_json(canonical_json(old)))
    agent = agent_for(tmp_path, signer, clock, player_id=old.player_id)
    assert agent.state.plan.generated_at.year == 2099
    newer = make_plan(spots=((9, 0),))
    hand_plan(agent, signer.envelope_json(with_sequence(canonical_json(newer), 7)))
    assert (agent.state.plan.version, agent.state.plan.sequence, agent.state.refused) == (newer.version, 7, None)
    hand_plan(agent, signer.envelope_json(canonical_json(old)))  # unsequenced, from before: never again
    assert agent.state.plan.sequence == 7 and "no sequence" in agent.state.refused
    agent.close()


# -- commands --------------------------------------------------------------------------------------------------


def command(sequence: int | None, issued_at: datetime, alert_id: str, now: datetime) -> dict:
    order = {"alert_id": alert_id, "severity": "info", "kind": "text", "text": f"Thông báo {alert_id}",
             "starts_at": (now - timedelta(minutes=1)).isoformat(),
             "expires_at": (now + timedelta(hours=1)).isoformat()}
    body = {"schema": "signage.command/1", "command_id": f"c-{alert_id}", "player_id": PLAYER, "name": "alert_start",
            "issued_at": issued_at.isoformat(), "expires_at": (issued_at + timedelta(minutes=10)).isoformat(),
            "args": order}
    return body if sequence is None else {**body, "sequence": sequence}


def signed(signer: Signer, body: dict) -> bytes:
    return canonical_json(signer.sign(body))


def test_a_command_signed_while_the_servers_clock_ran_behind_is_carried_out(clock, tmp_path):
    # Its expires_at lies a year in the past by the player's clock: judged by that, a genuine command looked old.
    signer = Signer.load_or_create(tmp_path / "server")
    agent = agent_for(tmp_path, signer, clock)
    hand_command(agent, signed(signer, command(1, clock.now() - A_YEAR, "behind", clock.now())))
    assert agent.state.refused is None and agent.alerts.get("behind") is not None
    agent.close()


def test_a_stale_command_is_refused_whatever_its_clock_says_even_after_a_restart(clock, tmp_path):
    signer = Signer.load_or_create(tmp_path / "server")
    agent = agent_for(tmp_path, signer, clock)
    stale = signed(signer, command(1, clock.now() + A_YEAR, "stale", clock.now()))  # signed a year ahead
    hand_command(agent, signed(signer, command(2, clock.now(), "later", clock.now())))
    hand_command(agent, stale)
    assert agent.alerts.get("stale") is None and "not above 2" in agent.state.refused
    agent.close()
    again = agent_for(tmp_path, signer, clock)
    hand_command(again, stale)
    hand_command(again, signed(signer, command(2, clock.now(), "later-again", clock.now())))
    assert again.alerts.get("stale") is None and again.alerts.get("later-again") is None
    hand_command(again, signed(signer, command(3, clock.now(), "next", clock.now())))
    assert again.alerts.get("next") is not None
    hand_command(again, signed(signer, command(None, clock.now(), "unsequenced", clock.now())))
    assert again.alerts.get("unsequenced") is None and "no sequence" in again.state.refused
    again.close()


def test_command_sequences_count_up_per_player_in_the_database(database):
    with transaction(database.sessions) as session:
        assert next_command_sequences(session, ["a", "b", "a"]) == [1, 1, 2]
    with transaction(database.sessions) as session:
        assert next_command_sequences(session, ["a", "c"]) == [3, 1]
    with pytest.raises(RuntimeError), transaction(database.sessions) as session:
        next_command_sequences(session, ["a"])
        raise RuntimeError("rolled back")
    with transaction(database.sessions) as session:
        assert next_command_sequences(session, ["a"]) == [4]
