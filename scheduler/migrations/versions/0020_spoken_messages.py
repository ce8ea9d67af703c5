"""spoken text messages for speakers

A text alert whose targets include loudspeakers keeps the library row of its text read aloud (media/speech.py),
(spoken_sha256, spoken_organisation_id), as a media alert keeps its file's.

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-03 20:10:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0020'
down_revision: str | None = '0019'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('spoken_sha256', sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column('spoken_organisation_id', sa.String(length=63), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_alerts_spoken_sha256_media_library'), 'media_library',
                                    ['spoken_sha256', 'spoken_organisation_id'], ['sha256', 'organisation_id'],
                                    ondelete='SET NULL')


def downgrade() -> None:
    with op.batch_alter_table('alerts', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_alerts_spoken_sha256_media_library'), type_='foreignkey')
        batch_op.drop_column('spoken_organisation_id')
        batch_op.drop_column('spoken_sha256')
