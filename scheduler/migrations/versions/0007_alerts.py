"""alerts

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-22 13:55:48.203083
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import signage.db  # noqa: F401 - custom column types

revision: str = '0007'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('alerts',
    sa.Column('id', sa.String(length=63), nullable=False),
    sa.Column('organisation_id', sa.String(length=63), nullable=False),
    sa.Column('title', sa.String(length=255), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('severity', sa.Enum('info', 'urgent', name='alertseverity', native_enum=False, length=32), nullable=False),
    sa.Column('kind', sa.Enum('text', 'media', name='alertkind', native_enum=False, length=32), nullable=False),
    sa.Column('media_sha256', sa.String(length=64), nullable=True),
    sa.Column('starts_at', signage.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('expires_at', signage.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('targets', sa.JSON(), nullable=False),
    sa.Column('status', sa.Enum('pending', 'approved', 'rejected', 'stopped', name='alertstatus', native_enum=False, length=32), nullable=False),
    sa.Column('created_by', sa.String(length=64), nullable=False),
    sa.Column('created_at', signage.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('approved_by', sa.String(length=64), nullable=True),
    sa.Column('approved_at', signage.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('review_note', sa.Text(), nullable=True),
    sa.Column('stopped_by', sa.String(length=64), nullable=True),
    sa.Column('stopped_at', signage.db.UTCDateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['media_sha256'], ['media_assets.sha256'], name=op.f('fk_alerts_media_sha256_media_assets')),
    sa.ForeignKeyConstraint(['organisation_id'], ['organisations.id'], name=op.f('fk_alerts_organisation_id_organisations')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_alerts'))
    )
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_alerts_organisation_id'), ['organisation_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_alerts_starts_at'), ['starts_at'], unique=False)

    op.create_table('alert_deliveries',
    sa.Column('alert_id', sa.String(length=63), nullable=False),
    sa.Column('screen_id', sa.String(length=63), nullable=False),
    sa.Column('sent_at', signage.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('sends', sa.Integer(), nullable=False),
    sa.Column('stop_sent_at', signage.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('started_at', signage.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('ended_at', signage.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('outcome', sa.String(length=16), nullable=True),
    sa.Column('reason', sa.String(length=500), nullable=True),
    sa.ForeignKeyConstraint(['alert_id'], ['alerts.id'], name=op.f('fk_alert_deliveries_alert_id_alerts'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('alert_id', 'screen_id', name=op.f('pk_alert_deliveries'))
    )
    with op.batch_alter_table('organisations', schema=None) as batch_op:
        batch_op.add_column(sa.Column('alerts_need_approval', sa.Boolean(), server_default=sa.false(), nullable=False))



def downgrade() -> None:
    with op.batch_alter_table('organisations', schema=None) as batch_op:
        batch_op.drop_column('alerts_need_approval')

    op.drop_table('alert_deliveries')
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_alerts_starts_at'))
        batch_op.drop_index(batch_op.f('ix_alerts_organisation_id'))

    op.drop_table('alerts')
