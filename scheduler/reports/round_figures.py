"""The figures the system fills on a reporting round's form (campaigns/reporting_rounds.py), for one unit's subtree
and the round's period, from the reports' own queries: screens in service, required and delivered plays and the
delivery share (the compliance report's `summarise`), regular messages and urgent alerts (the cadence report's
`unit_cadences`, summed over the units of the subtree), mobile loudspeaker rounds planned and done in peak hours
(`campaigns.mobile_rounds.mobile_round_progress` over the units of the subtree). Nothing here counts a second
way."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from campaigns.kinds import ReportFigure
from campaigns.mobile_rounds import mobile_round_progress
from campaigns.models import Organisation, Screen
from scheduler.reports.build import make_scope
from scheduler.reports.cadence import cadence_period, local_midnight, unit_cadences
from scheduler.reports.compliance import summarise
from scheduler.reports.scope import Scope
from signage.config import DEFAULT_TIMEZONE

Figures = dict[str, int | float | None]


def screens_in_service(session: Session, scope: Scope) -> int:
    return session.scalar(scope.filter_screens(select(func.count()).select_from(Screen))
                          .where(Screen.in_service)) or 0


def unit_figures(session: Session, organisation_id: str, first: date, last: date, now: datetime,
                 timezone: str = DEFAULT_TIMEZONE) -> Figures:
    """Every `ReportFigure` of the unit's subtree over `first`..`last` (local dates), as of `now`; compliance as
    a percentage (delivered over required plays), None when nothing was required."""
    scope = make_scope(session, organisation_id, first, last, None, now.date())
    totals = summarise(session, scope).total
    if now <= local_midnight(first, timezone):  # the period has not begun: nothing sent in it yet
        regular = urgent = 0
    else:
        units = unit_cadences(session, scope, cadence_period(scope, now, timezone))
        regular, urgent = sum(unit.messages for unit in units), sum(unit.urgent for unit in units)
    mobile = mobile_round_progress(session, scope.filter_organisations(select(Organisation.id)), first, last)
    return {
        ReportFigure.screens.value: screens_in_service(session, scope),
        ReportFigure.required_plays.value: totals.required,
        ReportFigure.delivered_plays.value: totals.delivered,
        ReportFigure.compliance.value: round(totals.delivery * 100, 1) if totals.delivery is not None else None,
        ReportFigure.regular_messages.value: regular,
        ReportFigure.urgent_alerts.value: urgent,
        ReportFigure.mobile_rounds_planned.value: mobile.planned,
        ReportFigure.mobile_rounds_done.value: mobile.done,
    }


__all__ = ["Figures", "unit_figures"]
