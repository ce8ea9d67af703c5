"""Shared fixtures: settings on a temporary data directory, a real database of each kind, a virtual clock."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy.orm import Session

from scheduler.database import Database, open_database
from signage.clock import VirtualClock
from signage.config import Settings
from tests.pg_server import PostgresServer

# Browser tests: live_server, chromium, browser_page (Playwright on Debian's chromium).
pytest_plugins = ["tests.browser"]

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = REPO / "examples"
FLEET_FILE = EXAMPLES / "hanoi-fleet.yaml"
CAMPAIGN_FILE = EXAMPLES / "ihanoi-campaign.yaml"


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    server = PostgresServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'signage.db'}"
    return request.getfixturevalue("postgres").create_database()


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    # No broker unless a test starts one (tests of the wire set mqtt=True with the broker's port).
    return Settings(_env_file=None, data_dir=tmp_path / "var", database_url=database_url, mqtt=False)


@pytest.fixture
def database(settings: Settings) -> Iterator[Database]:
    db = open_database(settings)
    yield db
    db.dispose()


@pytest.fixture
def session(database: Database) -> Iterator[Session]:
    with database.sessions() as s:
        yield s


@pytest.fixture
def clock() -> VirtualClock:
    # 10:00 in Hà Nội on Tuesday 20 August 2024, inside the iHanoi campaign.
    return VirtualClock(datetime(2024, 8, 20, 3, 0, tzinfo=UTC))


@pytest.fixture
def make_media(tmp_path: Path):
    """Real media files made with ffmpeg: make_media('clip.mp4'), make_media('still.png'), make_media('spot.mp3')."""
    if shutil.which("ffmpeg") is None:
        raise RuntimeError("ffmpeg is not installed: run `make test` (scripts/setup.sh installs it)")
    recipes = {
        ".mp4": ["-f", "lavfi", "-i", "testsrc=size=320x180:rate=25:duration={d}", "-f", "lavfi",
                 "-i", "sine=duration={d}", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest"],
        ".png": ["-f", "lavfi", "-i", "testsrc=size=640x360", "-frames:v", "1"],
        ".mp3": ["-f", "lavfi", "-i", "sine=duration={d}", "-c:a", "libmp3lame"],
    }

    def make(name: str, seconds: float = 2.0, directory: Path | None = None) -> Path:
        target = (directory or tmp_path / "media") / name
        target.parent.mkdir(parents=True, exist_ok=True)
        args = [a.format(d=seconds) for a in recipes[target.suffix]]
        subprocess.run(["ffmpeg", "-v", "error", "-y", *args, str(target)], check=True, timeout=60)
        return target

    return make


@pytest.fixture
def cli_env(settings: Settings) -> dict[str, str]:
    """Environment for running the `signage` command against the test's database."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIGNAGE_")}
    env.update(SIGNAGE_DATA_DIR=str(settings.data_dir), SIGNAGE_DATABASE_URL=settings.resolved_database_url,
               SIGNAGE_MQTT=str(settings.mqtt).lower(), SIGNAGE_BROKER_PORT=str(settings.broker_port),
               XDG_CACHE_HOME=str(settings.data_dir.parent / "cache"))  # the probe cache, not the user's
    return env


@pytest.fixture
def snapshot(database: Database):
    """snapshot() -> every row of every table, sorted: to show that something changed nothing."""
    from signage.db import Base

    def take() -> dict[str, list[tuple]]:
        with database.engine.connect() as connection:
            return {
                table.name: sorted(tuple(str(v) for v in row) for row in connection.execute(table.select()))
                for table in Base.metadata.sorted_tables
            }

    return take


class ProcessOutput:
    """Reads a child process's output on a thread, so a test can wait for a line with a timeout."""

    def __init__(self, process: subprocess.Popen) -> None:
        import queue
        import threading

        self.process = process
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self._queue.put(line)
        self._queue.put(None)

    def wait_for(self, text: str, timeout: float = 30.0) -> str:
        import queue
        import time

        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            try:
                line = self._queue.get(timeout=max(remaining, 0.001))
            except queue.Empty:
                raise TimeoutError(f"no line with {text!r} within {timeout}s; got:\n{''.join(self.lines)}") from None
            if line is None:
                raise RuntimeError(f"the process ended before printing {text!r}:\n{''.join(self.lines)}")
            self.lines.append(line)
            if text in line:
                return line


@pytest.fixture
def spawn():
    """spawn(args, env) starts a process whose merged output can be waited on; it is stopped after the test."""
    started: list[subprocess.Popen] = []

    def start(args: list[str], env: dict[str, str]) -> ProcessOutput:
        process = subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        started.append(process)
        return ProcessOutput(process)

    yield start
    for process in started:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


# -- staff accounts and the web app ----------------------------------------------------------------------

PASSWORD = "mật khẩu đủ dài 2024"
# (username, role, organisation): the city, a district, and two wards of that district.
STAFF = [
    ("city-admin", "admin", "hn"),
    ("city-staff", "staff", "hn"),
    ("city-manager", "manager", "hn"),
    ("hadong-staff", "staff", "hn-hadong"),
    ("hadong-head", "head", "hn-hadong"),
    ("hadong-manager", "manager", "hn-hadong"),
    ("phula-staff", "staff", "hn-hadong-phula"),
    ("phula-head", "head", "hn-hadong-phula"),
    ("vanquan-staff", "staff", "hn-hadong-vanquan"),
    ("vanquan-head", "head", "hn-hadong-vanquan"),
]


@pytest.fixture
def fleet(database: Database, settings: Settings) -> None:
    """The example fleet (82 screens of Hà Nội) in the test's database."""
    from campaigns.fleet_file import import_fleet
    from signage.db import transaction

    with transaction(database.sessions) as s:
        import_fleet(s, FLEET_FILE, settings.timezone)


@pytest.fixture(scope="session")
def password_hash() -> str:
    """PASSWORD's argon2 hash, made once: hashing costs a few hundred ms on purpose, and most tests sign in."""
    from campaigns.accounts import hash_password

    return hash_password(PASSWORD)


@pytest.fixture
def staff(database: Database, fleet: None, clock: VirtualClock, password_hash: str) -> dict[str, int]:
    """One user per line of STAFF, all with PASSWORD: username -> user id."""
    from campaigns.accounts import create_user
    from signage.db import transaction

    with transaction(database.sessions) as s:
        return {name: create_user(s, username=name, full_name=name.replace("-", " ").title(), role=role,
                                  organisation_id=org, password_hash=password_hash, clock=clock).id
                for name, role, org in STAFF}


@pytest.fixture
def app(settings: Settings, clock: VirtualClock, database: Database, staff: dict[str, int]):
    """The server's app (no broker, no jobs) on the test's database, fleet and staff loaded."""
    from scheduler.app import create_app

    return create_app(settings.model_copy(update={"jobs": False}), clock)


@pytest.fixture
def web(app):
    """A client that is not signed in; sign in with `sign_in(web, 'phula-staff')`."""
    from fastapi.testclient import TestClient

    with TestClient(app, base_url="http://127.0.0.1") as client:
        yield client


@pytest.fixture
def api(app, web):
    """as_user('phula-staff') -> a client of the JSON API carrying that user's bearer token. (The app's
    lifespan runs once, in `web`; these clients call the same running app.)"""
    from fastapi.testclient import TestClient

    def as_user(username: str) -> TestClient:
        client = TestClient(app, base_url="http://127.0.0.1")
        answer = client.post("/api/v1/auth/token", json={"username": username, "password": PASSWORD})
        assert answer.status_code == 201, answer.text
        client.headers["Authorization"] = f"Bearer {answer.json()['access_token']}"
        return client

    return as_user


def sign_in(client, username: str, password: str = PASSWORD) -> str:
    """Logs the client in through the login form; returns the session's CSRF token for later forms."""
    import re

    answer = client.post("/login", data={"username": username, "password": password, "next": "/fleet"},
                         follow_redirects=False)
    assert answer.status_code == 303, answer.text
    page = client.get("/fleet").text
    return re.search(r'name="csrf-token" content="([^"]+)"', page).group(1)
