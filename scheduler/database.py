"""Opening the database: engine, sessions, and migrating to the newest schema."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.orm import Session, sessionmaker

import campaigns.models  # noqa: F401 - registers the tables on Base.metadata
import campaigns.revision  # noqa: F401 - and bumps the planning revision on changes
import media.models  # noqa: F401
import scheduler.models  # noqa: F401
from signage.config import Settings
from signage.db import PoolSize, make_engine, make_session_factory
from signage.private_files import narrow_if_present, private_directory, private_file

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


def migrate(engine: Engine, revision: str = "head") -> None:
    """Bring the schema to the newest migration, or to `revision` (a no-op when it is there already).

    SQLite changes a table by copying it (Alembic's batch mode); with foreign keys enforced, dropping the old copy
    of a table that others reference would fail, or cascade deletes into them. So, as SQLite's own procedure for
    such changes says, foreign keys are off while the migrations run, and all of them are checked before commit."""
    config = alembic_config(engine.url.render_as_string(hide_password=False))
    sqlite = engine.dialect.name == "sqlite"
    with engine.connect() as connection:
        if sqlite:
            connection.exec_driver_sql("PRAGMA foreign_keys=OFF")  # outside a transaction, where it takes effect
            connection.commit()
        try:
            with connection.begin():
                config.attributes["connection"] = connection
                command.upgrade(config, revision)
                if sqlite:
                    broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                    if broken:
                        raise RuntimeError(f"the migration left rows whose foreign keys point nowhere: {broken[:5]}")
        finally:
            if sqlite:
                connection.exec_driver_sql("PRAGMA foreign_keys=ON")
                connection.commit()


def sqlite_file(url: str) -> Path | None:
    """The database file of a SQLite URL (None for PostgreSQL, or SQLite in memory)."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


def keep_private(settings: Settings, database_file: Path) -> None:
    """The SQLite database (password hashes, player secrets' hashes) readable by its owner only: the file and its
    -wal and -shm (SQLite gives them the database's mode) 0600, the data directory 0700; made so, or narrowed with
    a warning. A directory of the operator's own choosing, outside the data directory, is only made if missing."""
    directory = database_file.parent
    if not directory.is_dir() or directory.resolve() == settings.data_dir.resolve():
        private_directory(directory)
    private_file(database_file)
    for suffix in ("-wal", "-shm", "-journal"):
        narrow_if_present(database_file.with_name(database_file.name + suffix))


def web_pool(settings: Settings) -> PoolSize:
    """The pool of a server process's web requests: one connection per threadpool thread (the app sizes its
    threadpool to match), none beyond, and a bounded wait that the web layer answers with 503."""
    return PoolSize(size=settings.db_pool_size, overflow=0, timeout=settings.db_pool_timeout)


# The MQTT bridge's ingest, the planning jobs and alert delivery: a few threads, so a few connections, kept apart
# from the web pool so that staff requests can never starve proof-of-play ingest (nor the other way round).
BACKGROUND_POOL = PoolSize(size=3, overflow=5, timeout=30.0)


def open_database(settings: Settings, pool: PoolSize | None = None, *, migrate_schema: bool = True) -> Database:
    url = settings.resolved_database_url
    database_file = sqlite_file(url)
    if database_file is not None:
        keep_private(settings, database_file)
    engine = make_engine(url, pool)
    if migrate_schema:
        migrate(engine)
    return Database(engine, make_session_factory(engine))
