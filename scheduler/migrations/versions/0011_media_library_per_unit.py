"""the media library holds a row per unit: media_library keyed by (sha256, organisation_id)

Keyed by sha256 alone, the library had one owner per file, and an upload of bytes another unit held was refused as
"held by a unit outside yours", which told the uploader that unit had the file (issue 16). Each unit now has its
own row (its own name, date and owner) over the one stored file. media_assets is copied into media_library;
campaign creatives and alerts name the row they use, (media_sha256, media_organisation_id), filled from the
owner each file had.

On SQLite, scheduler.database.migrate() runs this with foreign keys off (SQLite's procedure for changing a table
that others reference), and checks them all afterwards.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-03 14:00:00
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import signage.db  # noqa: F401 - custom column types

revision: str = '0011'
down_revision: str | None = '0010'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = ('sha256, organisation_id, kind, mime, bytes, duration_ms, width, height, container, video_codec, '
           'audio_codec, original_name, created_at')
USERS = ('campaign_creatives', 'alerts')


def upgrade() -> None:
    op.create_table('media_library',
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('organisation_id', sa.String(length=63), nullable=False),
    sa.Column('kind', sa.Enum('video', 'image', 'audio', name='mediakind', native_enum=False, length=32), nullable=False),
    sa.Column('mime', sa.String(length=100), nullable=False),
    sa.Column('bytes', sa.BigInteger(), nullable=False),
    sa.Column('duration_ms', sa.Integer(), nullable=True),
    sa.Column('width', sa.Integer(), nullable=True),
    sa.Column('height', sa.Integer(), nullable=True),
    sa.Column('container', sa.String(length=100), nullable=True),
    sa.Column('video_codec', sa.String(length=50), nullable=True),
    sa.Column('audio_codec', sa.String(length=50), nullable=True),
    sa.Column('original_name', sa.String(length=255), nullable=False),
    sa.Column('created_at', signage.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['organisation_id'], ['organisations.id'], name=op.f('fk_media_library_organisation_id_organisations')),
    sa.PrimaryKeyConstraint('sha256', 'organisation_id', name=op.f('pk_media_library'))
    )
    with op.batch_alter_table('media_library', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_media_library_organisation_id'), ['organisation_id'], unique=False)
    op.execute(f'INSERT INTO media_library ({COLUMNS}) SELECT {COLUMNS} FROM media_assets')

    for table in USERS:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column('media_organisation_id', sa.String(length=63), nullable=True))
        op.execute(f'UPDATE {table} SET media_organisation_id = (SELECT organisation_id FROM media_assets '
                   f'WHERE media_assets.sha256 = {table}.media_sha256) WHERE media_sha256 IS NOT NULL')
        with op.batch_alter_table(table, schema=None) as batch_op:
            if table == 'campaign_creatives':
                batch_op.alter_column('media_organisation_id', existing_type=sa.String(length=63), nullable=False)
            batch_op.drop_constraint(f'fk_{table}_media_sha256_media_assets', type_='foreignkey')
            batch_op.create_foreign_key(batch_op.f(f'fk_{table}_media_sha256_media_library'), 'media_library',
                                        ['media_sha256', 'media_organisation_id'], ['sha256', 'organisation_id'])

    with op.batch_alter_table('media_assets', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_media_assets_organisation_id'))
    op.drop_table('media_assets')


def downgrade() -> None:
    # Only possible while no file is held by two units.
    op.create_table('media_assets',
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('kind', sa.Enum('video', 'image', 'audio', name='mediakind', native_enum=False, length=32), nullable=False),
    sa.Column('mime', sa.String(length=100), nullable=False),
    sa.Column('bytes', sa.BigInteger(), nullable=False),
    sa.Column('duration_ms', sa.Integer(), nullable=True),
    sa.Column('width', sa.Integer(), nullable=True),
    sa.Column('height', sa.Integer(), nullable=True),
    sa.Column('container', sa.String(length=100), nullable=True),
    sa.Column('video_codec', sa.String(length=50), nullable=True),
    sa.Column('audio_codec', sa.String(length=50), nullable=True),
    sa.Column('original_name', sa.String(length=255), nullable=False),
    sa.Column('organisation_id', sa.String(length=63), nullable=False),
    sa.Column('created_at', signage.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['organisation_id'], ['organisations.id'], name=op.f('fk_media_assets_organisation_id_organisations')),
    sa.PrimaryKeyConstraint('sha256', name=op.f('pk_media_assets'))
    )
    with op.batch_alter_table('media_assets', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_media_assets_organisation_id'), ['organisation_id'], unique=False)
    op.execute(f'INSERT INTO media_assets ({COLUMNS}) SELECT {COLUMNS} FROM media_library')
    for table in USERS:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_constraint(f'fk_{table}_media_sha256_media_library', type_='foreignkey')
            batch_op.create_foreign_key(batch_op.f(f'fk_{table}_media_sha256_media_assets'), 'media_assets',
                                        ['media_sha256'], ['sha256'])
            batch_op.drop_column('media_organisation_id')
    with op.batch_alter_table('media_library', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_media_library_organisation_id'))
    op.drop_table('media_library')
