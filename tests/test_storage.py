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


def test_migrating_to_per_unit_media_rows_keeps_creatives_alerts_and_their_deliveries(settings):
    # Migration 0011 copies media_assets into media_library and re-points creatives and alerts at it. On SQLite
    # that copies alerts, which alert_deliveries references with ON DELETE CASCADE: with foreign keys on, the
    # deliveries would be deleted with the old copy.
    from scheduler.database import migrate
    from signage.db import make_engine

    engine = make_engine(settings.resolved_database_url)
    migrate(engine, "0010")
    now, sha = datetime(2024, 8, 20, 3, 0, tzinfo=UTC), "ab" * 32
    rows = {
        "organisations": {"id": "hn", "name": "Hà Nội", "kind": "city", "path": "/hn/", "alerts_need_approval": False},
        "media_assets": {"sha256": sha, "kind": "video", "mime": "video/mp4", "bytes": 10, "duration_ms": 1000,
                         "original_name": "clip.mp4", "organisation_id": "hn", "created_at": now},
        "campaigns": {"id": "c1", "organisation_id": "hn", "name": "C", "start_date": date(2024, 8, 15),
                      "end_date": date(2024, 10, 10), "plays_per_day": 1, "window_policy": "peak", "priority": 0,
                      "status": "draft", "created_at": now, "updated_at": now},
        "campaign_creatives": {"campaign_id": "c1", "position": 0, "media_sha256": sha, "duration_ms": 1000},
        "alerts": {"id": "a1", "organisation_id": "hn", "title": "T", "text": "x", "severity": "urgent",
                   "kind": "media", "media_sha256": sha, "starts_at": now, "expires_at": now, "targets": {},
                   "status": "approved", "created_by": "u", "created_at": now},
        "alert_deliveries": {"alert_id": "a1", "screen_id": "s1", "sends": 1},
    }
    metadata = sa.MetaData()
    metadata.reflect(engine)
    with engine.begin() as connection:
        for table, row in rows.items():
            connection.execute(metadata.tables[table].insert().values(**row))

    migrate(engine)

    with engine.connect() as connection:
        assert connection.execute(sa.text("SELECT sha256, organisation_id, original_name FROM media_library")).all() \
            == [(sha, "hn", "clip.mp4")]
        assert connection.execute(sa.text("SELECT media_sha256, media_organisation_id FROM campaign_creatives")).all() \
            == [(sha, "hn")]
        assert connection.execute(sa.text("SELECT media_sha256, media_organisation_id FROM alerts")).all() \
            == [(sha, "hn")]
        assert connection.execute(sa.text("SELECT alert_id, screen_id FROM alert_deliveries")).all() == [("a1", "s1")]
        assert "media_assets" not in sa.inspect(connection).get_table_names()
        if connection.dialect.name == "sqlite":
            assert connection.execute(sa.text("PRAGMA foreign_keys")).scalar() == 1
    engine.dispose()


def test_language_versions_migration_makes_each_creative_its_own_slot(settings):
    # Migration 0021: existing creatives keep playing as before, each the one version of its own slot.
    from scheduler.database import migrate
    from signage.db import make_engine

    engine = make_engine(settings.resolved_database_url)
    migrate(engine, "0020")
    now, sha = datetime(2024, 8, 20, 3, 0, tzinfo=UTC), "cd" * 32
    rows = {
        "organisations": [{"id": "hn", "name": "Hà Nội", "kind": "city", "path": "/hn/",
                           "alerts_need_approval": False}],
        "sites": [{"id": "noi-bai", "name": "Nội Bài", "kind": "airport", "organisation_id": "hn",
                   "timezone": "Asia/Ho_Chi_Minh"}],
        "media_library": [{"sha256": sha, "kind": "image", "mime": "image/png", "bytes": 10, "duration_ms": None,
                           "original_name": "poster.png", "organisation_id": "hn", "created_at": now}],
        "campaigns": [{"id": "c1", "organisation_id": "hn", "name": "C", "start_date": date(2024, 8, 15),
                       "end_date": date(2024, 10, 10), "plays_per_day": 1, "window_policy": "peak", "priority": 0,
                       "status": "draft", "created_at": now, "updated_at": now}],
        "campaign_creatives": [{"campaign_id": "c1", "position": p, "media_sha256": sha, "media_organisation_id": "hn",
                                "duration_ms": 10_000} for p in (0, 1)],
    }
    metadata = sa.MetaData()
    metadata.reflect(engine)
    with engine.begin() as connection:
        for table, values in rows.items():
            connection.execute(metadata.tables[table].insert(), values)

    migrate(engine)

    with engine.connect() as connection:
        assert connection.execute(sa.text("SELECT position, slot, language FROM campaign_creatives "
                                          "ORDER BY position")).all() == [(0, 0, None), (1, 1, None)]
        assert connection.execute(sa.text("SELECT international_audience FROM sites")).all() == [(None,)]
    engine.dispose()
