"""language versions of creatives

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-03 20:10:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0021'
down_revision: str | None = '0020'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A creative's versions share its slot; each creative so far is the one version of its own slot.
    with op.batch_alter_table('campaign_creatives') as batch:
        batch.add_column(sa.Column('slot', sa.Integer(), nullable=True))
        batch.add_column(sa.Column('language', sa.String(length=8), nullable=True))
    op.execute('UPDATE campaign_creatives SET slot = position')
    with op.batch_alter_table('campaign_creatives') as batch:
        batch.alter_column('slot', existing_type=sa.Integer(), nullable=False)
    # NULL: the site kind's default (international at airports and railway stations).
    with op.batch_alter_table('sites') as batch:
        batch.add_column(sa.Column('international_audience', sa.Boolean(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('sites') as batch:
        batch.drop_column('international_audience')
    with op.batch_alter_table('campaign_creatives') as batch:
        batch.drop_column('language')
        batch.drop_column('slot')
