"""Reports as files people hand in: CSV, XLSX and PDF, written from a `Report` (scheduler/reports/table.py).

Every writer streams the sheets' rows, which may be generators over millions of proof-of-play records: nothing here
keeps more than one row (CSV, XLSX) or the PDF's capped first rows in memory.

CSV choices, for the people who open the file in Excel and for the programs that read it:
- UTF-8 with a byte order mark, so that Excel shows Vietnamese instead of mojibake; comma separated, RFC 4180.
- Numbers are written the way every program reads them: a decimal point and no thousands separator. A percent is
  written in percentage points, rounded down to 0.1 ("97.5"; "100.0" only when the target is really met), the
  header saying "(%)". A Vietnamese-locale Excel (decimal comma, ";" as list separator) does not split a comma
  separated file into columns on a double click whatever the numbers look like, so `decimal_comma=True` writes
  the variant it does read: ";" between fields and "97,5". For typed figures in Excel, the XLSX is the better file.
- Durations are whole milliseconds (header "(ms)"): an integer reads the same in every locale, and the
  proof-of-play log's durations are measured in milliseconds.
- Dates are ISO (2024-08-20); datetimes ISO in the report's timezone with its offset (2024-08-20T10:00:00+07:00,
  milliseconds when there are any), UTC with "+00:00" when the report names none.
- Every text cell, ids included, starting like a formula (=, +, -, @, a tab or a carriage return) gets a leading
  apostrophe, so that a spreadsheet shows it rather than runs it (scheduler/reports/formulas.py: the one rule of
  every CSV and XLSX writer, the XLSX's cells and information sheet included); numbers stay numbers.

The XLSX has typed cells (see table.py for each kind) and opens on a "Thông tin" sheet with the title,
organisation, period and generation time. The PDF is for handing in: at most PDF_MAX_ROWS rows a sheet.
"""

from __future__ import annotations

import codecs
import csv
import io
import os
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from itertools import islice
from pathlib import Path
from typing import IO, Any
from zoneinfo import ZoneInfo

from scheduler.reports.formulas import INERT_EXPRESSION, INERT_NAMES, inert
from scheduler.reports.table import Chart, Column, Report, Sheet, for_reading
from scheduler.web.formats import (
    date_text,
    datetime_text,
    number_text,
    percent_text,
    rounded_share,
    share_points,
)
from scheduler.web.i18n import N_, install_translations, translate

Output = str | os.PathLike[str] | IO[bytes]

# Enough rows for a PDF someone reads through (about 25 landscape pages); WeasyPrint lays tables out at roughly a
# millisecond a cell, so the cap also keeps a PDF export under a minute. The CSV and XLSX hold every row.
PDF_MAX_ROWS = 1000
XLSX_MAX_ROWS = 1_048_576  # Excel's limit per worksheet, header included
_CSV_CHUNK_ROWS = 5000
_TEMPLATES = Path(__file__).resolve().parent.parent / "web" / "templates"
_FONT_DIRS = ("/usr/share/fonts/truetype/noto", "/usr/share/fonts/truetype/dejavu")
_FONTS = (("NotoSans-Regular.ttf", "NotoSans-Bold.ttf"), ("DejaVuSans.ttf", "DejaVuSans-Bold.ttf"))


def _zone(report: Report):
    return ZoneInfo(report.timezone) if report.timezone else UTC


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _local(value: datetime, zone) -> datetime:
    return _aware(value).astimezone(zone)


# ---------------------------------------------------------------------------------------------------------------
# CSV


def _percent_points(fraction: float) -> str:
    return f"{share_points(fraction):.1f}"


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
EPOCH_ORDINAL = EPOCH.toordinal()
MILLIS = [f".{ms:03d}" for ms in range(1000)]
_clock_times: list[str] = []


def clock_times() -> list[str]:
    """"00:00:00" … "23:59:59", indexed by the second of the day (made on first use)."""
    if not _clock_times:
        _clock_times.extend(f"{h:02d}:{m:02d}:{s:02d}" for h in range(24) for m in range(60) for s in range(60))
    return _clock_times


def zone_offset(zone, quarter: int) -> tuple[int, str] | None:
    """The zone's offset during a quarter hour since 1970 as (seconds, "+07:00"); None when it changes inside the
    quarter or is not whole minutes (each value is then converted on its own)."""
    start = datetime.fromtimestamp(quarter * 900, zone).utcoffset()
    end = datetime.fromtimestamp(quarter * 900 + 899, zone).utcoffset()
    seconds = int(start.total_seconds())
    if start != end or seconds % 60:
        return None
    sign = "-" if seconds < 0 else "+"
    return seconds, f"{sign}{abs(seconds) // 3600:02d}:{abs(seconds) % 3600 // 60:02d}"


def _iso_text(zone) -> Callable[[datetime | None], str | None]:
    """Aware datetimes as ISO text in one timezone (2024-08-20T10:00:01+07:00, milliseconds when there are any).

    datetime.isoformat() on an aware value costs about 2 µs on the 2-core machine, most of the CSV export's time
    for a log with two datetime columns; this puts the same text together from cached pieces instead: the local
    day's prefix, the time of day from a table of the 86,400 seconds, and the offset, cached per quarter hour (the
    grain of every timezone's transitions since 1970) and checked at both ends of it."""
    times, millis = clock_times(), MILLIS
    offsets: dict[int, tuple[int, str] | None] = {}
    days: dict[int, str] = {}

    def to_text(value: datetime | None) -> str | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        since = value - EPOCH
        day, second = since.days, since.seconds
        quarter = day * 96 + second // 900
        try:
            offset = offsets[quarter]
        except KeyError:
            offset = offsets[quarter] = zone_offset(zone, quarter)
        if offset is None:
            local = value.astimezone(zone)
            return local.isoformat(timespec="milliseconds" if local.microsecond else "seconds")
        second += offset[0]
        if second >= 86400:
            day, second = day + 1, second - 86400
        elif second < 0:
            day, second = day - 1, second + 86400
        prefix = days.get(day)
        if prefix is None:
            prefix = days[day] = date.fromordinal(day + EPOCH_ORDINAL).isoformat() + "T"
        micro = since.microseconds
        if micro:
            return prefix + times[second] + millis[micro // 1000] + offset[1]
        return prefix + times[second] + offset[1]

    return to_text


def _csv_converter(column: Column, zone, decimal_comma: bool) -> Callable[[Any], Any] | None:
    """What turns a value of the column into its CSV text; None when csv.writer's own str() is right (text is
    guarded inline by `_row_maker`)."""
    kind = column.kind
    if kind == "percent":
        if decimal_comma:
            return lambda v: None if v is None else _percent_points(v).replace(".", ",")
        return lambda v: None if v is None else _percent_points(v)
    if kind == "decimal":
        if decimal_comma:
            return lambda v: None if v is None else f"{v:.1f}".replace(".", ",")
        return lambda v: None if v is None else f"{v:.1f}"
    if kind == "date":
        return lambda v: None if v is None else v.isoformat()
    if kind == "datetime":
        return _iso_text(zone)
    return None


def _row_maker(columns: list[Column], converters: list[Callable[[Any], Any] | None], *,
               lenient: bool = False, as_text: bool = False) -> Callable[[dict], tuple]:
    """One compiled expression per row, `(r["a"], c1(r["b"]), ...)`, text and id cells checked inline for a
    formula's start (formulas.INERT_EXPRESSION): a Python loop, or even a function call, per cell costs more than
    the CSV writer itself, and the log export must write over 200,000 rows a second. Rows must carry every
    column's key; `lenient` (for totals) takes a missing key as empty; `as_text` gives every cell as a str ("" for
    None), ready to be joined."""
    env: dict[str, Any] = dict(INERT_NAMES)
    items = []
    for index, (column, convert) in enumerate(zip(columns, converters, strict=True)):
        item = f"r.get({column.key!r})" if lenient else f"r[{column.key!r}]"
        if convert is not None:
            env[f"c{index}"] = convert
            item = f"(c{index}({item}) or '')" if as_text else f"c{index}({item})"
        elif column.kind in ("text", "id"):  # formulas.py's rule, inline
            item = INERT_EXPRESSION.format(value=item)
            if as_text:
                item = f"('' if (_w := {item}) is None else _w)"
        elif as_text:
            item = f"('' if (_v := {item}) is None else str(_v))"
        items.append(item)
    return eval(f"lambda r: ({', '.join(items)},)", env)  # noqa: S307 - the source is built above from reprs


def csv_header(columns: list[Column], language: str) -> list[str]:
    """The CSV header row, as iter_csv writes it (units added to the titles)."""
    return [_header_title(c, language, units=("%", "ms")) for c in columns]


def _header_title(column: Column, language: str, *, units: tuple[str, ...]) -> str:
    title = column.title(language)
    unit = {"percent": "%", "duration_ms": "ms"}.get(column.kind)
    if unit in units and unit not in title:
        title = f"{title} ({unit})"
    return title


def _totals_row(sheet: Sheet, language: str) -> dict[str, Any]:
    """The totals with "Tổng cộng" in the first column when the report left it empty."""
    totals = dict(sheet.totals or {})
    first = sheet.columns[0]
    if first.kind in ("text", "id") and totals.get(first.key) in (None, ""):
        totals[first.key] = translate("export.total", language)
    return totals


def iter_csv(report: Report, sheet_index: int = 0, *, decimal_comma: bool = False) -> Iterator[bytes]:
    """The CSV of one sheet as chunks of bytes (for a streamed HTTP response); see the module's notes."""
    sheet = _sheet(report, sheet_index)
    zone = _zone(report)
    columns = sheet.columns
    converters = [_csv_converter(column, zone, decimal_comma) for column in columns]
    to_row = _row_maker(columns, converters)
    to_text = _row_maker(columns, converters, as_text=True)
    to_totals = _row_maker(columns, converters, lenient=True)
    delimiter = ";" if decimal_comma else ","
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=delimiter)

    def take() -> bytes:
        text = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        return text.encode("utf-8")

    writer.writerow([_header_title(c, report.language, units=("%", "ms")) for c in columns])
    yield codecs.BOM_UTF8 + take()
    rows = iter(sheet.rows)
    while chunk := list(islice(rows, _CSV_CHUNK_ROWS)):  # a few thousand rows at a time, never the sheet
        try:
            # The csv module spends about 3 µs a row; joining the cells is ten times cheaper and gives the same
            # bytes whenever no cell needs quoting, which the counts below prove for the whole chunk at once.
            try:
                text = "\r\n".join(map(delimiter.join, map(to_text, chunk))) + "\r\n"
            except TypeError:  # a cell that is not text (an enum in a text column): the csv module str()s it
                text = None
            count = len(chunk)
            if (text is not None and len(columns) > 1 and text.count(delimiter) == count * (len(columns) - 1)
                    and '"' not in text and text.count("\n") == count and text.count("\r") == count):
                yield text.encode("utf-8")
                continue
            writer.writerows(map(to_row, chunk))
        except KeyError as missing:
            if missing.args[0] not in {c.key for c in columns}:
                raise
            raise ValueError(f"a row of the sheet {sheet.name!r} has no value for the column {missing}: give every "
                             f"column's key in every row (None when there is no value)") from None
        yield take()
    if sheet.totals is not None:
        writer.writerow(to_totals(_totals_row(sheet, report.language)))
        yield take()


def write_csv(report: Report, out: Output, sheet_index: int = 0, *, decimal_comma: bool = False) -> None:
    """Writes one sheet of the report as CSV to a path or a binary file (left open)."""
    with binary_output(out) as stream:
        for chunk in iter_csv(report, sheet_index, decimal_comma=decimal_comma):
            stream.write(chunk)


def _sheet(report: Report, index: int) -> Sheet:
    if not 0 <= index < len(report.sheets):
        names = ", ".join(f"{i}: {s.name}" for i, s in enumerate(report.sheets)) or "none"
        raise ValueError(f"the report {report.kind!r} has no sheet {index}; its sheets are {names}")
    return report.sheets[index]


@contextmanager
def binary_output(out: Output) -> Iterator[IO[bytes]]:
    """A path opened for writing, or the caller's binary file used as is (and left open)."""
    if isinstance(out, str | os.PathLike):
        with open(out, "wb") as stream:
            yield stream
    else:
        yield out
        out.flush()


# ---------------------------------------------------------------------------------------------------------------
# XLSX


_XLSX_FORMATS = {
    "vi": {"percent": "0.0%", "decimal": "0.0", "date": "dd/mm/yyyy", "datetime": "dd/mm/yyyy hh:mm:ss"},
    "en": {"percent": "0.0%", "decimal": "0.0", "date": "yyyy-mm-dd", "datetime": "yyyy-mm-dd hh:mm:ss"},
}
_BAD_SHEET_CHARACTERS = str.maketrans({c: " " for c in "[]:*?/\\"})


def _sheet_title(name: str, taken: set[str]) -> str:
    """A worksheet name Excel accepts (31 characters, none of []:*?/\\), unique in the workbook."""
    base = (name.translate(_BAD_SHEET_CHARACTERS).strip().strip("'") or "Sheet")[:31]
    title, n = base, 2
    while title.lower() in taken:
        suffix = f" ({n})"
        title, n = base[:31 - len(suffix)] + suffix, n + 1
    taken.add(title.lower())
    return title


class _Workbook:
    """An openpyxl write-only workbook: rows go to disk as they are appended, so memory stays flat."""

    def __init__(self, report: Report, max_rows: int):
        from openpyxl import Workbook
        from openpyxl.styles import Alignment, Font

        self.report = report
        self.max_rows = max_rows
        self.language = report.language
        self.zone = _zone(report)
        self.formats = _XLSX_FORMATS.get(self.language, _XLSX_FORMATS["vi"])
        self.book = Workbook(write_only=True)
        self.taken: set[str] = set()
        self.bold = Font(bold=True)
        self.title_font = Font(bold=True, size=14)
        self.wrap = Alignment(wrap_text=True, vertical="top")

    def cell(self, ws, value: Any, *, number_format: str | None = None, font=None, alignment=None):
        from openpyxl.cell import WriteOnlyCell

        cell = WriteOnlyCell(ws, value=value)
        if number_format is not None:
            cell.number_format = number_format
        if font is not None:
            cell.font = font
        if alignment is not None:
            cell.alignment = alignment
        return cell

    def value(self, ws, column: Column, value: Any, *, font=None):
        if value is None:
            return None
        kind = column.kind
        if kind == "datetime":
            value = _local(value, self.zone).replace(tzinfo=None)  # Excel has no timezones: the report's local time
        elif kind == "percent":
            value = rounded_share(value)  # rounded as the PDF and the pages round it: Excel's 0.0 % shows the same
        elif kind in ("text", "id"):
            if column.words is not None:
                value = column.words(value, self.language)
            if not isinstance(value, str):
                value = str(value)  # an enum or a number used as a name stays readable rather than failing the export
            # Never a formula: openpyxl would store "=..." as one, and Excel runs "+", "-", "@" as typed.
            value = inert(value)
        number_format = self.formats.get(kind)
        # openpyxl's write-only cells cannot share a style, so only typed or bold cells pay for a cell object.
        if number_format is None and font is None:
            return value
        return self.cell(ws, value, number_format=number_format, font=font)

    def information(self) -> None:
        report, t = self.report, (lambda key: translate(key, self.language))
        ws = self.book.create_sheet(_sheet_title(t("export.info_sheet"), self.taken))
        ws.column_dimensions["A"].width = 18
        ws.column_dimensions["B"].width = 70
        start, end = report.period
        ws.append([self.cell(ws, inert(report.title), font=self.title_font)])
        ws.append([])
        for key, text in ((N_("export.organisation"), report.organisation),
                          (N_("export.period"), _period_text(start, end, self.language)),
                          (N_("export.generated_at"), datetime_text(report.generated_at, self.zone, self.language)),
                          (N_("export.timezone"), report.timezone or "UTC")):
            ws.append([self.cell(ws, t(key), font=self.bold), inert(text)])  # the organisation's name is typed
        for index, note in enumerate(report.notes):
            ws.append([self.cell(ws, t("export.notes"), font=self.bold) if index == 0 else None, inert(note)])
        ws.append([])
        ws.append([self.cell(ws, t("export.sheets"), font=self.bold)])
        for sheet in report.sheets:
            ws.append([None, inert(sheet.name)])

    def worksheet(self, sheet: Sheet, part: int):
        from openpyxl.utils import get_column_letter

        name = sheet.name if part == 1 else f"{sheet.name} ({part})"
        ws = self.book.create_sheet(_sheet_title(name, self.taken))
        for index, column in enumerate(sheet.columns, 1):
            ws.column_dimensions[get_column_letter(index)].width = column.width
        ws.freeze_panes = "A2"
        ws.append([self.cell(ws, _header_title(c, self.language, units=("ms",)), font=self.bold,
                             alignment=self.wrap) for c in sheet.columns])
        return ws

    def sheet(self, sheet: Sheet) -> None:
        columns, value = sheet.columns, self.value
        part, ws, written = 1, self.worksheet(sheet, 1), 1
        for row in sheet.rows:
            if written == self.max_rows:
                part += 1
                ws, written = self.worksheet(sheet, part), 1
            ws.append([value(ws, c, row.get(c.key)) for c in columns])
            written += 1
        if sheet.totals is not None:
            if written == self.max_rows:
                ws = self.worksheet(sheet, part + 1)
            totals = _totals_row(sheet, self.language)
            ws.append([value(ws, c, totals.get(c.key), font=self.bold) for c in columns])


def write_xlsx(report: Report, out: Output, *, max_rows_per_sheet: int = XLSX_MAX_ROWS) -> None:
    """The report as an Excel workbook: a first "Thông tin" sheet (title, organisation, period, generation time,
    notes), then one worksheet per Sheet with typed cells, a bold frozen header, the columns' widths and a bold
    totals row. A sheet longer than `max_rows_per_sheet` (Excel's limit, header included) continues on a next
    worksheet "Name (2)"."""
    if max_rows_per_sheet < 2:
        raise ValueError("max_rows_per_sheet counts the header row too: it must be at least 2")
    workbook = _Workbook(report, max_rows_per_sheet)
    workbook.information()
    for sheet in report.sheets:
        workbook.sheet(sheet)
    with binary_output(out) as stream:
        workbook.book.save(stream)


# ---------------------------------------------------------------------------------------------------------------
# PDF and the texts shared with it


def _period_text(start: date, end: date, language: str) -> str:
    if start == end:
        return date_text(start, language)
    return f"{date_text(start, language)} – {date_text(end, language)}"


def cell_text(column: Column, value: Any, language: str, zone=UTC) -> str:
    """A value as a person reads it in the PDF (and could on a web page): Vietnamese number conventions."""
    if value is None:
        return ""
    if column.words is not None:
        return column.words(value, language)
    kind = column.kind
    if kind == "int":
        return number_text(value, language)
    if kind == "decimal":
        return number_text(value, language, 1)
    if kind == "percent":
        return percent_text(value, language)
    if kind == "duration_ms":
        return f"{number_text(value / 1000, language, 1)} s"
    if kind == "date":
        return date_text(value, language)
    if kind == "datetime":
        return datetime_text(value, zone, language)
    return str(value)


def _font_files() -> tuple[Path, Path]:
    """A regular and a bold font with Vietnamese glyphs, embedded in the PDF: Noto Sans if installed, else DejaVu."""
    for regular, bold in _FONTS:
        for directory in _FONT_DIRS:
            pair = Path(directory) / regular, Path(directory) / bold
            if pair[0].is_file() and pair[1].is_file():
                return pair
    raise RuntimeError("no font with Vietnamese glyphs for the PDF: install the Debian package fonts-dejavu-core "
                       "(scripts/setup.sh does) or fonts-noto-core")


# Dates, times and percentages never wrap in a PDF ("03/12/2 026"): their columns are at least this many characters
# wide (the widths are those of a spreadsheet's characters; the PDF's digits are wider).
_UNBROKEN_WIDTH = {"date": 16, "datetime": 28, "percent": 11}


def _pdf_width(column: Column) -> int:
    return max(column.width, _UNBROKEN_WIDTH.get(column.kind, 0))


def _is_wide(sheet: Sheet) -> bool:
    return len(sheet.columns) > 6 or sum(c.width for c in sheet.columns) > 90


_SVG_OPENING = re.compile(r"<svg\b[^>]*>")
_VIEWBOX = re.compile(r'viewBox="\s*[-\d.]+[\s,]+[-\d.]+[\s,]+([\d.]+)[\s,]+([\d.]+)\s*"')
_STYLE = re.compile(r'\sstyle="[^"]*"')


def _pdf_chart(chart: Chart, landscape: bool) -> dict[str, Any]:
    """The chart sized for paper: 140 mm wide, or narrower when that would make it taller than the page. Its
    style attribute (max-width:100% for screens) goes: WeasyPrint gives such an SVG a page-high box, and sizes it
    right from the template's stylesheet instead."""
    opening = _SVG_OPENING.search(chart.svg)
    box = _VIEWBOX.search(opening.group(0)) if opening else None
    width_mm = 140.0
    svg = chart.svg
    if opening is not None:
        svg = svg[:opening.start()] + _STYLE.sub("", opening.group(0)) + svg[opening.end():]
    if box is not None and float(box.group(2)) > 0:
        page_height = 160 if landscape else 240
        width_mm = min(width_mm, page_height * float(box.group(1)) / float(box.group(2)))
    return {"caption": chart.caption, "svg": svg, "width_mm": round(width_mm, 1)}


def pdf_html(report: Report, *, max_rows: int = PDF_MAX_ROWS) -> str:
    """The PDF's HTML, from scheduler/web/templates/report_pdf.html: each sheet's first `max_rows` rows."""
    import jinja2

    language = report.language
    zone = _zone(report)
    environment = install_translations(jinja2.Environment(loader=jinja2.FileSystemLoader(_TEMPLATES),
                                                          autoescape=True, undefined=jinja2.StrictUndefined))
    sheets = []
    for sheet in map(for_reading, report.sheets):  # names, not ids or hashes, for people to read
        rows = iter(sheet.rows)
        shown = [[cell_text(c, row.get(c.key), language, zone) for c in sheet.columns]
                 for row in islice(rows, max_rows)]
        # The rest of a long log is counted as it streams past, never kept, unless the report knows its count.
        more = sum(1 for _ in rows) if sheet.row_count is None else max(sheet.row_count - len(shown), 0)
        totals = None
        if sheet.totals is not None:
            values = _totals_row(sheet, language)
            totals = [cell_text(c, values.get(c.key), language, zone) for c in sheet.columns]
        sheets.append({
            "name": sheet.name,
            "wide": _is_wide(sheet),
            "columns": [{"title": c.title(language), "numeric": c.kind in ("int", "decimal", "percent", "duration_ms"),
                         "unbroken": c.kind in ("date", "datetime"),
                         "share": round(100 * _pdf_width(c) / sum(_pdf_width(x) for x in sheet.columns), 2)}
                        for c in sheet.columns],
            "rows": shown,
            "totals": totals,
            "more": number_text(more, language) if more else None,
        })
    landscape = any(s["wide"] for s in sheets)
    charts = [_pdf_chart(chart, landscape) for chart in report.charts]
    regular, bold = _font_files()
    start, end = report.period
    return environment.get_template("report_pdf.html").render(
        report=report, lang=language, sheets=sheets, charts=charts,
        period=_period_text(start, end, language),
        generated_at=datetime_text(report.generated_at, zone, language),
        timezone=report.timezone or "UTC",
        font_regular=regular.as_uri(), font_bold=bold.as_uri(),
        landscape=landscape,
    )


def write_pdf(report: Report, out: Output, *, max_rows: int = PDF_MAX_ROWS) -> None:
    """The report as a PDF to hand in: the organisation and period at the top of every page, "Trang 1/3" at the
    bottom, charts, then each sheet's table (its header repeated on every page) capped at `max_rows` rows with a
    line saying how many more the CSV and XLSX hold. A4, landscape for wide sheets; the font is embedded."""
    import weasyprint

    html = pdf_html(report, max_rows=max_rows)
    document = weasyprint.HTML(string=html, base_url=str(_TEMPLATES))
    with binary_output(out) as stream:
        document.write_pdf(stream)
