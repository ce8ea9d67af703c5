"""Fault: the player's clock jumps forward and back under the running agent (issue 9, fault suite).

The real agent on the shared virtual clock (tests/test_faults_offline.py), against Mosquitto and the server's
bridge: the clock is set an hour and ten minutes forward in the morning peak, and an hour back later in it.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest

from player.playback import PlaybackEvent
from player.programme_run import CLOCK_SET_BACK
from tests import test_faults_offline as offline
from tests.test_faults_offline import CAMPAIGN, HANOI, VANQUAN, VirtualScreen, hanoi

pytestmark = pytest.mark.faults

database_url = offline.database_url
players_dir = offline.players_dir
fault_stack = offline.fault_stack

FRIDAY = date(2024, 8, 23)


def at(record: dict, field: str = "started_at") -> datetime:
    return datetime.fromisoformat(record[field]).astimezone(HANOI)


def test_a_clock_set_forward_then_back_doubles_no_play_makes_good_what_it_skipped_and_keeps_true_times(
        fault_stack):
    stack = fault_stack
    screen = VirtualScreen(stack, VANQUAN)
    jumps = {hanoi(FRIDAY, 8, 30): hanoi(FRIDAY, 9, 40), hanoi(FRIDAY, 10, 0): hanoi(FRIDAY, 9, 0)}
    done: list[datetime] = []
    plan_spots = []

    def jump(now: datetime) -> None:
        for when, to in jumps.items():
            if when not in done and now >= when:
                done.append(when)
                stack.clock.set(to)

    try:
        screen.connect()
        plan_spots = [s for s in screen.agent.state.plan.spots if s.start.astimezone(HANOI).date() == FRIDAY]
        assert len(plan_spots) == 10
        screen.disconnect()  # the records stay in the journal until the end of the day, to be counted there
        screen.run_until(hanoi(FRIDAY, 17, 30), on_wake=jump)
        assert len(done) == 2
        journaled = screen.journaled()

        assert all(at(r, "ended_at") >= at(r) for r in journaled)
        skipped = {s.spot_id for s in plan_spots if hanoi(FRIDAY, 8, 30) <= s.start < hanoi(FRIDAY, 9, 40)}
        assert len(skipped) == 2
        completed = [r for r in journaled if r["kind"] in ("spot", "makegood") and r["status"] == "completed"]
        # Every spot of the day played once: the two the jump skipped were made good when the clock landed, and
        # none that played before the clock was set back played again when its time came round a second time.
        assert sorted(r["spot_id"] for r in completed) == sorted(s.spot_id for s in plan_spots)
        assert {r["spot_id"] for r in completed if r["kind"] == "makegood"} == skipped
        for record in completed:
            if record["kind"] == "makegood":  # played at the clock's time once it had jumped: 09:40 onwards
                assert hanoi(FRIDAY, 9, 40) <= at(record) < hanoi(FRIDAY, 10, 0)
            else:
                spot = next(s for s in plan_spots if s.spot_id == record["spot_id"])
                assert abs(at(record) - spot.start) <= timedelta(seconds=1)
        # Records keep the times the clock gave them: some plays after the jump back carry earlier times than
        # plays journaled before it.
        starts = [at(r) for r in journaled]
        assert any(later < earlier for earlier, later in zip(starts, starts[1:], strict=False))
        # What played when the clock went back was cut there, not held until the old time line caught up.
        [cut] = [r for r in journaled if r["reason"] == CLOCK_SET_BACK]
        assert cut["status"] == "interrupted" and cut["started_at"] == cut["ended_at"]
        assert hanoi(FRIDAY, 9, 59) <= at(cut) <= hanoi(FRIDAY, 10, 0)
        assert [at(r) for r in journaled[journaled.index(cut) + 1:]][:1] == [hanoi(FRIDAY, 9, 0)]

        screen.connect()
        screen.turn_until(lambda: screen.backlog() == 0, 60, "the journal never drained")
        assert screen.held_version() == stack.latest_version(VANQUAN)
        stored = stack.play_ids(VANQUAN)
        assert sorted(stored) == sorted(r["play_id"] for r in journaled)
        row = stack.ledger(VANQUAN)[FRIDAY]
        assert (row.campaign_id, row.required, row.completed_in_peak, row.completed_total, row.makegoods) == (
            CAMPAIGN, 10, 10, 10, 2)
    finally:
        screen.close()


def test_a_play_whose_end_comes_stamped_before_its_start_is_kept_as_cut_short_and_made_good(fault_stack):
    """libVLC stamps its end event with the clock: set back during a clip, that end is before the start."""
    stack = fault_stack
    screen = VirtualScreen(stack, VANQUAN)
    try:
        screen.connect()
        first = screen.agent.state.plan.spots[0]
        screen.disconnect()
        screen.run_until(first.start + timedelta(seconds=5))
        playing = screen.agent.programme_run.current
        assert playing is not None and playing.action.spot == first
        stack.clock.set(first.start - timedelta(minutes=10))
        screen.agent.step("playback", PlaybackEvent(playing.token, "ended", stack.clock.now()))
        [record] = [r for r in screen.journaled() if r["spot_id"] == first.spot_id]
        assert (record["status"], record["reason"]) == ("interrupted", CLOCK_SET_BACK)
        assert at(record) == at(record, "ended_at") == first.start
        screen.run_until(first.start + timedelta(minutes=5))
        made_good = [r for r in screen.journaled() if r["spot_id"] == first.spot_id and r["kind"] == "makegood"]
        assert [r["status"] for r in made_good] == ["completed"]
    finally:
        screen.close()
