"""Reporting rounds: a unit (e.g. Ba Vì's district office) asks the units directly below it for a report in rounds
with deadlines ("Báo cáo lần 1 trước ngày 19/7/2024 …"); each unit fills the form, the system's figures already in
it, and submits; the unit's head approves it when the series asks for that; the asking unit sees who submitted,
who is late and the totals. Plain functions over a session and an `Actor`, knowing nothing of HTTP.

Who reports: the units **directly below** the series' unit (a district's wards and communes; a ward under a
commune reports to its commune, not to the district), whether or not they hold screens: the form's typed fields
(installs among staff …) concern every unit. Each answers for its own subtree (the figures).

Who may (the `_may_*` checks, in one place):
- define a series and its rounds: a manager or head of the series' unit or of a unit above it (admins too);
- fill, save and submit a unit's submission: the unit's own staff, head or manager;
- approve or return a submitted one (series with `needs_approval`): the unit's own head (or a manager);
- see: the series' unit and those above it see every unit's submission; a reporting unit sees the round and its
  own submission only. Anything else is NotFound, as for what does not exist.

A unit's **state** in a round: `approved`, `submitted` (waiting for the head when the series asks for approval),
`late` (not submitted, or returned, and the deadline passed), `not_due` (not submitted, deadline ahead); a
submission made after the deadline is `late_submission`. The **totals** count the final submissions (approved
where the series asks for approval, submitted otherwise): counts summed, a percentage the mean of the units' (the
delivery share: delivered over required plays of them all), yes/no the number of yes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Annotated, Any

from pydantic import AwareDatetime, Field, StringConstraints, model_validator
from sqlalchemy import or_, select
from sqlalchemy.orm import Session, selectinload

from campaigns.access import Actor, not_found
from campaigns.audit import record_change
from campaigns.kinds import FieldKind, ReportFigure, Role, SubmissionStatus
from campaigns.models import Organisation, ReportField, ReportRound, ReportSeries, RoundSubmission
from campaigns.schema_types import SLUG_PATTERN
from campaigns.workflow import checked
from scheduler.reports.round_figures import Figures, unit_figures
from signage.clock import Clock
from signage.config import DEFAULT_TIMEZONE
from signage.errors import Conflict, Invalid, NotAllowed
from signage.limits import ID_LENGTH
from signage.text import NfcModel

SERIES = "report_series"
ROUND = "report_round"
SUBMISSION = "round_submission"
DEFINERS = (Role.manager, Role.head)
REPORTERS = (Role.staff, Role.head, Role.manager)
APPROVERS = (Role.head, Role.manager)
FINAL = (SubmissionStatus.submitted, SubmissionStatus.approved)
NAME_LENGTH = 255  # the columns' String(255)
TEXT_LENGTH = 2000  # a typed text value, a description, a return note
MAX_FIELDS = 40
MAX_PERIOD_DAYS = 366  # the reports' own limit (scheduler/reports/build.py)
VALUE_LIMIT = 1e12  # a typed number beyond this is a typing slip, and would not survive a float round-trip
NUMERIC = (FieldKind.integer, FieldKind.number, FieldKind.percent)
# How each figure adds up over units: counts are summed; the delivery share is recomputed from the sums.
COUNTED_FIGURES = (ReportFigure.screens, ReportFigure.required_plays, ReportFigure.delivered_plays,
                   ReportFigure.regular_messages, ReportFigure.urgent_alerts, ReportFigure.mobile_rounds_planned,
                   ReportFigure.mobile_rounds_done)

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=NAME_LENGTH)]
Key = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,62}$", max_length=ID_LENGTH)]


# -- what comes in ----------------------------------------------------------------------------------------------

class FieldIn(NfcModel, extra="forbid"):
    """A form field: typed by the unit (`kind`, with bounds for numbers) or a system `figure` (kind `figure`)."""

    key: Key
    label: Name
    kind: FieldKind = FieldKind.integer
    figure: ReportFigure | None = None
    minimum: float | None = Field(default=None, ge=-VALUE_LIMIT, le=VALUE_LIMIT)
    maximum: float | None = Field(default=None, ge=-VALUE_LIMIT, le=VALUE_LIMIT)
    required: bool = False

    @model_validator(mode="before")
    @classmethod
    def _figure_means_its_kind(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("figure") is not None and "kind" not in data:
            return {**data, "kind": FieldKind.figure.value}
        return data

    @model_validator(mode="after")
    def _consistent(self) -> FieldIn:
        if (self.kind is FieldKind.figure) != (self.figure is not None):
            raise ValueError(f"field {self.key}: a system figure has kind 'figure' and names its figure "
                             f"({', '.join(f.value for f in ReportFigure)}); a typed field names none")
        if self.kind not in NUMERIC and (self.minimum is not None or self.maximum is not None):
            raise ValueError(f"field {self.key}: only integer, number and percent fields have bounds")
        if self.minimum is not None and self.maximum is not None and self.minimum > self.maximum:
            raise ValueError(f"field {self.key}: its minimum ({self.minimum}) is above its maximum ({self.maximum})")
        if self.kind is FieldKind.percent:
            low, high = self.minimum if self.minimum is not None else 0, self.maximum if self.maximum is not None \
                else 100
            if low < 0 or high > 100:
                raise ValueError(f"field {self.key}: a percentage lies within 0 and 100")
        return self


class RoundIn(NfcModel, extra="forbid"):
    """A round: its name, the period it reports on (local dates, inclusive), its deadline (an instant)."""

    name: Name
    period_start: date
    period_end: date
    deadline: AwareDatetime

    @model_validator(mode="after")
    def _period(self) -> RoundIn:
        if self.period_end < self.period_start:
            raise ValueError(f"round {self.name}: the period ends ({self.period_end}) before it starts "
                             f"({self.period_start})")
        if (self.period_end - self.period_start).days >= MAX_PERIOD_DAYS:
            raise ValueError(f"round {self.name}: the period is longer than {MAX_PERIOD_DAYS} days")
        return self


class SeriesIn(NfcModel, extra="forbid"):
    id: Annotated[str, StringConstraints(pattern=SLUG_PATTERN)]
    name: Name
    description: Annotated[str, StringConstraints(strip_whitespace=True, max_length=TEXT_LENGTH)] | None = None
    needs_approval: bool = False
    fields: list[FieldIn] = Field(min_length=1, max_length=MAX_FIELDS)

    @model_validator(mode="after")
    def _keys_once(self) -> SeriesIn:
        refuse_repeated([f.key for f in self.fields], "field keys")
        return self


def refuse_repeated(values: list[str], what: str) -> None:
    """A ValueError naming the values that appear more than once (a form's keys, a series' round names)."""
    twice = sorted({value for value in values if values.count(value) > 1})
    if twice:
        raise ValueError(f"{what} appear twice: {', '.join(twice)}")


# -- who may, in one place --------------------------------------------------------------------------------------

def _org_path(session: Session, organisation_id: str) -> str | None:
    return session.scalar(select(Organisation.path).where(Organisation.id == organisation_id))


def _owner_side(actor: Actor, series: ReportSeries) -> bool:
    """The actor's unit is the series' unit or one above it: it sees every unit's submission."""
    return series.organisation.path.startswith(actor.org_path)


def _reporting_unit(actor: Actor, series: ReportSeries) -> bool:
    """The actor's own unit is one of those that report to the series."""
    return actor.user.organisation.parent_id == series.organisation_id


def _may_define(actor: Actor, series_unit_path: str) -> bool:
    return series_unit_path.startswith(actor.org_path) and actor.has_role(*DEFINERS)


def _may_fill(actor: Actor, submission_unit: str) -> bool:
    return actor.user.organisation_id == submission_unit and actor.user.role in REPORTERS


def _may_approve(actor: Actor, series: ReportSeries, submission_unit: str) -> bool:
    return series.needs_approval and actor.user.organisation_id == submission_unit and \
        actor.user.role in APPROVERS


# -- defining series and rounds ---------------------------------------------------------------------------------

def create_series(session: Session, actor: Actor, clock: Clock, organisation_id: str, data: SeriesIn
                  ) -> ReportSeries:
    """A new series of `organisation_id` (the actor's unit or one below it) with its form."""
    path = _org_path(session, organisation_id)
    if path is None or not path.startswith(actor.org_path):
        raise not_found("organisation", organisation_id)
    if not _may_define(actor, path):
        raise NotAllowed(f"your role ({actor.role.value}) may not ask units for reports",
                         "it takes a manager or head of unit account")
    if session.get(ReportSeries, data.id) is not None:
        raise Conflict(f"the report series id {data.id!r} is taken", "choose another id")
    series = ReportSeries(id=data.id, organisation_id=organisation_id, name=data.name, description=data.description,
                          needs_approval=data.needs_approval, created_by=actor.username, created_at=clock.now())
    series.fields = [_field_row(index, f) for index, f in enumerate(data.fields)]
    session.add(series)
    session.flush()
    record_change(session, actor, clock, action="create", entity_kind=SERIES, entity_id=series.id,
                  organisation_id=organisation_id, after=series_json(series))
    return series


def _field_row(position: int, data: FieldIn) -> ReportField:
    return ReportField(position=position, key=data.key, label=data.label, kind=data.kind, figure=data.figure,
                       minimum=data.minimum, maximum=data.maximum, required=data.required)


def add_round(session: Session, actor: Actor, clock: Clock, series_id: str, data: RoundIn) -> ReportRound:
    series = get_series(session, actor, series_id)
    if not _may_define(actor, series.organisation.path):
        raise NotAllowed(f"your role ({actor.role.value}) may not open reporting rounds",
                         "it takes a manager or head of the unit that asks for the report")
    if any(r.name == data.name for r in series.rounds):
        raise Conflict(f"the series already has a round named {data.name!r}", "give the round another name")
    round_ = ReportRound(name=data.name, period_start=data.period_start, period_end=data.period_end,
                         deadline=data.deadline)
    series.rounds.append(round_)
    session.flush()
    record_change(session, actor, clock, action="open", entity_kind=ROUND, entity_id=str(round_.id),
                  organisation_id=series.organisation_id, after=round_json(round_))
    return round_


def series_json(series: ReportSeries) -> dict[str, Any]:
    return {"id": series.id, "organisation": series.organisation_id, "name": series.name,
            "description": series.description, "needs_approval": series.needs_approval,
            "fields": [field_json(f) for f in series.fields]}


def field_json(row: ReportField) -> dict[str, Any]:
    out: dict[str, Any] = {"key": row.key, "label": row.label}
    if row.kind is FieldKind.figure:
        out["figure"] = row.figure.value if row.figure else None
    else:
        out["kind"] = row.kind.value
        out.update({name: value for name, value in (("minimum", row.minimum), ("maximum", row.maximum))
                    if value is not None})
        out["required"] = row.required
    return out


def round_json(round_: ReportRound) -> dict[str, Any]:
    return {"name": round_.name, "period_start": round_.period_start.isoformat(),
            "period_end": round_.period_end.isoformat(), "deadline": round_.deadline.isoformat()}


# -- reading, within scope ----------------------------------------------------------------------------------------

def _visible_series(actor: Actor):
    """Series the actor's unit owns or sits above, and those its unit reports to."""
    owner = select(Organisation.id).where(Organisation.path.startswith(actor.org_path, autoescape=True))
    return or_(ReportSeries.organisation_id.in_(owner),
               ReportSeries.organisation_id == actor.user.organisation.parent_id)


def get_series(session: Session, actor: Actor, series_id: str) -> ReportSeries:
    series = session.scalar(select(ReportSeries).where(ReportSeries.id == series_id, _visible_series(actor)))
    if series is None:
        raise not_found("report series", series_id)
    return series


def visible_series(session: Session, actor: Actor) -> list[ReportSeries]:
    return list(session.scalars(select(ReportSeries).where(_visible_series(actor))
                                .options(selectinload(ReportSeries.rounds), selectinload(ReportSeries.fields))
                                .order_by(ReportSeries.name, ReportSeries.id)))


def get_round(session: Session, actor: Actor, round_id: int) -> ReportRound:
    round_ = session.scalar(select(ReportRound).join(ReportSeries).where(ReportRound.id == round_id,
                                                                         _visible_series(actor)))
    if round_ is None:
        raise not_found("reporting round", str(round_id))
    return round_


def reporting_units(session: Session, series: ReportSeries) -> list[Organisation]:
    """The units that report to the series: those directly below its unit, by name."""
    return list(session.scalars(select(Organisation).where(Organisation.parent_id == series.organisation_id)
                                .order_by(Organisation.name, Organisation.id)))


def unit_state(round_: ReportRound, submission: RoundSubmission | None, now: datetime) -> str:
    """approved | submitted | late | not_due (the module's notes)."""
    if submission is not None and submission.status in FINAL:
        return submission.status.value
    return "late" if now >= round_.deadline else "not_due"


def submitted_late(round_: ReportRound, submission: RoundSubmission | None) -> bool:
    return submission is not None and submission.submitted_at is not None and \
        submission.submitted_at > round_.deadline and submission.status in FINAL


@dataclass
class UnitRow:
    organisation_id: str
    name: str
    state: str
    late_submission: bool
    submission: RoundSubmission | None
    values: dict[str, Any] = field(default_factory=dict)  # typed values and frozen figures, by field key


@dataclass
class RoundOverview:
    """What the asking unit sees of a round: each reporting unit's state and values, and the totals."""

    round: ReportRound
    series: ReportSeries
    fields: list[ReportField]
    units: list[UnitRow]
    totals: dict[str, Any]
    counted: int  # the final submissions the totals are over

    def count(self, state: str) -> int:
        return sum(1 for unit in self.units if unit.state == state)


def round_overview(session: Session, actor: Actor, round_id: int, now: datetime) -> RoundOverview:
    """The round as its asking unit (or one above) sees it; a reporting unit may not (NotFound, as another's)."""
    round_ = get_round(session, actor, round_id)
    series = round_.series
    if not _owner_side(actor, series):
        raise not_found("reporting round overview", str(round_id))
    submissions = {s.organisation_id: s for s in session.scalars(
        select(RoundSubmission).where(RoundSubmission.round_id == round_.id))}
    units = []
    for unit in reporting_units(session, series):
        submission = submissions.get(unit.id)
        values = _row_values(series.fields, submission) if submission is not None else {}
        units.append(UnitRow(unit.id, unit.name, unit_state(round_, submission, now),
                             submitted_late(round_, submission), submission, values))
    final = [u for u in units if _counts(series, u.submission)]
    return RoundOverview(round_, series, list(series.fields), units, totals(series.fields, [u.values for u in final]),
                         len(final))


def _counts(series: ReportSeries, submission: RoundSubmission | None) -> bool:
    if submission is None:
        return False
    return submission.status is SubmissionStatus.approved if series.needs_approval else submission.status in FINAL


def _row_values(fields: Iterable[ReportField], submission: RoundSubmission) -> dict[str, Any]:
    figures = submission.figures or {}
    return {f.key: figures.get(f.figure.value) if f.kind is FieldKind.figure and f.figure else
            submission.values.get(f.key) for f in fields}


def totals(fields: Iterable[ReportField], rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The totals row over the final submissions' values (see the module's notes); None where nothing adds."""
    out: dict[str, Any] = {}
    fields = list(fields)
    by_figure = {f.figure: f.key for f in fields if f.figure is not None}
    for f in fields:
        given = [row.get(f.key) for row in rows if row.get(f.key) is not None]
        if f.figure is ReportFigure.compliance:
            required = sum(row.get(by_figure.get(ReportFigure.required_plays, ""), 0) or 0 for row in rows)
            delivered = sum(row.get(by_figure.get(ReportFigure.delivered_plays, ""), 0) or 0 for row in rows)
            if ReportFigure.required_plays in by_figure and ReportFigure.delivered_plays in by_figure:
                out[f.key] = round(delivered / required * 100, 1) if required else None
            else:
                out[f.key] = round(sum(given) / len(given), 1) if given else None
        elif f.figure in COUNTED_FIGURES or f.kind in (FieldKind.integer, FieldKind.number):
            out[f.key] = sum(given) if given else (0 if rows else None)
        elif f.kind is FieldKind.percent:
            out[f.key] = round(sum(given) / len(given), 1) if given else None
        elif f.kind is FieldKind.yes_no:
            out[f.key] = sum(1 for value in given if value is True)
        else:
            out[f.key] = None
    return out


@dataclass
class UnitView:
    """What a reporting unit sees of a round: its submission (or none yet), the system's figures (frozen once
    submitted, live before), and what it may do."""

    round: ReportRound
    series: ReportSeries
    organisation_id: str
    submission: RoundSubmission | None
    figures: Figures
    state: str
    may_fill: bool
    may_approve: bool


def unit_view(session: Session, actor: Actor, round_id: int, now: datetime, timezone: str = DEFAULT_TIMEZONE,
              organisation_id: str | None = None) -> UnitView:
    """A reporting unit's own view of the round: the actor's unit, or (for the asking side) `organisation_id`, one
    of the reporting units. Another reporting unit's submission is NotFound."""
    round_ = get_round(session, actor, round_id)
    series = round_.series
    unit = organisation_id or actor.user.organisation_id
    if unit != actor.user.organisation_id and not _owner_side(actor, series):
        raise not_found("submission", f"{round_id}/{unit}")
    if unit not in {u.id for u in reporting_units(session, series)}:
        raise not_found("submission", f"{round_id}/{unit}")
    submission = _submission(session, round_.id, unit)
    frozen = submission is not None and submission.status in FINAL and submission.figures is not None
    figures = submission.figures if frozen else _figures(session, series, round_, unit, now, timezone)
    return UnitView(round_, series, unit, submission, figures or {}, unit_state(round_, submission, now),
                    _may_fill(actor, unit), _may_approve(actor, series, unit))


def _submission(session: Session, round_id: int, organisation_id: str) -> RoundSubmission | None:
    return session.scalar(select(RoundSubmission).where(RoundSubmission.round_id == round_id,
                                                        RoundSubmission.organisation_id == organisation_id))


def _figures(session: Session, series: ReportSeries, round_: ReportRound, organisation_id: str, now: datetime,
             timezone: str) -> Figures:
    if not any(f.kind is FieldKind.figure for f in series.fields):
        return {}
    wanted = {f.figure.value for f in series.fields if f.figure is not None}
    figures = unit_figures(session, organisation_id, round_.period_start, round_.period_end, now, timezone)
    return {name: value for name, value in figures.items() if name in wanted}


def rounds_for(session: Session, actor: Actor) -> list[ReportRound]:
    """Every round the actor sees, the latest deadline first."""
    return list(session.scalars(select(ReportRound).join(ReportSeries).where(_visible_series(actor))
                                .options(selectinload(ReportRound.series))
                                .order_by(ReportRound.deadline.desc(), ReportRound.id)))


def own_submissions(session: Session, actor: Actor, round_ids: Iterable[int]) -> dict[int, RoundSubmission]:
    ids = list(round_ids)
    if not ids:
        return {}
    return {s.round_id: s for s in session.scalars(select(RoundSubmission).where(
        RoundSubmission.round_id.in_(ids), RoundSubmission.organisation_id == actor.user.organisation_id))}


def is_owner_side(actor: Actor, round_: ReportRound) -> bool:
    return _owner_side(actor, round_.series)


def is_reporting(actor: Actor, round_: ReportRound) -> bool:
    return _reporting_unit(actor, round_.series)


# -- filling, submitting, approving ---------------------------------------------------------------------------------

def typed_values(fields: Iterable[ReportField], given: dict[str, Any], *, complete: bool) -> dict[str, Any]:
    """The typed fields' values, each by its type and bounds (a browser's text read as the type says), all the
    problems as one Invalid; `complete`: required fields must have a value (on submission)."""
    typed = {f.key: f for f in fields if f.kind is not FieldKind.figure}
    problems = [f"{key}: there is no such field on the form" for key in given if key not in typed]
    values: dict[str, Any] = {}
    for key, f in typed.items():
        raw = given.get(key)
        if isinstance(raw, str):
            raw = raw.strip()
        if raw is None or raw == "":
            if complete and f.required:
                problems.append(f"{f.label}: a value is required")
            continue
        try:
            values[key] = _typed(f, raw)
        except ValueError as exc:
            problems.append(f"{f.label}: {exc}")
    if problems:
        raise Invalid("; ".join(problems), "correct the values the message names and save again")
    return values


def _typed(f: ReportField, raw: Any) -> Any:
    if f.kind is FieldKind.text:
        text = str(raw)
        if "\x00" in text:
            raise ValueError("contains a NUL character")
        if len(text) > TEXT_LENGTH:
            raise ValueError(f"has {len(text)} characters, at most {TEXT_LENGTH}")
        return text
    if f.kind is FieldKind.yes_no:
        if isinstance(raw, bool):
            return raw
        if str(raw).lower() in ("yes", "có", "true", "1"):
            return True
        if str(raw).lower() in ("no", "không", "false", "0"):
            return False
        raise ValueError(f"{raw!r} is not yes or no")
    number = _number(raw, whole=f.kind is FieldKind.integer)
    low = f.minimum if f.minimum is not None else (0 if f.kind is FieldKind.percent else -VALUE_LIMIT)
    high = f.maximum if f.maximum is not None else (100 if f.kind is FieldKind.percent else VALUE_LIMIT)
    if not low <= number <= high:
        raise ValueError(f"{_shown(number)} is outside {_shown(low)}–{_shown(high)}")
    return number


def _number(raw: Any, *, whole: bool) -> int | float:
    if isinstance(raw, bool):
        raise ValueError(f"{raw!r} is not a number")
    if isinstance(raw, int | float):
        value: int | float = raw
    else:
        text = str(raw).replace(" ", "").replace(",", ".")  # 12,5 as Vietnamese write it
        try:
            value = float(text)
        except ValueError:
            raise ValueError(f"{raw!r} is not a number") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError(f"{raw!r} is not a number")
    if whole:
        if float(value) != int(value):
            raise ValueError(f"{_shown(value)} is not a whole number")
        return int(value)
    return float(value)


def _shown(number: float) -> str:
    return str(int(number)) if float(number).is_integer() else str(number)


def save_submission(session: Session, actor: Actor, clock: Clock, round_id: int, values: dict[str, Any], *,
                    submit: bool, timezone: str = DEFAULT_TIMEZONE) -> RoundSubmission:
    """The actor's unit's submission saved as a draft, or submitted (the system's figures frozen then).
    Submitting twice, or changing a submitted one, is a Conflict (until the head returns it)."""
    round_ = get_round(session, actor, round_id)
    series = round_.series
    unit = actor.user.organisation_id
    if not _reporting_unit(actor, series):
        raise NotAllowed("your unit does not report to this series",
                         f"the units directly below {series.organisation.name} fill it")
    if not _may_fill(actor, unit):
        raise NotAllowed(f"your role ({actor.role.value}) may not fill reports",
                         "it takes a staff, head or manager account of the unit")
    submission = _submission(session, round_.id, unit)
    if submission is not None and submission.status in FINAL:
        raise Conflict(f"{round_.name} was already submitted by {submission.submitted_by}",
                       "ask the unit's head to return it if it must change")
    typed = typed_values(series.fields, values, complete=submit)
    now = clock.now()
    before = _submission_json(submission) if submission else None
    if submission is None:
        submission = RoundSubmission(round_id=round_.id, organisation_id=unit, values=typed,
                                     status=SubmissionStatus.draft, saved_by=actor.username, saved_at=now)
        session.add(submission)
    else:
        submission.values, submission.saved_by, submission.saved_at = typed, actor.username, now
    if submit:
        submission.figures = _figures(session, series, round_, unit, now, timezone)
        submission.status = SubmissionStatus.submitted
        submission.submitted_by, submission.submitted_at = actor.username, now
        submission.return_note = None
    session.flush()
    record_change(session, actor, clock, action="submit" if submit else "save", entity_kind=SUBMISSION,
                  entity_id=str(submission.id), organisation_id=unit, before=before,
                  after=_submission_json(submission))
    return submission


def review_submission(session: Session, actor: Actor, clock: Clock, round_id: int, *, approve: bool,
                      note: str | None = None) -> RoundSubmission:
    """The unit's head approves its submitted report, or returns it with a note for correction."""
    round_ = get_round(session, actor, round_id)
    series = round_.series
    unit = actor.user.organisation_id
    submission = _submission(session, round_.id, unit) if _reporting_unit(actor, series) else None
    if submission is None:
        raise not_found("submission", f"{round_id}/{unit}")
    if not series.needs_approval:
        raise Conflict(f"{series.name} needs no approval: a submitted report counts at once",
                       "nothing to do")
    if not _may_approve(actor, series, unit):
        raise NotAllowed(f"your role ({actor.role.value}) may not approve reports",
                         "it takes the unit's head")
    if submission.status is not SubmissionStatus.submitted:
        raise Conflict(f"the report is {submission.status.value}, not waiting for approval",
                       "approve or return a submitted report")
    text = (note or "").strip()
    if not approve and not text:
        raise Invalid("the note is empty", "say what must be corrected: the unit reads it")
    if len(text) > TEXT_LENGTH:
        raise Invalid(f"the note has {len(text)} characters", f"shorten it to at most {TEXT_LENGTH}")
    before = _submission_json(submission)
    now = clock.now()
    if approve:
        submission.status, submission.approved_by, submission.approved_at = SubmissionStatus.approved, \
            actor.username, now
    else:
        submission.status, submission.return_note = SubmissionStatus.returned, text
    record_change(session, actor, clock, action="approve" if approve else "return", entity_kind=SUBMISSION,
                  entity_id=str(submission.id), organisation_id=unit, before=before,
                  after=_submission_json(submission))
    return submission


def _submission_json(submission: RoundSubmission) -> dict[str, Any]:
    return {"status": submission.status.value, "values": dict(submission.values),
            "figures": dict(submission.figures) if submission.figures else None,
            "return_note": submission.return_note}


# -- reminders (scheduler/round_notices.py tells them) ----------------------------------------------------------------

REMINDER_STAGES = (("3_days", timedelta(days=3)), ("1_day", timedelta(days=1)), ("late", timedelta(0)))
LATE_TOLD_FOR = timedelta(days=7)  # a round late longer than this is not told again after a restart or an import


def reminder_stage(deadline: datetime, now: datetime) -> str | None:
    """The reminder due at `now` for a round with `deadline`: 3 days before, 1 day before, late; None outside."""
    if now >= deadline:
        return "late" if now < deadline + LATE_TOLD_FOR else None
    for stage, ahead in REMINDER_STAGES[:2]:
        if now >= deadline - ahead and (stage == "1_day" or now < deadline - timedelta(days=1)):
            return stage
    return None


def units_not_submitted(session: Session, round_: ReportRound) -> list[Organisation]:
    done = {s.organisation_id for s in session.scalars(select(RoundSubmission).where(
        RoundSubmission.round_id == round_.id, RoundSubmission.status.in_(FINAL)))}
    return [unit for unit in reporting_units(session, round_.series) if unit.id not in done]


__all__ = ["FieldIn", "RoundIn", "RoundOverview", "SeriesIn", "UnitRow", "UnitView", "add_round", "checked",
           "create_series", "get_round", "get_series", "own_submissions", "reminder_stage", "review_submission",
           "round_overview", "rounds_for", "save_submission", "totals", "typed_values", "unit_state", "unit_view",
           "units_not_submitted", "visible_series"]
