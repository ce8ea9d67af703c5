"""the proof-of-play log's index covers every column the log's CSV reads

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-22 15:40:00
"""
from collections.abc import Sequence

from alembic import op

revision: str = '0008'
down_revision: str | None = '0007'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LOG_COLUMNS = ['local_date', 'started_at', 'play_id', 'player_id', 'campaign_id', 'ended_at', 'scheduled_start',
               'duration_ms', 'media', 'kind', 'status', 'reason']


def upgrade() -> None:
    with op.batch_alter_table('play_records', schema=None) as batch_op:
        batch_op.drop_index('ix_play_records_log_order')
        batch_op.create_index('ix_play_records_log', LOG_COLUMNS, unique=False)


def downgrade() -> None:
    with op.batch_alter_table('play_records', schema=None) as batch_op:
        batch_op.drop_index('ix_play_records_log')
        batch_op.create_index('ix_play_records_log_order', ['local_date', 'started_at', 'play_id'], unique=False)
