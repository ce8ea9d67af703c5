"""Alembic environment: runs on the connection handed in by scheduler.database.migrate()."""

from alembic import context
from sqlalchemy import engine_from_config, pool

import campaigns.models  # noqa: F401 - registers the tables
import campaigns.revision  # noqa: F401 - and bumps the planning revision on changes
import media.models  # noqa: F401
import scheduler.models  # noqa: F401
from signage.db import Base

config = context.config
target_metadata = Base.metadata


def run(connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters tables by copying them
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    run(connection)
else:
    engine = engine_from_config(config.get_section(config.config_ini_section, {}), prefix="sqlalchemy.",
                                poolclass=pool.NullPool)
    with engine.connect() as conn:
        run(conn)
