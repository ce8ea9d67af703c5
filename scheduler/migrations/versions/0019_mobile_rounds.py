"""mobile loudspeaker rounds: the units' plans and the rounds staff record

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-03 20:10:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import signage.db

revision: str = '0019'
down_revision: str | None = '0018'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        'mobile_round_plans',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('organisation_id', sa.String(length=63), nullable=False),
        sa.Column('rounds_per_day', sa.Integer(), nullable=False),
        sa.Column('first_day', sa.Date(), nullable=False),
        sa.Column('last_day', sa.Date(), nullable=False),
        sa.Column('timezone', sa.String(length=64), nullable=False),
        sa.Column('peak_windows', sa.JSON(), nullable=False),
        sa.Column('note', sa.String(length=1000), nullable=True),
        sa.Column('created_by', sa.String(length=64), nullable=False),
        sa.Column('created_at', signage.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['organisation_id'], ['organisations.id'],
                                name=op.f('fk_mobile_round_plans_organisation_id_organisations')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_mobile_round_plans')),
    )
    op.create_index(op.f('ix_mobile_round_plans_organisation_id'), 'mobile_round_plans', ['organisation_id'])
    op.create_table(
        'mobile_rounds',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('organisation_id', sa.String(length=63), nullable=False),
        sa.Column('started_at', signage.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column('duration_minutes', sa.Integer(), nullable=False),
        sa.Column('route', sa.String(length=500), nullable=False),
        sa.Column('note', sa.String(length=1000), nullable=True),
        sa.Column('recorded_by', sa.String(length=64), nullable=False),
        sa.Column('recorded_at', signage.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['organisation_id'], ['organisations.id'],
                                name=op.f('fk_mobile_rounds_organisation_id_organisations')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_mobile_rounds')),
    )
    op.create_index(op.f('ix_mobile_rounds_organisation_id'), 'mobile_rounds', ['organisation_id'])
    op.create_index(op.f('ix_mobile_rounds_started_at'), 'mobile_rounds', ['started_at'])


def downgrade() -> None:
    op.drop_index(op.f('ix_mobile_rounds_started_at'), table_name='mobile_rounds')
    op.drop_index(op.f('ix_mobile_rounds_organisation_id'), table_name='mobile_rounds')
    op.drop_table('mobile_rounds')
    op.drop_index(op.f('ix_mobile_round_plans_organisation_id'), table_name='mobile_round_plans')
    op.drop_table('mobile_round_plans')
