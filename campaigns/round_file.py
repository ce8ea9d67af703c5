"""The reporting rounds file `signage.rounds/1` (docs/files.md): report series, their forms and rounds; import and
export.

The models are the web's and the API's (campaigns/reporting_rounds.py: `SeriesIn`, `FieldIn`, `RoundIn`), so a
file says what the pages can. An import is all-or-nothing, every problem named with its line
(campaigns/yaml_source.py); importing the same file twice changes nothing. A series is matched by its id, a field
by its key, a round by its name within its series; an import adds and updates, and removes the fields a series no
longer lists (their values stay in the submissions made), never a round (units may have reported on it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import Field, model_validator
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from campaigns.fleet_file import ImportReport, _apply
from campaigns.models import Organisation, ReportField, ReportRound, ReportSeries
from campaigns.reporting_rounds import RoundIn, SeriesIn, field_json, refuse_repeated
from campaigns.schema_types import SLUG_PATTERN
from campaigns.yaml_source import FileRejected, YamlDocument
from signage.clock import Clock
from signage.text import NfcModel

ROUNDS_SCHEMA = "signage.rounds/1"
IMPORTED_BY = "signage rounds import"


class SeriesFileIn(SeriesIn):
    organisation: str = Field(pattern=SLUG_PATTERN)
    rounds: list[RoundIn] = Field(default_factory=list)

    @model_validator(mode="after")
    def _round_names_once(self) -> SeriesFileIn:
        refuse_repeated([r.name for r in self.rounds], f"round names of series {self.id}")
        return self


class RoundsFile(NfcModel, extra="forbid"):
    schema_: Literal["signage.rounds/1"] = Field(alias="schema")
    series: list[SeriesFileIn] = Field(default_factory=list)


def checked_rounds(document: YamlDocument, session: Session) -> RoundsFile:
    """The file validated, and its references checked against the database: every problem at once."""
    rounds = document.validate(RoundsFile)
    organisations = set(session.scalars(select(Organisation.id)))
    owners = dict(session.execute(select(ReportSeries.id, ReportSeries.organisation_id)).all())
    problems = []
    for index, series in enumerate(rounds.series):
        at = ("series", index)
        if series.organisation not in organisations:
            problems.append(document.problem((*at, "organisation"), f"there is no organisation {series.organisation!r}",
                                             "give an organisation id of the fleet (signage fleet export lists them)"))
        elif owners.get(series.id, series.organisation) != series.organisation:
            problems.append(document.problem((*at, "id"), f"the series {series.id!r} belongs to "
                                             f"{owners[series.id]!r}", "give this series another id"))
    ids = [s.id for s in rounds.series]
    for index, series in enumerate(rounds.series):
        if ids.count(series.id) > 1 and ids.index(series.id) != index:
            problems.append(document.problem(("series", index, "id"), f"the series {series.id!r} appears twice",
                                             "give each series its own id"))
    if problems:
        raise FileRejected(document.filename, problems)
    return rounds


def import_rounds(session: Session, path: Path, clock: Clock) -> ImportReport:
    """Upsert the file's series, fields and rounds in the caller's transaction, or raise FileRejected."""
    document = YamlDocument.load(path)
    rounds = checked_rounds(document, session)
    report = ImportReport(document.filename)
    for data in rounds.series:
        series = session.get(ReportSeries, data.id)
        values = {"organisation_id": data.organisation, "name": data.name, "description": data.description,
                  "needs_approval": data.needs_approval}
        if series is None:
            series = ReportSeries(id=data.id, created_by=IMPORTED_BY, created_at=clock.now(), **values)
            session.add(series)
            report.count("series", "created")
        else:
            report.count("series", "updated" if _apply(series, values) else "unchanged")
        _upsert_fields(series, data, report)
        _upsert_rounds(series, data, report)
    session.flush()
    return report


def _upsert_fields(series: ReportSeries, data: SeriesFileIn, report: ImportReport) -> None:
    existing = {f.key: f for f in series.fields}
    kept = []
    for position, item in enumerate(data.fields):
        values = {"position": position, "label": item.label, "kind": item.kind, "figure": item.figure,
                  "minimum": item.minimum, "maximum": item.maximum, "required": item.required}
        row = existing.get(item.key)
        if row is None:
            row = ReportField(key=item.key, **values)
            report.count("fields", "created")
        else:
            report.count("fields", "updated" if _apply(row, values) else "unchanged")
        kept.append(row)
    if len(kept) != len(series.fields) or any(a is not b for a, b in zip(kept, series.fields, strict=False)):
        series.fields = kept


def _upsert_rounds(series: ReportSeries, data: SeriesFileIn, report: ImportReport) -> None:
    existing = {r.name: r for r in series.rounds}
    for item in data.rounds:
        values = {"period_start": item.period_start, "period_end": item.period_end, "deadline": item.deadline}
        row = existing.get(item.name)
        if row is None:
            series.rounds.append(ReportRound(name=item.name, **values))
            report.count("rounds", "created")
        else:
            report.count("rounds", "updated" if _apply(row, values) else "unchanged")


def export_rounds(session: Session, timezone: str) -> str:
    """Every series as a `signage.rounds/1` document that imports back to the same state; deadlines in the
    server's zone, with their offset."""
    from zoneinfo import ZoneInfo

    zone = ZoneInfo(timezone)
    document = {"schema": ROUNDS_SCHEMA, "series": [
        {"id": s.id, "organisation": s.organisation_id, "name": s.name,
         **({"description": s.description} if s.description else {}), "needs_approval": s.needs_approval,
         "fields": [field_json(f) for f in s.fields],
         "rounds": [{"name": r.name, "period_start": r.period_start, "period_end": r.period_end,
                     "deadline": r.deadline.astimezone(zone)} for r in sorted(s.rounds, key=lambda r: r.deadline)]}
        for s in session.scalars(select(ReportSeries).options(selectinload(ReportSeries.fields),
                                                              selectinload(ReportSeries.rounds))
                                 .order_by(ReportSeries.organisation_id, ReportSeries.id))]}
    return yaml.safe_dump(document, allow_unicode=True, sort_keys=False, width=110)


__all__ = ["ROUNDS_SCHEMA", "RoundsFile", "export_rounds", "import_rounds"]
