"""Text read aloud for loudspeakers: a message's words rendered by espeak-ng's Vietnamese voice into an audio file
that goes into the media library like an upload (media/upload.py: stored once under its sha256, probed, a row of
the unit's), so that players fetch and play it as any other clip.

The audio is Ogg Vorbis, mono: speech at espeak-ng's 22 kHz takes a few kilobytes a second (a 500-character message,
about half a minute, some 150 KB over a ward's 4G link); libVLC plays it, the upload rule (media/probe.py) accepts
it, it carries no patent question, and `sox` reads it as it is (Opus would be a little smaller, but sox cannot read
it, and the tests check the spoken file itself with sox).

The same words give the same bytes (no random Ogg serial number, no encoder tag: ffmpeg's bitexact), so a message
read again is the file the unit already holds.

The text goes to espeak-ng on its standard input, never on its command line: nothing in it can become an option
(a leading '-') or reach a shell (there is none). Its length is bounded by the alert text's own limit.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import sys
import tempfile
import unicodedata
import wave as wave_file
from array import array
from pathlib import Path

from sqlalchemy.orm import Session

from campaigns.access import Actor
from campaigns.kinds import MediaKind
from media.models import MediaAsset
from media.store import CHUNK, MediaStore
from media.thumbnails import Thumbnails
from media.upload import Received, accept_upload, clean_filename
from signage.clock import Clock
from signage.errors import Invalid
from signage.protocol import MAX_ALERT_TEXT

log = logging.getLogger("signage.speech")

VOICE = "vi"  # espeak-ng's Vietnamese voice (Debian's espeak-ng-data)
SPEAK_TIMEOUT_S = 60
ENCODE_TIMEOUT_S = 60
SPOKEN_SUFFIX = ".ogg"
AUDIBLE = 1000  # of 32767: a peak below it is silence with noise


class SpeechFailed(Exception):
    """The text could not be spoken (espeak-ng or ffmpeg missing, failing, or too slow): the reason, for the log
    and the page that says the loudspeakers will not get the message."""


def speakable(text: str) -> str:
    """The text as it is read: NFC, control characters as spaces, stripped; Invalid when nothing is left or it is
    longer than an alert's text may be."""
    text = "".join(" " if unicodedata.category(c)[0] == "C" else c for c in unicodedata.normalize("NFC", text))
    text = " ".join(text.split())
    if not text:
        raise Invalid("the text to read aloud is empty", "write what the public should hear")
    if len(text) > MAX_ALERT_TEXT:
        raise Invalid(f"the text to read aloud has {len(text)} characters",
                      f"shorten it to {MAX_ALERT_TEXT} characters, as an alert's text is")
    return text


def render_speech(text: str, directory: Path) -> Path:
    """The text spoken in Vietnamese, as an Ogg Vorbis file in `directory`; raises SpeechFailed with the reason."""
    words = speakable(text)
    espeak, ffmpeg = shutil.which("espeak-ng"), shutil.which("ffmpeg")
    if espeak is None or ffmpeg is None:
        raise SpeechFailed(f"{'espeak-ng' if espeak is None else 'ffmpeg'} is not installed on the server")
    wave, spoken = directory / "speech.wav", directory / f"speech{SPOKEN_SUFFIX}"
    # -b 1: the input is UTF-8; --stdin: the whole text at once, from standard input.
    _run([espeak, "-v", VOICE, "-b", "1", "--stdin", "-w", str(wave)], words.encode("utf-8"), SPEAK_TIMEOUT_S)
    if not wave.is_file() or not _has_sound(wave):
        raise SpeechFailed("espeak-ng read nothing aloud: the text has no words (only signs or punctuation?)")
    _run([ffmpeg, "-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-i", str(wave), "-map", "0:a:0",
          "-ac", "1", "-c:a", "libvorbis", "-q:a", "3", "-fflags", "+bitexact", "-flags:a", "+bitexact",
          "-f", "ogg", str(spoken)], None, ENCODE_TIMEOUT_S)
    return spoken


def _has_sound(path: Path) -> bool:
    """Whether espeak-ng's WAV (16-bit PCM) rises above a whisper: punctuation alone is read as silence."""
    try:
        with wave_file.open(str(path), "rb") as reader:
            if reader.getsampwidth() != 2:
                return reader.getnframes() > 0
            samples = array("h", reader.readframes(reader.getnframes()))
    except (OSError, EOFError, wave_file.Error):
        return False
    if sys.byteorder == "big":
        samples.byteswap()
    return max(map(abs, samples), default=0) >= AUDIBLE


def _run(command: list[str], stdin: bytes | None, timeout: float) -> None:
    try:
        subprocess.run(command, input=stdin, stdin=None if stdin is not None else subprocess.DEVNULL,
                       capture_output=True, timeout=timeout, check=True)
    except subprocess.TimeoutExpired:
        raise SpeechFailed(f"{Path(command[0]).name} took more than {timeout:.0f} s") from None
    except subprocess.CalledProcessError as exc:
        detail = exc.stderr.decode("utf-8", "replace").strip()[-300:]
        raise SpeechFailed(f"{Path(command[0]).name} failed (exit {exc.returncode}): {detail}") from None
    except OSError as exc:
        raise SpeechFailed(f"{Path(command[0]).name} could not run: {exc}") from None


def spoken_asset(session: Session, store: MediaStore, actor: Actor, clock: Clock, text: str, title: str,
                 organisation_id: str) -> MediaAsset:
    """The text read aloud, in the library of `organisation_id` (within the actor's subtree), as an upload of it
    would be: the row already in the actor's subtree when the same words were spoken before. Raises SpeechFailed
    when it cannot be rendered. Runs the renderers as subprocesses: call it from a worker thread, never the loop."""
    store.tmp_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=store.tmp_dir, prefix="speech-") as work:
        spoken = render_speech(text, Path(work))
        incoming = store.incoming()
        try:
            with spoken.open("rb") as source:
                while chunk := source.read(CHUNK):
                    incoming.write(chunk)
        except BaseException:
            incoming.discard()
            raise
        received = Received(incoming, clean_filename(f"{title[:200]}{SPOKEN_SUFFIX}"))
        try:
            accepted = accept_upload(session, store, Thumbnails.beside(store), received, organisation_id, None,
                                     actor, clock)
        except Invalid as exc:  # the probe refused what was rendered: a renderer's fault, not the text's
            raise SpeechFailed(f"the spoken file is not playable: {exc}") from None
    if accepted.asset.kind is not MediaKind.audio:
        raise SpeechFailed(f"the spoken file came out as {accepted.asset.kind.value}, not audio")
    return accepted.asset


__all__ = ["VOICE", "SpeechFailed", "render_speech", "speakable", "spoken_asset"]
