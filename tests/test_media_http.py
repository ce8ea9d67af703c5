"""Media for players over HTTP: per-player Basic auth, strong ETags, immutable caching, single byte ranges.

Most tests only read, so they share one served library per database backend (the example fleet and the
iHanoi campaign, imported the real way): a fresh database per test would cost seconds each. The tests that
change things (a revocation, a file lost from the store) get their own database and media made by ffmpeg.
"""

from __future__ import annotations

import hashlib
import os
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from campaigns.campaign_file import import_campaigns
from campaigns.fleet_file import import_fleet
from media.models import MediaAsset, held_by
from media.store import MediaStore, sha256_of
from scheduler.app import create_app
from scheduler.database import Database, open_database
from scheduler.players import register_player, revoke_player
from scheduler.web.routes.media_files import RangeNotSatisfiable, api, parse_range
from signage.clock import VirtualClock
from signage.config import Settings
from signage.db import transaction
from signage.signing import Signer
from tests.conftest import CAMPAIGN_FILE, EXAMPLES, FLEET_FILE
from tests.servers import serve_in_thread

IMMUTABLE = "public, max-age=31536000, immutable"
PLAYER, REVOKED = "hn-nb-t2-001", "hn-nb-t2-002"
WARD_PLAYER = "hn-hadong-phula-001"

WARD_FLEET = """\
schema: signage.fleet/1
organisations:
  - {id: hn, name: UBND Thành phố Hà Nội, kind: city}
  - {id: hn-hadong-phula, name: UBND phường Phú La, kind: ward, parent: hn}
sites:
  - {id: hadong-phula, name: Bộ phận một cửa phường Phú La, kind: ward_office, organisation: hn-hadong-phula}
screens:
  - {id: hn-hadong-phula-001, site: hadong-phula, name: Màn hình sảnh, kind: lcd, resolution: 1920x1080}
"""

WARD_CAMPAIGN = """\
schema: signage.campaigns/1
campaigns:
  - id: ihanoi-phula
    name: Tuyên truyền iHanoi tại phường Phú La
    organisation: hn-hadong-phula
    start_date: 2024-08-15
    end_date: 2024-10-10
    creatives: [{file: media/clip.mp4}]
    targets: {organisations: [hn-hadong-phula]}
"""

# Process-wide, recording only while a test watches: which files the server opened for a request.
_watching = threading.Event()
_opened: list[str] = []


def _record_opens(event: str, args: tuple) -> None:
    if event == "open" and _watching.is_set() and isinstance(args[0], str | bytes | os.PathLike):
        _opened.append(os.path.abspath(os.fsdecode(args[0])))


sys.addaudithook(_record_opens)


def media_app(settings: Settings, clock: VirtualClock) -> FastAPI:
    app = create_app(settings, clock)
    if not any(getattr(route, "path", None) == "/media/{sha256}" for route in app.routes):
        app.include_router(api)
    return app


def web_only(settings: Settings) -> Settings:
    """The app without its planning jobs and broker bridge: these tests need only HTTP and the database."""
    return settings.model_copy(update={"jobs": False, "mqtt": False})


def hanoi_clock() -> VirtualClock:
    return VirtualClock(datetime(2024, 8, 20, 3, 0, tzinfo=UTC))


@dataclass
class Served:
    client: TestClient
    settings: Settings
    database: Database
    store: MediaStore
    clip: bytes
    clip_sha: str
    poster_sha: str
    spot_sha: str
    secret: str
    revoked_secret: str

    @property
    def player(self) -> tuple[str, str]:
        return PLAYER, self.secret

    def url(self, sha: str | None = None) -> str:
        return f"/media/{sha or self.clip_sha}"


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def served(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    root = tmp_path_factory.mktemp("media-http")
    url = None if request.param == "sqlite" else request.getfixturevalue("postgres").create_database()
    settings = web_only(Settings(_env_file=None, data_dir=root / "var", database_url=url))
    clock, store = hanoi_clock(), MediaStore(settings.media_dir)
    database = open_database(settings)
    signer = Signer.load_or_create(settings.data_dir)
    with transaction(database.sessions) as session:
        import_fleet(session, FLEET_FILE, settings.timezone)
        import_campaigns(session, CAMPAIGN_FILE, store, clock, settings.timezone)
        player = register_player(session, PLAYER, settings, signer, "http://127.0.0.1", clock.now())
        revoked = register_player(session, REVOKED, settings, signer, "http://127.0.0.1", clock.now())
        revoke_player(session, REVOKED, clock.now())
    media = EXAMPLES / "media"
    try:
        with TestClient(media_app(settings, clock), base_url="http://127.0.0.1") as client:
            client.auth = (PLAYER, player.password)
            yield Served(client, settings, database, store, (media / "ihanoi-30s.mp4").read_bytes(),
                         sha256_of(media / "ihanoi-30s.mp4"), sha256_of(media / "ihanoi-poster.png"),
                         sha256_of(media / "ihanoi-spot.mp3"), player.password, revoked.password)
    finally:
        database.dispose()


def test_the_whole_file_comes_with_its_etag_length_mime_and_immutable_caching(served):
    response = served.client.get(served.url())
    assert response.status_code == 200
    assert response.content == served.clip
    assert response.headers["etag"] == f'"{served.clip_sha}"'
    assert response.headers["content-length"] == str(len(served.clip))
    assert response.headers["content-type"] == "video/mp4"
    assert response.headers["cache-control"] == IMMUTABLE
    assert response.headers["accept-ranges"] == "bytes"
    assert "content-range" not in response.headers


def test_images_and_audio_are_served_with_the_mime_type_probed_at_import(served):
    for sha, mime in ((served.poster_sha, "image/png"), (served.spot_sha, "audio/mpeg")):
        response = served.client.get(served.url(sha))
        assert response.status_code == 200
        assert response.headers["content-type"] == mime
        assert hashlib.sha256(response.content).hexdigest() == sha


def test_a_matching_if_none_match_gets_304_without_a_body(served):
    etag = f'"{served.clip_sha}"'
    for header in (etag, f"W/{etag}", f'"{"0" * 64}", {etag}', "*"):
        response = served.client.get(served.url(), headers={"If-None-Match": header})
        assert response.status_code == 304, header
        assert response.content == b""
        assert (response.headers["etag"], response.headers["cache-control"]) == (etag, IMMUTABLE)
    assert served.client.get(served.url(), headers={"If-None-Match": f'"{"0" * 64}"'}).status_code == 200


def test_a_byte_range_gets_206_with_exactly_those_bytes_and_content_range(served):
    response = served.client.get(served.url(), headers={"Range": "bytes=100-1123"})
    assert response.status_code == 206
    assert response.content == served.clip[100:1124]
    assert response.headers["content-range"] == f"bytes 100-1123/{len(served.clip)}"
    assert response.headers["content-length"] == "1024"
    assert response.headers["etag"] == f'"{served.clip_sha}"'
    assert response.headers["content-type"] == "video/mp4"


def test_open_ended_and_suffix_ranges_give_the_tail_of_the_file(served):
    size = len(served.clip)
    open_ended = served.client.get(served.url(), headers={"Range": f"bytes={size - 300}-"})
    suffix = served.client.get(served.url(), headers={"Range": "bytes=-300"})
    for response in (open_ended, suffix):
        assert response.status_code == 206
        assert response.content == served.clip[-300:]
        assert response.headers["content-range"] == f"bytes {size - 300}-{size - 1}/{size}"
    longer_than_the_file = served.client.get(served.url(), headers={"Range": f"bytes=-{size * 2}"})
    assert longer_than_the_file.status_code == 206
    assert longer_than_the_file.content == served.clip


def test_an_unsatisfiable_range_gets_416_with_the_files_size(served):
    size = len(served.clip)
    for header in (f"bytes={size}-", f"bytes={size + 10}-{size + 20}", "bytes=-0"):
        response = served.client.get(served.url(), headers={"Range": header})
        assert response.status_code == 416, header
        assert response.headers["content-range"] == f"bytes */{size}"
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["status"] == 416


def test_a_download_resumed_from_the_middle_reassembles_to_the_right_sha256(served):
    middle = len(served.clip) // 2 + 7
    first = served.client.get(served.url(), headers={"Range": f"bytes=0-{middle - 1}"})
    # The player resumes where it stopped, on condition that the file is still the one it began.
    rest = served.client.get(served.url(), headers={"Range": f"bytes={middle}-", "If-Range": first.headers["etag"]})
    assert (first.status_code, rest.status_code) == (206, 206)
    assert rest.headers["content-range"] == f"bytes {middle}-{len(served.clip) - 1}/{len(served.clip)}"
    assert hashlib.sha256(first.content + rest.content).hexdigest() == served.clip_sha


def test_if_range_with_another_validator_gets_the_whole_file(served):
    for validator in (f'"{"0" * 64}"', f'W/"{served.clip_sha}"', "Tue, 20 Aug 2024 03:00:00 GMT"):
        response = served.client.get(served.url(), headers={"Range": "bytes=10-19", "If-Range": validator})
        assert response.status_code == 200, validator
        assert response.content == served.clip


def test_several_ranges_get_the_whole_file(served):
    response = served.client.get(served.url(), headers={"Range": "bytes=0-9, 20-29"})
    assert response.status_code == 200
    assert response.content == served.clip


def test_a_wrong_secret_an_unknown_player_or_a_revoked_player_gets_401(served):
    for credentials in ((PLAYER, served.secret + "x"), (PLAYER, ""), ("hn-nobody-001", served.secret),
                        (REVOKED, served.revoked_secret)):
        response = served.client.get(served.url(), auth=credentials)
        assert response.status_code == 401, credentials
        assert response.headers["www-authenticate"] == 'Basic realm="signage-media"'
        assert response.headers["content-type"] == "application/problem+json"
        problem = response.json()
        assert (problem["type"], problem["title"], problem["status"]) == ("about:blank", "Unauthorized", 401)
        assert "signage player register" in problem["detail"]


def test_no_usable_credentials_get_401_with_a_basic_challenge(served):
    for authorization in (None, "Bearer abc", "Basic !!!not-base64!!!", "Basic bm8tY29sb24="):
        headers = {} if authorization is None else {"Authorization": authorization}
        response = served.client.get(served.url(), headers=headers, auth=None)
        assert response.status_code == 401, authorization
        assert response.headers["www-authenticate"] == 'Basic realm="signage-media"'
        assert response.headers["content-type"] == "application/problem+json"
        assert "player id as user name" in response.json()["detail"]


def test_a_malformed_sha_or_traversal_attempt_never_reaches_the_filesystem(served):
    (served.settings.data_dir / "secret.txt").write_text("not for players")
    sha = served.clip_sha
    attempts = ["..%2F..%2Fetc%2Fpasswd", "..%2F..%2F..%2Fsecret.txt", "%2e%2e", "%2e%2e%2f%2e%2e%2fsecret.txt",
                "..%5C..%5Csecret.txt", sha.upper(), sha[:-1], sha + "0", sha + "%00", f"{sha[:2]}%2F{sha}",
                f"{sha[:-1]}g", "%20" + sha[1:]]
    data_dir = os.path.abspath(served.settings.data_dir)
    clip_path = os.path.abspath(served.store.path_for(sha))
    _opened.clear()
    _watching.set()
    try:
        responses = {attempt: served.client.get(f"/media/{attempt}") for attempt in attempts}
        control = served.client.get(served.url())
    finally:
        _watching.clear()
    assert {a: r.status_code for a, r in responses.items() if r.status_code not in (404, 422)} == {}
    assert [a for a, r in responses.items() if b"not for players" in r.content] == []
    # The control request shows that the watch does see the store's files being opened.
    assert control.status_code == 200
    assert _opened.count(clip_path) == 1
    assert [p for p in _opened if p.startswith(data_dir) and p != clip_path] == []
    assert "/etc/passwd" not in _opened


def test_an_unknown_sha_gets_404_problem_json_saying_what_to_do(served):
    response = served.client.get(served.url("ab" * 32))
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert (problem["type"], problem["title"], problem["status"]) == ("about:blank", "Not Found", 404)
    assert "current plan" in problem["detail"]


def test_a_file_in_the_store_but_not_in_the_library_gets_404(served, tmp_path):
    stray = tmp_path / "stray.bin"
    stray.write_bytes(b"a file no campaign imported")
    sha, _ = served.store.add_file(stray)
    assert served.client.get(served.url(sha)).status_code == 404


def test_head_gives_the_headers_and_no_body(served):
    response = served.client.head(served.url(), headers={"Range": "bytes=0-9"})
    assert response.status_code == 200  # Range is defined for GET only (RFC 9110 §14.2)
    assert response.content == b""
    assert response.headers["content-length"] == str(len(served.clip))
    assert response.headers["etag"] == f'"{served.clip_sha}"'
    assert response.headers["content-type"] == "video/mp4"
    assert response.headers["cache-control"] == IMMUTABLE
    assert served.client.head(served.url(), headers={"If-None-Match": f'"{served.clip_sha}"'}).status_code == 304
    assert served.client.head(served.url(), auth=None).status_code == 401


def test_a_real_server_on_localhost_serves_a_resumed_download_to_httpx(served, tmp_path):
    # Big enough that the server must wait for a slow reader: the response is still streaming below.
    big = tmp_path / "big.mp4"
    big.write_bytes(served.clip * (24 * 2**20 // len(served.clip)))
    big_sha, big_size = served.store.add_file(big)
    with transaction(served.database.sessions) as session:
        clip = session.scalar(held_by(served.clip_sha))
        session.merge(MediaAsset(**{**{c.key: getattr(clip, c.key) for c in MediaAsset.__table__.columns},
                                    "sha256": big_sha, "bytes": big_size}))
    app = media_app(served.settings, hanoi_clock())
    server, thread, port = serve_in_thread(app)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", auth=served.player, timeout=10) as http:
            with http.stream("GET", served.url(big_sha)) as slow:
                assert slow.status_code == 200
                next(slow.iter_raw(65536))
                # A slow download holds no database connection, so many players cannot exhaust the pool.
                assert app.state.database.engine.pool.checkedout() == 0
            first = http.get(served.url(), headers={"Range": "bytes=0-4095"})
            rest = http.get(served.url(), headers={"Range": "bytes=4096-", "If-Range": first.headers["etag"]})
            refused = http.get(served.url(), auth=(PLAYER, "wrong"))
    finally:
        server.should_exit = True
        thread.join(timeout=10)
    assert not thread.is_alive()
    assert (first.status_code, rest.status_code, refused.status_code) == (206, 206, 401)
    assert rest.headers["content-range"] == f"bytes 4096-{len(served.clip) - 1}/{len(served.clip)}"
    assert hashlib.sha256(first.content + rest.content).hexdigest() == served.clip_sha


@dataclass
class Ward:
    client: TestClient
    clip_sha: str
    secret: str


@pytest.fixture
def ward(settings: Settings, database: Database, clock: VirtualClock, make_media, tmp_path: Path) -> Iterator[Ward]:
    """A database of its own, for the tests that change things: one ward, one screen, one clip made by ffmpeg."""
    files = tmp_path / "import"
    clip = make_media("clip.mp4", directory=files / "media")
    (files / "fleet.yaml").write_text(WARD_FLEET, encoding="utf-8")
    (files / "campaigns.yaml").write_text(WARD_CAMPAIGN, encoding="utf-8")
    settings = web_only(settings)
    with transaction(database.sessions) as session:
        import_fleet(session, files / "fleet.yaml", settings.timezone)
        import_campaigns(session, files / "campaigns.yaml", MediaStore(settings.media_dir), clock, settings.timezone)
        player = register_player(session, WARD_PLAYER, settings, Signer.load_or_create(settings.data_dir),
                                 "http://127.0.0.1", clock.now())
    with TestClient(media_app(settings, clock), base_url="http://127.0.0.1") as client:
        client.auth = (WARD_PLAYER, player.password)
        yield Ward(client, sha256_of(clip), player.password)


def test_a_player_revoked_mid_download_is_refused_on_its_next_request(ward, database, clock):
    assert ward.client.get(f"/media/{ward.clip_sha}", headers={"Range": "bytes=0-99"}).status_code == 206
    with transaction(database.sessions) as session:
        revoke_player(session, WARD_PLAYER, clock.now())
    assert ward.client.get(f"/media/{ward.clip_sha}", headers={"Range": "bytes=100-"}).status_code == 401


def test_a_file_lost_from_the_store_gets_404_naming_the_repair(ward, settings):
    MediaStore(settings.media_dir).path_for(ward.clip_sha).unlink()
    response = ward.client.get(f"/media/{ward.clip_sha}")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert "import its campaign file again" in response.json()["detail"]


@pytest.mark.parametrize(("header", "size", "expected"), [
    ("bytes=0-0", 10, (0, 0)),
    ("bytes=0-9", 10, (0, 9)),
    ("bytes=2-5", 10, (2, 5)),
    ("bytes=5-100", 10, (5, 9)),
    ("bytes=9-", 10, (9, 9)),
    ("bytes=0-", 10, (0, 9)),
    ("bytes=-3", 10, (7, 9)),
    ("bytes=-10", 10, (0, 9)),
    ("bytes=-11", 10, (0, 9)),
    ("BYTES = 2-5 ", 10, (2, 5)),
    ("bytes=2-5,", 10, (2, 5)),
    (f"bytes={2**70}-", 2**71, (2**70, 2**71 - 1)),
])
def test_parse_range_reads_a_single_byte_range(header, size, expected):
    assert parse_range(header, size) == expected


@pytest.mark.parametrize("header", [
    "bytes=0-1,3-4",  # several ranges: the whole file rather than multipart/byteranges
    "bytes=5-2",  # last before first: an invalid range, so the header is ignored
    "items=0-1", "bytes", "bytes=", "bytes=-", "bytes=,", "bytes=a-b", "bytes=1-2-3", "bytes=+1-2", "bytes=1 -2",
    "bytes=١-٢", "0-1",
])
def test_parse_range_answers_the_whole_file_for_what_is_not_one_valid_byte_range(header):
    assert parse_range(header, 10) is None


@pytest.mark.parametrize(("header", "size"), [
    ("bytes=10-", 10), ("bytes=11-", 10), ("bytes=10-20", 10), ("bytes=-0", 10), ("bytes=0-", 0), ("bytes=-5", 0),
])
def test_parse_range_refuses_a_range_past_the_end(header, size):
    with pytest.raises(RangeNotSatisfiable) as refused:
        parse_range(header, size)
    assert refused.value.size == size
