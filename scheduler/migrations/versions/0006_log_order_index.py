"""the proof-of-play log's order

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-22 12:40:00
"""
from collections.abc import Sequence

from alembic import op

revision: str = '0006'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('play_records', schema=None) as batch_op:
        batch_op.create_index('ix_play_records_log_order', ['local_date', 'started_at', 'play_id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('play_records', schema=None) as batch_op:
        batch_op.drop_index('ix_play_records_log_order')
