"""What a report is, whatever it is shown or exported as: titled sheets of typed columns, and charts.

Rows may be a generator: exports stream them, so that a five-million-row proof-of-play log never sits in memory.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Literal

ColumnKind = Literal["text", "int", "percent", "date", "datetime", "duration_ms"]


@dataclass(frozen=True)
class Column:
    key: str
    title_vi: str
    title_en: str
    kind: ColumnKind = "text"
    width: int = 14  # in characters, for spreadsheets

    def title(self, language: str) -> str:
        return self.title_en if language == "en" else self.title_vi


@dataclass
class Sheet:
    """One level of a report (e.g. by district, by site, by screen and day)."""

    name: str  # short: spreadsheet tab names are limited to 31 characters
    columns: list[Column]
    rows: Iterable[dict[str, Any]]  # values keyed by Column.key; percent as a fraction 0..1, None when undefined
    totals: dict[str, Any] | None = None


@dataclass(frozen=True)
class Chart:
    caption: str
    svg: str  # a complete <svg> element, self-contained (no scripts, no external references)


@dataclass
class Report:
    kind: str  # compliance | pop | health | rounds
    title: str
    organisation: str  # the name of the scope the report covers
    period: tuple[date, date]
    generated_at: datetime
    sheets: list[Sheet]
    charts: list[Chart] = field(default_factory=list)
    language: str = "vi"
    notes: list[str] = field(default_factory=list)  # lines printed under the title (campaign, filters, ...)
