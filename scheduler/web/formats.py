"""Numbers, percentages, dates and times as people read them, in Vietnamese (vi_VN) or English: Babel's
`format_decimal`, `format_percent`, `format_date` and `format_datetime`, for every page, export and chart.

A percentage is rounded once, here (`share_points`): down to 0.1 point, so that only a met target reads 100. Every
place that shows or stores a share (the pages' tables, the charts, CSV, XLSX cells, PDF) takes the figure from it,
so a table and its chart never disagree. Times are shown in a timezone given by the caller (the site's, or the
server's for a unit), with the zone's offset named where a page would otherwise leave it unsaid.
"""

from __future__ import annotations

import math
from datetime import UTC, date, datetime, tzinfo
from decimal import Decimal
from functools import cache
from zoneinfo import ZoneInfo

import jinja2
from babel import Locale
from babel.dates import format_date, format_datetime
from babel.numbers import format_decimal, format_percent

from signage.config import DEFAULT_TIMEZONE

LOCALES = {"vi": "vi_VN", "en": "en"}
# Patterns rather than CLDR's defaults: vi's default percent has no decimal ("3%") and its short date no century;
# English keeps ISO dates, which no reader takes for a month-first date.
_PERCENT = {"vi": "#,##0.0 %", "en": "#,##0.0%"}
_DATE = {"vi": "dd/MM/yyyy", "en": "yyyy-MM-dd"}
_DATETIME = {"vi": "dd/MM/yyyy HH:mm:ss", "en": "yyyy-MM-dd HH:mm:ss"}
_MINUTES = {"vi": "dd/MM/yyyy HH:mm", "en": "yyyy-MM-dd HH:mm"}


@cache
def locale(language: str) -> Locale:
    return Locale.parse(LOCALES.get(language, LOCALES["vi"]))


def _known(language: str) -> str:
    return language if language in LOCALES else "vi"


def share_points(fraction: float) -> Decimal:
    """A share (0.975) in percentage points rounded down to 0.1 (97.5): the one rounding of every percentage shown.
    Down, so that a shortfall never reads 100; the epsilon absorbs binary fractions (0.975 * 1000)."""
    return Decimal(math.floor(fraction * 1000 + 1e-6)) / 10


def rounded_share(fraction: float) -> float:
    """The share as shown (0.0305 -> 0.030): what an XLSX cell holds, so Excel's 0.0 % shows the PDF's figure."""
    return float(share_points(fraction) / 100)


def number_text(value: float | int, language: str, decimals: int = 0) -> str:
    """1.234,5 in Vietnamese (points group thousands, a comma marks decimals), 1,234.5 in English."""
    pattern = "#,##0" + ("." + "0" * decimals if decimals else "")
    return format_decimal(value, format=pattern, locale=locale(language), decimal_quantization=True)


def percent_text(fraction: float, language: str) -> str:
    """A share as a percentage, rounded once (`share_points`): "97,5 %" in Vietnamese, "97.5%" in English."""
    return format_percent(share_points(fraction) / 100, format=_PERCENT[_known(language)], locale=locale(language))


def date_text(value: date, language: str, *, weekday: bool = False) -> str:
    """20/08/2024 in Vietnamese, 2024-08-20 in English; `weekday` puts the day's name first ("Thứ 3 20/08/2024")."""
    return format_date(value, ("EEE " if weekday else "") + _DATE[_known(language)], locale=locale(language))


def zone_of(name: str | tzinfo | None) -> tzinfo:
    if name is None:
        return UTC
    return name if isinstance(name, tzinfo) else ZoneInfo(name)


def datetime_text(value: datetime, zone: str | tzinfo | None, language: str, *, seconds: bool = True,
                  named: bool = False) -> str:
    """An instant as local time in `zone` (a naive value is taken as UTC); `named` adds the zone's offset,
    "03/12/2026 17:05 (GMT+07:00)", for a page where the reader could not tell which time it is."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    pattern = (_DATETIME if seconds else _MINUTES)[_known(language)] + (" (ZZZZ)" if named else "")
    return format_datetime(value, pattern, tzinfo=zone_of(zone), locale=locale(language))


# -- the same in templates: {{ value|number }}, {{ share|percent }}, {{ day|day }}, {{ instant|local_time }} -------
# They read the page's `lang` and `timezone` (the server's zone unless the page gives one) from its context.

@jinja2.pass_context
def _number(context, value, decimals: int = 0) -> str:
    return "" if value is None else number_text(value, context.get("lang", "vi"), decimals)


@jinja2.pass_context
def _percent(context, value) -> str:
    return "" if value is None else percent_text(value, context.get("lang", "vi"))


@jinja2.pass_context
def _day(context, value, weekday: bool = False) -> str:
    return "" if value is None else date_text(value, context.get("lang", "vi"), weekday=weekday)


@jinja2.pass_context
def _local_time(context, value, seconds: bool = False) -> str:
    if value is None:
        return "—"
    zone = context.get("timezone") or DEFAULT_TIMEZONE
    return datetime_text(value, zone, context.get("lang", "vi"), seconds=seconds, named=True)


def install_formats(environment: jinja2.Environment) -> jinja2.Environment:
    environment.filters.update(number=_number, percent=_percent, day=_day, local_time=_local_time)
    return environment
