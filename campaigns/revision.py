"""A counter that moves whenever anything the planner reads changes, from any process.

The scheduler service watches it to re-plan within seconds of an import, an API edit or a
status change, without each writer having to remember to tell it.
"""

from __future__ import annotations

from sqlalchemy import Integer, String, event, select, update
from sqlalchemy.orm import Mapped, Session, mapped_column

from campaigns.models import (
    Campaign,
    CampaignCreative,
    CampaignTarget,
    FrequencyOverride,
    Organisation,
    Screen,
    ScreenGroup,
    Site,
)
from media.models import MediaAsset
from signage.db import Base

PLANNING_INPUTS = (Organisation, Site, Screen, ScreenGroup, Campaign, CampaignCreative, CampaignTarget,
                   FrequencyOverride, MediaAsset)
PLANNING = "planning"


class DataRevision(Base):
    __tablename__ = "data_revisions"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[int] = mapped_column(Integer, default=0)


def current_revision(session: Session) -> int:
    return session.scalar(select(DataRevision.value).where(DataRevision.name == PLANNING)) or 0


@event.listens_for(Session, "before_flush")
def _bump_on_planning_change(session: Session, _context, _instances) -> None:
    touched = (*session.new, *session.dirty, *session.deleted)
    # Group membership lives in an association table; a change to it shows as a dirty Screen.
    if any(isinstance(obj, PLANNING_INPUTS) for obj in touched):
        session.execute(update(DataRevision).where(DataRevision.name == PLANNING)
                        .values(value=DataRevision.value + 1))

