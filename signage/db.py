"""The server's storage base: declarative Base, UTC timestamps, engines and sessions.

Server-only (needs the `[server]` extra); the player agent never imports it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from sqlalchemy import DateTime, Enum, MetaData, create_engine, event, make_url
from sqlalchemy.engine import Engine
from sqlalchemy.exc import ArgumentError
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def enum_column(kind: type[StrEnum]) -> Enum:
    """A string column holding a StrEnum's values (no native enum type, so adding a value needs no DDL)."""
    return Enum(kind, native_enum=False, length=32, values_callable=lambda e: [m.value for m in e],
                validate_strings=True)


class UTCDateTime(TypeDecorator[datetime]):
    """Timestamps stored in UTC and always read back timezone-aware, on SQLite as on PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database; pass an aware one (from the clock)")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    cursor.close()


@dataclass(frozen=True)
class PoolSize:
    """How many connections an engine keeps (`size`), may open beyond them (`overflow`), and how long a caller
    waits for one when all are taken (`timeout`, seconds: then `sqlalchemy.exc.TimeoutError`)."""

    size: int
    overflow: int
    timeout: float

    def engine_options(self, url: str) -> dict[str, int | float]:
        if url in ("sqlite://", "sqlite:///:memory:"):
            return {}  # one connection per thread, nothing to size
        return {"pool_size": self.size, "max_overflow": self.overflow, "pool_timeout": self.timeout}


def shown_url(url: str) -> str:
    """A database (or any) URL as it may be printed or logged: its password, if any, replaced by ***."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        # Not a URL SQLAlchemy reads: show its scheme only, in case a password hides in the rest.
        return url.partition("://")[0] + "://***" if "://" in url else "***"


def make_engine(url: str, pool: PoolSize | None = None, **kwargs) -> Engine:
    if pool is not None:
        kwargs = {**pool.engine_options(url), **kwargs}
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False}, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True, **kwargs)


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


@contextmanager
def transaction(factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session whose work is committed together, or not at all."""
    with factory() as session, session.begin():
        yield session
