"""names and texts staff gave, in Unicode NFC

Text now comes in as NFC at every boundary (signage/text.py), and searches look for NFC; what was stored before,
written decomposed (NFD) by some file or copy-paste, would never be found. It is composed here, once.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-03 14:30:00
"""
import unicodedata
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0012'
down_revision: str | None = '0011'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# table: (its key's columns, its text columns)
TEXTS = {
    'organisations': (('id',), ('name',)),
    'sites': (('id',), ('name', 'address')),
    'screens': (('id',), ('name',)),
    'screen_groups': (('id',), ('name',)),
    'campaigns': (('id',), ('name', 'description')),
    'media_library': (('sha256', 'organisation_id'), ('original_name',)),
    'alerts': (('id',), ('title', 'text')),
    'users': (('id',), ('full_name',)),
}


def upgrade() -> None:
    connection = op.get_bind()
    for name, (keys, texts) in TEXTS.items():
        table = sa.table(name, *(sa.column(column) for column in (*keys, *texts)))
        changes = []
        for row in connection.execute(sa.select(table)).mappings():
            composed = {column: unicodedata.normalize('NFC', row[column]) for column in texts
                        if row[column] is not None and not unicodedata.is_normalized('NFC', row[column])}
            if composed:
                changes.append(({key: row[key] for key in keys}, composed))
        for key, composed in changes:
            connection.execute(sa.update(table).where(*(table.c[k] == v for k, v in key.items())).values(composed))


def downgrade() -> None:
    pass  # NFC is a form of the same text: nothing to undo
