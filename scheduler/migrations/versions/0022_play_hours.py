"""hourly delivery roll-up (play_hours), filled from the proof-of-play log

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-03 20:30:00
"""
from collections.abc import Sequence
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from alembic import op

import signage.db

revision: str = '0022'
down_revision: str | None = '0021'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

HOURS = [f'h{hour:02d}' for hour in range(24)]
ROWS_PER_INSERT = 5_000

# The tables as this migration knows them, not as the models may have them later.
plays = sa.table('play_records', sa.column('player_id', sa.String), sa.column('campaign_id', sa.String),
                 sa.column('kind', sa.String), sa.column('status', sa.String), sa.column('local_date', sa.Date),
                 sa.column('started_at', signage.db.UTCDateTime(timezone=True)))
screens = sa.table('screens', sa.column('id', sa.String), sa.column('site_id', sa.String))
sites = sa.table('sites', sa.column('id', sa.String), sa.column('timezone', sa.String))


def upgrade() -> None:
    op.create_table('play_hours',
                    sa.Column('local_date', sa.Date(), nullable=False),
                    sa.Column('site_id', sa.String(length=63), nullable=False),
                    sa.Column('campaign_id', sa.String(length=63), nullable=False),
                    *(sa.Column(name, sa.Integer(), server_default='0', nullable=False) for name in HOURS),
                    sa.PrimaryKeyConstraint('local_date', 'site_id', 'campaign_id', name=op.f('pk_play_hours')),
                    sqlite_with_rowid=False)
    backfill(op.get_bind())


def backfill(connection: sa.Connection) -> None:
    """Count the log's completed spots and make-goods into play_hours one local date at a time (the log's index
    on local_date serves each), so memory holds one day of counts whatever the log's size."""
    hour_table = sa.table('play_hours', *(sa.column(name) for name in ['local_date', 'site_id', 'campaign_id',
                                                                       *HOURS]))
    places = {screen_id: (site_id, ZoneInfo(zone)) for screen_id, site_id, zone in connection.execute(
        sa.select(screens.c.id, sites.c.id, sites.c.timezone).join(sites, sites.c.id == screens.c.site_id))}
    days = connection.scalars(sa.select(plays.c.local_date).distinct().order_by(plays.c.local_date)).all()
    for day in days:
        counts: dict[tuple[str, str], list[int]] = {}
        rows = connection.execute(
            sa.select(plays.c.player_id, plays.c.campaign_id, plays.c.started_at).where(
                plays.c.local_date == day, plays.c.status == 'completed', plays.c.kind.in_(('spot', 'makegood')),
                plays.c.campaign_id.is_not(None)).execution_options(stream_results=True, yield_per=10_000))
        for player_id, campaign_id, started_at in rows:
            place = places.get(player_id)
            if place is not None:
                site_id, zone = place
                counts.setdefault((site_id, campaign_id), [0] * 24)[started_at.astimezone(zone).hour] += 1
        values = [{'local_date': day, 'site_id': site_id, 'campaign_id': campaign_id,
                   **dict(zip(HOURS, hours, strict=True))}
                  for (site_id, campaign_id), hours in sorted(counts.items())]
        for start in range(0, len(values), ROWS_PER_INSERT):
            connection.execute(sa.insert(hour_table), values[start:start + ROWS_PER_INSERT])


def downgrade() -> None:
    op.drop_table('play_hours')
