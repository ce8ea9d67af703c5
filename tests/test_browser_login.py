"""Signing in and out in a real Chromium, against the app served on 127.0.0.1."""

import re

from playwright.sync_api import expect

from tests.browser import shot, sign_in_as
from tests.conftest import PASSWORD


def test_ward_staff_sign_in_see_only_their_ward_switch_to_english_and_sign_out(live_server, browser_page):
    page = browser_page
    page.goto(live_server.url("/fleet"))
    expect(page).to_have_url(re.compile(r"/login"))  # not signed in: the page sends people to the login form
    expect(page.locator("html")).to_have_attribute("lang", "vi")
    shot(page, "login form")

    sign_in_as(page, live_server, "phula-staff")
    expect(page).to_have_url(re.compile(r"/campaigns"))  # the home page of a signed-in user
    page.get_by_role("link", name="Đơn vị & điểm đặt").click()
    expect(page).to_have_url(re.compile(r"/fleet"))
    expect(page.locator("#who")).to_contain_text("Phula Staff")
    expect(page.locator("#screen-hn-hadong-phula-001")).to_be_visible()
    expect(page.locator("#screen-hn-hadong-vanquan-001")).to_have_count(0)
    expect(page.locator("#screen-hn-ga-hn-001")).to_have_count(0)
    shot(page, "fleet of the ward")

    page.get_by_role("link", name="English").click()
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    expect(page.locator("#screen-hn-hadong-phula-001")).to_be_visible()
    shot(page, "fleet in english")

    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(re.compile(r"/login"))
    page.goto(live_server.url("/fleet"))
    expect(page).to_have_url(re.compile(r"/login"))  # the session is gone, not just the page
    shot(page, "signed out")


def test_a_wrong_password_shows_the_error_and_keeps_the_user_name(live_server, browser_page):
    page = browser_page
    sign_in_as(page, live_server, "phula-staff", PASSWORD + " nope")
    expect(page.locator("#login-error")).to_have_text("Sai tên đăng nhập hoặc mật khẩu.")
    expect(page.locator("input[name=username]")).to_have_value("phula-staff")
    expect(page.locator("#who")).to_have_count(0)
    shot(page, "wrong password")
