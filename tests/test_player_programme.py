"""The player's programme on virtual time: spots at their times, make-goods, filler, blank outside hours."""

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from player.programme import Programme, play_status
from signage.protocol import Plan, plan_version

HANOI = ZoneInfo("Asia/Ho_Chi_Minh")
CLIP, POSTER, LOOP = "a" * 64, "b" * 64, "c" * 64


def at(hour: int, minute: int = 0, second: int = 0, day: int = 20) -> datetime:
    return datetime(2024, 8, day, hour, minute, second, tzinfo=HANOI)


def make_plan(spots=((8, 10), (8, 40), (10, 59)), filler=(LOOP,)) -> Plan:
    body = {
        "schema": "signage.plan/1", "player_id": "hn-test-001", "generated_at": "2024-08-19T17:05:00Z",
        "timezone": "Asia/Ho_Chi_Minh", "valid_from": at(0).isoformat(), "valid_until": at(0, day=21).isoformat(),
        "operating_hours": [{"start": at(7).isoformat(), "end": at(17).isoformat()}],
        "peak_windows": [{"start": at(8).isoformat(), "end": at(11).isoformat()}],
        "filler": list(filler),
        "spots": [{"spot_id": f"s{i}", "campaign_id": "ihanoi-2024", "media": CLIP, "start": at(h, m).isoformat(),
                   "duration_ms": 30000} for i, (h, m) in enumerate(spots)],
        "media": {sha: {"url": f"/media/{sha}", "bytes": 100, "mime": "video/mp4", "duration_ms": ms}
                  for sha, ms in ((CLIP, 30000), (POSTER, 15000), (LOOP, 10000))},
    }
    body["version"] = plan_version(body)
    return Plan.model_validate(body)


def everything_cached(sha: str) -> bool:
    return True


@pytest.fixture
def programme() -> Programme:
    return Programme(make_plan())


def test_outside_operating_hours_the_screen_is_blank_until_it_opens(programme):
    action = programme.next_action(at(6, 30), {}, everything_cached)
    assert (action.kind, action.until) == ("blank", at(7))


def test_a_spot_plays_at_its_time(programme):
    action = programme.next_action(at(8, 10), {}, everything_cached)
    assert (action.kind, action.spot.spot_id, action.start_offset_ms, action.until) == ("spot", "s0", 0, at(8, 10, 30))


def test_a_spot_is_joined_at_the_right_offset_when_the_player_starts_late(programme):
    action = programme.next_action(at(8, 10, 12), {}, everything_cached)
    assert (action.kind, action.start_offset_ms) == ("spot", 12000)


def test_a_spot_with_under_two_seconds_left_is_missed_not_flashed(programme):
    action = programme.next_action(at(8, 10, 29), {}, everything_cached)
    assert (action.kind, action.reason) == ("miss", "too late to join")


def test_a_spot_whose_media_is_not_cached_is_missed_with_that_reason(programme):
    action = programme.next_action(at(8, 10), {}, lambda sha: sha != CLIP)
    assert (action.kind, action.spot.spot_id, action.reason) == ("miss", "s0", "media not cached")


def test_filler_plays_between_spots_and_is_cut_at_the_next_spot(programme):
    action = programme.next_action(at(8, 9, 55), {}, everything_cached)
    assert (action.kind, action.media, action.until) == ("filler", LOOP, at(8, 10))


def test_a_missed_spot_is_made_good_at_the_next_free_moment_in_the_same_peak(programme):
    action = programme.next_action(at(8, 20), {"s0": "missed"}, everything_cached)
    assert (action.kind, action.spot.spot_id) == ("makegood", "s0")


def test_a_spot_that_passed_while_the_player_was_down_is_owed_too(programme):
    action = programme.next_action(at(8, 20), {}, everything_cached)
    assert (action.kind, action.spot.spot_id) == ("makegood", "s0")


def test_a_make_good_never_runs_into_the_next_spot(programme):
    # 29 seconds before s1 (08:40) there is no room for a 30-second make-good: filler instead.
    action = programme.next_action(at(8, 39, 31), {"s0": "missed"}, everything_cached)
    assert action.kind == "filler" and action.until == at(8, 39, 41)


def test_make_goods_stay_inside_the_peak_windows_of_the_same_day(programme):
    assert programme.next_action(at(11, 30), {"s0": "missed"}, everything_cached).kind == "filler"
    tomorrow = Programme(make_plan())
    outcomes = {"s0": "missed"}
    assert all(s.spot_id != "s0" for s in tomorrow.owed_makegoods(at(8, 30, day=21), outcomes))


def test_a_spot_already_completed_or_made_good_is_not_played_again(programme):
    assert programme.next_action(at(8, 10, 5), {"s0": "completed"}, everything_cached).kind == "filler"
    assert programme.next_action(at(8, 20), {"s0": "made_good"}, everything_cached).kind == "filler"


def test_filler_rotates_through_the_house_loop_and_skips_what_is_not_cached():
    programme = Programme(make_plan(filler=(LOOP, POSTER)))
    first = programme.next_action(at(9), {"s0": "completed", "s1": "completed"}, everything_cached)
    second = programme.next_action(at(9, 0, 10), {"s0": "completed", "s1": "completed"}, everything_cached)
    third = programme.next_action(at(9, 0, 25), {"s0": "completed", "s1": "completed"}, lambda sha: sha != LOOP)
    assert [first.media, second.media, third.media] == [LOOP, POSTER, POSTER]


def test_with_nothing_cached_the_player_waits_for_the_next_boundary(programme):
    action = programme.next_action(at(9), {"s0": "completed", "s1": "completed"}, lambda sha: False)
    assert (action.kind, action.until) == ("wait", at(10, 59))


def test_the_local_date_is_the_plans_zone(programme):
    assert programme.local_date(datetime(2024, 8, 20, 17, 30, tzinfo=ZoneInfo("UTC"))) == date(2024, 8, 21)


def test_a_play_is_completed_when_it_ran_to_its_end_within_500_ms():
    start = at(8, 10)
    assert play_status(start, start + timedelta(milliseconds=29600), 30000) == "completed"
    assert play_status(start, start + timedelta(milliseconds=29400), 30000) == "interrupted"


def test_a_spot_started_a_little_after_its_time_plays_whole(programme):
    action = programme.next_action(at(8, 10) + timedelta(milliseconds=300), {}, everything_cached)
    assert (action.kind, action.start_offset_ms) == ("spot", 0)
