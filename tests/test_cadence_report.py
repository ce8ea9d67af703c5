"""The cadence monitor (issue 8): each unit's regular messages over a 10-day period, figures checked by hand.

The period is 1–10 August 2024 in Hà Nội: it starts at 1 August 00:00 (+07:00) and ends at 11 August 00:00, 240
hours. In Hà Đông's subtree three units hold screens:
- Phú La messages every two days at 10:00 (1, 3, 5, 7, 9 August; the one of the 5th stopped after it began), and
  has a rejected, a pending and a stopped-before-start alert on 10 August and a message after the period (12th):
  gaps 0.4 (10 h), 2.0 ×4, 1.6 (38 h): not late; 1.6 days since its last message.
- Văn Quán's last message before the period is 31 July 20:00; then 1, 3, 8, 10 August at 08:00: gaps 0.5, 2.0,
  5.0, 2.0, 0.7 (16 h): late.
- The district itself never sent a regular message, only an urgent alert on 5 August: gap 10.0, late.
"""

from __future__ import annotations

import csv
import io
import itertools
import re
import subprocess
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import openpyxl
import pytest
from sqlalchemy import update

from campaigns.kinds import AlertKind, AlertSeverity, AlertStatus
from campaigns.models import Alert, Screen, Site
from scheduler.reports.cadence import cadence_period, cadence_report, unit_cadences
from scheduler.reports.scope import Scope
from signage.db import transaction
from signage.errors import Invalid
from tests.conftest import sign_in
from tests.test_cli import run

HANOI = ZoneInfo("Asia/Ho_Chi_Minh")
FIRST, LAST = date(2024, 8, 1), date(2024, 8, 10)
AFTER_THE_PERIOD = datetime(2024, 8, 20, 10, 0, tzinfo=HANOI)
PERIOD = {"from": "2024-08-01", "to": "2024-08-10"}
HADONG, PHULA, VANQUAN = "hn-hadong", "hn-hadong-phula", "hn-hadong-vanquan"
_ids = itertools.count(1)


def local(month: int, day: int, hour: int) -> datetime:
    return datetime(2024, month, day, hour, 0, tzinfo=HANOI)


def alert(organisation_id: str, starts_at: datetime, *, severity: str = "info", status: str = "approved",
          stopped_at: datetime | None = None) -> Alert:
    return Alert(id=f"alert-{next(_ids)}", organisation_id=organisation_id, title="Thông báo", text="Nội dung",
                 severity=AlertSeverity(severity), kind=AlertKind.text, starts_at=starts_at,
                 expires_at=starts_at + timedelta(hours=4), targets={"organisations": [organisation_id]},
                 status=AlertStatus(status), created_by="tester", created_at=starts_at - timedelta(hours=1),
                 stopped_at=stopped_at)


def add(database, *alerts: Alert) -> None:
    with transaction(database.sessions) as session:
        session.add_all(alerts)


@pytest.fixture
def messages(database, fleet):
    add(database,
        *(alert(PHULA, local(8, day, 10)) for day in (1, 3, 7, 9)),
        alert(PHULA, local(8, 5, 10), status="stopped", stopped_at=local(8, 5, 11)),
        alert(PHULA, local(8, 10, 12), status="rejected"),
        alert(PHULA, local(8, 10, 14), status="pending"),
        alert(PHULA, local(8, 10, 16), status="stopped", stopped_at=local(8, 10, 15)),
        alert(PHULA, local(8, 12, 10)),
        alert(VANQUAN, local(7, 31, 20)),
        *(alert(VANQUAN, local(8, day, 8)) for day in (1, 3, 8, 10)),
        alert(HADONG, local(8, 5, 9), severity="urgent"))
    return database


def hadong(first: date = FIRST, last: date = LAST) -> Scope:
    return Scope(HADONG, "UBND quận Hà Đông", "/hn/hn-hadong/", first, last)


def ward(first: date = FIRST, last: date = LAST) -> Scope:
    return Scope(VANQUAN, "UBND phường Văn Quán", "/hn/hn-hadong/hn-hadong-vanquan/", first, last)


def units_of_the_city(database) -> list[str]:
    city = Scope("hn", "UBND Thành phố Hà Nội", "/hn/", FIRST, LAST)
    with database.sessions() as session:
        return [unit.organisation_id for unit in unit_cadences(session, city, cadence_period(city, AFTER_THE_PERIOD))]


def rows_of(database, scope: Scope, now: datetime = AFTER_THE_PERIOD, language: str = "vi") -> dict[str, dict]:
    with database.sessions() as session:
        report = cadence_report(session, scope, now, language)
    return {row["organisation_id"]: row for row in report.sheets[0].rows}


# -- the figures ------------------------------------------------------------------------------------------------

def test_a_unit_messaging_every_two_days_is_not_late(messages):
    phula = rows_of(messages, hadong())[PHULA]
    assert (phula["messages"], phula["longest_gap"], phula["days_since"]) == (5, 2.0, 1.6)
    assert phula["late"] == "không" and phula["is_late"] is False


def test_a_unit_with_a_five_day_gap_is_flagged_late(messages):
    vanquan = rows_of(messages, hadong())[VANQUAN]
    assert (vanquan["messages"], vanquan["longest_gap"], vanquan["days_since"]) == (4, 5.0, 0.7)
    assert vanquan["late"] == "có" and vanquan["is_late"] is True


def test_rejected_pending_and_stopped_before_start_alerts_are_not_messages(messages):
    phula = rows_of(messages, hadong())[PHULA]
    assert phula["messages"] == 5
    assert phula["last_message"] == local(8, 9, 10)  # not the three alerts of 10 August


def test_a_message_after_the_period_is_neither_counted_nor_the_last(messages):
    phula = rows_of(messages, hadong(last=date(2024, 8, 11)))[PHULA]
    assert phula["messages"] == 5 and phula["last_message"] == local(8, 9, 10)


def test_an_urgent_alert_is_counted_in_its_own_column_and_keeps_no_cadence(messages):
    district = rows_of(messages, hadong())[HADONG]
    assert (district["urgent"], district["messages"], district["last_message"]) == (1, 0, None)
    assert rows_of(messages, hadong())[PHULA]["urgent"] == 0


def test_a_unit_that_never_sent_a_message_is_late_for_the_whole_period(messages):
    district = rows_of(messages, hadong())[HADONG]
    assert (district["longest_gap"], district["days_since"], district["is_late"]) == (10.0, None, True)


def test_late_units_come_first_then_the_longest_gap(messages):
    assert list(rows_of(messages, hadong())) == [HADONG, VANQUAN, PHULA]


def test_the_totals_count_units_late_units_and_messages(messages):
    with messages.sessions() as session:
        totals = cadence_report(session, hadong(), AFTER_THE_PERIOD).sheets[0].totals
    assert (totals["units"], totals["late_units"], totals["messages"], totals["urgent"]) == (3, 2, 9, 1)
    assert totals["unit"] == "Tổng: 3 đơn vị" and totals["late"] == "2 đơn vị"


def test_the_first_gap_runs_from_the_last_message_before_the_period(messages):
    # 6–10 August: the last message before is 3 August 08:00, the first inside 8 August 08:00: 5 days, though
    # only 2.3 days from the period's start.
    vanquan = rows_of(messages, ward(first=date(2024, 8, 6)))[VANQUAN]
    assert (vanquan["messages"], vanquan["longest_gap"], vanquan["is_late"]) == (2, 5.0, True)


def test_a_period_reaching_today_ends_now_and_leaves_out_what_has_not_started(messages):
    add(messages, alert(VANQUAN, local(8, 10, 18)))  # later today
    vanquan = rows_of(messages, ward(), now=local(8, 10, 12))[VANQUAN]
    assert (vanquan["messages"], vanquan["last_message"]) == (4, local(8, 10, 8))
    assert vanquan["days_since"] == 0.2  # 4 hours


def test_a_period_that_has_not_begun_is_refused_with_how_to_fix_it(messages):
    with messages.sessions() as session, pytest.raises(Invalid, match="today or earlier"):
        cadence_report(session, hadong(), local(7, 31, 23))


def test_the_report_refuses_a_campaign(messages):
    scope = hadong()
    scope.campaign_id = "ihanoi-2024"
    with messages.sessions() as session, pytest.raises(Invalid, match="leave the campaign out"):
        cadence_report(session, scope, AFTER_THE_PERIOD)


def test_a_district_is_listed_for_its_wards_screens(messages):
    listed = units_of_the_city(messages)
    assert "hn-bavi" in listed and len(listed) == 21  # Ba Vì's screens are all in its ward Tản Lĩnh


def test_units_without_an_enabled_screen_in_their_subtree_are_not_listed(messages):
    with transaction(messages.sessions) as session:
        tanlinh_sites = [site.id for site in session.query(Site).filter(Site.organisation_id == "hn-bavi-tanlinh")]
        session.execute(update(Screen).where(Screen.site_id.in_(tanlinh_sites)).values(enabled=False))
    listed = units_of_the_city(messages)
    assert "hn-bavi" not in listed and "hn-bavi-tanlinh" not in listed and len(listed) == 19


def test_the_chart_bars_the_days_since_each_units_last_message_against_the_three_day_line(messages):
    with messages.sessions() as session:
        [chart] = cadence_report(session, hadong(), AFTER_THE_PERIOD).charts
    assert 'class="limit" data-value="3.0"' in chart.svg
    assert 'data-unit="UBND phường Phú La" data-value="1.6"' in chart.svg
    assert 'class="never" data-unit="UBND quận Hà Đông"' in chart.svg  # no bar: no message yet


def test_the_report_speaks_english_on_request(messages):
    with messages.sessions() as session:
        report = cadence_report(session, hadong(), AFTER_THE_PERIOD, "en")
    assert report.title == "Message cadence" and report.sheets[0].name == "Units"
    assert next(iter(report.sheets[0].rows))["late"] == "yes"


# -- through the API, the page and the CLI ----------------------------------------------------------------------

@pytest.fixture
def cadence_api(messages, api):
    return api


def test_a_wards_user_sees_only_their_wards_units_through_the_api(cadence_api):
    answer = cadence_api("vanquan-head").get("/api/v1/reports/cadence", params=PERIOD)
    assert answer.status_code == 200, answer.text
    [sheet] = answer.json()["sheets"]
    assert [row["organisation_id"] for row in sheet["rows"]] == [VANQUAN]
    assert sheet["rows"][0]["longest_gap"] == 5.0


def test_a_ward_cannot_ask_for_its_districts_cadence(cadence_api):
    answer = cadence_api("vanquan-head").get("/api/v1/reports/cadence",
                                             params={**PERIOD, "organisation_id": HADONG})
    assert answer.status_code == 404


def test_the_api_refuses_a_campaign_for_the_cadence_with_a_problem(cadence_api):
    answer = cadence_api("hadong-manager").get("/api/v1/reports/cadence/export",
                                               params={**PERIOD, "campaign_id": "ihanoi-2024", "format": "csv"})
    assert answer.status_code == 422 and "leave campaign_id out" in answer.json()["detail"]


def test_the_cadence_exports_as_csv_with_the_figures_and_the_totals(cadence_api):
    answer = cadence_api("hadong-manager").get("/api/v1/reports/cadence/export", params={**PERIOD, "format": "csv"})
    assert answer.status_code == 200, answer.text
    rows = list(csv.reader(io.StringIO(answer.content.decode("utf-8-sig"))))
    assert rows[0][:3] == ["Đơn vị", "Mã đơn vị", "Tin thường xuyên trong kỳ"]
    assert [row[1:] for row in rows[1:4]] == [
        [HADONG, "0", "1", "", "", "10.0", "3", "có", "", "late"],
        [VANQUAN, "4", "0", "2024-08-10T08:00:00+07:00", "0.7", "5.0", "3", "có", "2024-08-13T08:00:00+07:00",
         "on_track"],
        [PHULA, "5", "0", "2024-08-09T10:00:00+07:00", "1.6", "2.0", "3", "không", "2024-08-12T10:00:00+07:00",
         "on_track"],
    ]
    assert rows[4] == ["Tổng: 3 đơn vị", "", "9", "1", "", "", "", "", "2 đơn vị", "", ""]


def test_the_cadence_pdf_holds_its_title_chart_and_figures(cadence_api):
    answer = cadence_api("hadong-manager").get("/api/v1/reports/cadence/export", params={**PERIOD, "format": "pdf"})
    assert answer.status_code == 200, answer.text
    text = subprocess.run(["pdftotext", "-layout", "-", "-"], input=answer.content, capture_output=True,
                          check=True).stdout.decode()
    assert "Nhịp tin thường xuyên" in text and "01/08/2024 – 10/08/2024" in text
    assert "3 ngày" in text and "chưa có tin" in text  # the chart's limit line and the district without a message
    assert "UBND phường Văn Quán" in text and "5,0" in text  # the Vietnamese decimal comma


def test_the_reports_page_offers_the_message_cadence_tab(web, messages):
    sign_in(web, "hadong-manager")
    page = web.get("/reports")
    assert 'id="tab-cadence"' in page.text and "Nhịp tin thường xuyên" in page.text
    cadence = web.get("/reports", params={"kind": "cadence", **PERIOD, "campaign_id": "ihanoi-2024"})
    assert cadence.status_code == 200, cadence.text
    assert "2/3 đơn vị quá 3 ngày" in cadence.text and 'class="chart chart-days-since-by-unit"' in cadence.text
    assert 'id="report-campaign"' not in cadence.text and "10/08/2024 08:00:00" in cadence.text


def test_the_pages_download_link_gives_the_cadence_csv(web, messages):
    sign_in(web, "hadong-manager")
    page = web.get("/reports", params={"kind": "cadence", **PERIOD}).text
    link = re.search(r'href="([^"]+)" id="export-csv"', page).group(1).replace("&amp;", "&")
    answer = web.get(link)
    assert answer.status_code == 200, answer.text
    assert len(list(csv.reader(io.StringIO(answer.content.decode("utf-8-sig"))))) == 1 + 3 + 1


def test_the_cli_writes_the_cadence_as_a_workbook(messages, cli_env, tmp_path):
    out = tmp_path / "cadence.xlsx"
    result = run(cli_env, "report", "cadence", "--from", "2024-08-01", "--to", "2024-08-10", "--scope", HADONG,
                 "--format", "xlsx", "--out", str(out))
    assert result.returncode == 0, result.stderr
    book = openpyxl.load_workbook(out, read_only=True)
    assert book.sheetnames == ["Thông tin", "Đơn vị"]
    rows = list(book["Đơn vị"].iter_rows(values_only=True))
    assert len(rows) == 1 + 3 + 1
    assert rows[0][-4:] == ("Khoảng cách quy định (ngày)", "Quá khoảng cách quy định", "Hạn tin tiếp theo",
                            "Tình trạng")
    assert rows[2] == ("UBND phường Văn Quán", VANQUAN, 4, 0, datetime(2024, 8, 10, 8, 0), 0.7, 5.0, 3, "có",
                       datetime(2024, 8, 13, 8, 0), "Đúng nhịp")
