"""reporting rounds: a unit's report series for its subtree, their form fields, rounds with deadlines, the units'
submissions and the reminders told (campaigns/reporting_rounds.py)

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-03 20:10:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import signage.db

revision: str = '0017'
down_revision: str | None = '0016'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _enum(name: str, *values: str) -> sa.Enum:
    return sa.Enum(*values, name=name, native_enum=False, length=32)


def upgrade() -> None:
    op.create_table(
        'report_series',
        sa.Column('id', sa.String(length=63), nullable=False),
        sa.Column('organisation_id', sa.String(length=63), nullable=False),
        sa.Column('name', sa.String(length=255), nullable=False),
        sa.Column('description', sa.Text(), nullable=True),
        sa.Column('needs_approval', sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column('created_by', sa.String(length=64), nullable=False),
        sa.Column('created_at', signage.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['organisation_id'], ['organisations.id'],
                                name=op.f('fk_report_series_organisation_id_organisations')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_report_series')),
    )
    op.create_index(op.f('ix_report_series_organisation_id'), 'report_series', ['organisation_id'])
    op.create_table(
        'report_fields',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('series_id', sa.String(length=63), nullable=False),
        sa.Column('position', sa.Integer(), nullable=False),
        sa.Column('key', sa.String(length=63), nullable=False),
        sa.Column('label', sa.String(length=255), nullable=False),
        sa.Column('kind', _enum('fieldkind', 'integer', 'number', 'percent', 'text', 'yes_no', 'figure'),
                  nullable=False),
        sa.Column('figure', _enum('reportfigure', 'screens', 'required_plays', 'delivered_plays', 'compliance',
                                  'regular_messages', 'urgent_alerts', 'mobile_rounds_planned',
                                  'mobile_rounds_done'), nullable=True),
        sa.Column('minimum', sa.Float(), nullable=True),
        sa.Column('maximum', sa.Float(), nullable=True),
        sa.Column('required', sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(['series_id'], ['report_series.id'],
                                name=op.f('fk_report_fields_series_id_report_series'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_report_fields')),
        sa.UniqueConstraint('series_id', 'key', name=op.f('uq_report_fields_series_id')),
    )
    op.create_table(
        'report_rounds',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('series_id', sa.String(length=63), nullable=False),
        sa.Column('name', sa.String(length=255), nullable=False),
        sa.Column('period_start', sa.Date(), nullable=False),
        sa.Column('period_end', sa.Date(), nullable=False),
        sa.Column('deadline', signage.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['series_id'], ['report_series.id'],
                                name=op.f('fk_report_rounds_series_id_report_series'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_report_rounds')),
        sa.UniqueConstraint('series_id', 'name', name=op.f('uq_report_rounds_series_id')),
    )
    op.create_index(op.f('ix_report_rounds_series_id'), 'report_rounds', ['series_id'])
    op.create_index(op.f('ix_report_rounds_deadline'), 'report_rounds', ['deadline'])
    op.create_table(
        'round_submissions',
        sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
        sa.Column('round_id', sa.Integer(), nullable=False),
        sa.Column('organisation_id', sa.String(length=63), nullable=False),
        sa.Column('values', sa.JSON(), nullable=False),
        sa.Column('figures', sa.JSON(), nullable=True),
        sa.Column('status', _enum('submissionstatus', 'draft', 'submitted', 'approved', 'returned'),
                  nullable=False),
        sa.Column('saved_by', sa.String(length=64), nullable=False),
        sa.Column('saved_at', signage.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column('submitted_by', sa.String(length=64), nullable=True),
        sa.Column('submitted_at', signage.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column('approved_by', sa.String(length=64), nullable=True),
        sa.Column('approved_at', signage.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column('return_note', sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(['round_id'], ['report_rounds.id'],
                                name=op.f('fk_round_submissions_round_id_report_rounds'), ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['organisation_id'], ['organisations.id'],
                                name=op.f('fk_round_submissions_organisation_id_organisations')),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_round_submissions')),
        sa.UniqueConstraint('round_id', 'organisation_id', name=op.f('uq_round_submissions_round_id')),
    )
    op.create_index(op.f('ix_round_submissions_organisation_id'), 'round_submissions', ['organisation_id'])
    op.create_table(
        'round_reminders',
        sa.Column('round_id', sa.Integer(), nullable=False),
        sa.Column('organisation_id', sa.String(length=63), nullable=False),
        sa.Column('stage', sa.String(length=16), nullable=False),
        sa.Column('told_at', signage.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['round_id'], ['report_rounds.id'],
                                name=op.f('fk_round_reminders_round_id_report_rounds'), ondelete='CASCADE'),
        sa.ForeignKeyConstraint(['organisation_id'], ['organisations.id'],
                                name=op.f('fk_round_reminders_organisation_id_organisations')),
        sa.PrimaryKeyConstraint('round_id', 'organisation_id', 'stage', name=op.f('pk_round_reminders')),
    )


def downgrade() -> None:
    op.drop_table('round_reminders')
    op.drop_index(op.f('ix_round_submissions_organisation_id'), table_name='round_submissions')
    op.drop_table('round_submissions')
    op.drop_index(op.f('ix_report_rounds_deadline'), table_name='report_rounds')
    op.drop_index(op.f('ix_report_rounds_series_id'), table_name='report_rounds')
    op.drop_table('report_rounds')
    op.drop_table('report_fields')
    op.drop_index(op.f('ix_report_series_organisation_id'), table_name='report_series')
    op.drop_table('report_series')
