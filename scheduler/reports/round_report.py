"""A reporting round as a `table.Report`, in the order's layout: one row a reporting unit, its state, when it
submitted, then the form's fields as columns (the system's figures and the typed values), and the totals row; so
the XLSX, CSV and PDF come from the reports' own writers (scheduler/reports/exports.py)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from campaigns.kinds import FieldKind, ReportFigure
from campaigns.models import ReportField
from campaigns.reporting_rounds import RoundOverview
from scheduler.reports.columns import UNIT
from scheduler.reports.table import Column, ColumnKind, Report, Sheet
from scheduler.reports.words import labelled
from scheduler.web.i18n import N_

STATE = Column("state", "Tình trạng", "State", "text", 16, words=labelled("rounds.state."))
SUBMITTED_AT = Column("submitted_at", "Thời điểm nộp", "Submitted at", "datetime", 20)
SUBMITTED_BY = Column("submitted_by", "Người nộp", "Submitted by", "text", 20)
# The states a unit's row shows (campaigns/reporting_rounds.py: unit_state), and a late submission's.
STATE_WORDS = {"approved": N_("rounds.state.approved"), "submitted": N_("rounds.state.submitted"),
               "waiting": N_("rounds.state.waiting"), "late": N_("rounds.state.late"),
               "not_due": N_("rounds.state.not_due"), "submitted_late": N_("rounds.state.submitted_late")}
PERCENT_FIGURES = (ReportFigure.compliance,)


def field_kind(f: ReportField) -> ColumnKind:
    if f.kind is FieldKind.figure:
        return "percent" if f.figure in PERCENT_FIGURES else "int"
    return {FieldKind.integer: "int", FieldKind.number: "decimal", FieldKind.percent: "percent"}.get(f.kind, "text")


def field_column(f: ReportField) -> Column:
    return Column(f"field:{f.key}", f.label, f.label, field_kind(f), max(10, min(30, len(f.label) // 2 + 4)))


def cell(f: ReportField, value: Any, language: str) -> Any:
    """A value as its column holds it: a percentage as a fraction, yes/no in words."""
    if value is None:
        return None
    if field_kind(f) == "percent":
        return value / 100
    if f.kind is FieldKind.yes_no and isinstance(value, bool):
        return ("yes" if value else "no") if language == "en" else ("có" if value else "không")
    return value


def row_state(overview: RoundOverview, state: str, late_submission: bool) -> str:
    if state == "submitted" and overview.series.needs_approval:
        return "waiting"
    return "submitted_late" if late_submission and state in ("submitted", "approved") else state


def round_report(overview: RoundOverview, now: datetime, language: str = "vi", timezone: str | None = None,
                 full_names: dict[str, str] | None = None) -> Report:
    en = language == "en"
    names = full_names or {}
    fields = overview.fields
    rows = []
    for unit in overview.units:
        submission = unit.submission
        submitted = submission is not None and submission.submitted_at is not None and \
            unit.state in ("submitted", "approved")
        rows.append({"unit": unit.name, "state": row_state(overview, unit.state, unit.late_submission),
                     "submitted_at": submission.submitted_at if submitted else None,
                     "submitted_by": names.get(submission.submitted_by, submission.submitted_by) if submitted
                     else None,
                     **{f"field:{f.key}": cell(f, unit.values.get(f.key), language) for f in fields}})
    totals = {"unit": (f"Total of {overview.counted} reports" if en else f"Tổng {overview.counted} báo cáo"),
              **{f"field:{f.key}": cell(f, overview.totals.get(f.key), language) for f in fields
                 if f.kind is not FieldKind.text}}
    round_ = overview.round
    late = overview.count("late")
    notes = [
        (f"{round_.name}: deadline {round_.deadline:%Y-%m-%d %H:%M} UTC; {overview.counted} of {len(rows)} units "
         f"counted, {late} late." if en else
         f"{round_.name}: {overview.counted}/{len(rows)} đơn vị đã nộp được tính, {late} đơn vị quá hạn."),
        ("The totals count the approved reports." if overview.series.needs_approval and en else
         "Tổng cộng tính các báo cáo đã được duyệt." if overview.series.needs_approval else
         "The totals count the submitted reports." if en else "Tổng cộng tính các báo cáo đã nộp."),
    ]
    columns = [UNIT, STATE, SUBMITTED_AT, SUBMITTED_BY, *(field_column(f) for f in fields)]
    return Report(kind="reporting_round", title=f"{overview.series.name} — {round_.name}",
                  organisation=overview.series.organisation.name, period=(round_.period_start, round_.period_end),
                  generated_at=now, sheets=[Sheet(round_.name[:31], columns, rows, totals, row_count=len(rows))],
                  language=language, notes=notes, timezone=timezone)


__all__ = ["STATE_WORDS", "round_report"]
