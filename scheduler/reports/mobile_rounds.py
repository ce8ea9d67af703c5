"""Mobile loudspeaker rounds: per unit and per local day of the period, the rounds planned, done in the peak windows
and missing (the shortfall), as campaigns/mobile_rounds.py counts them; days after today are left out (not due yet).
The units are those of the scope's subtree that have a plan in the period. The days' sheet comes first: it is the
one a CSV holds."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from campaigns.mobile_rounds import MobileRoundProgress, mobile_round_progress
from campaigns.models import Organisation
from scheduler.reports.columns import MOBILE_DAY_COLUMNS, MOBILE_UNIT_COLUMNS
from scheduler.reports.scope import Scope
from scheduler.reports.table import Report, Sheet
from signage.config import DEFAULT_TIMEZONE


def progress_of(session: Session, scope: Scope, today: date) -> MobileRoundProgress:
    units = scope.filter_organisations(select(Organisation.id))
    return mobile_round_progress(session, units, scope.first, min(scope.last, today))


def _share(done: int, planned: int) -> float | None:
    return done / planned if planned else None


def mobile_rounds_report(session: Session, scope: Scope, now: datetime, language: str = "vi",
                         timezone: str = DEFAULT_TIMEZONE) -> Report:
    en = language == "en"
    progress = progress_of(session, scope, now.astimezone(ZoneInfo(timezone)).date())
    by_unit = [{"unit": unit.organisation_name, "organisation_id": unit.organisation_id, "planned": unit.planned,
                "done": unit.done, "missed": unit.missed, "outside_peak": sum(d.outside_peak for d in unit.days),
                "compliance": _share(unit.done, unit.planned)} for unit in progress.units]
    by_day = [{"date": day.day, "unit": day.organisation_name, "organisation_id": day.organisation_id,
               "planned": day.planned, "done": day.done, "missed": day.missed, "outside_peak": day.outside_peak,
               "compliance": _share(day.done, day.planned)} for day in progress.days]
    totals = {"unit": "Tổng" if not en else "Total", "planned": progress.planned, "done": progress.done,
              "missed": progress.missed, "outside_peak": sum(row["outside_peak"] for row in by_unit),
              "compliance": _share(progress.done, progress.planned)}
    note = ("Một lượt được tính khi bắt đầu trong giờ cao điểm của ngày; mỗi ngày tính tối đa số lượt kế hoạch."
            if not en else "A round counts when it starts in the day's peak hours; a day counts at most the rounds "
                           "planned.")
    return Report(kind="mobile", title="Lượt loa lưu động" if not en else "Mobile loudspeaker rounds",
                  organisation=scope.organisation_name, period=(scope.first, scope.last), generated_at=now,
                  sheets=[Sheet("Theo ngày" if not en else "By day", MOBILE_DAY_COLUMNS, by_day, dict(totals)),
                          Sheet("Theo đơn vị" if not en else "By unit", MOBILE_UNIT_COLUMNS, by_unit, totals)],
                  language=language, notes=[note], timezone=timezone)


__all__ = ["mobile_rounds_report", "progress_of"]
