"""The signed-in user's own notices (scheduler/notices.py: a screen of their unit dark in its peak hours or back,
a deadline near, a unit about to go late): listed newest first, marked read. Nobody sees another's notices: every
query is by the user's id."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse
from pydantic import BaseModel
from sqlalchemy import Select, func, select, update
from sqlalchemy.orm import Session, joinedload

from campaigns.access import Actor
from campaigns.models import Screen
from scheduler.models import Notice, ScreenOutage
from scheduler.web.auth import ActorDep, PageActorDep
from scheduler.web.deps import ClockDep, LanguageDep, SessionDep, render
from scheduler.web.i18n import N_
from scheduler.web.pagination import Page, PageDep, PageParams

pages = APIRouter(include_in_schema=False)
api = APIRouter(prefix="/api/v1", tags=["notices"])

NOTICES_PER_PAGE = 50
NOTICE_WORDS = {"offline": N_("notices.offline"), "back_online": N_("notices.back_online")}


class NoticeOut(BaseModel):
    id: int
    kind: str  # offline | back_online | what the other noters tell (scheduler/notices.py)
    subject: str
    body: str
    link: str | None  # the page it is about
    screen_id: str | None  # outages only: the screen, its site, since when it was dark, when it was back
    screen_name: str | None
    site_name: str | None
    dark_since: datetime | None
    back_at: datetime | None
    created_at: datetime
    read_at: datetime | None
    emailed_at: datetime | None

    @classmethod
    def of(cls, row) -> NoticeOut:
        notice, screen = row
        outage = notice.outage
        return cls(id=notice.id, kind=notice.kind, subject=notice.subject, body=notice.body, link=notice.link,
                   screen_id=screen.id if screen else None, screen_name=screen.name if screen else None,
                   site_name=screen.site.name if screen else None,
                   dark_since=outage.dark_since if outage else None,
                   back_at=outage.ended_at if outage and notice.kind == "back_online" else None,
                   created_at=notice.created_at, read_at=notice.read_at, emailed_at=notice.emailed_at)


def own_notices(actor: Actor) -> Select:
    return (select(Notice, Screen).outerjoin(ScreenOutage, ScreenOutage.id == Notice.outage_id)
            .outerjoin(Screen, Screen.id == ScreenOutage.screen_id)
            .options(joinedload(Notice.outage), joinedload(Screen.site))
            .where(Notice.user_id == actor.user.id).order_by(Notice.created_at.desc(), Notice.id.desc()))


def listed(session: Session, actor: Actor, params: PageParams) -> Page[NoticeOut]:
    rows = session.execute(own_notices(actor).limit(params.limit).offset(params.offset)).unique().all()
    total = session.scalar(select(func.count()).select_from(Notice).where(Notice.user_id == actor.user.id)) or 0
    return Page(items=[NoticeOut.of(row) for row in rows], total=total, limit=params.limit, offset=params.offset)


def mark_read(session: Session, actor: Actor, now: datetime) -> int:
    return session.execute(update(Notice).where(Notice.user_id == actor.user.id, Notice.read_at.is_(None))
                           .values(read_at=now)).rowcount or 0


@api.get("/notices", response_model=Page[NoticeOut])
def list_notices(actor: ActorDep, session: SessionDep, page: PageDep) -> Page[NoticeOut]:
    """Your notices, newest first: screens of your unit dark in their peak hours and back, deadlines near, units
    about to go late."""
    return listed(session, actor, page)


@api.post("/notices/read", status_code=204)
def read_notices(actor: ActorDep, session: SessionDep, clock: ClockDep) -> None:
    """Mark all your notices read."""
    mark_read(session, actor, clock.now())
    session.commit()


@pages.get("/notices")
def notices_page(request: Request, actor: PageActorDep, session: SessionDep, language: LanguageDep,
                 offset: Annotated[int, Query(ge=0, le=10**9)] = 0):
    shown = listed(session, actor, PageParams(limit=NOTICES_PER_PAGE, offset=offset))
    return render(request, "notices.html", {"notices": shown.items, "total": shown.total, "offset": offset,
                                            "per_page": NOTICES_PER_PAGE, "words": NOTICE_WORDS}, language, actor)


@pages.post("/notices/read")
def read_from_page(actor: PageActorDep, session: SessionDep, clock: ClockDep):
    mark_read(session, actor, clock.now())
    session.commit()
    return RedirectResponse("/notices", status_code=303)


__all__ = ["api", "pages"]
