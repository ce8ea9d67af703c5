"""Players' media behind nginx (SIGNAGE_MEDIA_ACCEL_REDIRECT): the app checks the player and the library and
answers X-Accel-Redirect; Debian's nginx sends the file, whole or in ranges, and refuses the internal location
to anyone who asks for it directly. Real parts: nginx with the same two locations as deploy/nginx-signage.conf,
the app on uvicorn, the example campaign imported the real way.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
import pytest

from campaigns.campaign_file import import_campaigns
from campaigns.fleet_file import import_fleet
from media.store import MediaStore, sha256_of
from scheduler.app import create_app
from scheduler.database import open_database
from scheduler.players import register_player
from signage.clock import VirtualClock
from signage.config import Settings
from signage.db import transaction
from signage.signing import Signer
from tests.conftest import CAMPAIGN_FILE, EXAMPLES, FLEET_FILE
from tests.pg_server import free_port
from tests.servers import serve_in_thread

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"  # installed by scripts/setup.sh
PLAYER = "hn-nb-t2-001"
PREFIX = "/_media/"

SITE = textwrap.dedent("""\
    {user}
    worker_processes 1;
    pid {work}/nginx.pid;
    events {{ worker_connections 64; }}
    http {{
        access_log off;
        client_body_temp_path {work}/body;
        proxy_temp_path {work}/proxy;
        fastcgi_temp_path {work}/fastcgi;
        uwsgi_temp_path {work}/uwsgi;
        scgi_temp_path {work}/scgi;
        server {{
            listen 127.0.0.1:{port};
            location ~ "^/media/[0-9a-f]{{64}}$" {{ proxy_pass http://127.0.0.1:{app_port}; }}
            location {prefix} {{ internal; alias {store}/; sendfile on; }}
            location / {{ proxy_pass http://127.0.0.1:{app_port}; }}
        }}
    }}
""")


@dataclass
class Stand:
    nginx: str
    app: str
    auth: tuple[str, str]
    clip: bytes
    clip_sha: str
    store: MediaStore


@pytest.fixture(scope="module")
def stand(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stand]:
    root = tmp_path_factory.mktemp("media-nginx")
    settings = Settings(_env_file=None, data_dir=root / "var", jobs=False, mqtt=False, media_accel_redirect=PREFIX)
    clock, store = VirtualClock(datetime(2024, 8, 20, 3, 0, tzinfo=UTC)), MediaStore(settings.media_dir)
    database = open_database(settings)
    with transaction(database.sessions) as session:
        import_fleet(session, FLEET_FILE, settings.timezone)
        import_campaigns(session, CAMPAIGN_FILE, store, clock, settings.timezone)
        player = register_player(session, PLAYER, settings, Signer.load_or_create(settings.data_dir),
                                 "http://127.0.0.1", clock.now())
    database.dispose()
    server, thread, app_port = serve_in_thread(create_app(settings, clock))
    work, port = root / "nginx", free_port()
    work.mkdir()
    # nginx's master drops to `nobody` when started as root, and nobody may not enter the test's directories.
    user = "user root;" if os.geteuid() == 0 else ""
    (work / "nginx.conf").write_text(SITE.format(user=user, work=work, port=port, app_port=app_port, prefix=PREFIX,
                                                 store=settings.media_dir))
    nginx = subprocess.Popen([NGINX, "-e", str(work / "error.log"), "-c", str(work / "nginx.conf"),
                              "-g", "daemon off;"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until_listening(nginx, base)
        clip = EXAMPLES / "media" / "ihanoi-30s.mp4"
        yield Stand(base, f"http://127.0.0.1:{app_port}", (PLAYER, player.password), clip.read_bytes(),
                    sha256_of(clip), store)
    finally:
        nginx.terminate()
        nginx.wait(30)
        server.should_exit = True
        thread.join(30)


def wait_until_listening(nginx: subprocess.Popen, base: str) -> None:
    for _ in range(600):
        try:
            httpx.get(base + "/healthz", timeout=5)
            return
        except httpx.TransportError:
            try:
                nginx.wait(0.05)  # the tick; nginx exiting ends the wait at once
            except subprocess.TimeoutExpired:
                continue
            raise RuntimeError(f"nginx exited: {nginx.stderr.read().decode(errors='replace')}") from None
    raise RuntimeError("nginx did not listen within 30 s")


def test_the_app_answers_a_player_with_the_files_place_under_nginxs_internal_location(stand):
    answer = httpx.get(f"{stand.app}/media/{stand.clip_sha}", auth=stand.auth)
    assert answer.status_code == 200
    assert answer.content == b""
    assert answer.headers["x-accel-redirect"] == f"{PREFIX}{stand.clip_sha[:2]}/{stand.clip_sha}"
    assert answer.headers["content-type"] == "video/mp4"


def test_nginx_sends_the_whole_clip_with_the_apps_type_and_caching(stand):
    answer = httpx.get(f"{stand.nginx}/media/{stand.clip_sha}", auth=stand.auth)
    assert answer.status_code == 200
    assert answer.content == stand.clip
    assert answer.headers["content-type"] == "video/mp4"
    assert answer.headers["cache-control"] == "public, max-age=31536000, immutable"
    assert "x-accel-redirect" not in answer.headers


def test_nginx_answers_a_resumed_download_with_exactly_the_asked_bytes(stand):
    answer = httpx.get(f"{stand.nginx}/media/{stand.clip_sha}", auth=stand.auth, headers={"Range": "bytes=1000-"})
    assert answer.status_code == 206
    assert answer.content == stand.clip[1000:]
    assert answer.headers["content-range"] == f"bytes 1000-{len(stand.clip) - 1}/{len(stand.clip)}"


def test_a_wrong_secret_gets_401_from_the_app_and_no_byte_of_the_file(stand):
    answer = httpx.get(f"{stand.nginx}/media/{stand.clip_sha}", auth=(PLAYER, "not-the-secret"))
    assert answer.status_code == 401
    assert stand.clip[:64] not in answer.content


def test_the_internal_location_is_not_reachable_from_outside(stand):
    answer = httpx.get(f"{stand.nginx}{PREFIX}{stand.clip_sha[:2]}/{stand.clip_sha}")
    assert answer.status_code == 404


def test_the_store_gives_its_files_group_read_so_nginx_in_the_group_can_send_them(stand):
    mode = stat.S_IMODE(stand.store.path_for(stand.clip_sha).stat().st_mode)
    assert mode == 0o640
