"""Message cadence: each unit's regular messages to the public, flagging the units that went longer than their
interval without one (the orders ask every unit for "at least one every 3 days"; issue 8), and saying which are
late, at risk or on track at the period's end (issue 21).

Definitions (a regular message, a unit's interval, its due date and state: campaigns/message_rhythm.py):
- A unit's **regular message** is an `info` alert it issued (Alert.organisation_id) that went out: approved or
  stopped, started (starts_at <= now), and not stopped before its start (stopped_at is None or after starts_at).
  Urgent alerts that went out by the same rule are counted in a column of their own but keep no cadence.
- The **units listed** are the organisations of the scope's subtree with at least one enabled screen in their own
  subtree (a district is listed for its wards' screens too). Each is judged on the messages it issued itself.
- A unit's **interval** is its own, else its nearest ancestor's, else SIGNAGE_MESSAGE_INTERVAL_DAYS (3 days), as
  set when the report is made.
- The **period** runs from the start of its first local date to the end of its last, or to now if that is earlier;
  local dates in the report's timezone (default Asia/Ho_Chi_Minh).
- Per unit: its regular messages and urgent alerts that started in the period; its last regular message ever
  (before the period's end) and the days from it to the period's end; and the **longest gap** in the period: from
  the period's start (or the unit's last regular message before it, if any) to its first message, between its
  messages, and from its last to the period's end (the whole period when it sent none). A unit is **late** when
  that gap is over its interval. Days are hours / 24, shown to one decimal; lateness is decided on the exact gap.
- Its **due by**: its last regular message (before the period's end) + its interval, when it goes late if it sends
  nothing; none when it never sent one. Its **state** at the period's end: late (past its due date, or never sent
  one), at risk (due within a day), on track.
- Rows: late units first, then the longest gap, longest first, then the unit's path.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import and_, case, func, select
from sqlalchemy.orm import Session

from campaigns.kinds import AlertSeverity
from campaigns.message_rhythm import REGULAR, RhythmState, due_by, effective_intervals, rhythm_state, went_out_by
from campaigns.models import Alert, Organisation, Screen
from scheduler.reports import charts
from scheduler.reports.columns import CADENCE_COLUMNS
from scheduler.reports.scope import Scope
from scheduler.reports.table import Report, Sheet
from signage.config import DEFAULT_MESSAGE_INTERVAL_DAYS, DEFAULT_TIMEZONE
from signage.errors import Invalid

CHART_UNITS = 40  # bars in the chart: the units longest without a message; the sheet lists them all


@dataclass(frozen=True)
class Period:
    """The report's period as instants (UTC): `end` is the end of its last day, or now when that is earlier."""

    start: datetime
    end: datetime
    ends_now: bool


@dataclass
class UnitCadence:
    organisation_id: str
    name: str
    path: str
    messages: int = 0
    urgent: int = 0
    last_message: datetime | None = None
    days_since: float | None = None  # at the period's end, one decimal; None when the unit never sent one
    longest_gap: timedelta = timedelta(0)
    interval_days: int = DEFAULT_MESSAGE_INTERVAL_DAYS
    due_by: datetime | None = None
    state: RhythmState = "late"

    @property
    def late(self) -> bool:
        return self.longest_gap > timedelta(days=self.interval_days)


def local_midnight(day: date, timezone: str) -> datetime:
    """The instant (UTC) a local date begins in `timezone`."""
    return datetime.combine(day, time(0), ZoneInfo(timezone)).astimezone(UTC)


def cadence_period(scope: Scope, now: datetime, timezone: str = DEFAULT_TIMEZONE) -> Period:
    """The period the report covers; refuses a campaign (the cadence is about units, not campaigns) and a period
    that has not begun."""
    if scope.campaign_id is not None:
        raise Invalid(f"the cadence report covers units' messages, not a campaign ({scope.campaign_id!r})",
                      "leave the campaign out (--campaign, campaign_id)")
    start = local_midnight(scope.first, timezone)
    end_of_last = local_midnight(scope.last + timedelta(days=1), timezone)
    if now <= start:
        raise Invalid(f"the period starts on {scope.first}, which has not begun yet",
                      "give a first date (--from, from) of today or earlier")
    return Period(start, min(end_of_last, now), now < end_of_last)


def in_days(span: timedelta) -> float:
    return round(span.total_seconds() / 86400, 1)


def listed_units(session: Session, scope: Scope, default_days: int = DEFAULT_MESSAGE_INTERVAL_DAYS
                 ) -> list[UnitCadence]:
    """The organisations of the scope with an enabled screen somewhere in their own subtree, with their
    intervals."""
    holders = scope.filter_screens(select(Organisation.path).select_from(Screen).where(Screen.in_service)
                                   ).distinct().subquery()
    holds_a_screen = (select(holders.c.path)
                      .where(func.substr(holders.c.path, 1, func.length(Organisation.path)) == Organisation.path)
                      .exists())
    rows = session.execute(scope.filter_organisations(select(Organisation.id, Organisation.name, Organisation.path))
                           .where(holds_a_screen).order_by(Organisation.path))
    rows = rows.all()
    intervals = effective_intervals(session, [path for _, _, path in rows], default_days)
    return [UnitCadence(organisation_id, name, path, interval_days=intervals[organisation_id])
            for organisation_id, name, path in rows]


def unit_cadences(session: Session, scope: Scope, period: Period,
                  default_days: int = DEFAULT_MESSAGE_INTERVAL_DAYS) -> list[UnitCadence]:
    """Every listed unit's figures for the period, in the report's order (see the module's notes)."""
    units = {unit.organisation_id: unit for unit in listed_units(session, scope, default_days)}
    regular = REGULAR
    in_period = Alert.starts_at >= period.start
    issued = scope.filter_organisations(select(Alert.organisation_id)
                                        .join(Organisation, Organisation.id == Alert.organisation_id)
                                        ).where(went_out_by(period.end))
    counts = session.execute(issued.add_columns(
        func.sum(case((and_(regular, in_period), 1), else_=0)).label("messages"),
        func.sum(case((and_(Alert.severity == AlertSeverity.urgent, in_period), 1), else_=0)).label("urgent"),
        func.max(case((regular, Alert.starts_at))).label("last_message"),
        func.max(case((and_(regular, ~in_period), Alert.starts_at))).label("before"),
    ).group_by(Alert.organisation_id))
    before: dict[str, datetime] = {}
    for organisation_id, messages, urgent, last_message, last_before in counts:
        unit = units.get(organisation_id)
        if unit is None:  # a unit without screens
            continue
        unit.messages, unit.urgent, unit.last_message = messages or 0, urgent or 0, last_message
        if last_before is not None:
            before[organisation_id] = last_before
    sent = session.execute(issued.add_columns(Alert.starts_at).where(regular, in_period)
                           .order_by(Alert.organisation_id, Alert.starts_at))
    times: dict[str, list[datetime]] = {}
    for organisation_id, starts_at in sent:
        times.setdefault(organisation_id, []).append(starts_at)
    for organisation_id, unit in units.items():
        unit.longest_gap = longest_gap(before.get(organisation_id, period.start), times.get(organisation_id, []),
                                       period.end)
        if unit.last_message is not None:
            unit.days_since = in_days(period.end - unit.last_message)
        unit.due_by = due_by(unit.last_message, unit.interval_days)
        unit.state = rhythm_state(unit.due_by, period.end)
    return sorted(units.values(), key=lambda u: (not u.late, -u.longest_gap, u.path))


def longest_gap(since: datetime, messages: Sequence[datetime], end: datetime) -> timedelta:
    """The longest span without a message: from `since` to the first, between them, from the last to `end`."""
    moments = [since, *messages, end]
    return max(later - earlier for earlier, later in zip(moments, moments[1:], strict=False))


# -- as a Report ----------------------------------------------------------------------------------------------

def _row(unit: UnitCadence, en: bool) -> dict:
    return {"unit": unit.name, "organisation_id": unit.organisation_id, "messages": unit.messages,
            "urgent": unit.urgent, "last_message": unit.last_message, "days_since": unit.days_since,
            "longest_gap": in_days(unit.longest_gap), "interval_days": unit.interval_days, "due_by": unit.due_by,
            "rhythm_state": unit.state, "late": ("yes" if en else "có") if unit.late else (
                "no" if en else "không"), "is_late": unit.late, "path": unit.path}


def cadence_report(session: Session, scope: Scope, now: datetime, language: str = "vi",
                   timezone: str = DEFAULT_TIMEZONE, message_interval_days: int = DEFAULT_MESSAGE_INTERVAL_DAYS
                   ) -> Report:
    """`message_interval_days`: the server's interval (SIGNAGE_MESSAGE_INTERVAL_DAYS), for units that inherit it."""
    period = cadence_period(scope, now, timezone)
    units = unit_cadences(session, scope, period, message_interval_days)
    en = language == "en"
    rows = [_row(unit, en) for unit in units]
    late = sum(unit.late for unit in units)
    at_risk = sum(unit.state == "at_risk" for unit in units)
    # The scope's own interval: the chart's limit line, and the notes' words when every unit keeps it.
    interval = effective_intervals(session, [scope.path], message_interval_days).get(
        scope.organisation_id, message_interval_days)
    one_interval = all(unit.interval_days == interval for unit in units)
    over = (f"over {interval} days" if en else f"quá {interval} ngày") if one_interval else (
        "over their interval" if en else "quá khoảng cách quy định")
    messages = sum(unit.messages for unit in units)
    totals = {"unit": f"Total: {len(units)} units" if en else f"Tổng: {len(units)} đơn vị",
              "messages": messages, "urgent": sum(unit.urgent for unit in units),
              "late": f"{late} units" if en else f"{late} đơn vị",
              "units": len(units), "late_units": late, "at_risk_units": at_risk}
    local_end = period.end.astimezone(ZoneInfo(timezone))
    notes = [
        (f"{late} of {len(units)} units went {over} without a regular message; {messages} regular messages "
         "in the period." if en else
         f"{late}/{len(units)} đơn vị {over} không có tin thường xuyên; {messages} tin thường xuyên trong kỳ."),
        ("Regular messages: the unit's information alerts that went out; urgent alerts are counted apart and do "
         "not keep the cadence." if en else
         "Tin thường xuyên: tin thông tin do đơn vị phát đi; cảnh báo khẩn được đếm riêng, không tính vào nhịp tin."),
    ]
    if period.ends_now:
        notes.append(f"The period ends now, {local_end:%Y-%m-%d %H:%M}." if en else
                     f"Kỳ báo cáo tính đến thời điểm lập, {local_end:%d/%m/%Y %H:%M}.")
    worst = sorted(units, key=lambda u: (u.last_message is not None, -(u.days_since or 0), u.path))[:CHART_UNITS]
    caption = "Days since the last regular message" if en else "Số ngày từ tin thường xuyên gần nhất"
    if len(units) > CHART_UNITS:
        caption += (f" ({CHART_UNITS} units longest without one)" if en
                    else f" ({CHART_UNITS} đơn vị lâu nhất chưa có tin)")
    chart = charts.days_since_by_unit([(u.name, u.days_since) for u in worst], caption,
                                      limit=float(interval), language=language)
    return Report(kind="cadence", title="Message cadence" if en else "Nhịp tin thường xuyên",
                  organisation=scope.organisation_name, period=(scope.first, scope.last), generated_at=now,
                  sheets=[Sheet("Units" if en else "Đơn vị", CADENCE_COLUMNS, rows, totals, row_count=len(rows))],
                  charts=[chart], language=language, notes=notes, timezone=timezone)


__all__ = ["cadence_period", "cadence_report", "longest_gap", "unit_cadences"]
