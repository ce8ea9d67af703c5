"""The scheduler's own tables: plans as published, the planning lease, recorded capacity shortfalls."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Date, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from signage.db import Base, UTCDateTime


class PublishedPlan(Base):
    """Every plan version a player was given; the newest row per player is what it should be playing."""

    __tablename__ = "published_plans"
    __table_args__ = (UniqueConstraint("player_id", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    player_id: Mapped[str] = mapped_column(ForeignKey("screens.id", ondelete="CASCADE"), index=True)
    version: Mapped[str] = mapped_column(String(64))
    body: Mapped[str] = mapped_column(Text)  # the plan's canonical JSON, as signed and sent
    valid_from: Mapped[datetime] = mapped_column(UTCDateTime)
    valid_until: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


class SchedulerLease(Base):
    """Who may plan: one holder at a time, for as long as it keeps renewing."""

    __tablename__ = "scheduler_leases"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    holder: Mapped[str] = mapped_column(String(255))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)


class RecordedShortfall(Base):
    """Spots a campaign was saved without, knowingly: shown in reports as 'no capacity'."""

    __tablename__ = "recorded_shortfalls"
    __table_args__ = (UniqueConstraint("campaign_id", "site_id", "date", "reason"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    campaign_id: Mapped[str] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"), index=True)
    site_id: Mapped[str] = mapped_column(ForeignKey("sites.id", ondelete="CASCADE"))
    date: Mapped[date] = mapped_column(Date)
    reason: Mapped[str] = mapped_column(String(64))
    screens: Mapped[int] = mapped_column(Integer)
    missing: Mapped[int] = mapped_column(Integer)
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime)
