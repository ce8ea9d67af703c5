"""screen PCs paired with a code: the requests, their codes and the hashes of the secrets they poll with

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-03 18:00:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import signage.db

revision: str = '0016'
down_revision: str | None = '0015'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'pairing_requests',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('code', sa.String(length=16), nullable=False),
        sa.Column('secret_sha256', sa.String(length=64), nullable=False),
        sa.Column('client', sa.String(length=64), nullable=True),
        sa.Column('requested_at', signage.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column('expires_at', signage.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column('screen_id', sa.String(length=63), nullable=True),
        sa.Column('claimed_by', sa.String(length=64), nullable=True),
        sa.Column('claimed_at', signage.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column('delivered_at', signage.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(['screen_id'], ['screens.id'], name=op.f('fk_pairing_requests_screen_id_screens'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_pairing_requests')),
        sa.UniqueConstraint('secret_sha256', name=op.f('uq_pairing_requests_secret_sha256')),
    )
    op.create_index(op.f('ix_pairing_requests_code'), 'pairing_requests', ['code'])
    op.create_index(op.f('ix_pairing_requests_expires_at'), 'pairing_requests', ['expires_at'])


def downgrade() -> None:
    op.drop_index(op.f('ix_pairing_requests_expires_at'), table_name='pairing_requests')
    op.drop_index(op.f('ix_pairing_requests_code'), table_name='pairing_requests')
    op.drop_table('pairing_requests')
