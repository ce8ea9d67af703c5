"""Web pages for what staff define: the fleet overview, scoped to the signed-in user's organisation."""

from __future__ import annotations

from fastapi import APIRouter, Request

from campaigns.access import PageActorDep
from campaigns.fleet_view import fleet_overview
from campaigns.models import User
from scheduler.deps import ClockDep, LanguageDep, SessionDep, render

router = APIRouter()


@router.get("/fleet", include_in_schema=False)
def fleet_page(request: Request, session: SessionDep, clock: ClockDep, language: LanguageDep, actor: PageActorDep,
               org: str | None = None):
    root = org if org and actor.sees_organisation(session, org) else own_root(actor.user)
    overview = fleet_overview(session, clock, root)
    # A group of a unit above the user's is not theirs to know, even when it holds their screens.
    visible = set(session.scalars(actor.org_ids()))
    return render(request, "fleet.html", {"overview": overview, "visible_organisations": visible}, language, actor)


def own_root(user: User) -> str | None:
    """The top of what the user sees; None (everything) for a user of the city, the root organisation."""
    return user.organisation_id if user.organisation.parent_id is not None else None
