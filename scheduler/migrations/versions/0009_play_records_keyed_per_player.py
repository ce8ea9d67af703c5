"""proof-of-play is idempotent per player: play_records keyed by (play_id, player_id)

Keyed by play_id alone, a record whose play_id another player had already used was acked as committed while only
the other player's row existed (issue 16).

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-23 09:00:00
"""
from collections.abc import Sequence

from alembic import op

revision: str = '0009'
down_revision: str | None = '0008'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # SQLite cannot change a primary key in place: batch mode copies the table (and its indexes) into a new one.
    with op.batch_alter_table('play_records', schema=None) as batch_op:
        batch_op.drop_constraint('pk_play_records', type_='primary')
        batch_op.create_primary_key('pk_play_records', ['play_id', 'player_id'])


def downgrade() -> None:
    # Only possible while no play_id is shared by two players' records.
    with op.batch_alter_table('play_records', schema=None) as batch_op:
        batch_op.drop_constraint('pk_play_records', type_='primary')
        batch_op.create_primary_key('pk_play_records', ['play_id'])
