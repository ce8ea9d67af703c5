"""Playback: the seam between the agent's loop and what the screen shows and the speaker plays.

The agent drives a `Playback` from ONE thread, its own loop. Events come back through the `post` function given
to the constructor; the agent passes one that only puts the event on its queue (docs/design.md §7). `post` runs on
libVLC's threads while libVLC waits for it: it must not block, nor take a lock the loop may hold while it calls
into Playback.

Event contract, the same for `VlcPlayback` and `TimedPlayback`:

- Each `play(..., token)` yields at most one `started` and then at most one terminal event, `ended` or `error`,
  all carrying that token. `error` may follow a `started` (libVLC opened the file, then found nothing it could
  show or play) or come alone (the file is missing, empty or unreadable); either way the item did not play.
- An item that is cut — by `stop()`, `blank()`, `close()` or a `play()` that replaces it — posts nothing more:
  no `ended`, no `error`. The agent knows it cut the item and records that itself.
- Events already on the agent's queue when it cuts an item stay there; the agent drops any event whose token
  is not the item it believes is playing. `VlcPlayback` never tags an event with the wrong token: each libVLC
  event is mapped to the item that was current when libVLC produced it.
- `at` is read from the injected clock when the event happens.
"""

from __future__ import annotations

import queue
import shutil
import struct
import tempfile
import textwrap
import threading
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

from signage.clock import Clock
from signage.errors import Invalid

if TYPE_CHECKING:
    import vlc

MediaKind = Literal["video", "image", "audio"]
EventKind = Literal["started", "ended", "error"]
MEDIA_KINDS: tuple[MediaKind, ...] = ("video", "image", "audio")


@dataclass(frozen=True)
class PlaybackEvent:
    token: str
    kind: EventKind
    at: datetime
    detail: str | None = None


Post = Callable[[PlaybackEvent], None]


class Playback(Protocol):
    def play(self, path: Path, kind: MediaKind, token: str, start_offset_ms: int = 0,
             duration_ms: int | None = None) -> None:
        """Start `path` now, cutting whatever plays. An image is shown for `duration_ms` (less the offset); a video
        or audio item joined mid-way starts `start_offset_ms` into the media."""
        ...

    def stop(self) -> None:
        """Cut what plays; the cut item posts no further events."""
        ...

    def blank(self) -> None:
        """Black screen and silence (outside operating hours) until the next play()."""
        ...

    def show_ticker(self, text: str | None, *, prominent: bool = False) -> None:
        """Show `text` over the picture until told otherwise, across play() and blank(); None takes it away.
        Prominent: large and centred (an urgent alert's text over black); otherwise a line at the bottom."""
        ...

    def snapshot(self, path: Path) -> bool:
        """Write what the screen shows as PNG to `path`; False when there is no picture."""
        ...

    def close(self) -> None: ...


def deadline_for(duration_ms: int, start_offset_ms: int = 0, grace_ms: int = 2000) -> timedelta:
    """How long after play() the item's terminal event must have come; past that, the end event was lost."""
    if duration_ms <= 0 or start_offset_ms < 0 or grace_ms < 0:
        raise Invalid(f"deadline_for({duration_ms}, {start_offset_ms}, {grace_ms}) has a negative or zero part",
                      "pass a positive duration and a non-negative offset and grace, in milliseconds")
    return timedelta(milliseconds=max(duration_ms - start_offset_ms, 0) + grace_ms)


def _check_item(kind: str, start_offset_ms: int, duration_ms: int | None) -> None:
    if kind not in MEDIA_KINDS:
        raise Invalid(f"unknown media kind {kind!r}", f"use one of {', '.join(MEDIA_KINDS)}")
    if start_offset_ms < 0:
        raise Invalid(f"start_offset_ms is {start_offset_ms}", "pass 0 to start at the beginning, or a positive offset")
    if duration_ms is not None and duration_ms <= 0:
        raise Invalid(f"duration_ms is {duration_ms}", "pass the item's positive length in milliseconds")
    if duration_ms is not None and start_offset_ms >= duration_ms:
        raise Invalid(f"start_offset_ms ({start_offset_ms}) is not inside the item's {duration_ms} ms",
                      "the item is already over at that offset: skip it instead of joining it")


# ---------------------------------------------------------------------------------------------------------
# libVLC

# libVLC's image demuxer repeats a still at this rate; at its default of 10 it ends the still one or two frames
# (~170 ms) early, at 25 within ~40 ms. Re-sending a decoded still costs little CPU.
IMAGE_FPS = 25
HEADLESS_ARGS = (
    "--vout=dummy", "--aout=dummy",
    # The dummy audio output has no clock, so libVLC reports the end of audio-only media as soon as the demuxer
    # has read it: one caching period early (1000 ms by default). A short cache brings that within ~0.15 s.
    "--file-caching=100",
)
COMMON_ARGS = ("--quiet", "--ignore-config", "--no-video-title-show", "--no-osd", "--no-snapshot-preview",
               "--no-stats")
SCREEN_ARGS = ("--fullscreen",)
# libVLC's marquee (the "marq" sub-source): positions are alignment flags, sizes in pixels of the video.
MARQUEE_CENTRE, MARQUEE_BOTTOM = 0, 8
TICKER_SIZE, PROMINENT_SIZE = 32, 64
TICKER_MARGIN_PX = 24
PROMINENT_LINE_CHARS = 36  # the marquee does not wrap: prominent text is broken into lines this long
_A_KIND = {"video": "a video", "image": "an image", "audio": "audio"}

_instance_lock = threading.Lock()
_instance: vlc.Instance | None = None
_instance_headless: bool | None = None
_open_playback: VlcPlayback | None = None


def _libvlc() -> Any:
    # Imported on first use, so that TimedPlayback (the simulator, tests of the agent) runs where libVLC is absent.
    try:
        import vlc
    except (ImportError, OSError, NotImplementedError) as exc:
        raise RuntimeError(f"libVLC is not available ({exc}); install Debian's libvlc5 and vlc-plugin-base, "
                           "and python-vlc in this environment") from None
    return vlc


# glibc's malloc options (mallopt(3) parameter numbers).
M_MMAP_THRESHOLD, M_ARENA_MAX = -3, -8


def limit_malloc_caching() -> bool:
    """Ask glibc to give freed video buffers back to the system at once.

    libVLC frees each item's decoded frames (a few MB each at 1080p) when the next item starts; glibc keeps such
    blocks in per-thread arenas, and a screen PC that plays short items back to back all day grows by hundreds of
    MB. Blocks over 128 KiB mapped on their own and few arenas hold the agent near its working set. The same as
    MALLOC_MMAP_THRESHOLD_=131072 MALLOC_ARENA_MAX=2 in the environment; a no-op where libc is not glibc."""
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return bool(libc.mallopt(M_MMAP_THRESHOLD, 128 * 1024)) and bool(libc.mallopt(M_ARENA_MAX, 2))
    except (OSError, AttributeError):
        return False


def _shared_instance(headless: bool) -> vlc.Instance:
    """The process's one libVLC instance, made on first use and kept until the process ends."""
    global _instance, _instance_headless
    if _instance is None:
        limit_malloc_caching()
        args = [*COMMON_ARGS, *(HEADLESS_ARGS if headless else SCREEN_ARGS)]
        instance = _libvlc().Instance(args)
        if instance is None:
            raise RuntimeError(f"libVLC did not start with {' '.join(args)}; install Debian's libvlc5 and "
                               "vlc-plugin-base (and vlc-plugin-video-output for a screen)")
        _instance, _instance_headless = instance, headless
    elif _instance_headless != headless:
        raise RuntimeError(f"this process's libVLC instance was made with headless={_instance_headless}; one "
                           "instance per process (docs/design.md §7): start another process for the other mode")
    return _instance


def _black_png(width: int = 16, height: int = 9) -> bytes:
    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))

    rows = b"".join(b"\x00" + bytes(width * 3) for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


def marquee_text(text: str, *, prominent: bool) -> str:
    """`text` as libVLC's marquee wants it: its `%` escaped (the marquee is a strftime format), prominent text
    broken into short lines (the marquee never wraps), a ticker on one line."""
    if prominent:
        text = "\n".join(textwrap.wrap(text, PROMINENT_LINE_CHARS, break_long_words=True)) or text
    else:
        text = " ".join(text.split())
    return text.replace("%", "%%")


def _int_payload(event: Any) -> int:
    # python-vlc's event union has no `vout` member; libVLC's begins with a C int (the count of video outputs),
    # which the union's `new_status` field reads. Its 64-bit `new_count` would read four bytes of garbage too.
    return int(event.u.new_status)


@dataclass(eq=False, slots=True)
class _Item:
    """What the callbacks know of the item libVLC is playing; only they change it after play() made it."""

    token: str
    kind: MediaKind
    name: str
    existed: bool
    started: bool = False
    has_picture: bool = False
    time_moved: bool = False
    finished: bool = False


MAX_DECKS = 3  # media players per screen: the one on air, the last being stopped, and one to spare
DECK_WAIT_S = 5.0  # how long play() waits for a deck when all are still being stopped (libVLC stuck: rare)


class _Deck:
    """One libVLC media player and the item it plays. `lock` orders the callbacks' posts against retiring the deck:
    once `retire` returns, the deck's callbacks post nothing more. `free` is set while it is stopped and ready."""

    def __init__(self, player: Any) -> None:
        self.player = player
        self.events = player.event_manager()
        self.current: _Item | None = None
        self.lock = threading.Lock()
        self.free = threading.Event()
        self.free.set()

    def retire(self) -> None:
        with self.lock:
            self.current = None
        self.free.clear()


class VlcPlayback(Playback):
    """Plays through libVLC: one instance per process, and a few media players ("decks") that take turns.

    libVLC's teardown of an item (set_media() or stop() join its input and decoder threads) took up to 2.3 s
    with the disk busy; the agent's loop must not wait for it (docs/design.md §7). So the next item is loaded
    and started on a free deck, becomes the one on air, and the deck it replaces is stopped by this object's
    stopper thread, which does nothing else. A deck is reused once stopped; when all are still being stopped,
    play() waits for the first (at most DECK_WAIT_S). With a display each deck has its own fullscreen window:
    the next item's opens over the last one's, which then closes.

    The libVLC instance is made by the first VlcPlayback and reused by any later one (made with the same
    `headless`) after the first is closed; a second VlcPlayback while one is open is refused, as is one that
    asks for the other mode. After construction, every call must come from one thread: the first that calls
    (the agent's loop); a call from any other raises RuntimeError. libVLC is called from that thread, and from
    the stopper for the stop of a deck already off the air.

    Headless: dummy video and audio outputs. Otherwise fullscreen on the display, keyboard and mouse ignored.
    Video and audio play to the media's own end; `duration_ms` is only checked against the offset. Images are
    shown for `duration_ms - start_offset_ms` by libVLC itself (`:image-duration`), without a timer here.
    """

    def __init__(self, post: Post, *, clock: Clock, headless: bool) -> None:
        global _open_playback
        with _instance_lock:
            if _open_playback is not None:
                raise RuntimeError("a VlcPlayback is already open in this process; one playback per screen: "
                                   "close() it before making another")
            self._instance = _shared_instance(headless)
            _open_playback = self
        self._headless = headless
        self._post = post
        self._clock = clock
        self._owner: int | None = None
        self._closed = False
        self._decks: list[_Deck] = []
        self._on_air: _Deck | None = None
        self._ticker: tuple[str, bool] | None = None
        self._to_stop: queue.SimpleQueue[_Deck | None] = queue.SimpleQueue()
        self._stopper = threading.Thread(target=self._stop_retired, name="libvlc-stopper", daemon=True)
        try:
            self._on_air = self._new_deck()
        except BaseException:
            _open_playback = None
            raise
        self._stopper.start()
        self._scratch = Path(tempfile.mkdtemp(prefix="signage-playback-"))
        self._black = self._scratch / "black.png"
        self._black.write_bytes(_black_png())

    @property
    def _player(self) -> Any:
        """The media player on air (the last one played on)."""
        return self._on_air.player if self._on_air is not None else None

    @property
    def _current(self) -> _Item | None:
        return self._on_air.current if self._on_air is not None else None

    # -- called on the agent's thread ------------------------------------------------------------------

    def play(self, path: Path, kind: MediaKind, token: str, start_offset_ms: int = 0,
             duration_ms: int | None = None) -> None:
        self._check_caller("play")
        _check_item(kind, start_offset_ms, duration_ms)
        options: list[str] = []
        if kind == "image":
            if duration_ms is None:
                raise Invalid(f"no duration_ms for the image {path.name}", "pass how long to show it, in ms")
            options += [f":image-duration={(duration_ms - start_offset_ms) / 1000:.3f}", f":image-fps={IMAGE_FPS}"]
        elif start_offset_ms:
            options.append(f":start-time={start_offset_ms / 1000:.3f}")
        if kind == "audio":
            options.append(":no-video")  # an mp3's cover art would otherwise be shown
        item = _Item(token, kind, Path(path).name, Path(path).is_file())
        deck = self._put_on_air(str(path), options, item)
        if deck.player.play() != 0:
            with deck.lock:
                item.finished = True
                self._post(PlaybackEvent(token, "error", self._clock.now(), f"libVLC refused to start {item.name}"))

    def stop(self) -> None:
        self._check_caller("stop")
        if self._on_air is not None:
            self._retire(self._on_air)
            self._on_air = None

    def blank(self) -> None:
        self._check_caller("blank")
        # A held black still rather than stop(): with a real display, stopping closes libVLC's fullscreen window.
        deck = self._put_on_air(str(self._black), [":image-duration=-1", ":image-fps=1"], None)
        deck.player.play()

    def show_ticker(self, text: str | None, *, prominent: bool = False) -> None:
        self._check_caller("show_ticker")
        self._ticker = None if text is None else (text, prominent)
        if self._on_air is not None:
            self._set_marquee(self._on_air.player)

    def snapshot(self, path: Path) -> bool:
        self._check_caller("snapshot")
        path.unlink(missing_ok=True)
        if self._on_air is None or self._on_air.player.video_take_snapshot(0, str(path), 0, 0) != 0:
            return False
        return path.is_file() and path.stat().st_size > 0

    def close(self) -> None:
        global _open_playback
        if self._closed:
            return
        self._check_caller("close")
        self._closed = True
        self._to_stop.put(None)
        self._stopper.join()
        for deck in self._decks:
            deck.retire()
            deck.player.stop()
            for event_type in self._handlers(deck):
                deck.events.event_detach(event_type)
            deck.player.release()
        self._decks, self._on_air = [], None
        shutil.rmtree(self._scratch, ignore_errors=True)
        with _instance_lock:
            _open_playback = None

    # -- the decks -----------------------------------------------------------------------------------------

    def _new_deck(self) -> _Deck:
        deck = _Deck(self._instance.media_player_new())
        if not self._headless:
            deck.player.set_fullscreen(True)
            deck.player.video_set_key_input(False)
            deck.player.video_set_mouse_input(False)
        for event_type, handler in self._handlers(deck).items():
            deck.events.event_attach(event_type, handler, deck)
        self._decks.append(deck)
        return deck

    def _handlers(self, deck: _Deck) -> dict[Any, Callable[..., None]]:
        vlc = _libvlc()
        return {vlc.EventType.MediaPlayerPlaying: self._on_playing,
                vlc.EventType.MediaPlayerEndReached: self._on_end,
                vlc.EventType.MediaPlayerEncounteredError: self._on_error,
                vlc.EventType.MediaPlayerVout: self._on_vout,
                vlc.EventType.MediaPlayerTimeChanged: self._on_time}

    def _free_deck(self) -> _Deck:
        """A stopped deck that is not on air: an idle one, a new one while there are fewer than MAX_DECKS, or the
        first the stopper frees."""
        spare = [deck for deck in self._decks if deck is not self._on_air]
        for deck in spare:
            if deck.free.is_set():
                return deck
        if len(self._decks) < MAX_DECKS:
            return self._new_deck()
        for deck in spare:
            if deck.free.wait(DECK_WAIT_S):
                return deck
        raise RuntimeError(f"libVLC has not stopped the last items after {DECK_WAIT_S:g} s; restart the player")

    def _put_on_air(self, location: str, options: list[str], item: _Item | None) -> _Deck:
        """Load the media on a free deck and make it the one on air; the deck it replaces goes to the stopper,
        and posts nothing more once this returns. The caller then starts the deck."""
        deck = self._free_deck()
        media = self._instance.media_new_path(location)
        for option in options:
            media.add_option(option)
        deck.player.set_media(media)  # a stopped deck: nothing to tear down, so this does not wait
        media.release()
        self._set_marquee(deck.player)
        deck.current = item
        replaced, self._on_air = self._on_air, deck
        if replaced is not None and replaced is not deck:
            self._retire(replaced)
        return deck

    def _retire(self, deck: _Deck) -> None:
        deck.retire()
        self._to_stop.put(deck)

    def _stop_retired(self) -> None:
        """The stopper thread: libVLC's teardown of decks already off the air, so the loop never waits for it."""
        while (deck := self._to_stop.get()) is not None:
            deck.player.stop()
            deck.free.set()

    def _set_marquee(self, player: Any) -> None:
        option = _libvlc().VideoMarqueeOption
        if self._ticker is None:
            player.video_set_marquee_int(option.Enable, 0)
            return
        text, prominent = self._ticker
        player.video_set_marquee_string(option.Text, marquee_text(text, prominent=prominent))
        player.video_set_marquee_int(option.Position, MARQUEE_CENTRE if prominent else MARQUEE_BOTTOM)
        player.video_set_marquee_int(option.Size, PROMINENT_SIZE if prominent else TICKER_SIZE)
        player.video_set_marquee_int(option.Y, 0 if prominent else TICKER_MARGIN_PX)
        player.video_set_marquee_int(option.Timeout, 0)  # shown until changed, whatever plays
        player.video_set_marquee_int(option.Enable, 1)

    def _check_caller(self, method: str) -> None:
        if self._closed:
            raise RuntimeError(f"VlcPlayback.{method}() after close(); make a new VlcPlayback")
        if self._owner is None:
            self._owner = threading.get_ident()
        elif threading.get_ident() != self._owner:
            raise RuntimeError(f"VlcPlayback.{method}() called off the thread that drives it; libVLC is driven "
                               "from the agent's loop only (docs/design.md §7): post the request to that loop instead")

    # -- libVLC callbacks: on libVLC's threads, they only note and post under the deck's lock; never a libVLC
    # call. A deck off the air has no current item: its late events reach no one.

    def _on_playing(self, _event: Any, deck: _Deck) -> None:
        with deck.lock:
            item = deck.current
            if item is None or item.started or item.finished:
                return
            item.started = True
            self._post(PlaybackEvent(item.token, "started", self._clock.now()))

    def _on_vout(self, event: Any, deck: _Deck) -> None:
        item = deck.current
        if item is not None and _int_payload(event) > 0:
            item.has_picture = True

    def _on_time(self, event: Any, deck: _Deck) -> None:
        item = deck.current
        if item is not None and event.u.new_time > 0:
            item.time_moved = True

    def _on_end(self, _event: Any, deck: _Deck) -> None:
        with deck.lock:
            item = deck.current
            if item is None or item.finished:
                return
            item.finished = True
            # libVLC reports a file it opened but could not decode (random bytes, a truncated header) as played to
            # its end at once. A picture tells a real video or image apart; for audio, a track is not enough (random
            # bytes named .mp3 often yield one), but the playing time moving on is: libVLC reports it about every
            # 0.3 s, so audio shorter than that would count as an error.
            played = item.time_moved if item.kind == "audio" else item.has_picture
            if played:
                self._post(PlaybackEvent(item.token, "ended", self._clock.now()))
            else:
                what = "playable audio" if item.kind == "audio" else "picture"
                self._post(PlaybackEvent(item.token, "error", self._clock.now(), f"libVLC found no {what} in "
                                         f"{item.name}: the file is corrupt or not {_A_KIND[item.kind]}"))

    def _on_error(self, _event: Any, deck: _Deck) -> None:
        with deck.lock:
            item = deck.current
            if item is None or item.finished:
                return
            item.finished = True
            reason = "it could not open or read it" if item.existed else "the file does not exist"
            self._post(PlaybackEvent(item.token, "error", self._clock.now(), f"libVLC could not play {item.name}: "
                                     f"{reason}"))


# ---------------------------------------------------------------------------------------------------------
# Virtual time


class TimedPlayback(Playback):
    """Plays nothing: honours durations on the injected clock, for the simulator and tests of the agent's logic.

    play() posts `started` at once (on the caller's thread); advance() posts `ended` once the clock has reached
    start + (duration_ms - start_offset_ms), with `at` that instant. duration_ms is required for every kind.
    """

    def __init__(self, post: Post, *, clock: Clock) -> None:
        self._post = post
        self._clock = clock
        self._token: str | None = None
        self._ends_at: datetime | None = None
        self._failure: str | None = None
        self._blanked = False
        self._closed = False
        self._ticker: str | None = None
        self._ticker_prominent = False

    @property
    def now_playing(self) -> str | None:
        """The token of the item playing, if any."""
        return self._token

    @property
    def ends_at(self) -> datetime | None:
        """When the item playing ends: where a simulator can move its clock to next."""
        return self._ends_at

    @property
    def blanked(self) -> bool:
        return self._blanked

    @property
    def ticker(self) -> str | None:
        """The text shown over the picture, if any."""
        return self._ticker

    @property
    def ticker_prominent(self) -> bool:
        return self._ticker_prominent

    def fail_next(self, reason: str = "simulated playback error") -> None:
        """The next play() posts `error` with this detail instead of playing."""
        self._failure = reason

    def play(self, path: Path, kind: MediaKind, token: str, start_offset_ms: int = 0,
             duration_ms: int | None = None) -> None:
        self._check_open("play")
        _check_item(kind, start_offset_ms, duration_ms)
        if duration_ms is None:
            raise Invalid(f"no duration_ms for {Path(path).name}", "TimedPlayback needs every item's length in ms")
        self._cut()
        self._blanked = False
        now = self._clock.now()
        if self._failure is not None:
            reason, self._failure = self._failure, None
            self._post(PlaybackEvent(token, "error", now, reason))
            return
        self._token, self._ends_at = token, now + timedelta(milliseconds=duration_ms - start_offset_ms)
        self._post(PlaybackEvent(token, "started", now))

    def advance(self, now: datetime | None = None) -> None:
        """Post `ended` if the item playing is over by `now` (the clock's time when not given)."""
        if self._token is None or self._ends_at is None:
            return
        if (now or self._clock.now()) >= self._ends_at:
            token, at = self._token, self._ends_at
            self._cut()
            self._post(PlaybackEvent(token, "ended", at))

    def stop(self) -> None:
        self._check_open("stop")
        self._cut()

    def blank(self) -> None:
        self._check_open("blank")
        self._cut()
        self._blanked = True

    def show_ticker(self, text: str | None, *, prominent: bool = False) -> None:
        self._check_open("show_ticker")
        self._ticker, self._ticker_prominent = text, prominent and text is not None

    def snapshot(self, path: Path) -> bool:
        return False  # nothing is drawn

    def close(self) -> None:
        self._cut()
        self._closed = True

    def _cut(self) -> None:
        self._token, self._ends_at = None, None

    def _check_open(self, method: str) -> None:
        if self._closed:
            raise RuntimeError(f"TimedPlayback.{method}() after close(); make a new TimedPlayback")
