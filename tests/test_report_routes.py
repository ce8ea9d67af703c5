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
