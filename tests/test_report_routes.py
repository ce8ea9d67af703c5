"""Reports on the web and in the API: scoped to the user's subtree, exported as real files."""

from __future__ import annotations

import csv
import io

import pytest

from tests.conftest import sign_in
from tests.test_compliance_report import closed  # noqa: F401
from tests.test_ledger import ledger  # noqa: F401

PERIOD = {"campaign_id": "ihanoi-2024", "from": "2024-08-20", "to": "2024-08-20"}


@pytest.fixture
def reports(closed, api):  # noqa: F811
    return api


def test_a_district_manager_gets_the_districts_compliance_as_json(reports):
    answer = reports("hadong-manager").get("/api/v1/reports/compliance", params=PERIOD)
    assert answer.status_code == 200, answer.text
    units = answer.json()["sheets"][0]
    assert units["totals"]["required"] == 65 and units["totals"]["delivered"] == 24


def test_a_ward_cannot_ask_for_its_districts_report(reports):
    answer = reports("vanquan-head").get("/api/v1/reports/compliance",
                                         params={**PERIOD, "organisation_id": "hn-hadong"})
    assert answer.status_code == 404


def test_a_wards_report_holds_only_its_own_screens(reports):
    body = reports("vanquan-head").get("/api/v1/reports/compliance", params=PERIOD).json()
    assert [row["screen_id"] for row in body["sheets"][-1]["rows"]] == ["hn-hadong-vanquan-001"]


def test_the_screen_days_export_as_csv_with_a_bom_for_excel(reports):
    answer = reports("hadong-manager").get("/api/v1/reports/compliance/export", params={**PERIOD, "format": "csv"})
    assert answer.status_code == 200
    assert answer.content.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(answer.content.decode("utf-8-sig"))))
    assert len(rows) == 1 + 5  # the header and the district's five screen-days
    assert "attachment" in answer.headers["content-disposition"]


def test_an_unknown_format_is_refused_with_the_choices(reports):
    answer = reports("hadong-manager").get("/api/v1/reports/compliance/export", params={**PERIOD, "format": "doc"})
    assert answer.status_code == 422
    assert "csv" in answer.text


def test_the_reports_page_shows_the_figures_and_the_charts(web, closed):  # noqa: F811
    sign_in(web, "hadong-manager")
    page = web.get("/reports", params={"kind": "compliance", **PERIOD})
    assert page.status_code == 200, page.text
    assert 'id="report-total"' in page.text and "24 / 65" in page.text
    assert page.text.count("<svg") >= 3
    assert 'id="export-xlsx"' in page.text


def test_the_pop_log_page_and_pdf_name_screens_campaigns_and_files_and_the_csv_keeps_their_ids(web, reports,
                                                                                                tmp_path):
    import re

    from tests.test_report_exports import pdf_text

    sign_in(web, "hadong-manager")
    page = web.get("/reports", params={"kind": "pop", **PERIOD}).text
    log = page[page.index('id="sheet-1"'):]
    assert "Tuyên truyền ứng dụng iHanoi" in log and "Khu tiếp dân – màn LCD 1" in log
    # (the ledger's plays name files no library holds: those alone fall back to their sha256)
    assert "Media (sha256)" not in log and ">Nội dung<" in log and "hn-hadong-phula-001" not in log
    listed = csv.reader(io.StringIO(reports("hadong-manager").get(
        "/api/v1/reports/pop/export", params={**PERIOD, "format": "csv"}).content.decode("utf-8-sig")))
    header, first = next(listed), next(listed)
    assert re.fullmatch(r"[0-9a-f]{64}", first[header.index("Media (sha256)")])  # tools match files by hash
    # Names first, for people; the ids tools match on after them.
    assert header.index("Màn hình") < header.index("Chiến dịch") < header.index("Mã màn hình")
    assert header.index("Mã màn hình") < header.index("Mã chiến dịch") < header.index("Media (sha256)")
    assert first[header.index("Chiến dịch")].startswith("Tuyên truyền ứng dụng iHanoi")
    assert first[header.index("Mã chiến dịch")] == "ihanoi-2024"
    assert first[header.index("Mã màn hình")].startswith("hn-hadong-")
    assert first[header.index("Màn hình")] and not first[header.index("Màn hình")].startswith("hn-hadong-")
    pdf = tmp_path / "pop.pdf"
    pdf.write_bytes(reports("hadong-manager").get("/api/v1/reports/pop/export",
                                                  params={**PERIOD, "format": "pdf"}).content)
    text = pdf_text(pdf)
    assert "iHanoi" in text and "hn-hadong-phula-001" not in text


def test_the_compliance_screen_days_on_the_page_and_in_the_pdf_name_screens_and_campaigns(web, reports, tmp_path):
    from tests.test_report_exports import pdf_text

    sign_in(web, "hadong-manager")
    page = web.get("/reports", params={"kind": "compliance", **PERIOD}).text
    days = page[page.index('id="sheet-4"'):]
    days = days[:days.index("</table>")]
    assert "Khu tiếp dân – màn LCD 1" in days and "Tuyên truyền ứng dụng iHanoi" in days
    assert "hn-hadong-phula-001" not in days and "ihanoi-2024" not in days
    pdf = tmp_path / "compliance.pdf"
    pdf.write_bytes(reports("hadong-manager").get("/api/v1/reports/compliance/export",
                                                  params={**PERIOD, "format": "pdf"}).content)
    text = pdf_text(pdf)
    assert "hn-hadong-phula-001" not in text and "ihanoi-2024" not in text
    rows = list(csv.reader(io.StringIO(reports("hadong-manager").get(
        "/api/v1/reports/compliance/export", params={**PERIOD, "format": "csv"}).content.decode("utf-8-sig"))))
    assert "hn-hadong-phula-001" in {row[3] for row in rows}  # the CSV keeps the ids tools match on


# -- formula injection (issue 16, item 5) -----------------------------------------------------------------------

DAY = {"from": "2024-08-20", "to": "2024-08-20"}


@pytest.fixture
def formula_play(closed):  # noqa: F811
    """A play on Van Quan's screen whose campaign and media ids are a live formula (written into the database
    directly: ingest refuses such ids)."""
    from datetime import UTC, datetime

    from tests.test_ledger import VANQUAN
    from tests.test_pop_log_csv import add_formula_play

    return add_formula_play(closed, VANQUAN, datetime(2024, 8, 20, 4, 0, tzinfo=UTC))


def test_the_pop_log_csv_from_the_api_writes_no_live_formula(reports, formula_play):
    from tests.test_pop_log_csv import FORMULA

    answer = reports("hadong-manager").get("/api/v1/reports/pop/export", params={**DAY, "format": "csv"})
    assert answer.status_code == 200, answer.text
    rows = list(csv.reader(io.StringIO(answer.content.decode("utf-8-sig"), newline="")))
    (row,) = [row for row in rows if row[-1] == formula_play]
    assert row[13:15] == ["'" + FORMULA, "'" + FORMULA]  # campaign, media: before the fix, "=HYPERLINK(..." as is
    assert row[5] == "'@SUM(1+1)*cmd|' /C calc'!A0"  # the campaign's name, typed by staff


def test_the_pop_log_xlsx_from_the_api_writes_no_live_formula(reports, formula_play, tmp_path):
    import openpyxl

    from tests.test_pop_log_csv import FORMULA

    answer = reports("hadong-manager").get("/api/v1/reports/pop/export", params={**DAY, "format": "xlsx"})
    assert answer.status_code == 200, answer.text
    path = tmp_path / "pop.xlsx"
    path.write_bytes(answer.content)
    sheet = openpyxl.load_workbook(path)["Nhật ký"]
    (row,) = [row for row in sheet.iter_rows(min_row=2) if row[-1].value == formula_play]
    assert [(cell.value, cell.data_type) for cell in row[13:15]] == [("'" + FORMULA, "s")] * 2
    assert (row[5].value, row[5].data_type) == ("'@SUM(1+1)*cmd|' /C calc'!A0", "s")
    assert row[9].value == 15000 and row[9].data_type == "n"  # a number stays a number


def test_the_playout_file_from_the_api_writes_no_live_formula(reports, formula_play):
    from tests.test_pop_log_csv import FORMULA

    answer = reports("hadong-manager").get("/api/v1/reports/pop/export", params={**DAY, "format": "playout"})
    assert answer.status_code == 200, answer.text
    (record,) = [r for r in csv.reader(io.StringIO(answer.text, newline="")) if r[-1] == formula_play]
    # orderid, buyercampaignref (the campaign's name, typed by staff), creativeid, creativename
    assert [record[7], record[12], record[13], record[14]] == [
        "'" + FORMULA, "'@SUM(1+1)*cmd|' /C calc'!A0", "'" + FORMULA, "'@SUM(1+1)*cmd|' /C calc'!A0"]
    assert record[5] == "15000"
