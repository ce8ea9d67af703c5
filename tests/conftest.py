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
    return Settings(_env_file=None, data_dir=tmp_path / "var", database_url=database_url)


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
    env.update(SIGNAGE_DATA_DIR=str(settings.data_dir), SIGNAGE_DATABASE_URL=settings.resolved_database_url)
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
