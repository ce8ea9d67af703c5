"""screens dark in their peak hours told to their units: outages, notices and their e-mails, users' addresses;
the journal's trouble from the player's status

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-03 17:45:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import signage.db

revision: str = '0015'
down_revision: str | None = '0014'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('users') as batch:
        batch.add_column(sa.Column('email', sa.String(length=254), nullable=True))
        batch.add_column(sa.Column('notice_digest', sa.Boolean(), server_default=sa.false(), nullable=False))
    with op.batch_alter_table('player_presence') as batch:
        batch.add_column(sa.Column('journal_error', sa.String(length=500), nullable=True))
        batch.add_column(sa.Column('journal_unwritten', sa.Integer(), nullable=True))
        batch.add_column(sa.Column('journal_refused', sa.Integer(), nullable=True))
    op.create_table(
        'screen_outages',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('screen_id', sa.String(length=63), nullable=False),
        sa.Column('dark_since', signage.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column('noticed_at', signage.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column('ended_at', signage.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['screen_id'], ['screens.id'], name=op.f('fk_screen_outages_screen_id_screens'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_screen_outages')),
    )
    op.create_index('ix_screen_outages_open', 'screen_outages', ['screen_id', 'ended_at'])
    op.create_table(
        'notices',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('user_id', sa.Integer(), nullable=False),
        sa.Column('outage_id', sa.Integer(), nullable=False),
        sa.Column('kind', sa.String(length=16), nullable=False),
        sa.Column('created_at', signage.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column('read_at', signage.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column('email_due', sa.Boolean(), nullable=False),
        sa.Column('emailed_at', signage.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column('email_attempts', sa.Integer(), nullable=False),
        sa.Column('email_error', sa.String(length=500), nullable=True),
        sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_notices_user_id_users'), ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['outage_id'], ['screen_outages.id'], name=op.f('fk_notices_outage_id_screen_outages'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_notices')),
    )
    op.create_index('ix_notices_user_created', 'notices', ['user_id', 'created_at'])
    op.create_index('ix_notices_email_pending', 'notices', ['email_due', 'emailed_at'])
    op.create_index(op.f('ix_notices_outage_id'), 'notices', ['outage_id'])


def downgrade() -> None:
    op.drop_table('notices')
    op.drop_table('screen_outages')
    with op.batch_alter_table('player_presence') as batch:
        for column in ('journal_refused', 'journal_unwritten', 'journal_error'):
            batch.drop_column(column)
    with op.batch_alter_table('users') as batch:
        batch.drop_column('notice_digest')
        batch.drop_column('email')
