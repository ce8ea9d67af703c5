"""Web pages for what staff define. (The JSON API comes with the staff web app.)"""

from __future__ import annotations

from fastapi import APIRouter, Request

from campaigns.fleet_view import fleet_overview
from scheduler.deps import ClockDep, LanguageDep, SessionDep, render

router = APIRouter()


@router.get("/fleet", include_in_schema=False)
def fleet_page(request: Request, session: SessionDep, clock: ClockDep, language: LanguageDep, org: str | None = None):
    overview = fleet_overview(session, clock, org)
    return render(request, "fleet.html", {"overview": overview}, language)
