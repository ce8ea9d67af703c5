"""The media library's table: one row per file a unit holds, keyed by (sha256, organisation).

The bytes live once in the store under their sha256 (media/store.py); each unit that has them in its library has a
row of its own, with its own name and date, so that no unit learns from an upload which files another unit holds.
What the bytes are (kind, codecs, length, size) is the same in every row of one sha256: the file's own, as probed.
The store's file stays while any row names it (media/library.py). Campaign creatives and alerts name the row they
use, (media_sha256, media_organisation_id).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Integer, Select, String, select
from sqlalchemy.orm import Mapped, mapped_column

from campaigns.kinds import MediaKind
from signage.db import Base, UTCDateTime, enum_column


class MediaAsset(Base):
    __tablename__ = "media_library"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    organisation_id: Mapped[str] = mapped_column(ForeignKey("organisations.id"), primary_key=True, index=True)
    kind: Mapped[MediaKind] = mapped_column(enum_column(MediaKind))
    mime: Mapped[str] = mapped_column(String(100))
    bytes: Mapped[int] = mapped_column(BigInteger)
    duration_ms: Mapped[int | None] = mapped_column(Integer)  # None for still images
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    container: Mapped[str | None] = mapped_column(String(100))
    video_codec: Mapped[str | None] = mapped_column(String(50))
    audio_codec: Mapped[str | None] = mapped_column(String(50))
    original_name: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime)


def held_by_any(organisation_ids: Select | Iterable[str] | None = None) -> Select:
    """The rows of the given units (a list, or a subquery such as `actor.org_ids()`; all units when None), each
    file's earliest row first."""
    query = select(MediaAsset)
    if organisation_ids is not None:
        query = query.where(MediaAsset.organisation_id.in_(organisation_ids))
    return query.order_by(MediaAsset.created_at, MediaAsset.organisation_id)


def held_by(sha256: str, organisation_ids: Select | Iterable[str] | None = None) -> Select:
    """A file's rows, of the given units only, the earliest first: `session.scalar(held_by(sha, actor.org_ids()))`
    is the row the actor reaches by the file's sha256 (a unit above two that hold the same bytes reaches one)."""
    return held_by_any(organisation_ids).where(MediaAsset.sha256 == sha256)


__all__ = ["MediaAsset", "held_by", "held_by_any"]
