"""notices that are not outages: their words kept with them (subject, body, the page they are about); and each
unit's interval between regular messages

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-03 20:10:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import signage.db

revision: str = '0018'
down_revision: str | None = '0017'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The words of the notices made before their words were kept: the same sentences scheduler/outage_notices.py
# writes now, from the screen and site names (SQL's || works alike on SQLite and PostgreSQL).
_WHERE = ("(SELECT screens.name || ' — ' || sites.name FROM screen_outages JOIN screens ON screens.id = "
          "screen_outages.screen_id JOIN sites ON sites.id = screens.site_id WHERE screen_outages.id = "
          "notices.outage_id)")


def upgrade() -> None:
    with op.batch_alter_table('notices') as batch:
        batch.add_column(sa.Column('subject', sa.String(length=255), nullable=True))
        batch.add_column(sa.Column('body', sa.Text(), nullable=True))
        batch.add_column(sa.Column('link', sa.String(length=255), nullable=True))
        batch.alter_column('outage_id', existing_type=sa.Integer(), nullable=True)
    op.execute(f"UPDATE notices SET subject = CASE kind WHEN 'offline' THEN "
               f"'Màn hình mất kết nối trong giờ cao điểm: ' || {_WHERE} "
               f"ELSE 'Màn hình đã hoạt động trở lại: ' || {_WHERE} END, "
               f"link = (SELECT '/screens/' || screen_outages.screen_id FROM screen_outages "
               f"WHERE screen_outages.id = notices.outage_id)")
    op.execute("UPDATE notices SET subject = 'Thông báo' WHERE subject IS NULL")
    op.execute("UPDATE notices SET body = subject")
    with op.batch_alter_table('notices') as batch:
        batch.alter_column('subject', existing_type=sa.String(length=255), nullable=False)
        batch.alter_column('body', existing_type=sa.Text(), nullable=False)
    with op.batch_alter_table('organisations') as batch:
        batch.add_column(sa.Column('message_interval_days', sa.Integer(), nullable=True))
    op.create_table(
        'rhythm_notices',
        sa.Column('organisation_id', sa.String(length=63), nullable=False),
        sa.Column('kind', sa.String(length=16), nullable=False),
        sa.Column('told_for', sa.String(length=64), nullable=False),
        sa.Column('told_at', signage.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(['organisation_id'], ['organisations.id'],
                                name=op.f('fk_rhythm_notices_organisation_id_organisations'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('organisation_id', 'kind', name=op.f('pk_rhythm_notices')),
    )


def downgrade() -> None:
    op.drop_table('rhythm_notices')
    with op.batch_alter_table('organisations') as batch:
        batch.drop_column('message_interval_days')
    op.execute("DELETE FROM notices WHERE outage_id IS NULL")
    with op.batch_alter_table('notices') as batch:
        batch.alter_column('outage_id', existing_type=sa.Integer(), nullable=False)
        batch.drop_column('link')
        batch.drop_column('body')
        batch.drop_column('subject')
