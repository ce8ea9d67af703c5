"""Playback with real libVLC (dummy outputs) on real ffmpeg-made media, and TimedPlayback on virtual time."""

from __future__ import annotations

import queue
import random
import struct
import threading
import time
import zlib
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from player.playback import PlaybackEvent, TimedPlayback, VlcPlayback, deadline_for
from signage.clock import SystemClock, VirtualClock
from signage.errors import Invalid

WAIT = 10.0  # seconds to wait for any one event; the items themselves last at most 3 s


class WatchedPlayback(VlcPlayback):
    """A VlcPlayback that also notes each media position libVLC reports (`MediaPlayerTimeChanged`), by token: how
    far into the media libVLC itself says it got, whatever the wall clock did meanwhile."""

    def __init__(self, post, **options: Any) -> None:
        self.positions: dict[str, list[int]] = {}
        super().__init__(post, **options)

    def _on_time(self, event: Any, deck: Any) -> None:
        item = deck.current
        if item is not None:
            self.positions.setdefault(item.token, []).append(event.u.new_time)
        super()._on_time(event, deck)


class Screen:
    """A VlcPlayback whose post function only enqueues, noting the thread it ran on (and libVLC's positions)."""

    def __init__(self) -> None:
        self.posted: queue.Queue[tuple[PlaybackEvent, int]] = queue.Queue()
        self.post_threads: set[int] = set()
        self.playback = WatchedPlayback(self.post, clock=SystemClock(), headless=True)

    def post(self, event: PlaybackEvent) -> None:
        self.posted.put((event, threading.get_ident()))

    def next(self, timeout: float = WAIT) -> PlaybackEvent:
        event, thread = self.posted.get(timeout=timeout)
        self.post_threads.add(thread)
        return event

    def until_done(self, token: str) -> list[PlaybackEvent]:
        """Every event up to and including the terminal one of `token`."""
        events = [self.next()]
        while not (events[-1].token == token and events[-1].kind in ("ended", "error")):
            events.append(self.next())
        return events

    def assert_silent(self, seconds: float = 0.5) -> None:
        with pytest.raises(queue.Empty):
            self.posted.get(timeout=seconds)


@pytest.fixture
def screen() -> Iterator[Screen]:
    made = Screen()
    yield made
    made.playback.close()


def kinds(events: list[PlaybackEvent]) -> list[tuple[str, str]]:
    return [(e.token, e.kind) for e in events]


def positions_reached(screen: Screen, token: str) -> list[int]:
    """The media positions (ms) libVLC reported for `token` once it had moved off the start."""
    return [position for position in screen.playback.positions.get(token, []) if position > 0]


def eventually(attempt: Callable[[], bool], timeout: float = 3.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if attempt():
            return True
    return False


def png_pixels(path: Path) -> tuple[int, int, bytes]:
    """Width, height and the raw scanlines (filter bytes included) of an 8-bit PNG."""
    data = path.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    position, compressed, width, height = 8, b"", 0, 0
    while position < len(data):
        (length,) = struct.unpack(">I", data[position:position + 4])
        tag, body = data[position + 4:position + 8], data[position + 8:position + 8 + length]
        if tag == b"IHDR":
            width, height = struct.unpack(">II", body[:8])
        elif tag == b"IDAT":
            compressed += body
        position += 12 + length
    return width, height, zlib.decompress(compressed)


# ---------------------------------------------------------------------------------------------------------
# VlcPlayback: real libVLC


# How long an item took in real time says nothing on a busy machine (a 2-second clip took 4.4 s under load): whether
# it played through is decided on the positions in the media that libVLC itself reported while it played.


def test_a_clip_posts_started_then_ended_after_playing_to_its_end(screen, make_media):
    clip = make_media("clip.mp4", seconds=2)
    screen.playback.play(clip, "video", "clip-1", duration_ms=2000)
    events = screen.until_done("clip-1")
    assert kinds(events) == [("clip-1", "started"), ("clip-1", "ended")]
    reached = positions_reached(screen, "clip-1")
    assert reached and 1000 <= reached[-1] <= 2000, reached
    assert events[-1].detail is None and events[0].at.tzinfo is not None


def test_an_image_is_shown_for_its_duration(screen, make_media):
    still = make_media("still.png")
    screen.playback.play(still, "image", "still-1", duration_ms=1500)
    events = screen.until_done("still-1")
    assert kinds(events) == [("still-1", "started"), ("still-1", "ended")]
    reached = positions_reached(screen, "still-1")  # libVLC shows a still as media of that length
    assert reached and 750 <= reached[-1] <= 1500, reached


def test_an_mp3_plays_and_ends(screen, make_media):
    spot = make_media("spot.mp3", seconds=2)
    screen.playback.play(spot, "audio", "spot-1", duration_ms=2000)
    events = screen.until_done("spot-1")
    assert kinds(events) == [("spot-1", "started"), ("spot-1", "ended")]
    reached = positions_reached(screen, "spot-1")
    assert reached and 1000 <= reached[-1] <= 2000, reached


def test_joining_a_clip_mid_way_plays_only_the_rest(screen, make_media):
    clip = make_media("three.mp4", seconds=3)
    screen.playback.play(clip, "video", "joined", start_offset_ms=2000, duration_ms=3000)
    events = screen.until_done("joined")
    assert kinds(events) == [("joined", "started"), ("joined", "ended")]
    reached = positions_reached(screen, "joined")
    assert reached and all(2000 <= position <= 3000 for position in reached), reached  # never the first 2 s
    assert reached[-1] >= 2500, reached


@pytest.mark.parametrize(("name", "kind", "lacking"), [("broken.mp4", "video", "no picture in broken.mp4: the file is "
                                                                         "corrupt or not a video"),
                                                       ("broken.png", "image", "no picture in broken.png: the file is "
                                                                         "corrupt or not an image"),
                                                       ("broken.mp3", "audio", "no playable audio in broken.mp3: "
                                                                         "the file is corrupt or not audio")],
                         ids=["video", "image", "audio"])
def test_a_corrupt_file_posts_an_error_after_libvlc_started_it(screen, tmp_path, name, kind, lacking):
    # libVLC opens random bytes, says it is playing, and reaches the end at once with nothing decoded: the
    # contract turns that into 'error', never 'ended'.
    broken = tmp_path / name
    broken.write_bytes(random.Random(5).randbytes(200_000))
    screen.playback.play(broken, kind, "broken", duration_ms=2000)
    events = screen.until_done("broken")
    assert kinds(events) == [("broken", "started"), ("broken", "error")]
    assert events[-1].detail == f"libVLC found {lacking}"
    screen.assert_silent(0.3)


def test_a_missing_or_empty_file_posts_only_an_error(screen, tmp_path):
    screen.playback.play(tmp_path / "gone.mp4", "video", "gone")
    assert kinds(screen.until_done("gone")) == [("gone", "error")]
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    screen.playback.play(empty, "video", "empty")
    events = screen.until_done("empty")
    assert kinds(events) == [("empty", "error")]
    assert events[-1].detail == "libVLC could not play empty.mp4: it could not open or read it"


def test_stop_cuts_the_item_and_the_next_play_carries_only_the_new_token(screen, make_media):
    clip, still = make_media("three.mp4", seconds=3), make_media("still.png")
    screen.playback.play(clip, "video", "cut-me", duration_ms=3000)
    assert kinds([screen.next()]) == [("cut-me", "started")]
    screen.playback.stop()
    screen.playback.play(still, "image", "next", duration_ms=500)
    events = screen.until_done("next")
    assert kinds(events) == [("next", "started"), ("next", "ended")]
    screen.assert_silent()


def test_a_play_over_a_playing_item_replaces_it_without_an_end_for_the_first(screen, make_media):
    clip, still = make_media("three.mp4", seconds=3), make_media("still.png")
    screen.playback.play(clip, "video", "first", duration_ms=3000)
    assert kinds([screen.next()]) == [("first", "started")]
    screen.playback.play(still, "image", "second", duration_ms=500)
    assert kinds(screen.until_done("second")) == [("second", "started"), ("second", "ended")]
    screen.playback.play(clip, "video", "third", start_offset_ms=2500, duration_ms=3000)
    assert kinds(screen.until_done("third")) == [("third", "started"), ("third", "ended")]
    screen.assert_silent()


class CallLog:
    """Passes every call through to a libVLC object, noting the thread that made it."""

    def __init__(self, target: Any, threads: set[int]) -> None:
        self._target, self._threads = target, threads

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._target, name)
        if not callable(attribute):
            return attribute

        def call(*args: Any, **kwargs: Any) -> Any:
            self._threads.add(threading.get_ident())
            return attribute(*args, **kwargs)

        return call


def test_events_come_on_libvlc_threads_and_libvlc_plays_only_from_the_driving_thread(screen, make_media):
    still, clip = make_media("still.png"), make_media("clip.mp4", seconds=1)
    callers: dict[str, set[int]] = {}
    playback = screen.playback
    playback._instance = CallLog(playback._instance, callers.setdefault("instance", set()))
    for deck in playback._decks:
        deck.player = CallLog(deck.player, callers.setdefault("player", set()))
    playback.play(still, "image", "a", duration_ms=300)
    screen.until_done("a")
    playback.play(clip, "video", "b")
    screen.until_done("b")
    playback.play(still, "image", "c", duration_ms=300)
    screen.until_done("c")
    me = threading.get_ident()
    assert callers["instance"] == {me}  # new media and new decks: the loop's thread only
    # The decks' calls: the loop's thread, and the stopper's for the stop of a deck already off the air.
    assert me in callers["player"] and callers["player"] <= {me, playback._stopper.ident}
    assert screen.post_threads and me not in screen.post_threads and playback._stopper.ident not in \
        screen.post_threads


class HeldStop:
    """A media player whose stop() waits until the test lets it go, as libVLC's teardown did with the disk busy."""

    def __init__(self, target: Any, stopping: threading.Event, release: threading.Event) -> None:
        self._target, self._stopping, self._release = target, stopping, release

    def __getattr__(self, name: str) -> Any:
        return getattr(self._target, name)

    def stop(self) -> None:
        self._stopping.set()
        self._release.wait(3 * WAIT)
        self._target.stop()


def test_the_next_item_starts_while_libvlc_still_tears_the_last_one_down(screen, make_media):
    clip, still = make_media("three.mp4", seconds=3), make_media("still.png")
    playback, stopping, release = screen.playback, threading.Event(), threading.Event()
    [first_deck] = playback._decks
    first_deck.player = HeldStop(first_deck.player, stopping, release)
    try:
        playback.play(clip, "video", "first", duration_ms=3000)
        assert kinds([screen.next()]) == [("first", "started")]
        playback.play(still, "image", "second", duration_ms=500)  # cuts "first": its deck goes to the stopper
        assert stopping.wait(WAIT)
        # "second" starts and ends while the stopper is still inside the first deck's stop().
        assert kinds(screen.until_done("second")) == [("second", "started"), ("second", "ended")]
        assert not first_deck.free.is_set()
    finally:
        release.set()
    assert first_deck.free.wait(WAIT)
    screen.assert_silent()


def test_when_libvlc_never_finishes_stopping_play_says_so_instead_of_hanging(screen, make_media, monkeypatch):
    import player.playback as playback_module

    monkeypatch.setattr(playback_module, "DECK_WAIT_S", 0.05)
    still = make_media("still.png")
    playback, stopping, release = screen.playback, threading.Event(), threading.Event()
    while len(playback._decks) < playback_module.MAX_DECKS:
        playback._new_deck()
    for deck in playback._decks:
        deck.player = HeldStop(deck.player, stopping, release)
    try:
        for n in range(playback_module.MAX_DECKS - 1):  # each play sends the deck before it to the stopper
            playback.play(still, "image", f"item-{n}", duration_ms=5000)
        with pytest.raises(RuntimeError, match="has not stopped"):
            playback.play(still, "image", "one-too-many", duration_ms=5000)
    finally:
        release.set()
    assert all(deck.free.wait(WAIT) for deck in playback._decks if deck is not playback._on_air)


def test_snapshot_writes_the_picture_and_blank_shows_black_silently(screen, make_media, tmp_path):
    clip, spot = make_media("three.mp4", seconds=3), make_media("spot.mp3", seconds=2)
    shot = tmp_path / "shot.png"
    screen.playback.play(clip, "video", "shown", duration_ms=3000)
    screen.next()
    assert eventually(lambda: screen.playback.snapshot(shot))
    assert png_pixels(shot)[:2] == (320, 180)

    screen.playback.blank()
    assert eventually(lambda: screen.playback.snapshot(shot))
    width, height, rows = png_pixels(shot)
    pixels = b"".join(rows[row * (1 + width * 3) + 1:(row + 1) * (1 + width * 3)] for row in range(height))
    assert max(pixels) <= 16  # black
    screen.assert_silent(0.3)

    screen.playback.play(spot, "audio", "heard", duration_ms=2000)
    assert screen.next().token == "heard"
    assert screen.playback.snapshot(shot) is False and not shot.exists()


def test_one_vlc_playback_at_a_time_and_one_libvlc_mode_per_process(screen):
    with pytest.raises(RuntimeError, match="already open"):
        VlcPlayback(lambda event: None, clock=SystemClock(), headless=True)
    screen.playback.close()
    with pytest.raises(RuntimeError, match="headless=True"):
        VlcPlayback(lambda event: None, clock=SystemClock(), headless=False)
    again = VlcPlayback(lambda event: None, clock=SystemClock(), headless=True)
    again.close()


def test_calls_from_another_thread_are_refused(screen, make_media):
    still = make_media("still.png")
    screen.playback.stop()  # the first call binds the playback to this thread
    refused: list[BaseException] = []

    def elsewhere() -> None:
        try:
            screen.playback.play(still, "image", "x", duration_ms=500)
        except RuntimeError as exc:
            refused.append(exc)

    worker = threading.Thread(target=elsewhere)
    worker.start()
    worker.join(WAIT)
    assert len(refused) == 1 and "agent's loop" in str(refused[0])
    screen.assert_silent(0.2)


def test_an_image_needs_a_duration_and_an_offset_inside_it(screen, make_media):
    still = make_media("still.png")
    with pytest.raises(Invalid, match="no duration_ms"):
        screen.playback.play(still, "image", "x")
    with pytest.raises(Invalid, match="already over"):
        screen.playback.play(still, "image", "x", start_offset_ms=1000, duration_ms=1000)
    with pytest.raises(Invalid, match="unknown media kind"):
        screen.playback.play(still, "slides", "x", duration_ms=1000)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------------------
# TimedPlayback: virtual time


@pytest.fixture
def timed(clock: VirtualClock) -> tuple[TimedPlayback, list[PlaybackEvent]]:
    posted: list[PlaybackEvent] = []
    return TimedPlayback(posted.append, clock=clock), posted


def test_timed_playback_starts_at_once_and_ends_on_the_clock(timed, clock):
    playback, posted = timed
    start = clock.now()
    playback.play(Path("clip.mp4"), "video", "t1", duration_ms=3000)
    assert posted == [PlaybackEvent("t1", "started", start, None)]
    assert playback.now_playing == "t1" and playback.ends_at == start + timedelta(seconds=3)
    clock.advance(timedelta(milliseconds=2999))
    playback.advance()
    assert len(posted) == 1
    clock.advance(timedelta(seconds=5))
    playback.advance()
    assert posted[1] == PlaybackEvent("t1", "ended", start + timedelta(seconds=3), None)  # when it ended
    assert playback.now_playing is None
    playback.advance()
    assert len(posted) == 2


def test_timed_playback_joined_mid_way_ends_after_the_rest(timed, clock):
    playback, posted = timed
    start = clock.now()
    playback.play(Path("still.png"), "image", "t2", start_offset_ms=1500, duration_ms=2000)
    playback.advance(start + timedelta(milliseconds=499))
    assert [e.kind for e in posted] == ["started"]
    playback.advance(start + timedelta(milliseconds=500))
    assert posted[-1] == PlaybackEvent("t2", "ended", start + timedelta(milliseconds=500), None)


def test_timed_playback_fail_next_posts_an_error_then_plays_again(timed, clock):
    playback, posted = timed
    playback.fail_next("decoder gave up")
    playback.play(Path("spot.mp3"), "audio", "bad", duration_ms=1000)
    assert posted == [PlaybackEvent("bad", "error", clock.now(), "decoder gave up")]
    assert playback.now_playing is None
    playback.play(Path("spot.mp3"), "audio", "good", duration_ms=1000)
    clock.advance(timedelta(seconds=1))
    playback.advance()
    assert [(e.token, e.kind) for e in posted[1:]] == [("good", "started"), ("good", "ended")]


def test_timed_playback_cut_items_post_nothing_more(timed, clock):
    playback, posted = timed
    playback.play(Path("a.mp4"), "video", "a", duration_ms=1000)
    playback.stop()
    playback.play(Path("b.mp4"), "video", "b", duration_ms=1000)
    playback.play(Path("c.mp4"), "video", "c", duration_ms=5000)
    clock.advance(timedelta(seconds=2))
    playback.advance()
    playback.blank()
    assert playback.blanked and playback.now_playing is None
    clock.advance(timedelta(seconds=10))
    playback.advance()
    assert [(e.token, e.kind) for e in posted] == [("a", "started"), ("b", "started"), ("c", "started")]
    assert playback.snapshot(Path("unused.png")) is False
    playback.play(Path("d.mp4"), "video", "d", duration_ms=1000)
    assert not playback.blanked


def test_timed_playback_needs_every_items_duration(timed):
    playback, _ = timed
    with pytest.raises(Invalid, match="needs every item's length"):
        playback.play(Path("clip.mp4"), "video", "x")
    with pytest.raises(Invalid, match="already over"):
        playback.play(Path("clip.mp4"), "video", "x", start_offset_ms=2000, duration_ms=2000)
    playback.close()
    with pytest.raises(RuntimeError, match="after close"):
        playback.play(Path("clip.mp4"), "video", "x", duration_ms=2000)


def test_deadline_for_covers_the_rest_of_the_item_and_a_grace():
    assert deadline_for(2000, 0) == timedelta(seconds=4)
    assert deadline_for(3000, 2000) == timedelta(seconds=3)
    assert deadline_for(3000, 2000, grace_ms=500) == timedelta(milliseconds=1500)
    with pytest.raises(Invalid):
        deadline_for(0, 0)


# ---------------------------------------------------------------------------------------------------------
# The ticker: libVLC's marquee (snapshots do not include it, so its settings are read back from libVLC)


def marquee(screen: Screen) -> tuple[int, str, int, int]:
    """(enabled, text, position, size) of the marquee as libVLC holds it."""
    import vlc

    player, option = screen.playback._player, vlc.VideoMarqueeOption
    return (player.video_get_marquee_int(option.Enable), player.video_get_marquee_string(option.Text),
            player.video_get_marquee_int(option.Position), player.video_get_marquee_int(option.Size))


TICKER = "Nắng nóng 39°C: uống đủ nước"


def test_show_ticker_sets_libvlcs_marquee_at_the_bottom_and_it_stays_across_the_next_play(screen, make_media):
    clip, still = make_media("three.mp4", seconds=3), make_media("still.png")
    screen.playback.show_ticker(TICKER)
    screen.playback.play(clip, "video", "under", duration_ms=3000)
    assert kinds([screen.next()]) == [("under", "started")]
    assert eventually(lambda: marquee(screen)[0] == 1)
    assert marquee(screen) == (1, TICKER, 8, 32)
    screen.playback.play(still, "image", "next", duration_ms=1000)
    assert kinds([screen.next()]) == [("next", "started")]
    assert eventually(lambda: marquee(screen) == (1, TICKER, 8, 32))


def test_show_ticker_none_takes_the_marquee_away(screen, make_media):
    clip = make_media("three.mp4", seconds=3)
    screen.playback.show_ticker(TICKER)
    screen.playback.play(clip, "video", "under", duration_ms=3000)
    screen.next()
    assert eventually(lambda: marquee(screen)[0] == 1)
    screen.playback.show_ticker(None)
    assert eventually(lambda: marquee(screen)[0] == 0)


def test_a_prominent_text_over_black_is_centred_large_and_broken_into_lines(screen):
    text = "Cảnh báo khẩn: ngập sâu trên đường Nguyễn Trãi, giảm 100% lưu lượng, xin tránh khu vực"
    screen.playback.blank()
    screen.playback.show_ticker(text, prominent=True)
    assert eventually(lambda: marquee(screen)[0] == 1)
    enabled, shown, position, size = marquee(screen)
    assert (position, size) == (0, 64)
    assert "\n" in shown and shown.replace("\n", " ") == text.replace("%", "%%")  # the marquee reads strftime
