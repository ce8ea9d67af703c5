"""Ward staff record mobile loudspeaker rounds from a phone at the roadside, in a real Chromium at a phone's size
(390×844): the plan, "Bắt đầu lượt" now, a round typed in afterwards, one outside the peak hours that does not count,
and the ward's report. The server's clock is 10:00 in Hà Nội on Tuesday 20 August 2024 (Phú La's ward office peaks:
08:00-11:00 and 14:00-16:30)."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser import PHONE, shot, sign_in_as


@pytest.mark.parametrize("browser_page", [PHONE], indirect=True, ids=["phone"])
def test_ward_staff_plan_and_record_rounds_from_a_phone(live_server, browser_page):
    page = browser_page
    width = PHONE["viewport"]["width"]
    sign_in_as(page, live_server, "phula-staff")
    expect(page).to_have_url(re.compile(r"/campaigns"))
    page.goto(live_server.url("/mobile-rounds"))
    expect(page.get_by_role("heading", name="Lượt loa lưu động")).to_be_visible()
    expect(page.locator("#mobile-today")).to_contain_text("chưa có kế hoạch")
    shot(page, "no plan yet")

    page.locator("#plan-rounds").fill("2")
    page.get_by_role("button", name="Lưu kế hoạch").click()
    expect(page.locator("#mobile-done")).to_have_text("Đã lưu kế hoạch.")
    expect(page.locator("#today-planned")).to_have_text("2")
    expect(page.locator("#today-done")).to_have_text("0")
    expect(page.locator("#today-peaks")).to_have_text("08:00-11:00, 14:00-16:30")

    start = page.get_by_role("button", name="Bắt đầu lượt")
    box = start.bounding_box()
    assert box is not None and box["height"] >= 44 and box["width"] >= width * 0.8  # a thumb's target
    page.locator("#mobile-route").fill("Tổ 1 → Tổ 5, đường Phú La")
    page.locator("#mobile-duration").fill("45")
    start.click()
    expect(page.locator("#mobile-done")).to_have_text("Đã ghi lượt loa.")
    expect(page.locator("#today-done")).to_have_text("1")
    expect(page.locator("#today-missed")).to_have_text("1")  # one round still missing today
    first = page.locator("#mobile-round-list li").first
    expect(first).to_contain_text("10:00")
    expect(first).to_contain_text("Phula Staff")
    expect(first).to_contain_text("được tính")
    shot(page, "one of two")

    page.locator("#mobile-route").fill("Tổ 6 → Tổ 12")
    page.locator("#mobile-when-at").check()
    page.locator("#mobile-started").fill("2024-08-20T08:30")
    start.click()
    expect(page.locator("#today-done")).to_have_text("2")
    expect(page.locator("#mobile-today")).to_contain_text("đạt kế hoạch")

    page.locator("#mobile-route").fill("Chợ Phú La")
    page.locator("#mobile-when-at").check()
    page.locator("#mobile-started").fill("2024-08-20T07:00")  # before the morning peak
    start.click()
    outside = page.locator("#mobile-round-list li[data-standing=outside_peak]")
    expect(outside).to_contain_text("không tính: bắt đầu ngoài giờ cao điểm")
    expect(page.locator("#today-done")).to_have_text("2")

    page.locator("#mobile-route").fill("Tổ 3")
    page.locator("#mobile-when-at").check()
    page.locator("#mobile-started").fill("2024-08-20T11:30")  # later than now: refused, the form kept
    start.click()
    expect(page.locator("#mobile-error")).to_contain_text("Giờ bắt đầu muộn hơn bây giờ")
    expect(page.locator("#mobile-route")).to_have_value("Tổ 3")
    right = page.evaluate("document.querySelector('#mobile-rounds').getBoundingClientRect().right")
    assert right <= width  # nothing of the form is off the phone's screen
    shot(page, "refused and kept")

    page.locator("#mobile-report").click()
    expect(page).to_have_url(re.compile(r"/reports\?kind=mobile"))
    day = page.locator("table tbody tr").filter(has_text="20/08/2024").first
    expect(day).to_contain_text("UBND phường Phú La")
    shot(page, "the ward's report")
