"""Issue 19, item 1 in a real Chromium: a ward's communications officer adds a site and a screen, edits the screen,
moves it to the new site and retires it, all from the browser, in Vietnamese; each step is kept as a screenshot
under tests/artifacts/<test>/, and each change is checked in the tables and the audit log."""

from __future__ import annotations

import re

from playwright.sync_api import expect
from sqlalchemy import select

from campaigns.models import AuditEntry, Screen, Site
from tests.browser import shot, sign_in_as

WARD = "hn-hadong-phula"
SITE_NAME = "Nhà văn hóa tổ dân phố 5"
SCREEN_ID = "hn-hadong-phula-004"


def audit_actions(database, entity_id: str) -> list[str]:
    with database.sessions() as session:
        return list(session.scalars(select(AuditEntry.action).where(AuditEntry.entity_id == entity_id)
                                    .order_by(AuditEntry.id)))


def test_ward_staff_add_edit_move_and_retire_a_screen_in_the_browser(live_server, browser_page, database):
    page = browser_page
    sign_in_as(page, live_server, "phula-staff")
    expect(page.locator("#who")).to_contain_text("Phula Staff")

    # A new site: from the screens page, in Vietnamese.
    page.goto(live_server.url("/screens"))
    page.locator("#new-site").click()
    expect(page).to_have_url(re.compile(r"/fleet/sites/new$"))
    expect(page.locator("h1")).to_have_text("Thêm điểm đặt")
    page.locator("#site-name-input").fill(SITE_NAME)
    page.locator("#site-kind").select_option("office")
    expect(page.locator("#site-organisation")).to_have_value(WARD)
    page.locator("#site-address").fill("Ngõ 5 Phú La, Hà Đông")
    shot(page, "new site form")
    page.locator("#site-submit").click()
    expect(page).to_have_url(re.compile(r"/sites/nha-van-hoa-to-dan-pho-5\?saved=1$"))
    expect(page.locator("#site-name")).to_have_text(SITE_NAME)
    shot(page, "site created")
    site_id = "nha-van-hoa-to-dan-pho-5"

    # A new screen at the ward's office: first with a mistake, shown with its field and fix.
    page.goto(live_server.url("/fleet/screens/new?site=hadong-phula"))
    expect(page.locator("h1")).to_have_text("Thêm màn hình")
    expect(page.locator("#screen-site")).to_have_value("hadong-phula")
    page.locator("#screen-name-input").fill("Sảnh chờ – màn LCD 3")
    page.locator("#screen-id-input").fill(SCREEN_ID)
    page.locator("#screen-resolution").fill("rộng")
    page.locator("#screen-submit").click()
    expect(page.locator("#form-error")).to_contain_text("Chưa lưu được")
    expect(page.locator("#form-error li[data-field=resolution]")).to_contain_text("WIDTHxHEIGHT")
    shot(page, "screen refused with the field to fix")
    page.locator("#screen-resolution").fill("1920x1080")
    page.locator("#screen-submit").click()
    expect(page).to_have_url(re.compile(rf"/screens/{SCREEN_ID}\?saved=1$"))
    expect(page.locator("#screen-name")).to_have_text("Sảnh chờ – màn LCD 3")
    shot(page, "screen created")

    # Edit: a portrait screen under another name.
    page.locator("#edit-screen").click()
    expect(page).to_have_url(re.compile(rf"/screens/{SCREEN_ID}/edit$"))
    page.locator("#screen-name-input").fill("Sảnh chờ – màn dọc")
    page.locator("#screen-orientation").select_option("portrait")
    page.locator("#screen-resolution").fill("1080x1920")
    shot(page, "screen edited")
    page.locator("#screen-submit").click()
    expect(page.locator("#screen-name")).to_have_text("Sảnh chờ – màn dọc")
    expect(page.locator("#screen-details")).to_contain_text("1080x1920")

    # Move it to the new site.
    page.locator("#edit-screen").click()
    page.locator("#screen-site").select_option(site_id)
    page.locator("#screen-submit").click()
    expect(page.locator("#screen-details")).to_contain_text(SITE_NAME)
    shot(page, "screen moved to the new site")
    with database.sessions() as session:
        assert session.get(Screen, SCREEN_ID).site_id == site_id

    # Retire it: the browser holds the button back until the warning is confirmed.
    page.locator("#edit-screen").click()
    page.locator("#screen-retire").click()
    expect(page).to_have_url(re.compile(rf"/screens/{SCREEN_ID}/edit$"))
    page.locator("#screen-retire-confirm").check()
    shot(page, "retire confirmed")
    page.locator("#screen-retire").click()
    expect(page.locator("#screen-retired")).to_contain_text("đã ngừng sử dụng")
    expect(page.locator("#edit-screen")).to_have_count(0)
    shot(page, "screen retired, its page kept")
    page.goto(live_server.url(f"/sites/{site_id}"))
    expect(page.locator(f"#retired-{SCREEN_ID}")).to_have_text("Đã ngừng sử dụng")
    shot(page, "the site lists it as retired")

    with database.sessions() as session:
        assert session.get(Screen, SCREEN_ID).retired_at is not None
        assert session.get(Site, site_id).organisation_id == WARD
    assert audit_actions(database, site_id) == ["site.create"]
    assert audit_actions(database, SCREEN_ID) == ["screen.create", "screen.update", "screen.move", "screen.retire"]
