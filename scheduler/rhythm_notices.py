"""Reminding units of their message rhythm before they go late: the rhythm noter of the notice job
(scheduler/notices.py). Intervals, due dates and states: campaigns/message_rhythm.py.

- **The unit's reminder**: once a unit is within a day of its due date (its interval less one day since its last
  regular message; 2 days with the default 3), its managers and staff (`people_of`) are told once for that due date,
  with a link to the regular-messages page. A new message moves the due date, so the next reminder comes a day
  before the new one. A unit already past its due date when the noter first sees it (the server was down, its
  interval was shortened) is told it is late, once. A unit that never sent a regular message is late already
  (campaigns/message_rhythm.py says why) and is told so once, until its first message.
- **The parent's list**: once a local day, from `PARENT_HOUR` (07:00), the managers and staff of each unit with
  children at risk (due within a day) get one notice listing them, with the children already late counted: a
  district manager wants one morning list to call the wards on, not a notice per ward at whatever minute each
  crossed the line. Listing at the same hour each day, the units due within the next 24 hours, leaves no unit out:
  one that goes at risk after the list is in the next morning's, still before its due date.

What was told is kept in `rhythm_notices` (per unit: the due date of its reminder, the local date of its list), so
the job, which runs every minute, tells nothing twice.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, time
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from campaigns.message_rhythm import AT_RISK, UnitRhythm, unit_rhythms
from scheduler.models import RhythmNotice
from scheduler.notices import Noter, people_of, tell
from signage.config import Settings

PAGE = "/messages"
PARENT_HOUR = time(7, 0)
KINDS = ("rhythm_due", "rhythm_at_risk")  # Notice.kind of the unit's reminder and of the parent's list


def _local(instant: datetime, zone: str) -> str:
    return instant.astimezone(ZoneInfo(zone)).strftime("%H:%M %d/%m/%Y")


def reminder_text(unit: UnitRhythm, now: datetime, zone: str) -> tuple[str, str]:
    """The unit's reminder, in Vietnamese (the language of its staff; the page offers English)."""
    write = f"Hãy viết tin thường xuyên mới tại trang Tin thường xuyên ({PAGE})."
    if unit.due_by is None:
        return (f"Chưa có tin thường xuyên: {unit.name}",
                f"{unit.name} chưa phát tin thường xuyên nào; quy định là ít nhất {unit.interval_days} ngày một "
                f"tin.\n{write}")
    last = f"Tin gần nhất phát lúc {_local(unit.last_message, zone)}; quy định {unit.interval_days} ngày một tin."
    if now > unit.due_by:
        return (f"Đã quá hạn tin thường xuyên: {unit.name}",
                f"{unit.name} đã quá hạn tin thường xuyên từ {_local(unit.due_by, zone)}.\n{last}\n{write}")
    return (f"Sắp đến hạn tin thường xuyên: {unit.name}",
            f"{unit.name} cần phát tin thường xuyên trước {_local(unit.due_by, zone)}, nếu không sẽ bị tính là "
            f"chậm.\n{last}\n{write}")


def parent_text(parent_name: str, at_risk: list[UnitRhythm], late: int, zone: str) -> tuple[str, str]:
    lines = [f"• {unit.name}: hạn {_local(unit.due_by, zone)}" for unit in at_risk if unit.due_by is not None]
    body = (f"Các đơn vị trực thuộc {parent_name} sắp đến hạn tin thường xuyên (trong vòng 1 ngày):\n"
            + "\n".join(lines))
    if late:
        body += f"\n{late} đơn vị trực thuộc đã quá hạn."
    return (f"{len(at_risk)} đơn vị sắp đến hạn tin thường xuyên", f"{body}\nXem tại trang Tin thường xuyên ({PAGE}).")


def _told(stored: dict, session: Session, organisation_id: str, kind: str, told_for: str, now: datetime) -> bool:
    """Whether this was told already; if not, records that it is being told now."""
    row = stored.get((organisation_id, kind))
    if row is not None and row.told_for == told_for:
        return True
    if row is None:
        row = RhythmNotice(organisation_id=organisation_id, kind=kind)
        session.add(row)
    row.told_for, row.told_at = told_for, now
    return False


def note_rhythm(session: Session, now: datetime, default_days: int, zone: str) -> tuple[int, int]:
    """Tells the units a day from their due date (or past it), and once a day each parent its children at risk;
    returns (units reminded, parents told). Idempotent."""
    units = unit_rhythms(session, "/", now, default_days)
    stored = {(row.organisation_id, row.kind): row for row in session.scalars(select(RhythmNotice))}
    reminded = 0
    for unit in units:
        if unit.due_by is not None and now < unit.due_by - AT_RISK:
            continue
        if _told(stored, session, unit.organisation_id, "due", unit.due_by.isoformat() if unit.due_by else "never",
                 now):
            continue
        subject, body = reminder_text(unit, now, zone)
        tell(session, people_of(session, [unit.organisation_id]), KINDS[0], now, subject, body, link=PAGE)
        reminded += 1
    local_now = now.astimezone(ZoneInfo(zone))
    if local_now.time() < PARENT_HOUR:
        return reminded, 0
    children: dict[str, list[UnitRhythm]] = defaultdict(list)
    for unit in units:
        if unit.parent_id is not None:
            children[unit.parent_id].append(unit)
    names = {unit.organisation_id: unit.name for unit in units}
    parents = 0
    for parent_id, kids in children.items():
        at_risk = [unit for unit in kids if unit.state == "at_risk"]
        if not at_risk or _told(stored, session, parent_id, "at_risk", local_now.date().isoformat(), now):
            continue
        subject, body = parent_text(names.get(parent_id, parent_id), at_risk,
                                    sum(unit.state == "late" for unit in kids), zone)
        tell(session, people_of(session, [parent_id]), KINDS[1], now, subject, body, link=PAGE)
        parents += 1
    return reminded, parents


def rhythm_noter(settings: Settings) -> Noter:
    """The job's rhythm step with the settings' interval and timezone: returns (units reminded, parents told)."""
    def note(session: Session, now: datetime) -> tuple[int, int]:
        return note_rhythm(session, now, settings.message_interval_days, settings.timezone)
    return note


__all__ = ["KINDS", "PARENT_HOUR", "note_rhythm", "parent_text", "reminder_text", "rhythm_noter"]
