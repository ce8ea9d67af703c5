"""Text read aloud for loudspeakers (media/speech.py): espeak-ng's Vietnamese voice, checked with sox; hostile text;
the alert that keeps its spoken audio, the orders the loudspeakers and the displays get, and the alert's page.

Real parts: espeak-ng, ffmpeg, sox and ffprobe as installed by setup.sh; SQLite and PostgreSQL."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from sqlalchemy import select

from campaigns.alerts import AlertIn, alert_screens, create_alert
from campaigns.kinds import MediaKind, ScreenKind
from campaigns.models import Alert
from media.models import MediaAsset
from media.probe import probe
from media.speech import SpeechFailed, render_speech, speakable
from media.store import MediaStore
from scheduler.alert_dispatch import alert_order
from signage.db import transaction
from signage.errors import Invalid
from signage.protocol import MAX_ALERT_TEXT, AlertOrder
from tests.conftest import sign_in
from tests.test_alert_delivery import actor_of

FLOOD = "Đường Quang Trung ngập sâu, đề nghị người dân đi đường khác."
PHULA_SPEAKER = "hn-hadong-phula-003"  # examples/hanoi-fleet.yaml: Phú La's loudspeaker


def sox_stat(path: Path) -> dict[str, float]:
    """sox's `stat` of an audio file: its length in seconds and amplitudes, by name."""
    done = subprocess.run(["sox", str(path), "-n", "stat"], capture_output=True, text=True, timeout=60, check=True)
    figures = {}
    for line in done.stderr.splitlines():
        name, _, value = line.partition(":")
        try:
            figures[name.strip()] = float(value.strip())
        except ValueError:
            continue
    return figures


def assert_spoken(path: Path, at_least_s: float = 1.0) -> dict[str, float]:
    stat = sox_stat(path)
    assert stat["Length (seconds)"] > at_least_s, stat
    assert stat["RMS     amplitude"] > 0.01 and stat["Maximum amplitude"] > 0.1, stat  # a voice, not silence
    return stat


# -- rendering ----------------------------------------------------------------------------------------------------


def test_vietnamese_text_becomes_ogg_vorbis_speech_that_sox_finds_long_and_not_silent(tmp_path):
    spoken = render_speech(FLOOD, tmp_path)
    assert_spoken(spoken, at_least_s=2.0)
    probed = probe(spoken)  # the upload rule: what players can play
    assert (probed.kind, probed.mime, probed.audio_codec) == (MediaKind.audio, "audio/ogg", "vorbis")
    assert probed.duration_ms > 2000


def test_a_longer_text_is_read_for_longer(tmp_path):
    (tmp_path / "short").mkdir()
    (tmp_path / "long").mkdir()
    short = sox_stat(render_speech("Mất điện.", tmp_path / "short"))
    long = sox_stat(render_speech(FLOOD + " " + FLOOD, tmp_path / "long"))
    assert long["Length (seconds)"] > 2 * short["Length (seconds)"]


def test_hostile_text_is_read_as_words_never_as_options_or_shell(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "out").mkdir()
    hostile = "--help -w /tmp/pwned.wav -v en; rm -rf ~ && touch pwned $(touch pwned2) `touch pwned3` | cat > pwned4"
    spoken = render_speech(hostile, tmp_path / "out")
    assert_spoken(spoken, at_least_s=3.0)  # the whole line read out, not espeak-ng's help
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
    assert not Path("/tmp/pwned.wav").exists()
    assert_spoken(render_speech("-v vi -w x", tmp_path / "out"), at_least_s=1.0)  # read, as words
    for signs in ("-", "--", "- . ; |"):  # read as silence: no file that would play nothing on the speakers
        with pytest.raises(SpeechFailed, match="read nothing aloud"):
            render_speech(signs, tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_text_longer_than_an_alerts_or_empty_after_stripping_is_refused(tmp_path):
    with pytest.raises(Invalid, match=f"{MAX_ALERT_TEXT + 1} characters"):
        render_speech("a" * (MAX_ALERT_TEXT + 1), tmp_path)
    for blank in ("", "   ", "\n\t \r", "\x00\x1b\u200b"):
        with pytest.raises(Invalid, match="empty"):
            render_speech(blank, tmp_path)
    assert list(tmp_path.iterdir()) == []
    assert speakable(" Mất\x00điện\n\nphường  Phú La ") == "Mất điện phường Phú La"
    assert_spoken(render_speech("ô " * (MAX_ALERT_TEXT // 2), tmp_path), at_least_s=5.0)  # the longest allowed


@pytest.fixture
def issuer(staff) -> int:
    """Phú La's communications staff (tests/conftest.py's STAFF): Phú La has two displays and a loudspeaker."""
    return staff["phula-staff"]


def hide_espeak(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A PATH with ffmpeg and ffprobe but no espeak-ng: the server where it was not installed."""
    bin_dir = tmp_path / "bin-without-espeak"
    bin_dir.mkdir()
    for tool in ("ffmpeg", "ffprobe"):
        (bin_dir / tool).symlink_to(shutil.which(tool))
    monkeypatch.setenv("PATH", str(bin_dir))


@pytest.fixture
def no_espeak(tmp_path, monkeypatch):
    hide_espeak(tmp_path, monkeypatch)


def test_without_espeak_ng_the_speech_fails_with_the_reason(tmp_path, no_espeak):
    with pytest.raises(SpeechFailed, match="espeak-ng is not installed"):
        render_speech(FLOOD, tmp_path)


# -- the alert keeps its spoken audio -----------------------------------------------------------------------------


def test_a_text_alert_to_a_ward_with_a_loudspeaker_keeps_its_words_read_aloud_in_the_library(
        database, settings, clock, issuer):
    store = MediaStore(settings.media_dir)
    with transaction(database.sessions) as session:
        alert = create_alert(session, actor_of(session, issuer), clock, AlertIn(
            title="Ngập úng", text=FLOOD, severity="urgent", targets={"organisations": ["hn-hadong-phula"]}), store)
        alert_id, sha = alert.id, alert.spoken_sha256
    assert sha is not None
    assert_spoken(store.path_for(sha), at_least_s=2.0)
    with database.sessions() as session:
        alert = session.get(Alert, alert_id)
        asset = session.scalar(select(MediaAsset).where(MediaAsset.sha256 == sha))
        assert (asset.organisation_id, asset.kind, asset.mime) == ("hn-hadong-phula", MediaKind.audio, "audio/ogg")
        screens = {screen.id: screen.kind for screen in alert_screens(session, alert)}
        assert screens[PHULA_SPEAKER] is ScreenKind.speaker and len(screens) == 3  # two displays and the speaker
        # The loudspeaker's order carries the audio; the displays' the text alone, as before.
        spoken, shown = alert_order(alert, spoken=True), alert_order(alert)
    assert (spoken.kind, spoken.media, spoken.media_entry.mime) == ("text", sha, "audio/ogg")
    assert spoken.media_entry.duration_ms == asset.duration_ms > 2000
    assert spoken.content == sha  # proof-of-play names the audio played
    assert (shown.media, shown.media_entry) == (None, None)
    assert AlertOrder.model_validate(spoken.model_dump(mode="json")) == spoken


def test_the_same_words_again_reuse_the_units_file(database, settings, clock, issuer):
    store = MediaStore(settings.media_dir)
    shas = []
    for _ in range(2):
        with transaction(database.sessions) as session:
            shas.append(create_alert(session, actor_of(session, issuer), clock, AlertIn(
                title="Mất điện", text="Mất điện từ 8 giờ đến 11 giờ.",
                targets={"screens": [PHULA_SPEAKER]}), store).spoken_sha256)
    assert shas[0] == shas[1] is not None
    with database.sessions() as session:
        assert len(session.scalars(select(MediaAsset).where(MediaAsset.sha256 == shas[0])).all()) == 1


def test_a_text_alert_to_displays_only_is_not_read_aloud(database, settings, clock, issuer):
    with transaction(database.sessions) as session:
        alert = create_alert(session, actor_of(session, issuer), clock, AlertIn(
            title="Ngập úng", text=FLOOD, targets={"screens": ["hn-hadong-phula-001"]}),
            MediaStore(settings.media_dir))
        assert alert.spoken_sha256 is None
        assert session.scalars(select(MediaAsset)).all() == []


def test_without_espeak_ng_the_alert_still_goes_to_the_displays_and_a_speaker_only_alert_is_refused(
        database, settings, clock, issuer, no_espeak):
    store = MediaStore(settings.media_dir)
    with transaction(database.sessions) as session:
        alert = create_alert(session, actor_of(session, issuer), clock, AlertIn(
            title="Ngập úng", text=FLOOD, targets={"organisations": ["hn-hadong-phula"]}), store)
        assert alert.spoken_sha256 is None
        assert PHULA_SPEAKER not in {screen.id for screen in alert_screens(session, alert)}
    with transaction(database.sessions) as session, pytest.raises(Invalid, match="could not be read aloud"):
        create_alert(session, actor_of(session, issuer), clock, AlertIn(
            title="Ngập úng", text=FLOOD, targets={"screens": [PHULA_SPEAKER]}), store)


# -- the alert's page ---------------------------------------------------------------------------------------------


def test_the_alerts_page_plays_what_the_speakers_read_or_says_they_will_not_get_it(api, web, monkeypatch, tmp_path):
    staff = api("phula-staff")
    answer = staff.post("/api/v1/alerts", json={"title": "Ngập úng", "text": FLOOD, "severity": "urgent",
                                                "targets": {"organisations": ["hn-hadong-phula"]}})
    assert answer.status_code == 201, answer.text
    alert = answer.json()
    assert alert["spoken"] and alert["screens"] == 3
    sign_in(web, "phula-staff")
    page = web.get(f"/alerts/{alert['id']}").text
    assert f'src="/api/v1/media/{alert["spoken"]}/content"' in page
    assert re.search(r'id="spoken-speakers">1<', page) and "Loa truyền thanh" in page
    audio = web.get(f"/api/v1/media/{alert['spoken']}/content")
    assert (audio.status_code, audio.headers["content-type"]) == (200, "audio/ogg")

    hide_espeak(tmp_path, monkeypatch)
    answer = staff.post("/api/v1/alerts", json={"title": "Ngập úng", "text": FLOOD + " Lần 2.",
                                                "targets": {"organisations": ["hn-hadong-phula"]}})
    assert answer.status_code == 201, answer.text
    alert = answer.json()
    assert alert["spoken"] is None and alert["screens"] == 2
    page = web.get(f"/alerts/{alert['id']}")
    assert page.status_code == 200 and 'id="spoken-missing"' in page.text
    assert "Loa truyền thanh sẽ không phát tin này" in page.text


def test_the_spoken_file_deleted_from_the_library_leaves_the_alert_to_its_displays(api, web, settings):
    staff = api("phula-staff")
    alert = staff.post("/api/v1/alerts", json={"title": "Ngập úng", "text": FLOOD,
                                               "targets": {"organisations": ["hn-hadong-phula"]}}).json()
    spoken = alert["spoken"]
    assert spoken and alert["screens"] == 3
    answer = staff.delete(f"/api/v1/media/{spoken}")
    assert answer.status_code == 204, answer.text
    after = staff.get(f"/api/v1/alerts/{alert['id']}").json()
    assert (after["spoken"], after["screens"]) == (None, 2)
    assert not MediaStore(settings.media_dir).has(spoken)
    sign_in(web, "phula-staff")
    assert 'id="spoken-missing"' in web.get(f"/alerts/{alert['id']}").text
