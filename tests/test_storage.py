"""Storage: migrations match the models, the app migrates on start, SQLite runs in WAL mode."""

from datetime import UTC, date, datetime

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from campaigns.kinds import OrgKind
from campaigns.models import Campaign, Organisation
from scheduler.database import open_database
from signage.db import Base, transaction


def test_the_migrated_schema_matches_the_models(database):
    with database.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []


def test_the_migrated_primary_keys_match_the_models(database):
    # compare_metadata does not look at primary keys; play_records' changed in migration 0009.
    inspector = sa.inspect(database.engine)
    migrated = {name: set(inspector.get_pk_constraint(name)["constrained_columns"])
                for name in inspector.get_table_names() if name != "alembic_version"}
    assert migrated == {table.name: {column.name for column in table.primary_key.columns}
                        for table in Base.metadata.sorted_tables}


def test_opening_a_database_twice_migrates_once_and_keeps_the_data(settings):
    first = open_database(settings)
    with transaction(first.sessions) as session:
        session.add(Organisation(id="hn", name="Hà Nội", kind=OrgKind.city, path="/hn/"))
    first.dispose()
    second = open_database(settings)
    with second.sessions() as session:
        assert session.get(Organisation, "hn").name == "Hà Nội"
    second.dispose()


def test_timestamps_come_back_aware_and_in_utc(database):
    hanoi_morning = datetime.fromisoformat("2024-08-20T09:00:00+07:00")
    with transaction(database.sessions) as session:
        session.add(Organisation(id="hn", name="Hà Nội", kind=OrgKind.city, path="/hn/"))
        session.flush()
        session.add(Campaign(id="c1", organisation_id="hn", name="C", start_date=date(2024, 8, 15),
                             end_date=date(2024, 10, 10), created_at=hanoi_morning, updated_at=hanoi_morning))
    with database.sessions() as session:
        created = session.get(Campaign, "c1").created_at
    assert created == datetime(2024, 8, 20, 2, 0, tzinfo=UTC)
    assert created.tzinfo is not None


def test_sqlite_runs_in_wal_mode_with_foreign_keys(tmp_path):
    from signage.config import Settings

    db = open_database(Settings(_env_file=None, data_dir=tmp_path))
    with db.engine.connect() as connection:
        assert connection.execute(sa.text("PRAGMA journal_mode")).scalar() == "wal"
        assert connection.execute(sa.text("PRAGMA foreign_keys")).scalar() == 1
    db.dispose()
    assert (tmp_path / "signage.db").exists()
