"""What a report is, whatever it is shown or exported as: titled sheets of typed columns, and charts.

Rows may be a generator: exports stream them, so that a five-million-row proof-of-play log never sits in memory.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Any, Literal

ColumnKind = Literal["text", "id", "int", "decimal", "percent", "date", "datetime", "duration_ms"]
# How each kind is written (scheduler/reports/exports.py):
# - text as is; in CSV a text starting like a formula ("=", "+", "-", "@") gets a leading apostrophe;
# - id (a slug, a play id, a sha256) as is, unchecked: ids cannot start like a formula, and the log's CSV is faster;
# - int as a whole number;
# - decimal to one decimal: "5.3" in CSV ("5,3" with the decimal comma), formatted 0.0 in XLSX, "5,3" in the PDF;
# - percent from a fraction (0.975): "97.5" in CSV, a number formatted 0.0 % in XLSX, "97,5 %" in the PDF;
# - date ISO (2024-08-20) in CSV, a date in XLSX, 20/08/2024 in the PDF;
# - datetime from an aware datetime to the report's timezone: ISO with its offset in CSV, a naive local datetime
#   in XLSX, 20/08/2024 10:00:00 in the PDF;
# - duration_ms as whole milliseconds in CSV and XLSX (their headers add "(ms)"), as seconds in the PDF (30,0 s).


@dataclass(frozen=True)
class Column:
    key: str
    title_vi: str
    title_en: str
    kind: ColumnKind = "text"
    width: int = 14  # in characters, for spreadsheets
    # An id's name: pages and PDFs show this column in the id's place (`for_reading`); CSV and XLSX keep the id.
    named_by: Column | None = None
    # A column of codes (a play's kind, a player's reason): how a person reads a value in a language
    # (scheduler/reports/words.py). Pages, PDFs and XLSX show those words; the CSV keeps the code for tools.
    words: Callable[[Any, str], str] | None = None

    def title(self, language: str) -> str:
        return self.title_en if language == "en" else self.title_vi


@dataclass
class Sheet:
    """One level of a report (e.g. by district, by site, by screen and day)."""

    name: str  # short: spreadsheet tab names are limited to 31 characters
    columns: list[Column]
    rows: Iterable[dict[str, Any]]  # values keyed by Column.key; percent as a fraction 0..1, None when undefined
    totals: dict[str, Any] | None = None
    row_count: int | None = None  # how many rows `rows` yields, when known: the capped PDF then need not count them


def for_reading(sheet: Sheet) -> Sheet:
    """The sheet as pages and PDFs show it to people: each id that has a name (`Column.named_by`) as that name,
    the id itself in a row that has none; an id whose name the sheet lists too is left out. The rows stay a
    stream."""
    named = [(column, column.named_by) for column in sheet.columns if column.named_by is not None]
    if not named:
        return sheet
    listed = {column.key for column in sheet.columns}

    def rows() -> Iterator[dict[str, Any]]:
        for row in sheet.rows:
            yield {**row, **{name.key: row.get(name.key) or row.get(column.key) for column, name in named}}

    columns = [column.named_by or column for column in sheet.columns
               if column.named_by is None or column.named_by.key not in listed]
    return replace(sheet, columns=columns, rows=rows())


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
    timezone: str | None = None  # IANA name datetimes are shown in (e.g. "Asia/Ho_Chi_Minh"); None = UTC
