"""remote actions on screens: the commands staff sent and what each player made of them

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-03 17:30:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import signage.db

revision: str = '0013'
down_revision: str | None = '0012'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('screen_commands',
    sa.Column('command_id', sa.String(length=36), nullable=False),
    sa.Column('screen_id', sa.String(length=63), nullable=False),
    sa.Column('action', sa.String(length=16), nullable=False),
    sa.Column('requested_by', sa.String(length=64), nullable=False),
    sa.Column('requested_at', signage.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', signage.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('sent_at', signage.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('outcome', sa.String(length=16), nullable=True),
    sa.Column('reason', sa.String(length=500), nullable=True),
    sa.Column('answered_at', signage.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['screen_id'], ['screens.id'], name=op.f('fk_screen_commands_screen_id_screens'),
                            ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('command_id', name=op.f('pk_screen_commands'))
    )
    op.create_index('ix_screen_commands_screen_requested', 'screen_commands', ['screen_id', 'requested_at'],
                    unique=False)


def downgrade() -> None:
    op.drop_index('ix_screen_commands_screen_requested', table_name='screen_commands')
    op.drop_table('screen_commands')
