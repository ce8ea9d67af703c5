"""Security suite: path traversal. Names that try to leave their folder — `../`, absolute paths, NUL, backslashes,
URL-encoded dots — in media uploads, in the media ids of the staff API and of the players' download endpoint, and in
the player id of a screenshot upload: none reads or writes a file outside the server's store, and each gets a clear
refusal or a harmless, cleaned name.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from scheduler.players import register_player
from signage.db import transaction
from signage.signing import Signer

pytestmark = pytest.mark.security

PLAYER = "hn-hadong-phula-001"
HOSTILE_NAMES = ["../../etc/passwd.mp4", "/etc/cron.d/job.mp4", "..\\..\\windows\\clip.mp4", "clip\x00.sh.mp4",
                 "%2e%2e%2f%2e%2e%2fclip.mp4", "....//....//clip.mp4", "C:\\Users\\clip.mp4", "./.hidden/../x.mp4"]
CRAFTED_IDS = ["..%2F..%2Fsignage.db", "..%2f..%2fsignage-key.pem", "%2e%2e%2fsignage.db", "%2Fetc%2Fpasswd",
               "..%5C..%5Csignage.db", "a" * 64 + "%00", "A" * 64, "a" * 63, "a" * 64 + "%2F..%2F..%2Fsignage.db",
               "%2e%2e"]  # (a bare ".." never reaches the server: clients resolve it in the URL)


@pytest.fixture
def database_url(tmp_path) -> str:
    # Paths are the server's and the store's business; the database's kind changes nothing here.
    return f"sqlite:///{tmp_path / 'signage.db'}"


def files_under(root: Path) -> set[Path]:
    return {path for path in root.rglob("*") if path.is_file()}


@pytest.fixture
def clip_bytes(make_media) -> bytes:
    return make_media("clip.mp4", seconds=1).read_bytes()


def test_uploaded_file_names_that_try_to_leave_the_store_are_kept_as_plain_names_and_write_nothing_outside(
        api, settings, clip_bytes, tmp_path):
    client = api("phula-staff")
    before = files_under(tmp_path)
    names, shas = {}, set()
    for name in HOSTILE_NAMES:
        answer = client.post("/api/v1/media", files={"file": (name, clip_bytes)})
        assert answer.status_code in (200, 201), (name, answer.text)
        names[name], sha = answer.json()["name"], answer.json()["sha256"]
        shas.add(sha)
    # The same bytes each time: one file in the store and its thumbnail, both named by the sha256; nothing else.
    [sha] = shas
    written = files_under(tmp_path) - before
    assert {path.stem for path in written if path.suffix != ".db-wal"} == {sha}
    assert all(path.is_relative_to(settings.data_dir) for path in written)
    for shown in names.values():
        assert not {"/", "\\", "\x00"} & set(shown) and shown not in ("", ".", ".."), names


def test_a_crafted_media_id_reads_nothing_through_the_staff_api(api):
    client = api("city-admin")
    for crafted in CRAFTED_IDS:
        for path in (f"/api/v1/media/{crafted}", f"/api/v1/media/{crafted}/content",
                     f"/api/v1/media/{crafted}/thumbnail"):
            answer = client.get(path)
            assert answer.status_code in (404, 422), (path, answer.status_code)
            assert b"BEGIN PRIVATE KEY" not in answer.content and b"SQLite format" not in answer.content


@pytest.fixture
def player_auth(database, settings, clock, staff) -> tuple[str, str]:
    with transaction(database.sessions) as session:
        config = register_player(session, PLAYER, settings, Signer.load_or_create(settings.data_dir),
                                 "http://127.0.0.1", clock.now())
    return config.username, config.password


def test_a_crafted_media_id_reads_nothing_through_the_players_download(app, web, player_auth):
    for crafted in CRAFTED_IDS:
        for method in ("GET", "HEAD"):
            answer = web.request(method, f"/media/{crafted}", auth=player_auth)
            assert answer.status_code == 404, (method, crafted, answer.status_code)
            assert b"BEGIN PRIVATE KEY" not in answer.content and b"SQLite format" not in answer.content


def test_a_player_cannot_write_a_screenshot_under_another_name(app, web, player_auth, settings):
    png = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
    before = files_under(settings.data_dir)
    for target in ["..%2F..%2Fevil", "%2e%2e", "hn-hadong-phula-002", "%2Fetc", "hn-hadong-phula-001%2F..%2F.."]:
        answer = web.post(f"/players/{target}/screenshot", content=png, auth=player_auth,
                          headers={"content-type": "image/png"})
        assert answer.status_code in (403, 404), (target, answer.status_code, answer.text)
    assert files_under(settings.data_dir) == before


def test_an_anonymous_client_cannot_reach_the_store_through_static_files(app):
    anonymous = TestClient(app, base_url="http://127.0.0.1")
    for path in ("/static/..%2F..%2Fsignage.db", "/static/%2e%2e/%2e%2e/app.py", "/static/../app.py"):
        answer = anonymous.get(path)
        assert answer.status_code == 404, (path, answer.status_code)
