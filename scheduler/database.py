"""Opening the database: engine, sessions, and migrating to the newest schema."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

import campaigns.models  # noqa: F401 - registers the tables on Base.metadata
import campaigns.revision  # noqa: F401 - and bumps the planning revision on changes
import media.models  # noqa: F401
import scheduler.models  # noqa: F401
from signage.config import Settings
from signage.db import PoolSize, make_engine, make_session_factory

MIGRATIONS_DIR = Path(__file__).parent / "migrations"


@dataclass
class Database:
    engine: Engine
    sessions: sessionmaker[Session]

    def dispose(self) -> None:
        self.engine.dispose()


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return config


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest migration (a no-op when it is there already)."""
    config = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


def web_pool(settings: Settings) -> PoolSize:
    """The pool of a server process's web requests: one connection per threadpool thread (the app sizes its
    threadpool to match), none beyond, and a bounded wait that the web layer answers with 503."""
    return PoolSize(size=settings.db_pool_size, overflow=0, timeout=settings.db_pool_timeout)


# The MQTT bridge's ingest, the planning jobs and alert delivery: a few threads, so a few connections, kept apart
# from the web pool so that staff requests can never starve proof-of-play ingest (nor the other way round).
BACKGROUND_POOL = PoolSize(size=3, overflow=5, timeout=30.0)


def open_database(settings: Settings, pool: PoolSize | None = None, *, migrate_schema: bool = True) -> Database:
    url = settings.resolved_database_url
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    engine = make_engine(url, pool)
    if migrate_schema:
        migrate(engine)
    return Database(engine, make_session_factory(engine))
