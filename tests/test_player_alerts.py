"""Alerts on the player (issue 8), on virtual time with the timed playback backend (no broker needed).

The agent's loop is driven turn by turn as its own loop does: each event on its queue is handed to `step`, and
when none is waiting the virtual clock jumps to the moment the loop would wake (or a timed item ends).
Commands arrive signed, on the agent's queue, the way paho's thread hands them over.
"""

from __future__ import annotations

import itertools
import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from player.agent import PlayerAgent
from player.alerts import AlertBook
from player.cache import SyncReport
from player.playback import TimedPlayback
from signage.clock import VirtualClock
from signage.player_config import PlayerConfig
from signage.protocol import AlertOrder, canonical_json, format_utc_instant, player_topic, text_sha256
from signage.signing import Signer, public_key_text
from tests.test_player_programme import CLIP, LOOP, POSTER, at, make_plan
from tests.virtual_agent import drain, run_agent_until

PLAYER = "hn-test-001"
ALERT_CLIP = "d" * 64
FLOOD = "Cảnh báo: ngập sâu trên đường Nguyễn Trãi, xin tránh khu vực"
HEAT = "Nắng nóng 39°C: uống đủ nước"
STORM = "Bão số 3 đổ bộ chiều nay"
_reads = itertools.count()


def alert(alert_id: str, severity: str, starts: datetime, expires: datetime, *, text: str = FLOOD,
          media: str | None = None, duration_ms: int = 20000) -> dict:
    """The args of an alert_start command."""
    entry = {"url": f"/media/{media}", "bytes": 100, "mime": "video/mp4", "duration_ms": duration_ms} if media else None
    return AlertOrder(alert_id=alert_id, severity=severity, kind="media" if media else "text", text=text, media=media,
                      media_entry=entry, starts_at=starts, expires_at=expires).model_dump(mode="json")


class Screen:
    """One player agent on a virtual clock, its plan signed and saved, its plan's media in the cache."""

    def __init__(self, tmp_path: Path, now: datetime, *, cache_budget_bytes: int = 1 << 30) -> None:
        self.cache_budget_bytes = cache_budget_bytes
        self.signer = Signer.load_or_create(tmp_path / "server")
        self.data = tmp_path / "player"
        self.data.mkdir()
        (self.data / "plan.json").write_bytes(self.signer.envelope_json(canonical_json(make_plan())))
        for sha in (CLIP, POSTER, LOOP):
            self.cache_file(sha)
        self.clock = VirtualClock(now)
        self.agent = self._start()

    def _start(self) -> PlayerAgent:
        config = PlayerConfig(player_id=PLAYER, broker_port=9, username="u", password="p",
                              server_url="http://127.0.0.1:9", public_keys=[public_key_text(self.signer.public_key)],
                              data_dir=str(self.data), headless=True)
        agent = PlayerAgent(config, self.clock, lambda post: TimedPlayback(post, clock=self.clock),
                            cache_budget_bytes=self.cache_budget_bytes)
        agent.step("start")
        return agent

    def restart(self) -> None:
        self.agent.close()
        self.agent = self._start()

    @property
    def playback(self) -> TimedPlayback:
        return self.agent.playback

    def cache_file(self, sha: str) -> None:
        """Put a file in the media cache where a finished download lands."""
        path = self.data / "media" / sha[:2] / sha
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"media")

    def command(self, name: str, args: dict) -> None:
        now = self.clock.now()
        body = {"schema": "signage.command/1", "command_id": uuid.uuid4().hex, "player_id": PLAYER, "name": name,
                "issued_at": format_utc_instant(now), "expires_at": format_utc_instant(now + timedelta(hours=1)),
                "args": args}
        self.agent.events.put(("mqtt", (player_topic(PLAYER, "cmd"), canonical_json(self.signer.sign(body)))))
        self.drain()

    def drain(self) -> None:
        drain(self.agent)

    def run_until(self, end: datetime) -> None:
        """Run the loop on virtual time up to `end`, waking when the loop would and when a timed item ends."""
        run_agent_until(self.agent, self.playback, self.clock, end, max_turns=50_000)

    def records(self) -> list[dict]:
        """Every record the journal holds, oldest first (read as one batch at a far-off moment, so each call
        sees them all again)."""
        reading = datetime(2100, 1, 1, tzinfo=UTC) + timedelta(seconds=next(_reads))
        batch = self.agent.journal.take_batch(reading, 5000, timedelta(microseconds=1))
        return batch[1] if batch else []

    def alert_records(self, alert_id: str) -> list[dict]:
        return [r for r in self.records() if r["kind"] == "alert" and r["spot_id"] == alert_id]

    def spot_records(self, spot_id: str) -> list[dict]:
        return [r for r in self.records() if r["kind"] in ("spot", "makegood") and r["spot_id"] == spot_id]


def instant(record: dict, field: str) -> datetime:
    return datetime.fromisoformat(record[field])


@pytest.fixture
def screen(tmp_path) -> Screen:
    made = Screen(tmp_path, at(8))
    yield made
    made.agent.close()


# ---------------------------------------------------------------------------------------------------------
# Urgent alerts take the screen over


def test_an_urgent_text_alert_cuts_the_playing_spot_which_is_recorded_interrupted(screen):
    screen.run_until(at(8, 10, 5))
    assert screen.agent.state.now_playing["spot_id"] == "s0"
    screen.command("alert_start", alert("A1", "urgent", at(8, 10, 5), at(8, 12)))
    [cut] = screen.spot_records("s0")
    assert (cut["status"], cut["reason"], instant(cut, "ended_at")) == ("interrupted", "urgent alert A1", at(8, 10, 5))


def test_an_urgent_text_alert_shows_its_text_large_over_black(screen):
    screen.run_until(at(8, 5))
    screen.command("alert_start", alert("A1", "urgent", at(8, 5), at(8, 12)))
    assert screen.playback.blanked and screen.playback.now_playing is None
    assert (screen.playback.ticker, screen.playback.ticker_prominent) == (FLOOD, True)
    assert screen.agent.state.now_playing == {"kind": "alert", "alert_id": "A1", "media": text_sha256(FLOOD)}


def test_an_urgent_alert_shows_for_its_time_with_a_started_and_a_completed_record(screen):
    screen.run_until(at(8, 5))
    screen.command("alert_start", alert("A1", "urgent", at(8, 5), at(8, 7)))
    screen.run_until(at(8, 8))
    started, ended = screen.alert_records("A1")
    assert (started["status"], instant(started, "started_at"), instant(started, "ended_at")) == (
        "started", at(8, 5), at(8, 5))
    assert (ended["status"], ended["reason"], instant(ended, "started_at"), instant(ended, "ended_at"),
            ended["duration_ms"]) == ("completed", None, at(8, 5), at(8, 7), 120000)
    assert all(r["campaign_id"] is None and r["media"] == text_sha256(FLOOD)
               and instant(r, "scheduled_start") == at(8, 5) for r in (started, ended))


def test_when_an_urgent_alert_expires_the_programme_resumes_at_once(screen):
    screen.run_until(at(8, 5))
    screen.command("alert_start", alert("A1", "urgent", at(8, 5), at(8, 7)))
    screen.run_until(at(8, 7))
    assert screen.agent.state.now_playing["kind"] == "filler"
    assert screen.playback.ends_at == at(8, 7, 10)  # the 10-second filler started at the expiry
    assert screen.playback.ticker is None and not screen.playback.blanked


def test_a_spot_cut_by_an_urgent_alert_is_made_good_after_it_inside_the_peak(screen):
    screen.run_until(at(8, 10, 5))
    screen.command("alert_start", alert("A1", "urgent", at(8, 10, 5), at(8, 12)))
    screen.run_until(at(8, 20))
    made_good = [r for r in screen.spot_records("s0") if r["kind"] == "makegood"]
    assert [r["status"] for r in made_good] == ["completed"]
    assert at(8, 12) <= instant(made_good[0], "started_at") < at(8, 13)


def test_a_spot_due_during_a_takeover_is_missed_and_made_good_after_it(screen):
    screen.run_until(at(8, 39))
    screen.command("alert_start", alert("A1", "urgent", at(8, 39), at(8, 41)))
    screen.run_until(at(9))
    missed, made_good = screen.spot_records("s1")
    assert (missed["kind"], missed["status"], missed["reason"], instant(missed, "started_at")) == (
        "spot", "missed", "urgent alert A1", at(8, 40))
    assert (made_good["kind"], made_good["status"]) == ("makegood", "completed")
    assert at(8, 41) <= instant(made_good, "started_at") < at(8, 42)


def test_an_urgent_alert_takes_the_screen_over_outside_operating_hours_too(tmp_path):
    screen = Screen(tmp_path, at(6))
    screen.command("alert_start", alert("N1", "urgent", at(6), at(6, 30)))
    assert (screen.playback.ticker, screen.playback.ticker_prominent) == (FLOOD, True)
    screen.run_until(at(6, 31))
    assert [r["status"] for r in screen.alert_records("N1")] == ["started", "completed"]
    assert screen.playback.blanked and screen.playback.ticker is None
    screen.agent.close()


def test_of_two_urgent_alerts_the_one_that_started_last_has_the_screen(screen):
    screen.command("alert_start", alert("A1", "urgent", at(8), at(8, 30)))
    screen.command("alert_start", alert("A2", "urgent", at(8, 5), at(8, 10), text=STORM))
    screen.run_until(at(8, 6))
    assert screen.playback.ticker == STORM
    screen.run_until(at(8, 11))
    assert screen.playback.ticker == FLOOD
    assert [r["status"] for r in screen.alert_records("A2")] == ["started", "completed"]
    assert [r["status"] for r in screen.alert_records("A1")] == ["started"]


# ---------------------------------------------------------------------------------------------------------
# Delivery: expired, future, stopped, repeated, invalid


def test_an_alert_whose_expiry_passed_before_it_arrived_is_never_shown(screen):
    screen.run_until(at(8, 5))
    screen.command("alert_start", alert("OLD", "urgent", at(7), at(8, 4, 59)))
    screen.run_until(at(8, 6))
    assert screen.alert_records("OLD") == []
    assert screen.agent.status().alerts == [] and screen.playback.ticker is None
    assert screen.agent.state.now_playing["kind"] == "filler"


def test_an_alert_that_arrives_after_its_start_shows_for_the_time_it_has_left(screen):
    # A player back online at 08:05 gets, from its broker session, an alert that started at 08:00.
    screen.run_until(at(8, 5))
    screen.command("alert_start", alert("LATE", "urgent", at(8), at(8, 10)))
    screen.run_until(at(8, 12))
    started, ended = screen.alert_records("LATE")
    assert (started["status"], instant(started, "started_at")) == ("started", at(8, 5))
    assert (ended["status"], instant(ended, "started_at"), instant(ended, "ended_at")) == (
        "completed", at(8, 5), at(8, 10))
    assert ended["duration_ms"] == 5 * 60 * 1000


def test_a_future_alert_is_held_and_shows_at_its_start(screen):
    screen.command("alert_start", alert("A1", "urgent", at(9), at(9, 5)))
    screen.run_until(at(8, 59, 59))
    assert screen.alert_records("A1") == [] and screen.playback.ticker is None
    screen.run_until(at(9, 0, 1))
    [started] = screen.alert_records("A1")
    assert instant(started, "started_at") == at(9)
    assert screen.playback.ticker == FLOOD


def test_alert_stop_ends_the_alert_early_as_stopped_by_the_issuer(screen):
    screen.command("alert_start", alert("A1", "urgent", at(8, 20), at(9)))
    screen.run_until(at(8, 21))
    screen.command("alert_stop", {"alert_id": "A1"})
    _, ended = screen.alert_records("A1")
    assert (ended["status"], ended["reason"], instant(ended, "ended_at"), ended["duration_ms"]) == (
        "completed", "stopped by the issuer", at(8, 21), 60000)
    assert screen.playback.ticker is None and screen.agent.state.now_playing["kind"] == "filler"


def test_a_start_sent_again_after_a_stop_is_ignored(screen):
    order = alert("A1", "urgent", at(8, 20), at(9))
    screen.command("alert_start", order)
    screen.run_until(at(8, 21))
    screen.command("alert_stop", {"alert_id": "A1"})
    screen.command("alert_start", order)
    screen.run_until(at(8, 22))
    assert [r["status"] for r in screen.alert_records("A1")] == ["started", "completed"]
    assert screen.playback.ticker is None and screen.agent.status().alerts == []


def test_a_start_sent_again_while_the_alert_shows_changes_nothing(screen):
    order = alert("A1", "urgent", at(8, 20), at(9))
    screen.command("alert_start", order)
    screen.run_until(at(8, 21))
    screen.command("alert_start", order)
    screen.run_until(at(9, 1))
    assert [r["status"] for r in screen.alert_records("A1")] == ["started", "completed"]


def test_a_status_goes_out_the_moment_an_alert_starts_and_ends(screen):
    screen.command("alert_start", alert("A1", "urgent", at(8, 20, 7), at(8, 21, 13)))
    screen.run_until(at(8, 20, 7))
    assert screen.agent.status_timer.last_sent == at(8, 20, 7)
    screen.run_until(at(8, 21, 13))
    assert screen.agent.status_timer.last_sent == at(8, 21, 13)


def test_an_invalid_alert_order_is_refused_with_the_reason(screen):
    order = alert("A1", "urgent", at(8, 20), at(9))
    order["severity"] = "loud"
    screen.command("alert_start", order)
    assert "alert_start" in screen.agent.state.refused and "severity" in screen.agent.state.refused
    assert screen.agent.status().alerts == [] and not (screen.data / "alerts.json").exists()


def test_the_status_lists_the_held_alerts_not_over(screen):
    screen.command("alert_start", alert("A1", "urgent", at(8, 5), at(8, 10)))
    screen.command("alert_start", alert("I1", "info", at(8), at(9), text=HEAT))
    screen.command("alert_start", alert("LATER", "info", at(10), at(11), text=STORM))
    screen.run_until(at(8, 6))
    status = screen.agent.status()
    assert status.alerts == ["I1", "A1", "LATER"]
    assert status.now_playing == {"kind": "alert", "alert_id": "A1", "media": text_sha256(FLOOD)}
    screen.run_until(at(8, 11))
    assert screen.agent.status().alerts == ["I1", "LATER"]


# ---------------------------------------------------------------------------------------------------------
# Info alerts


def test_an_info_text_alert_runs_as_a_ticker_over_the_spot_without_cutting_it(screen):
    screen.command("alert_start", alert("I1", "info", at(8, 9), at(8, 15), text=HEAT))
    screen.run_until(at(8, 10, 10))
    assert (screen.playback.ticker, screen.playback.ticker_prominent) == (HEAT, False)
    assert screen.agent.state.now_playing["spot_id"] == "s0"
    screen.run_until(at(8, 15, 1))
    assert [r["status"] for r in screen.spot_records("s0")] == ["completed"]
    assert screen.playback.ticker is None
    assert [(r["status"], instant(r, "started_at"), instant(r, "ended_at")) for r in screen.alert_records("I1")] == [
        ("started", at(8, 9), at(8, 9)), ("completed", at(8, 9), at(8, 15))]


def test_the_ticker_shows_only_inside_operating_hours(tmp_path):
    screen = Screen(tmp_path, at(6))
    screen.command("alert_start", alert("I1", "info", at(6), at(7, 30), text=HEAT))
    screen.run_until(at(6, 59, 59))
    assert screen.playback.now_playing is None and screen.playback.ticker is None
    assert screen.alert_records("I1") == []
    screen.run_until(at(7, 0, 1))
    assert screen.playback.ticker == HEAT
    assert [instant(r, "started_at") for r in screen.alert_records("I1")] == [at(7)]
    screen.agent.close()


def test_the_ticker_joins_the_texts_of_info_alerts_in_order_of_start(screen):
    screen.command("alert_start", alert("I2", "info", at(8, 1), at(9), text=STORM))
    screen.command("alert_start", alert("I1", "info", at(8), at(9), text=HEAT))
    screen.run_until(at(8, 2))
    assert screen.playback.ticker == f"{HEAT}   •   {STORM}"


def test_an_info_media_alert_plays_in_the_gaps_instead_of_filler(screen):
    screen.cache_file(ALERT_CLIP)
    screen.command("alert_start", alert("M1", "info", at(8), at(8, 30), media=ALERT_CLIP))
    screen.run_until(at(8, 5))
    assert screen.agent.state.now_playing == {"kind": "alert", "alert_id": "M1", "media": ALERT_CLIP}
    screen.run_until(at(8, 31))
    [s0] = screen.spot_records("s0")
    assert (s0["status"], instant(s0, "started_at")) == ("completed", at(8, 10))
    # The filler on when the alert came plays to its end; every gap after that plays the alert's clip.
    assert [instant(r, "started_at") for r in screen.records() if r["kind"] == "filler"
            and instant(r, "started_at") < at(8, 30)] == [at(8)]
    assert [r["status"] for r in screen.alert_records("M1")] == ["started", "completed"]
    assert screen.agent.state.now_playing["kind"] == "filler"


def test_an_info_media_alert_whose_clip_cannot_play_is_recorded_failed_and_filler_returns(screen):
    screen.cache_file(ALERT_CLIP)
    screen.playback.fail_next("libVLC found no picture")
    screen.command("alert_start", alert("M1", "info", at(8), at(8, 30), media=ALERT_CLIP))
    screen.run_until(at(8, 1))
    _, failed = screen.alert_records("M1")
    assert (failed["status"], failed["reason"]) == ("failed", "playback error: libVLC found no picture")
    assert screen.agent.state.now_playing["kind"] == "filler" and screen.agent.status().alerts == []


# ---------------------------------------------------------------------------------------------------------
# Urgent media alerts and the cache


def test_an_urgent_media_alert_whose_file_is_not_cached_shows_its_text_prominently(screen):
    screen.command("alert_start", alert("M1", "urgent", at(8, 5), at(8, 15), media=ALERT_CLIP))
    screen.run_until(at(8, 5, 1))
    assert screen.playback.blanked and (screen.playback.ticker, screen.playback.ticker_prominent) == (FLOOD, True)
    assert screen.agent.state.now_playing == {"kind": "alert", "alert_id": "M1", "media": ALERT_CLIP}


def test_a_media_alert_asks_the_cache_for_its_clip_at_once(screen):
    screen.command("alert_start", alert("M1", "urgent", at(8, 5), at(8, 15), media=ALERT_CLIP))
    assert screen.agent.media_sync.wanted.is_set()
    assert screen.agent.status().cache.missing == 1  # the alert's clip, on top of the plan's cached media


def test_the_cache_keeps_a_held_alerts_clip_and_lets_it_go_once_the_alert_is_stopped(tmp_path):
    screen = Screen(tmp_path, at(8), cache_budget_bytes=0)  # over budget: all that is not needed goes
    unneeded = "e" * 64
    for sha in (ALERT_CLIP, unneeded):
        screen.cache_file(sha)
    screen.command("alert_start", alert("M1", "info", at(9), at(9, 30), media=ALERT_CLIP))
    screen.agent.cache_pass()
    assert screen.agent.cache.path_for(ALERT_CLIP) is not None and screen.agent.cache.path_for(unneeded) is None
    screen.command("alert_stop", {"alert_id": "M1"})
    screen.agent.cache_pass()
    assert screen.agent.cache.path_for(ALERT_CLIP) is None and screen.agent.cache.path_for(CLIP) is not None
    screen.agent.close()


def test_once_the_cache_has_the_clip_the_takeover_plays_it_again_and_again_until_expiry(screen):
    screen.command("alert_start", alert("M1", "urgent", at(8, 5), at(8, 6), media=ALERT_CLIP))
    screen.run_until(at(8, 5, 10))
    screen.cache_file(ALERT_CLIP)
    screen.agent.events.put(("cache", SyncReport(downloaded=[ALERT_CLIP])))
    screen.drain()
    assert screen.playback.now_playing is not None and not screen.playback.blanked
    assert screen.playback.ticker is None
    first = screen.playback.now_playing
    screen.run_until(at(8, 5, 31))  # the 20-second clip ended at 8:05:30 and started again
    assert screen.playback.now_playing not in (None, first)
    screen.run_until(at(8, 6, 1))
    assert screen.agent.state.now_playing["kind"] == "filler"
    assert [r["status"] for r in screen.alert_records("M1")] == ["started", "completed"]


def test_an_urgent_clip_that_cannot_play_gives_way_to_the_alerts_text(screen):
    screen.cache_file(ALERT_CLIP)
    screen.playback.fail_next("libVLC found no picture")
    screen.command("alert_start", alert("M1", "urgent", at(8), at(8, 15), media=ALERT_CLIP))
    screen.run_until(at(8, 0, 1))
    assert screen.playback.blanked and (screen.playback.ticker, screen.playback.ticker_prominent) == (FLOOD, True)
    assert [r["status"] for r in screen.alert_records("M1")] == ["started"]


# ---------------------------------------------------------------------------------------------------------
# The alert book on disk


def test_an_alert_shows_again_after_the_agent_restarts_with_a_new_started_record(screen):
    screen.command("alert_start", alert("A1", "urgent", at(8, 5), at(8, 15)))
    screen.run_until(at(8, 6))
    screen.restart()
    assert screen.playback.ticker == FLOOD and screen.playback.blanked
    screen.run_until(at(8, 16))
    assert [(r["status"], r["reason"], instant(r, "started_at")) for r in screen.alert_records("A1")] == [
        ("started", None, at(8, 5)), ("interrupted", "the player stopped", at(8, 5)),
        ("started", None, at(8, 6)), ("completed", None, at(8, 6))]


def test_a_saved_alert_past_its_expiry_is_dropped_when_the_agent_starts(screen):
    screen.command("alert_start", alert("A1", "urgent", at(8, 5), at(8, 15)))
    screen.command("alert_start", alert("A2", "info", at(8, 5), at(9), text=HEAT))
    screen.agent.close()
    screen.clock.set(at(8, 20))
    screen.agent = screen._start()
    assert screen.agent.status().alerts == ["A2"]
    saved = json.loads((screen.data / "alerts.json").read_text(encoding="utf-8"))
    assert [entry["order"]["alert_id"] for entry in saved["alerts"]] == ["A2"]


def test_a_stopped_alert_stays_stopped_across_a_restart(screen):
    order = alert("A1", "urgent", at(8, 5), at(8, 15))
    screen.command("alert_start", order)
    screen.command("alert_stop", {"alert_id": "A1"})
    screen.restart()
    screen.command("alert_start", order)
    screen.run_until(at(8, 6))
    assert screen.alert_records("A1") == [] and screen.playback.ticker is None


def test_an_unreadable_alert_book_is_set_aside_and_the_player_starts_with_none(tmp_path):
    path = tmp_path / "alerts.json"
    path.write_text("{not json", encoding="utf-8")
    book = AlertBook.load(path, at(8))
    assert book.held_ids(at(8)) == []
