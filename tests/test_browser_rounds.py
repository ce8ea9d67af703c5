"""Issue 21, item 1's acceptance in a real Chromium: Ba Vì's district office opens a reporting round with a deadline
and one typed field; the commune of Tản Lĩnh fills and submits it; Ba Trại (a second commune, added here) stays
late; the district sees both, the totals and the late one in red, and exports the XLSX, read back with openpyxl.
The reminders go out through the notice job with the rounds noter, and a real SMTP server on 127.0.0.1 (aiosmtpd)
catches them: 3 days before the deadline to both communes, and the day it is late to Ba Trại only. Each step is
kept as a screenshot under tests/artifacts/<test>/."""

from __future__ import annotations

import re
from datetime import timedelta

from openpyxl import load_workbook
from playwright.sync_api import Page, expect

from campaigns.accounts import create_user
from scheduler.notices import NoticeJob
from scheduler.round_notices import round_noter
from signage.db import transaction
from tests.browser import LiveServer, shot, sign_in_as
from tests.pg_server import free_port
from tests.test_outage_notices import mail_server
from tests.test_reporting_rounds import BATRAI, BAVI, TANLINH, add_batrai, hanoi

INSTALLS_LABEL = "Tỷ lệ cán bộ, viên chức đã cài đặt iHanoi (%)"
DEADLINE = hanoi(2024, 8, 22, 17, 0)
RED = "rgb(176, 0, 32)"


def add_ba_vi_people(database, clock, password_hash) -> None:
    with transaction(database.sessions) as session:
        add_batrai(session)
        for username, full_name, role, unit in (
                ("bavi-manager", "Nguyễn Văn Huyện", "manager", BAVI),
                ("tanlinh-staff", "Trần Thị Tản", "staff", TANLINH),
                ("batrai-staff", "Lê Văn Trại", "staff", BATRAI)):
            user = create_user(session, username=username, full_name=full_name, role=role, organisation_id=unit,
                               password_hash=password_hash, clock=clock)
            user.email = f"{username}@bavi.example"


def open_the_round(page: Page, server: LiveServer) -> int:
    sign_in_as(page, server, "bavi-manager")
    page.goto(server.url("/rounds"))
    expect(page.locator("nav")).to_contain_text("Báo cáo định kỳ")
    page.locator("#open-round").click()
    expect(page).to_have_url(re.compile(r"/rounds/new$"))
    expect(page.locator("#round-organisation")).to_have_value(BAVI)
    page.locator("#series-name").fill("Báo cáo triển khai ứng dụng iHanoi")
    page.locator("#figure-screens").check()
    page.locator("#field-label-1").fill(INSTALLS_LABEL)
    page.locator("#field-kind-1").select_option("percent")
    page.locator("#field-required-1").check()
    page.locator("#round-name").fill("Báo cáo lần 1")
    page.locator("#period-start").fill("2024-08-01")
    page.locator("#period-end").fill("2024-08-19")
    page.locator("#deadline-date").fill("2024-08-22")
    page.locator("#deadline-time").fill("17:00")
    shot(page, "the district opens a round")
    page.locator("#round-open").click()
    expect(page).to_have_url(re.compile(r"/rounds/\d+\?done=opened$"))
    expect(page.locator("#deadline")).to_contain_text("22/08/2024 17:00")
    expect(page.locator(f"#unit-{TANLINH}")).to_have_attribute("data-state", "not_due")
    expect(page.locator(f"#unit-{BATRAI}")).to_have_attribute("data-state", "not_due")
    shot(page, "the round opened, nobody has submitted")
    round_id = int(re.search(r"/rounds/(\d+)", page.url).group(1))
    page.locator("#sign-out").click()
    return round_id


def fill_and_submit(page: Page, server: LiveServer, round_id: int) -> None:
    sign_in_as(page, server, "tanlinh-staff")
    page.goto(server.url("/rounds"))
    expect(page.locator(f"#round-{round_id}")).to_contain_text("còn 2 ngày 7 giờ")
    page.locator(f"#round-{round_id} a").click()
    expect(page.locator("#figures [data-figure=screens]")).to_have_text("2")  # Tản Lĩnh's two screens
    page.locator("#value-field_1").fill("150")
    page.locator("#submit-report").click()
    expect(page.locator("#form-error")).to_contain_text("outside 0–100")  # refused, nothing kept
    page.locator("#value-field_1").fill("87,5")
    page.locator("#save-draft").click()
    expect(page.locator("#done")).to_have_text("Đã lưu bản nháp.")
    expect(page.locator("#value-field_1")).to_have_value("87.5")
    page.locator("#submit-report").click()
    expect(page.locator("#done")).to_have_text("Đã nộp báo cáo.")
    expect(page.locator("#state")).to_have_attribute("data-state", "submitted")
    expect(page.locator("#value-field_1")).to_be_disabled()
    expect(page.locator("#submitted-note")).to_contain_text("Trần Thị Tản")
    shot(page, "the commune submitted")
    page.locator("#sign-out").click()


def test_a_district_asks_a_commune_submits_another_is_late_and_the_xlsx_says_so(
        live_server: LiveServer, browser_page: Page, database, clock, password_hash, settings, tmp_path):
    page = browser_page
    add_ba_vi_people(database, clock, password_hash)
    port = free_port()
    mailing = settings.model_copy(update={"smtp_host": "127.0.0.1", "smtp_port": port, "smtp_starttls": False})
    job = NoticeJob(database, clock, mailing, lambda now: True, noters={"rounds": round_noter(mailing)})
    server, box = mail_server(port)
    try:
        round_id = open_the_round(page, live_server)
        assert job.run() == {"rounds": 2, "mailed": 2}  # 2 days 7 hours left: the 3-day reminder, to both
        fill_and_submit(page, live_server, round_id)
        clock.set(DEADLINE + timedelta(minutes=5))
        assert job.run() == {"rounds": 1, "mailed": 1}  # late: Ba Trại only
        assert job.run() == {"rounds": 0, "mailed": 0}
    finally:
        server.stop()
    assert sorted(box.messages) == [
        (("batrai-staff@bavi.example",), "Quá hạn báo cáo: Báo cáo lần 1"),
        (("batrai-staff@bavi.example",), "Sắp đến hạn báo cáo: Báo cáo lần 1"),
        (("tanlinh-staff@bavi.example",), "Sắp đến hạn báo cáo: Báo cáo lần 1")]

    sign_in_as(page, live_server, "bavi-manager")
    page.goto(live_server.url(f"/rounds/{round_id}"))
    tanlinh, batrai = page.locator(f"#unit-{TANLINH}"), page.locator(f"#unit-{BATRAI}")
    expect(tanlinh).to_have_attribute("data-state", "submitted")
    expect(tanlinh.locator(".state")).to_have_text("Đã nộp")
    expect(batrai).to_have_attribute("data-state", "late")
    expect(batrai.locator(".state")).to_have_text("Quá hạn")
    expect(batrai.locator(".state")).to_have_css("color", RED)
    expect(page.locator("#count-late")).to_have_text("1")
    expect(page.locator("#round-totals [data-key=field_1]")).to_have_text("87,5 %")
    expect(page.locator("#round-totals [data-key=screens]")).to_have_text("2")
    shot(page, "the district sees the submitted and the late")
    with page.expect_download() as download:
        page.locator("#export-xlsx").click()
    path = tmp_path / download.value.suggested_filename
    download.value.save_as(path)
    assert path.suffix == ".xlsx"
    sheet = load_workbook(path).worksheets[1]
    rows = [[cell.value for cell in row] for row in sheet.iter_rows()]
    assert rows[0] == ["Đơn vị", "Tình trạng", "Thời điểm nộp", "Người nộp", "Số màn hình đang hoạt động",
                       INSTALLS_LABEL]
    by_unit = {row[0]: row for row in rows[1:]}
    assert by_unit["UBND xã Tản Lĩnh"][1] == "Đã nộp" and by_unit["UBND xã Tản Lĩnh"][3] == "Trần Thị Tản"
    assert by_unit["UBND xã Tản Lĩnh"][4:] == [2, 0.875]
    assert by_unit["UBND xã Ba Trại"][1:] == ["Quá hạn", None, None, None, None]
    assert by_unit["Tổng 1 báo cáo"][4:] == [2, 0.875]
