"""Reminding units of a reporting round's deadline: the rounds noter of the notice job (scheduler/notices.py).

Each unit that reports to a round (campaigns/reporting_rounds.py) and has not submitted is told 3 days before the
deadline, 1 day before, and once late (`reminder_stage`), each once (`round_reminders`): a server started a day
before the deadline tells the 1-day reminder only, and a unit that submitted is told nothing more. The words are
Vietnamese, with the deadline in local time and a link to the round's page.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from campaigns.models import ReportRound, RoundReminder
from campaigns.reporting_rounds import LATE_TOLD_FOR, REMINDER_STAGES, reminder_stage, units_not_submitted
from scheduler.notices import Noter, people_of, tell
from signage.config import Settings

KINDS = {"3_days": "round_due", "1_day": "round_due", "late": "round_late"}


def note_round_deadlines(session: Session, now: datetime, timezone: str) -> int:
    """Tell each unit the reminder due now for each round it has not submitted; returns the notices made."""
    earliest, latest = now - LATE_TOLD_FOR, now + max(ahead for _, ahead in REMINDER_STAGES)
    rounds = session.scalars(select(ReportRound).where(ReportRound.deadline > earliest,
                                                       ReportRound.deadline <= latest)
                             .options(selectinload(ReportRound.series)).order_by(ReportRound.deadline))
    told = 0
    for round_ in rounds:
        stage = reminder_stage(round_.deadline, now)
        if stage is None:
            continue
        already = set(session.scalars(select(RoundReminder.organisation_id).where(
            RoundReminder.round_id == round_.id, RoundReminder.stage == stage)))
        for unit in units_not_submitted(session, round_):
            if unit.id in already:
                continue
            session.add(RoundReminder(round_id=round_.id, organisation_id=unit.id, stage=stage, told_at=now))
            subject, body = reminder_text(stage, round_, timezone)
            told += tell(session, people_of(session, [unit.id]), KINDS[stage], now, subject, body,
                         link=round_link(round_))
    return told


def reminder_text(stage: str, round_: ReportRound, timezone: str) -> tuple[str, str]:
    deadline = round_.deadline.astimezone(ZoneInfo(timezone)).strftime("%H:%M %d/%m/%Y")
    series = round_.series
    asked = f"{series.name} — {round_.name}, kỳ {round_.period_start:%d/%m/%Y}–{round_.period_end:%d/%m/%Y}"
    where = f"Báo cáo tại mục Báo cáo định kỳ: {round_link(round_)}"
    if stage == "late":
        return (f"Quá hạn báo cáo: {round_.name}",
                f"{asked}: đã quá hạn nộp ({deadline}) mà đơn vị chưa nộp báo cáo. Đề nghị nộp ngay.\n{where}")
    left = "3 ngày" if stage == "3_days" else "1 ngày"
    return (f"Sắp đến hạn báo cáo: {round_.name}",
            f"{asked}: hạn nộp {deadline} (còn {left}). Đơn vị chưa nộp báo cáo.\n{where}")


def round_link(round_: ReportRound) -> str:
    """The round's page, a path of the web UI (the notice's link; the e-mail names it too)."""
    return f"/rounds/{round_.id}"


def round_noter(settings: Settings) -> Noter:
    def noter(session: Session, now: datetime) -> int:
        return note_round_deadlines(session, now, settings.timezone)

    return noter


__all__ = ["KINDS", "note_round_deadlines", "reminder_text", "round_noter"]
