"""sites and screens retired from the web UI or the API: out of planning for good, kept for their history

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-03 17:30:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import signage.db

revision: str = '0014'
down_revision: str | None = '0013'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    for table in ('sites', 'screens'):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column('retired_at', signage.db.UTCDateTime(timezone=True), nullable=True))


def downgrade() -> None:
    for table in ('screens', 'sites'):
        with op.batch_alter_table(table) as batch:
            batch.drop_column('retired_at')
