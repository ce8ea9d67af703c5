"""The compliance report a manager hands in (issue 18, items 2 and 3): one report and one renderer for the page, the
web's PDF and the CLI's PDF, charts included; figures rounded once, so the PDF, the XLSX, the page and its charts
agree, in Vietnamese number format; the hourly chart shaded with the peak windows of the sites that played.

The fixture is the known day of tests/test_ledger.py: Hà Đông's plays come from ward offices (Văn Quán, Phú La),
while its other kind of site, an intersection, has peak windows of its own."""

from __future__ import annotations

import re
import subprocess
import xml.etree.ElementTree as ET
from datetime import UTC, datetime

import openpyxl
import pytest

from scheduler.reports.compliance import compliance_report
from scheduler.reports.exports import cell_text
from tests.conftest import sign_in
from tests.test_cli import run
from tests.test_compliance_report import closed, hadong  # noqa: F401
from tests.test_ledger import ledger  # noqa: F401

PERIOD = ["--campaign", "ihanoi-2024", "--from", "2024-08-20", "--to", "2024-08-20", "--scope", "hn-hadong"]
QUERY = {"campaign_id": "ihanoi-2024", "from": "2024-08-20", "to": "2024-08-20", "organisation_id": "hn-hadong"}
SVG = "{http://www.w3.org/2000/svg}"
WARD_OFFICE_PEAKS = [("480", "660"), ("840", "990")]  # 08:00–11:00, 14:00–16:30; the intersection's are 07:00, 17:00


def pdf_pages(path) -> list[str]:
    text = subprocess.run(["pdftotext", "-layout", str(path), "-"], capture_output=True, text=True,
                          check=True).stdout
    return text.split("\f")[:-1]


def without_generation_time(page: str) -> str:
    return "\n".join(line for line in page.splitlines() if "Thời điểm lập" not in line)


def shown_percent(share: float) -> str:
    """What Excel shows for a cell formatted 0.0% in a Vietnamese locale."""
    return f"{share * 100:.1f}".replace(".", ",") + " %"


@pytest.fixture
def cli_and_web_pdfs(closed, cli_env, api, tmp_path):  # noqa: F811
    cli_pdf = tmp_path / "cli.pdf"
    result = run(cli_env, "report", "compliance", *PERIOD, "--out", str(cli_pdf))
    assert result.returncode == 0, result.stderr
    answer = api("hadong-manager").get("/api/v1/reports/compliance/export", params={**QUERY, "format": "pdf"})
    assert answer.status_code == 200, answer.text
    web_pdf = tmp_path / "web.pdf"
    web_pdf.write_bytes(answer.content)
    return cli_pdf, web_pdf


def test_the_cli_and_the_web_write_the_same_compliance_pdf_charts_included(cli_and_web_pdfs):
    cli_pages, web_pages = (pdf_pages(path) for path in cli_and_web_pdfs)
    assert len(cli_pages) == len(web_pages) >= 2
    assert [without_generation_time(p) for p in cli_pages] == [without_generation_time(p) for p in web_pages]
    text = "\n".join(cli_pages)
    # the three charts, drawn as text by the one renderer: the hourly one named for the kind of site that played
    for words in ("Lượt phát theo giờ trong ngày: Trụ sở UBND phường, xã", "Tỷ lệ phát theo ngày",
                  "Tỷ lệ phát theo đơn vị", "Khung giờ cao điểm", "Mục tiêu 100,0 %"):
        assert words in text, words
    assert "cao điểm: intersection" not in text and "ward_office" not in text


def test_the_pdfs_percentages_are_the_xlsxs_in_vietnamese_format(cli_and_web_pdfs, cli_env, tmp_path):
    cli_pdf, _ = cli_and_web_pdfs
    xlsx = tmp_path / "hadong.xlsx"
    result = run(cli_env, "report", "compliance", *PERIOD, "--out", str(xlsx))
    assert result.returncode == 0, result.stderr
    book = openpyxl.load_workbook(xlsx)
    shares = [cell.value for sheet in book.worksheets[1:] for row in sheet.iter_rows(min_row=2) for cell in row
              if cell.number_format == "0.0%" and cell.value is not None]
    assert len(shares) > 10
    text = " ".join(" ".join(pdf_pages(cli_pdf)).split())  # a cell's text may be spaced out by the layout
    for share in shares:
        assert shown_percent(share) in text, share
    assert shown_percent(24 / 65 // 0.001 / 1000) == "36,9 %" and "36,9 %" in text  # the district: 24 of 65
    assert not re.search(r"\d\.\d %", text)  # no decimal point: vi_VN writes a comma


def test_a_date_in_the_pdf_is_never_broken_over_two_lines(cli_and_web_pdfs):
    text = "\n".join(pdf_pages(cli_and_web_pdfs[0]))
    assert "20/08/2024" in text
    assert not re.search(r"20/08/2\s*\n", text) and not re.search(r"\b2 024\b", text)


def test_the_hourly_chart_is_shaded_with_the_peak_windows_of_the_sites_that_played(closed):  # noqa: F811
    with closed.sessions() as session:
        report = compliance_report(session, hadong(), datetime(2024, 8, 21, tzinfo=UTC), "vi", "Asia/Ho_Chi_Minh")
    hourly = [chart for chart in report.charts if "chart-delivery-by-hour" in chart.svg]
    assert [chart.caption for chart in hourly] == ["Lượt phát theo giờ trong ngày: Trụ sở UBND phường, xã"]
    root = ET.fromstring(hourly[0].svg)
    peaks = [(e.get("data-start"), e.get("data-end")) for e in root.iter() if e.get("class") == "peak"]
    assert peaks == WARD_OFFICE_PEAKS
    ticks = [e.text for e in root.iter(f"{SVG}text") if e.get("class") == "tick"]
    assert ticks == ["0", "10", "20", "30"]  # the busiest hour has 23 plays
    kinds = next(s for s in report.sheets if s.name == "Theo loại điểm")
    assert {row["site_kind"] for row in kinds.rows} == {"intersection", "ward_office"}  # codes, for the CSV
    shown = {cell_text(kinds.columns[0], row["site_kind"], "vi") for row in kinds.rows}
    assert shown == {"Nút giao thông", "Trụ sở UBND phường, xã"}  # in words, not codes


def test_the_page_its_charts_and_its_summary_show_the_same_labelled_figures(web, closed):  # noqa: F811
    sign_in(web, "hadong-manager")
    page = web.get("/reports", params={"kind": "compliance", **QUERY}).text
    total = re.search(r'<p class="counts" id="report-total">(.*?)</p>', page, re.S).group(1)
    words = " ".join(re.sub(r"<[^>]+>", " ", total).split())
    assert words == ("Tỷ lệ phát: 36,9 % · Lượt phát trong giờ cao điểm: 24 / 65 yêu cầu · "
                     "Màn hình-ngày đạt: 1 / 5")
    units_table = re.search(r'<table class="report" id="sheet-1">(.*?)</table>', page, re.S).group(1)
    in_table = re.findall(r"\d+,\d %", units_table)
    chart = re.search(r'<svg[^>]*chart-compliance-by-unit.*?</svg>', page, re.S).group(0)
    in_chart = [e.text for e in ET.fromstring(chart).iter(f"{SVG}text") if e.get("class") == "value"]
    assert in_chart and set(in_chart) <= set(in_table)
