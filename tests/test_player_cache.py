"""The player's media cache against the real server: the scheduler app on uvicorn, a registered player, real media.

One server serves the whole module (a ward, its screen, a campaign with the example clip, poster and audio spot,
imported the real way, and one registered and one revoked player). In front of the app sits a recorder, an
ASGI layer that notes every request's Range headers, status and the body bytes sent: that is how the tests see
a download resumed rather than fetched again. Each test has its own cache folder and virtual clock.
"""

from __future__ import annotations

import hashlib
import os
import random
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from campaigns.campaign_file import import_campaigns
from campaigns.fleet_file import import_fleet
from media.store import MediaStore, sha256_of
from player.cache import BACKOFF_MAX, DISK_FULL, CorruptMedia, DownloadFailed, MediaCache
from scheduler.app import create_app
from scheduler.database import open_database
from scheduler.players import register_player, revoke_player
from signage.clock import VirtualClock
from signage.config import Settings
from signage.db import transaction
from signage.protocol import MediaEntry
from signage.signing import Signer
from tests.conftest import EXAMPLES
from tests.pg_server import free_port
from tests.servers import serve_in_thread

PLAYER, REVOKED = "hn-hadong-phula-001", "hn-hadong-phula-002"
START = datetime(2024, 8, 20, 3, 0, tzinfo=UTC)

FLEET = """\
schema: signage.fleet/1
organisations:
  - {id: hn, name: UBND Thành phố Hà Nội, kind: city}
  - {id: hn-hadong-phula, name: UBND phường Phú La, kind: ward, parent: hn}
sites:
  - {id: hadong-phula, name: Bộ phận một cửa phường Phú La, kind: ward_office, organisation: hn-hadong-phula}
screens:
  - {id: hn-hadong-phula-001, site: hadong-phula, name: Màn hình sảnh, kind: lcd, resolution: 1920x1080}
  - {id: hn-hadong-phula-002, site: hadong-phula, name: Màn hình cổng, kind: lcd, resolution: 1920x1080}
"""

CAMPAIGN = """\
schema: signage.campaigns/1
campaigns:
  - id: ihanoi-phula
    name: Tuyên truyền iHanoi tại phường Phú La
    organisation: hn-hadong-phula
    start_date: 2024-08-15
    end_date: 2024-10-10
    creatives: [{file: media/ihanoi-30s.mp4}, {file: media/ihanoi-poster.png}, {file: media/ihanoi-spot.mp3}]
    targets: {organisations: [hn-hadong-phula]}
"""


@dataclass
class Seen:
    path: str
    range: str | None
    if_range: str | None
    status: int = 0
    body_bytes: int = 0


class Recorder:
    """ASGI middleware noting each HTTP request the app answers; lifespan events pass straight through."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.seen: list[Seen] = []

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {key.decode("latin-1").lower(): value.decode("latin-1") for key, value in scope["headers"]}
        seen = Seen(scope["path"], headers.get("range"), headers.get("if-range"))
        self.seen.append(seen)

        async def counting(message: dict) -> None:
            if message["type"] == "http.response.start":
                seen.status = message["status"]
            elif message["type"] == "http.response.body":
                seen.body_bytes += len(message.get("body", b""))
            await send(message)

        await self.app(scope, receive, counting)


@dataclass
class Served:
    url: str
    store: MediaStore
    recorder: Recorder
    secret: str
    revoked_secret: str
    media: dict[str, dict] = field(default_factory=dict)  # the plan's media table for the three creatives
    data: dict[str, bytes] = field(default_factory=dict)  # sha -> the file's bytes

    def by_name(self, name: str) -> str:
        return hashlib.sha256((EXAMPLES / "media" / name).read_bytes()).hexdigest()

    @property
    def seen(self) -> list[Seen]:
        return self.recorder.seen


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    root = tmp_path_factory.mktemp("player-cache")
    settings = Settings(_env_file=None, data_dir=root / "var", database_url=f"sqlite:///{root / 'signage.db'}",
                        jobs=False, mqtt=False)
    files = root / "import"
    (files / "media").mkdir(parents=True)
    for name in ("ihanoi-30s.mp4", "ihanoi-poster.png", "ihanoi-spot.mp3"):
        shutil.copy(EXAMPLES / "media" / name, files / "media" / name)
    (files / "fleet.yaml").write_text(FLEET, encoding="utf-8")
    (files / "campaigns.yaml").write_text(CAMPAIGN, encoding="utf-8")
    clock, store = VirtualClock(START), MediaStore(settings.media_dir)
    database = open_database(settings)
    try:
        with transaction(database.sessions) as session:
            import_fleet(session, files / "fleet.yaml", settings.timezone)
            import_campaigns(session, files / "campaigns.yaml", store, clock, settings.timezone)
            signer = Signer.load_or_create(settings.data_dir)
            player = register_player(session, PLAYER, settings, signer, "http://127.0.0.1", clock.now())
            revoked = register_player(session, REVOKED, settings, signer, "http://127.0.0.1", clock.now())
            revoke_player(session, REVOKED, clock.now())
    finally:
        database.dispose()
    recorder = Recorder(create_app(settings, clock))
    server, thread, port = serve_in_thread(recorder)
    try:
        result = Served(f"http://127.0.0.1:{port}", store, recorder, player.password, revoked.password)
        for path in sorted((files / "media").iterdir()):
            sha = sha256_of(path)
            result.data[sha] = path.read_bytes()
            result.media[sha] = {"url": f"/media/{sha}", "bytes": path.stat().st_size, "mime": "application/x",
                                 "duration_ms": 30_000}
        yield result
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock(START)


@pytest.fixture
def make_cache(served: Served, clock: VirtualClock, tmp_path: Path):
    served.seen.clear()

    def make(budget_bytes: int = 10**9, secret: str | None = None, player: str = PLAYER, **options) -> MediaCache:
        return MediaCache(tmp_path / "cache", served.url, player, served.secret if secret is None else secret,
                          budget_bytes, clock, timeout_s=10, rng=random.Random(5), **options)

    return make


def media_gets(served: Served) -> list[Seen]:
    return [seen for seen in served.seen if seen.path.startswith("/media/")]


def test_a_download_is_verified_and_stored_under_its_sha256(served, make_cache, tmp_path):
    cache = make_cache()
    clip = served.by_name("ihanoi-30s.mp4")
    assert cache.path_for(clip) is None
    path = cache.download(clip, served.media[clip])
    assert path == tmp_path / "cache" / clip[:2] / clip
    assert path.read_bytes() == served.data[clip]
    assert cache.path_for(clip) == path
    assert list((tmp_path / "cache" / "partial").iterdir()) == []
    [seen] = media_gets(served)
    assert (seen.path, seen.range, seen.status) == (f"/media/{clip}", None, 200)
    assert seen.body_bytes == len(served.data[clip])


def test_a_sync_fetches_every_missing_item_once_and_reports_the_figures(served, make_cache):
    cache = make_cache()
    assert cache.figures(served.media) == (0, 3, 0)
    report = cache.sync(served.media, set())
    assert sorted(report.downloaded) == sorted(served.media)
    assert (report.failed, report.corrupt, report.evicted, report.deferred) == ({}, set(), [], {})
    again = cache.sync(served.media, set())
    assert again.downloaded == []
    assert len(media_gets(served)) == 3
    total = sum(len(data) for data in served.data.values())
    assert cache.figures(served.media) == (3, 0, total)
    assert tuple(cache.figures({**served.media, "f" * 64: served.media[next(iter(served.media))]})) == (3, 1, total)


def test_an_interrupted_download_resumes_from_the_partial_file_with_a_range_request(served, make_cache, tmp_path):
    cache = make_cache()
    clip = served.by_name("ihanoi-30s.mp4")
    data = served.data[clip]
    half = len(data) // 2
    (tmp_path / "cache" / "partial" / f"{clip}.part").write_bytes(data[:half])
    report = cache.sync({clip: served.media[clip]}, set())
    assert report.downloaded == [clip]
    assert cache.path_for(clip).read_bytes() == data
    [seen] = media_gets(served)
    assert (seen.range, seen.if_range, seen.status) == (f"bytes={half}-", None, 206)
    assert seen.body_bytes == len(data) - half  # only the missing half crossed the wire
    assert not (tmp_path / "cache" / "partial" / f"{clip}.part").exists()


@pytest.mark.faults
def test_a_file_corrupted_on_the_server_is_never_stored_and_is_stored_once_the_right_file_is_back(
        served, make_cache, clock, tmp_path):
    cache = make_cache()
    poster = served.by_name("ihanoi-poster.png")
    good = served.data[poster]
    damaged = bytes(b ^ 0xFF for b in good[:4096]) + good[4096:]
    stored = served.store.path_for(poster)
    stored.write_bytes(damaged)
    try:
        with pytest.raises(CorruptMedia) as refused:
            cache.download(poster, served.media[poster])
        assert refused.value.got == hashlib.sha256(damaged).hexdigest()
        assert refused.value.sha256 == poster
        report = cache.sync({poster: served.media[poster]}, set())
        assert report.corrupt == {poster}
        assert "sha256" in report.failed[poster] and report.fatal == set()
        assert cache.path_for(poster) is None
        assert [p for p in (tmp_path / "cache").rglob("*") if p.is_file()] == []
    finally:
        stored.write_bytes(good)
    assert cache.sync({poster: served.media[poster]}, set()).deferred == {poster: cache.retry_at(poster)}
    clock.advance(BACKOFF_MAX)
    report = cache.sync({poster: served.media[poster]}, set())
    assert report.downloaded == [poster]
    assert cache.path_for(poster).read_bytes() == good


def test_backoff_skips_a_failing_item_until_its_retry_time_doubling_up_to_ten_minutes(served, make_cache, clock):
    cache = make_cache()
    lost = "0" * 64  # in no library: the server answers 404, which may change, so it is retried
    plan = {lost: {"url": f"/media/{lost}", "bytes": 10, "mime": "video/mp4", "duration_ms": 1000}}
    report = cache.sync(plan, set())
    assert report.failed[lost].startswith("HTTP 404: ")
    assert report.fatal == set()
    first = cache.retry_at(lost)
    assert clock.now() + timedelta(seconds=1) <= first <= clock.now() + timedelta(seconds=2)
    assert cache.sync(plan, set()).deferred == {lost: first}
    clock.set(first - timedelta(microseconds=1))
    assert cache.sync(plan, set()).deferred == {lost: first}
    assert len(media_gets(served)) == 1
    delays = []
    for _ in range(14):
        clock.set(cache.retry_at(lost))
        tried = clock.now()
        assert lost in cache.sync(plan, set()).failed
        delays.append(cache.retry_at(lost) - tried)
    assert len(media_gets(served)) == 15
    ceilings = [min(timedelta(seconds=2 * 2**n), BACKOFF_MAX) for n in range(1, 15)]
    assert all(ceiling / 2 <= delay <= ceiling for delay, ceiling in zip(delays, ceilings, strict=True))
    assert max(delays) <= BACKOFF_MAX


def test_eviction_removes_unneeded_files_oldest_first_only_while_over_budget_and_never_a_playing_one(
        served, make_cache, tmp_path):
    clip, poster, spot = (served.by_name(n) for n in ("ihanoi-30s.mp4", "ihanoi-poster.png", "ihanoi-spot.mp3"))
    size = {sha: len(served.data[sha]) for sha in served.data}
    cache = make_cache(budget_bytes=size[clip] + size[spot])
    report = cache.sync(served.media, set())
    assert len(report.downloaded) == 3 and report.evicted == []  # what the plan needs stays, budget or not
    assert report.over_budget
    for age, sha in enumerate((poster, clip, spot)):  # the poster was stored first, the spot last
        os.utime(cache.path_for(sha), ns=(10**18 + age * 10**9, 10**18 + age * 10**9))
    report = cache.sync({}, set())  # a new plan that needs none of them
    assert report.evicted == [poster]  # the oldest goes, and then the cache is within budget
    assert not report.over_budget
    cache.budget_bytes = 0
    report = cache.sync({}, {clip})
    assert report.evicted == [spot]
    assert cache.path_for(clip).read_bytes() == served.data[clip]  # playing: kept although over budget
    assert report.over_budget


def test_room_is_made_before_a_new_plans_files_download(served, make_cache):
    clip, poster, spot = (served.by_name(n) for n in ("ihanoi-30s.mp4", "ihanoi-poster.png", "ihanoi-spot.mp3"))
    size = {sha: len(served.data[sha]) for sha in served.data}
    cache = make_cache(budget_bytes=size[clip])
    cache.sync({poster: served.media[poster], spot: served.media[spot]}, set())
    report = cache.sync({clip: served.media[clip]}, set())
    assert sorted(report.evicted) == sorted([poster, spot])
    assert report.downloaded == [clip]
    assert cache.disk_bytes() == size[clip] and not report.over_budget


def test_a_revoked_player_gets_a_failure_that_is_not_retried(served, make_cache, clock):
    cache = make_cache(secret=served.revoked_secret, player=REVOKED)
    clip = served.by_name("ihanoi-30s.mp4")
    with pytest.raises(DownloadFailed) as refused:
        cache.download(clip, served.media[clip])
    assert (refused.value.status, refused.value.retryable) == (401, False)
    assert "signage player register" in refused.value.detail
    report = cache.sync({clip: served.media[clip]}, set())
    assert report.fatal == {clip} and report.failed[clip].startswith("HTTP 401: ")
    clock.advance(timedelta(days=1))
    assert cache.sync({clip: served.media[clip]}, set()).deferred == {clip: None}
    assert len(media_gets(served)) == 2
    assert cache.sync({clip: served.media[clip]}, set(), ignore_backoff=True).fatal == {clip}  # `sync_now`
    assert len(media_gets(served)) == 3
    assert cache.path_for(clip) is None


def test_a_wrong_secret_is_not_retryable_either(served, make_cache):
    cache = make_cache(secret="not-the-secret")
    clip = served.by_name("ihanoi-30s.mp4")
    with pytest.raises(DownloadFailed) as refused:
        cache.download(clip, served.media[clip])
    assert (refused.value.status, refused.value.retryable) == (401, False)


def test_a_server_out_of_reach_is_a_retryable_failure(served, clock, tmp_path):
    cache = MediaCache(tmp_path / "cache", f"http://127.0.0.1:{free_port()}", PLAYER, served.secret, 10**9, clock,
                       timeout_s=5)
    clip = served.by_name("ihanoi-30s.mp4")
    with pytest.raises(DownloadFailed) as failed:
        cache.download(clip, served.media[clip])
    assert (failed.value.status, failed.value.retryable) == (None, True)
    assert "cannot fetch" in failed.value.detail


def open_dev_full(path: Path):
    """A full disk, from the kernel: every write to /dev/full fails with ENOSPC."""
    return open("/dev/full", "ab", buffering=0)  # noqa: SIM115


def test_a_full_disk_keeps_the_partial_file_reports_disk_full_and_the_download_resumes_later(
        served, make_cache, clock, tmp_path):
    clip = served.by_name("ihanoi-30s.mp4")
    data = served.data[clip]
    half = len(data) // 2
    partial = tmp_path / "cache" / "partial" / f"{clip}.part"
    full = make_cache(open_partial=open_dev_full)
    partial.write_bytes(data[:half])
    report = full.sync({clip: served.media[clip]}, set())
    assert report.failed == {clip: DISK_FULL}
    assert report.fatal == set()
    assert partial.read_bytes() == data[:half]  # kept for resuming
    assert full.path_for(clip) is None
    clock.advance(BACKOFF_MAX)
    resumed = make_cache()  # the same folder, with room on the disk again
    assert resumed.sync({clip: served.media[clip]}, set()).downloaded == [clip]
    assert resumed.path_for(clip).read_bytes() == data
    assert [(seen.range, seen.status) for seen in media_gets(served)] == [(f"bytes={half}-", 206)] * 2


def test_a_leftover_partial_file_that_is_not_a_prefix_of_the_media_is_replaced_by_the_whole_file(
        served, make_cache, tmp_path):
    spot = served.by_name("ihanoi-spot.mp3")
    partial = tmp_path / "cache" / "partial" / f"{spot}.part"
    cache = make_cache()
    partial.write_bytes(b"\0" * 1000)
    report = cache.sync({spot: served.media[spot]}, set())
    assert report.downloaded == [spot] and report.corrupt == set()
    assert cache.path_for(spot).read_bytes() == served.data[spot]
    assert not partial.exists()
    # The resumed copy did not verify, so the whole file was fetched once more.
    assert [(seen.range, seen.status) for seen in media_gets(served)] == [("bytes=1000-", 206), (None, 200)]


def test_a_complete_partial_file_left_by_a_crash_is_checked_and_placed_without_asking_the_server(
        served, make_cache, tmp_path):
    poster = served.by_name("ihanoi-poster.png")
    cache = make_cache()
    (tmp_path / "cache" / "partial" / f"{poster}.part").write_bytes(served.data[poster])
    assert cache.sync({poster: served.media[poster]}, set()).downloaded == [poster]
    assert cache.path_for(poster).read_bytes() == served.data[poster]
    assert media_gets(served) == []


def test_a_media_url_that_is_not_a_path_on_the_server_is_refused_before_any_request(served, make_cache):
    cache = make_cache()
    clip = served.by_name("ihanoi-30s.mp4")
    elsewhere = {**served.media[clip], "url": "http://example.org/steal-credentials"}
    report = cache.sync({clip: elsewhere}, set())
    assert report.fatal == {clip} and "not a path on the server" in report.failed[clip]
    assert media_gets(served) == []


def test_the_plans_media_entries_may_be_given_as_protocol_models(served, make_cache):
    cache = make_cache()
    poster = served.by_name("ihanoi-poster.png")
    report = cache.sync({poster: MediaEntry.model_validate(served.media[poster])}, set())
    assert report.downloaded == [poster]
    assert cache.figures({poster: MediaEntry.model_validate(served.media[poster])}) == (1, 0, len(served.data[poster]))
