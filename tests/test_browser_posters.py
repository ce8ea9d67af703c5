"""Issue 21's acceptance for posters, in a real Chromium: the city's staff make a QR poster from the template for a
campaign on the landscape and portrait screens of AEON Mall Hà Đông; each stored PNG decodes back to its link with
zbarimg, and once the campaign is approved each screen's plan plays the version of its own format. Each step is kept
as a screenshot under tests/artifacts/<test>/.
"""

from __future__ import annotations

import re
from datetime import date

from playwright.sync_api import expect
from sqlalchemy import select

from campaigns import workflow
from campaigns.access import Actor
from campaigns.models import Campaign, User
from media.store import MediaStore
from scheduler.jobs import PlanningService
from scheduler.plan_store import newest_body
from signage.db import transaction
from signage.protocol import Plan
from tests.browser import shot, sign_in_as
from tests.test_posters import HOTLINE, LINK, MALL, MALL_FORMATS, TZ, decoded

CAMPAIGN_NAME = "iHanoi tại AEON Mall Hà Đông"


def actor(session, username: str) -> Actor:
    user = session.scalars(select(User).where(User.username == username)).one()
    return Actor(user, user.organisation.path, "token")


def test_staff_make_a_qr_poster_in_the_browser_that_decodes_in_every_format_and_plays_on_each_screen(
        live_server, browser_page, database, settings, clock, tmp_path):
    with transaction(database.sessions) as session:
        campaign_id = workflow.create_draft(session, actor(session, "city-staff"), clock, TZ, name=CAMPAIGN_NAME,
                                            start_date=date(2024, 8, 20), end_date=date(2024, 8, 31)).id
        workflow.set_targets(session, actor(session, "city-staff"), clock, TZ, campaign_id, {"sites": [MALL]})

    page = browser_page
    sign_in_as(page, live_server, "city-staff")
    page.goto(live_server.url(f"/campaigns/{campaign_id}/edit?step=media"))
    page.locator("#make-poster-link").click()
    expect(page).to_have_url(re.compile(rf"/campaigns/{campaign_id}/poster$"))
    expect(page.locator("#poster-heading")).to_have_text("Tạo áp phích")
    expect(page.locator(".poster-format")).to_have_count(3)

    page.locator("#poster-title").fill("Cài đặt ứng dụng iHanoi")
    page.locator("#poster-text").fill("Phản ánh hiện trường, tra cứu thủ tục, nhận thông báo của thành phố: "
                                      "quét mã QR để tải ứng dụng iHanoi.")
    page.locator("#poster-link").fill(LINK)
    page.locator("#poster-hotline").fill(HOTLINE)
    page.locator("#poster-preview").click()
    previews = page.locator("#poster-previews img")
    expect(previews).to_have_count(3)
    for index in range(3):  # each preview drawn by the server and shown
        expect(previews.nth(index)).to_have_js_property("complete", True)
        assert previews.nth(index).evaluate("img => img.naturalWidth") == 960 or \
            previews.nth(index).evaluate("img => img.naturalHeight") == 960
    expect(page.locator("#poster-link")).to_have_value(LINK)  # the form keeps what was typed
    shot(page, "poster previews in landscape and portrait")

    page.locator("#poster-save").click()
    expect(page.locator("#poster-saved")).to_be_visible()
    expect(page.locator("#poster-saved .saved-version")).to_have_count(3)
    shot(page, "poster saved to the campaign")

    store = MediaStore(settings.media_dir)
    with database.sessions() as session:
        creatives = session.get(Campaign, campaign_id).creatives
        by_size = {(c.media.width, c.media.height): c.media_sha256 for c in creatives}
        assert sorted(by_size) == sorted(set(MALL_FORMATS.values()))
        assert len({c.slot for c in creatives}) == 1
    for sha256 in by_size.values():
        assert decoded(store.path_for(sha256).read_bytes(), tmp_path) == LINK

    with transaction(database.sessions) as session:
        workflow.submit(session, actor(session, "city-staff"), clock, TZ, campaign_id)
        workflow.approve(session, actor(session, "city-manager"), clock, TZ, campaign_id)
    assert PlanningService(database, clock, settings.timezone).tick() is not None
    with database.sessions() as session:
        for screen_id, size in MALL_FORMATS.items():
            plan = Plan.model_validate_json(newest_body(session, screen_id))
            assert {s.media for s in plan.spots if s.campaign_id == campaign_id} == {by_size[size]}, screen_id
