"""The alert layer's decisions (player/takeover.py) on virtual time: no MQTT, no libVLC, no disk, no clock.

Each turn is asked at an instant the test names; the clock may go anywhere between turns, backward too.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from player import takeover
from player.programme import WATCHDOG_GRACE, Action, Programme
from player.takeover import (
    AlertClip,
    Blank,
    CutItem,
    Ended,
    HeldAlert,
    MissSpot,
    PlayClip,
    ShowTicker,
    Stage,
    Started,
    StopAlert,
    StopClip,
    Ticker,
)
from signage.protocol import AlertOrder
from tests.test_player_programme import at, make_plan

FLOOD = "Cảnh báo: ngập sâu trên đường Nguyễn Trãi, xin tránh khu vực"
HEAT = "Nắng nóng 39°C: uống đủ nước"
STORM = "Bão số 3 đổ bộ chiều nay"
CLIP = "d" * 64


def order(alert_id: str, severity: str, starts: datetime, expires: datetime, *, text: str = FLOOD,
          media: str | None = None, duration_ms: int = 20000) -> AlertOrder:
    entry = {"url": f"/media/{media}", "bytes": 100, "mime": "video/mp4", "duration_ms": duration_ms} if media else None
    return AlertOrder(alert_id=alert_id, severity=severity, kind="media" if media else "text", text=text, media=media,
                      media_entry=entry, starts_at=starts, expires_at=expires)


def held(*orders: AlertOrder, stopped: dict[str, datetime] | None = None) -> tuple[HeldAlert, ...]:
    return tuple(HeldAlert(o, (stopped or {}).get(o.alert_id)) for o in orders)


def nothing_cached(sha: str) -> bool:
    return False


def all_cached(sha: str) -> bool:
    return True


@pytest.fixture
def programme() -> Programme:
    return Programme(make_plan())


def spot_action(programme: Programme, now: datetime) -> Action:
    return programme.next_action(now, {}, all_cached)


def turn_at(stage: Stage, now: datetime, alerts, programme: Programme, *, playing: Action | None = None,
            outcomes=None, cached=nothing_cached) -> takeover.Turn:
    return takeover.take_turn(stage, now, alerts, programme, outcomes or {}, playing, cached)


# -- an urgent alert takes the screen over ------------------------------------------------------------------------

def test_an_urgent_alert_starting_mid_spot_cuts_it_and_shows_its_text_over_black(programme):
    a1 = order("A1", "urgent", at(8, 10, 5), at(8, 12))
    playing = spot_action(programme, at(8, 10))
    turn = turn_at(Stage(), at(8, 10, 5), held(a1), programme, playing=playing)
    # The spot cut is recorded by the cut itself: it is not also missed.
    assert turn.effects == (CutItem("urgent alert A1"), Started(a1, at(8, 10, 5)), Blank())
    assert (turn.stage.urgent, turn.stage.text_up, turn.programme) == (a1, True, False)
    ticker = takeover.ticker_turn(turn.stage, at(8, 10, 5), held(a1), programme)
    assert ticker.effects == (ShowTicker(Ticker(FLOOD, prominent=True)),)


def test_before_its_start_an_urgent_alert_leaves_the_programme_the_screen(programme):
    a1 = order("A1", "urgent", at(9), at(9, 5))
    turn = turn_at(Stage(), at(8, 59, 59), held(a1), programme)
    assert (turn.effects, turn.programme) == ((), True)
    assert takeover.wake_moments(turn.stage, at(8, 59, 59), held(a1), programme) == [at(9)]


def test_a_spot_coming_due_under_a_takeover_is_recorded_missed_and_the_alert_does_not_start_again(programme):
    a1 = order("A1", "urgent", at(8, 39), at(8, 41))
    shown = turn_at(Stage(), at(8, 39), held(a1), programme).stage
    turn = turn_at(shown, at(8, 40), held(a1), programme)
    assert turn.effects == (MissSpot(programme.current_spot(at(8, 40)), "urgent alert A1"),)
    recorded = turn_at(shown, at(8, 40, 1), held(a1), programme, outcomes={"s1": "missed"})
    assert recorded.effects == () and recorded.stage == shown


def test_when_an_urgent_alert_expires_its_showing_ends_and_the_programme_resumes_at_once(programme):
    a1 = order("A1", "urgent", at(8, 5), at(8, 7))
    shown = turn_at(Stage(), at(8, 5), held(a1), programme).stage
    shown = takeover.ticker_turn(shown, at(8, 5), held(a1), programme).stage
    turn = turn_at(shown, at(8, 7), held(a1), programme)
    assert turn.effects == (Ended(a1, at(8, 5), at(8, 7), "completed", None),)
    assert (turn.stage.urgent, turn.stage.showing, turn.programme) == (None, (), True)
    assert takeover.ticker_turn(turn.stage, at(8, 7), held(a1), programme).effects == (ShowTicker(Ticker()),)


def test_an_urgent_alert_takes_the_screen_outside_operating_hours_too(programme):
    n1 = order("N1", "urgent", at(6), at(6, 30))
    turn = turn_at(Stage(), at(6), held(n1), programme)
    assert turn.effects == (Started(n1, at(6)), Blank()) and not turn.programme
    assert takeover.ticker_turn(turn.stage, at(6), held(n1), programme).stage.ticker == Ticker(FLOOD, prominent=True)


# -- two alerts ---------------------------------------------------------------------------------------------------

def test_of_two_urgent_alerts_the_one_that_started_last_has_the_screen_then_the_other_again(programme):
    a1 = order("A1", "urgent", at(8), at(8, 30))
    a2 = order("A2", "urgent", at(8, 5), at(8, 9), text=STORM)
    alerts = held(a1, a2)
    stage = turn_at(Stage(), at(8), alerts, programme).stage
    assert stage.urgent == a1
    turn = turn_at(stage, at(8, 5), alerts, programme)
    assert turn.stage.urgent == a2 and turn.effects == (Started(a2, at(8, 5)), Blank())
    turn = turn_at(turn.stage, at(8, 9), alerts, programme)
    assert turn.stage.urgent == a1 and turn.effects == (Ended(a2, at(8, 5), at(8, 9), "completed", None), Blank())
    assert [showing.order for showing in turn.stage.showing] == [a1]  # A1 shows still: no second start


def test_of_urgent_alerts_starting_together_the_greater_id_has_the_screen():
    alerts = held(*(order(alert_id, "urgent", at(8), at(9)) for alert_id in ("B", "C", "A")))
    assert takeover.urgent_at(alerts, at(8, 30)).alert_id == "C"


def test_the_ticker_joins_the_texts_of_info_alerts_in_order_of_start(programme):
    i2 = order("I2", "info", at(8, 1), at(9), text=STORM)
    i1 = order("I1", "info", at(8), at(9), text=HEAT)
    turn = takeover.ticker_turn(Stage(), at(8, 2), held(i2, i1), programme)
    assert turn.effects == (Started(i1, at(8, 2)), Started(i2, at(8, 2)), ShowTicker(Ticker(f"{HEAT}   •   {STORM}")))


# -- the ticker against a takeover -------------------------------------------------------------------------------

def test_an_info_ticker_runs_over_the_programme_without_cutting_it_but_gives_way_to_a_takeover(programme):
    i1 = order("I1", "info", at(8, 9), at(8, 15), text=HEAT)
    a1 = order("A1", "urgent", at(8, 11), at(8, 12))
    alerts = held(i1, a1)
    turn = turn_at(Stage(), at(8, 10, 10), alerts, programme, playing=spot_action(programme, at(8, 10)))
    assert (turn.effects, turn.programme) == ((), True)
    stage = takeover.ticker_turn(turn.stage, at(8, 10, 10), alerts, programme).stage
    assert stage.ticker == Ticker(HEAT)
    stage = turn_at(stage, at(8, 11), alerts, programme).stage
    over = takeover.ticker_turn(stage, at(8, 11), alerts, programme)
    assert over.effects == (ShowTicker(Ticker(FLOOD, prominent=True)),)
    stage = turn_at(over.stage, at(8, 12), alerts, programme).stage
    back = takeover.ticker_turn(stage, at(8, 12), alerts, programme)
    assert back.effects == (ShowTicker(Ticker(HEAT)),)  # I1 showed throughout: no second start


def test_the_ticker_shows_only_inside_operating_hours(programme):
    i1 = order("I1", "info", at(6), at(7, 30), text=HEAT)
    closed = takeover.ticker_turn(Stage(), at(6, 59, 59), held(i1), programme)
    assert closed.effects == ()
    assert at(7) in takeover.wake_moments(closed.stage, at(6, 59, 59), held(i1), programme)
    assert takeover.ticker_turn(closed.stage, at(7), held(i1), programme).effects == (
        Started(i1, at(7)), ShowTicker(Ticker(HEAT)))


# -- cancel ------------------------------------------------------------------------------------------------------

def test_an_alert_stopped_by_its_issuer_ends_early_and_gives_the_screen_back(programme):
    a1 = order("A1", "urgent", at(8, 20), at(9))
    stage = turn_at(Stage(), at(8, 20), held(a1), programme).stage
    stopped = takeover.end_showings(stage, [a1], at(8, 21), "completed", "stopped by the issuer")
    assert stopped.effects == (Ended(a1, at(8, 20), at(8, 21), "completed", "stopped by the issuer"),)
    turn = turn_at(stopped.stage, at(8, 21), held(a1, stopped={"A1": at(8, 21)}), programme)
    assert (turn.stage.urgent, turn.programme, turn.effects) == (None, True, ())
    assert takeover.next_change(held(a1, stopped={"A1": at(8, 21)}), at(8, 21)) is None


def test_ending_an_alert_that_never_showed_records_nothing():
    a1 = order("A1", "urgent", at(9), at(9, 5))
    assert takeover.end_showings(Stage(), [a1], at(8), "completed", "stopped by the issuer").effects == ()


# -- clips --------------------------------------------------------------------------------------------------------

def test_an_urgent_clip_once_cached_plays_again_and_again_until_expiry(programme):
    m1 = order("M1", "urgent", at(8, 5), at(8, 6), media=CLIP)
    stage = turn_at(Stage(), at(8, 5), held(m1), programme).stage
    stage = takeover.ticker_turn(stage, at(8, 5), held(m1), programme).stage
    assert stage.text_up and stage.ticker == Ticker(FLOOD, prominent=True)
    turn = turn_at(stage, at(8, 5, 10), held(m1), programme, cached=all_cached)
    clip = AlertClip(m1, at(8, 6), at(8, 5, 30) + WATCHDOG_GRACE)
    assert turn.effects == (PlayClip(clip),) and not turn.stage.text_up
    assert takeover.ticker_turn(turn.stage, at(8, 5, 10), held(m1), programme).effects == (ShowTicker(Ticker()),)
    ended = takeover.clip_over(turn.stage, at(8, 5, 30), None)
    assert ended.effects == () and ended.stage.clip is None
    again = turn_at(ended.stage, at(8, 5, 30), held(m1), programme, cached=all_cached)
    assert again.effects == (PlayClip(AlertClip(m1, at(8, 6), at(8, 5, 50) + WATCHDOG_GRACE)),)


def test_an_urgent_clip_whose_end_never_comes_is_cut_by_the_watchdog_and_started_again(programme):
    m1 = order("M1", "urgent", at(8, 5), at(8, 15), media=CLIP)
    stage = turn_at(Stage(), at(8, 5), held(m1), programme, cached=all_cached).stage
    overdue = stage.clip.deadline
    assert min(stage.clip.until, overdue) in takeover.wake_moments(stage, at(8, 5), held(m1), programme)
    turn = turn_at(stage, overdue, held(m1), programme, cached=all_cached)
    assert turn.effects == (StopClip(), PlayClip(AlertClip(m1, at(8, 15), overdue + timedelta(seconds=20)
                                                           + WATCHDOG_GRACE)))


def test_an_urgent_clip_that_cannot_play_gives_way_to_the_alerts_text(programme):
    m1 = order("M1", "urgent", at(8), at(8, 15), media=CLIP)
    stage = turn_at(Stage(), at(8), held(m1), programme, cached=all_cached).stage
    failed = takeover.clip_over(stage, at(8), "libVLC found no picture")
    assert failed.effects == () and failed.stage.unplayable == {"M1"}
    turn = turn_at(failed.stage, at(8), held(m1), programme, cached=all_cached)
    assert turn.effects == (Blank(),) and turn.stage.text_up


def test_an_info_clip_fills_a_gap_until_the_next_spot_then_the_programme_has_the_screen(programme):
    m1 = order("M1", "info", at(8), at(8, 30), media=CLIP, duration_ms=600_000)
    assert takeover.fill_gap(Stage(), at(8, 5), held(m1), programme, nothing_cached) is None
    gap = takeover.fill_gap(Stage(), at(8, 5), held(m1), programme, all_cached)
    assert gap.effects == (Started(m1, at(8, 5)), PlayClip(AlertClip(m1, at(8, 10), at(8, 15) + WATCHDOG_GRACE)))
    assert turn_at(gap.stage, at(8, 9), held(m1), programme).programme is False
    turn = turn_at(gap.stage, at(8, 10), held(m1), programme)
    assert (turn.effects, turn.programme) == ((StopClip(),), True)


def test_an_info_clip_that_cannot_play_is_over_on_this_screen(programme):
    m1 = order("M1", "info", at(8), at(8, 30), media=CLIP)
    stage = takeover.fill_gap(Stage(), at(8), held(m1), programme, all_cached).stage
    failed = takeover.clip_over(stage, at(8, 0, 1), "libVLC found no picture")
    assert failed.effects == (StopAlert("M1"), Ended(m1, at(8), at(8, 0, 1), "failed",
                                                     "playback error: libVLC found no picture"))


# -- text read aloud (a loudspeaker's) ----------------------------------------------------------------------------

def spoken(alert_id: str, severity: str, starts: datetime, expires: datetime) -> AlertOrder:
    """A text alert as a loudspeaker gets it: its text read aloud in `media` (media/speech.py)."""
    return AlertOrder(alert_id=alert_id, severity=severity, kind="text", text=FLOOD, media=CLIP,
                      media_entry={"url": f"/media/{CLIP}", "bytes": 100, "mime": "audio/ogg", "duration_ms": 4000},
                      starts_at=starts, expires_at=expires)


def test_an_info_text_read_aloud_plays_in_the_gaps_and_never_as_a_ticker(programme):
    s1 = spoken("S1", "info", at(8), at(8, 30))
    assert takeover.ticker_alerts(held(s1), at(8, 5)) == []
    assert takeover.ticker_turn(Stage(), at(8, 5), held(s1), programme).effects == ()
    gap = takeover.fill_gap(Stage(), at(8, 5), held(s1), programme, all_cached)
    assert gap.effects == (Started(s1, at(8, 5)), PlayClip(AlertClip(s1, at(8, 10), at(8, 5, 4) + WATCHDOG_GRACE)))


def test_an_urgent_text_read_aloud_takes_over_and_plays_its_audio_again_and_again(programme):
    s1 = spoken("S1", "urgent", at(8, 5), at(8, 6))
    turn = turn_at(Stage(), at(8, 5), held(s1), programme, cached=all_cached)
    assert turn.effects == (Started(s1, at(8, 5)), PlayClip(AlertClip(s1, at(8, 6), at(8, 5, 4) + WATCHDOG_GRACE)))
    again = turn_at(takeover.clip_over(turn.stage, at(8, 5, 4), None).stage, at(8, 5, 4), held(s1), programme,
                    cached=all_cached)
    assert again.effects == (PlayClip(AlertClip(s1, at(8, 6), at(8, 5, 8) + WATCHDOG_GRACE)),)
    assert takeover.alert_now_playing(s1)["media"] == CLIP  # proof-of-play names the audio


# -- the clock jumps ----------------------------------------------------------------------------------------------

def test_a_clock_set_back_before_the_alert_gives_the_programme_the_screen_and_the_alert_resumes_later(programme):
    a1 = order("A1", "urgent", at(8, 5), at(8, 7))
    stage = turn_at(Stage(), at(8, 5), held(a1), programme).stage
    back = turn_at(stage, at(7, 50), held(a1), programme)
    assert (back.effects, back.programme, back.stage.urgent) == ((), True, None)
    again = turn_at(back.stage, at(8, 5, 30), held(a1), programme)
    assert again.effects == (Blank(),)  # it showed already (since 8:05): no second start
    over = turn_at(again.stage, at(8, 7), held(a1), programme)
    assert over.effects == (Ended(a1, at(8, 5), at(8, 7), "completed", None),)


def test_a_clock_set_forward_past_the_expiry_ends_the_showing_at_the_new_time(programme):
    a1 = order("A1", "urgent", at(8, 5), at(8, 7))
    stage = turn_at(Stage(), at(8, 5), held(a1), programme).stage
    turn = turn_at(stage, at(9), held(a1), programme)
    assert turn.effects == (Ended(a1, at(8, 5), at(9), "completed", None),) and turn.programme


# -- the book's questions -----------------------------------------------------------------------------------------

def test_the_next_change_is_when_an_alert_not_stopped_starts_or_expires():
    alerts = held(order("A1", "info", at(9), at(10), text=HEAT), order("A2", "urgent", at(8), at(8, 30)))
    assert [takeover.next_change(alerts, moment) for moment in (at(7), at(8), at(8, 30), at(9), at(10))] == [
        at(8), at(8, 30), at(9), at(10), None]
    assert takeover.next_change(held(alerts[0].order, stopped={"A1": at(8)}), at(8, 30)) is None
