"""Uploading into the media library: streamed to disk under a size limit, probed with ffprobe, refused with the
reason when players cannot play it (and then nothing stays on disk), duplicates found by sha256."""

from __future__ import annotations

import asyncio
import hashlib
import re
import tempfile
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from campaigns.models import AuditEntry
from media.models import MediaAsset
from media.store import MediaStore
from media.thumbnails import Thumbnails
from media.upload import TooLarge, receive_form
from tests.conftest import PASSWORD, sign_in

SMALL_LIMIT = 200_000


@pytest.fixture
def private_tempdir(tmp_path, monkeypatch, database) -> Path:
    """The process's temporary directory, for this test alone: to show that uploads leave nothing there. (Taken
    after the database, whose PostgreSQL server keeps its files in the usual one.)"""
    directory = tmp_path / "system-tmp"
    directory.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(directory))
    return directory


def upload(client: TestClient, path: Path, name: str | None = None, **fields: str):
    return client.post("/api/v1/media", files={"file": (name or path.name, path.read_bytes())}, data=fields)


def left_on_disk(settings, private_tempdir: Path) -> list[Path]:
    store = MediaStore(settings.media_dir)
    places = [store.root, Thumbnails.beside(store).root, private_tempdir]
    return [path for place in places if place.exists() for path in place.rglob("*") if path.is_file()]


def media_rows(session) -> int:
    return session.scalar(select(func.count()).select_from(MediaAsset))


# -- accepted ------------------------------------------------------------------------------------------------


def test_an_mp4_is_accepted_with_its_container_codecs_duration_and_resolution(api, make_media):
    clip = make_media("clip.mp4", seconds=2)
    answer = upload(api("phula-staff"), clip)
    assert answer.status_code == 201, answer.text
    item = answer.json()
    assert item["sha256"] == hashlib.sha256(clip.read_bytes()).hexdigest()
    assert (item["kind"], item["mime"], item["container"]) == ("video", "video/mp4", "mov,mp4,m4a,3gp,3g2,mj2")
    assert (item["video_codec"], item["audio_codec"], item["width"], item["height"]) == ("h264", "aac", 320, 180)
    assert abs(item["duration_ms"] - 2000) <= 100
    assert (item["bytes"], item["name"], item["duplicate"]) == (clip.stat().st_size, "clip.mp4", False)
    assert (item["organisation_id"], item["uploaded_by"]) == ("hn-hadong-phula", "phula-staff")


def test_an_accepted_file_is_kept_in_the_store_under_its_sha256(api, make_media, settings):
    clip = make_media("clip.mp4")
    sha = upload(api("phula-staff"), clip).json()["sha256"]
    assert MediaStore(settings.media_dir).path_for(sha).read_bytes() == clip.read_bytes()


def test_a_video_gets_a_small_jpeg_thumbnail_beside_the_store(api, make_media, settings):
    client = api("phula-staff")
    sha = upload(client, make_media("clip.mp4")).json()["sha256"]
    store = MediaStore(settings.media_dir)
    thumbnail = Thumbnails.beside(store).path_for(sha)
    assert thumbnail.is_file() and not thumbnail.is_relative_to(store.root)
    answer = client.get(f"/api/v1/media/{sha}/thumbnail")
    assert answer.status_code == 200 and answer.headers["content-type"] == "image/jpeg"
    assert answer.content[:3] == b"\xff\xd8\xff" and answer.content == thumbnail.read_bytes()


def test_a_png_is_an_image_shown_for_ten_seconds_by_default(api, make_media):
    item = upload(api("phula-staff"), make_media("poster.png")).json()
    assert (item["kind"], item["mime"], item["width"], item["height"]) == ("image", "image/png", 640, 360)
    assert (item["duration_ms"], item["display_ms"]) == (None, 10_000)
    assert item["thumbnail_url"] == f"/api/v1/media/{item['sha256']}/thumbnail"


def test_an_image_keeps_the_display_time_given_at_upload(api, make_media):
    client = api("phula-staff")
    item = upload(client, make_media("poster.png"), display_ms="15000").json()
    assert item["display_ms"] == 15_000
    assert client.get(f"/api/v1/media/{item['sha256']}").json()["display_ms"] == 15_000


def test_an_mp3_is_audio_for_speaker_screens_without_a_thumbnail(api, make_media, settings):
    client = api("phula-staff")
    item = upload(client, make_media("spot.mp3", seconds=3)).json()
    assert (item["kind"], item["mime"], item["audio_codec"], item["video_codec"]) == ("audio", "audio/mpeg", "mp3",
                                                                                      None)
    assert abs(item["duration_ms"] - 3000) <= 100
    assert (item["screen_kinds"], item["thumbnail_url"]) == (["speaker"], None)
    assert not Thumbnails.beside(MediaStore(settings.media_dir)).path_for(item["sha256"]).exists()
    assert client.get(f"/api/v1/media/{item['sha256']}/thumbnail").status_code == 404


def test_the_upload_is_recorded_in_the_audit_log(api, make_media, session):
    sha = upload(api("phula-staff"), make_media("clip.mp4")).json()["sha256"]
    entry = session.scalar(select(AuditEntry).where(AuditEntry.entity_id == sha))
    assert (entry.action, entry.username, entry.organisation_id) == ("media.upload", "phula-staff", "hn-hadong-phula")


def test_staff_may_upload_for_a_unit_below_their_own(api, make_media):
    answer = upload(api("hadong-staff"), make_media("clip.mp4"), organisation_id="hn-hadong-phula")
    assert answer.status_code == 201
    assert answer.json()["organisation_id"] == "hn-hadong-phula"


# -- refused -------------------------------------------------------------------------------------------------


def test_a_text_file_named_mp4_is_refused_as_not_media_and_nothing_stays(api, tmp_path, settings, session,
                                                                          private_tempdir):
    fake = tmp_path / "clip.mp4"
    fake.write_text("Kế hoạch tuyên truyền iHanoi\n" * 200)
    answer = upload(api("phula-staff"), fake)
    assert answer.status_code == 422
    assert answer.headers["content-type"] == "application/problem+json"
    assert "clip.mp4 is not a media file" in answer.json()["detail"]
    assert "H.264" in answer.json()["detail"]  # says what is accepted
    assert left_on_disk(settings, private_tempdir) == [] and media_rows(session) == 0


def test_a_truncated_video_is_refused_as_damaged_and_nothing_stays(api, make_media, tmp_path, settings, session,
                                                                   private_tempdir):
    whole = make_media("clip.mp4", seconds=4).read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(whole[: len(whole) // 2])
    answer = upload(api("phula-staff"), cut)
    assert answer.status_code == 422
    assert "cut.mp4" in answer.json()["detail"] and "truncated or damaged" in answer.json()["detail"]
    assert left_on_disk(settings, private_tempdir) == [] and media_rows(session) == 0


def test_a_video_in_a_codec_players_do_not_take_is_refused_with_what_they_take(api, tmp_path, settings,
                                                                               private_tempdir):
    import subprocess

    mpeg2 = tmp_path / "old.mpg"
    subprocess.run(["ffmpeg", "-v", "error", "-f", "lavfi", "-i", "testsrc=size=320x180:duration=1",
                    "-c:v", "mpeg2video", str(mpeg2)], check=True, timeout=60)
    answer = upload(api("phula-staff"), mpeg2)
    assert answer.status_code == 422
    detail = answer.json()["detail"]
    assert "'mpeg2video'" in detail and "H.264, H.265, VP8, VP9 or MPEG-4" in detail and "AAC, MP3" in detail
    assert left_on_disk(settings, private_tempdir) == []


def test_a_display_time_for_a_video_is_refused(api, make_media, settings, private_tempdir):
    answer = upload(api("phula-staff"), make_media("clip.mp4"), display_ms="5000")
    assert answer.status_code == 422 and "display_ms is for still images only" in answer.json()["detail"]
    assert left_on_disk(settings, private_tempdir) == []


@pytest.fixture
def small_limit(settings, clock, database, staff):
    """The app with uploads limited to SMALL_LIMIT bytes, and a staff client of it."""
    from scheduler.app import create_app

    app = create_app(settings.model_copy(update={"jobs": False, "max_upload_bytes": SMALL_LIMIT}), clock)
    with TestClient(app, base_url="http://127.0.0.1") as client:
        token = client.post("/api/v1/auth/token", json={"username": "phula-staff", "password": PASSWORD})
        client.headers["Authorization"] = f"Bearer {token.json()['access_token']}"
        yield client


def test_a_file_over_the_size_limit_is_refused_with_413_and_nothing_stays(small_limit, tmp_path, settings, session,
                                                                          private_tempdir):
    big = tmp_path / "big.mp4"
    big.write_bytes(b"\0" * (SMALL_LIMIT + 1))
    answer = upload(small_limit, big)
    assert answer.status_code == 413
    assert "larger than the 195.3 KB an upload may be" in answer.json()["detail"]
    assert left_on_disk(settings, private_tempdir) == [] and media_rows(session) == 0


def test_a_body_announcing_more_than_the_limit_is_refused_before_it_is_read(small_limit, tmp_path, settings,
                                                                            private_tempdir):
    big = tmp_path / "big.mp4"
    big.write_bytes(b"\0" * (SMALL_LIMIT * 3))
    answer = upload(small_limit, big)
    assert answer.status_code == 413
    assert left_on_disk(settings, private_tempdir) == []


def test_reading_stops_as_soon_as_the_file_passes_the_limit(tmp_path):
    boundary = "xyz"
    chunk, sent = b"\1" * 65536, []

    async def body():
        sent.append(1)
        yield f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.mp4"\r\n\r\n'.encode()
        for _ in range(1000):  # 64 MB on offer
            sent.append(1)
            yield chunk

    store = MediaStore(tmp_path / "media")
    with pytest.raises(TooLarge):
        asyncio.run(receive_form(body(), f"multipart/form-data; boundary={boundary}", store, 100_000))
    assert len(sent) <= 3
    assert list(store.tmp_dir.iterdir()) == []


def test_a_body_that_is_not_a_form_is_refused_with_415(api, make_media):
    answer = api("phula-staff").post("/api/v1/media", content=make_media("clip.mp4").read_bytes(),
                                     headers={"Content-Type": "video/mp4"})
    assert answer.status_code == 415 and "multipart/form-data" in answer.json()["detail"]


def test_a_form_without_a_file_is_refused(api):
    answer = api("phula-staff").post("/api/v1/media", files={"other": ("x.txt", b"x")})
    assert answer.status_code == 422 and "no file" in answer.json()["detail"]


# -- duplicates ----------------------------------------------------------------------------------------------


def test_the_same_bytes_uploaded_again_answer_200_with_the_item_already_there(api, make_media, session, settings):
    client, clip = api("phula-staff"), make_media("clip.mp4")
    first = upload(client, clip)
    again = upload(client, clip, name="the same clip.mp4")
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["duplicate"] is True
    assert again.json()["sha256"] == first.json()["sha256"] and again.json()["name"] == "clip.mp4"
    assert media_rows(session) == 1
    assert len(list(MediaStore(settings.media_dir).root.glob("??/*"))) == 1


def test_the_same_bytes_held_by_another_ward_give_the_uploader_its_own_item_saying_nothing_of_it(
        api, make_media, session, settings, clock):
    clip = make_media("clip.mp4")
    phula, vanquan = api("phula-staff"), api("vanquan-staff")
    first = upload(phula, clip, name="phula-clip.mp4")
    clock.advance(timedelta(minutes=5))
    answer = upload(vanquan, clip, name="vanquan-clip.mp4")

    # Answered as any new file is: created, not a duplicate, with the ward's own name, unit and uploader.
    assert (first.status_code, answer.status_code) == (201, 201), answer.text
    mine = answer.json()
    assert mine["sha256"] == first.json()["sha256"] and mine["duplicate"] is False
    assert (mine["name"], mine["organisation_id"], mine["uploaded_by"]) == ("vanquan-clip.mp4", "hn-hadong-vanquan",
                                                                            "vanquan-staff")
    assert "phula" not in answer.text.lower()
    # Each ward sees its own item only, through the list and by the file's sha256.
    for client, name, user in ((phula, "phula-clip.mp4", "phula-staff"),
                               (vanquan, "vanquan-clip.mp4", "vanquan-staff")):
        listed = client.get("/api/v1/media").json()["items"]
        assert [(i["name"], i["uploaded_by"]) for i in listed] == [(name, user)]
        assert client.get(f"/api/v1/media/{mine['sha256']}").json()["name"] == name
    # Two library rows over one stored file.
    assert media_rows(session) == 2
    assert len(list(MediaStore(settings.media_dir).root.glob("??/*"))) == 1


# -- who and where -------------------------------------------------------------------------------------------


def test_a_manager_may_not_upload(api, make_media, session):
    answer = upload(api("hadong-manager"), make_media("clip.mp4"))
    assert answer.status_code == 403 and "may not upload media" in answer.json()["detail"]
    assert media_rows(session) == 0


def test_uploading_for_a_unit_outside_ones_own_is_not_found(api, make_media, settings, private_tempdir):
    answer = upload(api("phula-staff"), make_media("clip.mp4"), organisation_id="hn-hadong-vanquan")
    assert answer.status_code == 404
    assert left_on_disk(settings, private_tempdir) == []


def test_uploading_needs_a_signed_in_user(web, make_media):
    answer = upload(web, make_media("clip.mp4"))
    assert answer.status_code == 401


# -- from the library page -----------------------------------------------------------------------------------


def test_the_page_upload_redirects_to_the_library_with_a_notice(web, make_media):
    csrf = sign_in(web, "phula-staff")
    clip = make_media("clip.mp4")
    answer = web.post("/media", data={"csrf_token": csrf}, files={"file": ("clip.mp4", clip.read_bytes())},
                      follow_redirects=False)
    assert answer.status_code == 303
    sha = hashlib.sha256(clip.read_bytes()).hexdigest()
    assert answer.headers["location"] == f"/media?notice=uploaded&item={sha}"
    page = web.get(answer.headers["location"]).text
    assert 'id="media-notice"' in page and f'id="media-{sha}"' in page


def test_the_page_shows_why_a_file_was_refused(web, tmp_path, settings, private_tempdir):
    csrf = sign_in(web, "phula-staff")
    answer = web.post("/media", data={"csrf_token": csrf}, files={"file": ("clip.mp4", b"just text, not a clip")})
    assert answer.status_code == 422
    error = re.search(r'id="media-error"[^>]*>(.*?)</p>', answer.text, re.S).group(1)
    assert "clip.mp4 is not a media file" in error
    assert left_on_disk(settings, private_tempdir) == []


def test_the_page_takes_an_images_display_time_in_seconds(web, api, make_media):
    csrf = sign_in(web, "phula-staff")
    poster = make_media("poster.png")
    web.post("/media", data={"csrf_token": csrf, "display_s": "7,5"}, files={"file": ("poster.png",
                                                                                     poster.read_bytes())})
    sha = hashlib.sha256(poster.read_bytes()).hexdigest()
    assert api("phula-staff").get(f"/api/v1/media/{sha}").json()["display_ms"] == 7_500


def test_a_page_upload_without_the_csrf_token_is_refused_and_nothing_stays(web, make_media, settings, session,
                                                                           private_tempdir):
    sign_in(web, "phula-staff")
    answer = web.post("/media", files={"file": ("clip.mp4", make_media("clip.mp4").read_bytes())})
    assert answer.status_code == 403 and "CSRF" in answer.json()["detail"]
    assert left_on_disk(settings, private_tempdir) == [] and media_rows(session) == 0
