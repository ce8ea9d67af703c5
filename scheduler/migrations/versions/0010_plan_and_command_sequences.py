"""plans and commands ordered by a sequence kept in the database, not by the server's clock

A player refused every plan whose `generated_at` was not later than the one it held, so a plan signed while the
server's clock ran a year ahead locked it out of every genuine plan until that date (issue 16). Plans already
stored take their row id as their sequence: increasing per player as the ids are, and below every sequence given
from now on. Their bodies are left as they were signed; players take the first sequenced plan over them.

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-23 10:00:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0010'
down_revision: str | None = '0009'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('published_plans', schema=None) as batch_op:
        batch_op.add_column(sa.Column('sequence', sa.BigInteger(), nullable=True))
    op.execute('UPDATE published_plans SET sequence = id')
    with op.batch_alter_table('published_plans', schema=None) as batch_op:
        batch_op.alter_column('sequence', existing_type=sa.BigInteger(), nullable=False)
        batch_op.create_unique_constraint(batch_op.f('uq_published_plans_sequence'), ['sequence'])
    op.create_table('command_sequences',
    sa.Column('player_id', sa.String(length=63), nullable=False),
    sa.Column('last', sa.BigInteger(), nullable=False),
    sa.PrimaryKeyConstraint('player_id', name=op.f('pk_command_sequences'))
    )


def downgrade() -> None:
    op.drop_table('command_sequences')
    with op.batch_alter_table('published_plans', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('uq_published_plans_sequence'), type_='unique')
        batch_op.drop_column('sequence')
