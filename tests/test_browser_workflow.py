"""Issue 6's acceptance in a real Chromium: a campaign from upload to plans, as its staff and head of unit do it.

Communications staff of the district of Hà Đông upload a clip, make a campaign of it for the whole district,
read the capacity preview and submit; the district's head of unit approves; one planning round (as the server's
job runs it, on the virtual clock) gives the district's screens plans with the campaign's spots. Each step is
kept as a screenshot under tests/artifacts/<test>/.
"""

from __future__ import annotations

import hashlib
import re
from datetime import date
from zoneinfo import ZoneInfo

from playwright.sync_api import Page, expect
from sqlalchemy import select

from campaigns.kinds import CampaignStatus, ScreenKind
from campaigns.models import Campaign, Organisation, Screen, Site
from scheduler.jobs import PlanningService
from scheduler.plan_store import newest_body
from signage.protocol import Plan
from tests.browser import LiveServer, shot, sign_in_as

DISTRICT = "hn-hadong"
CAMPAIGN_ID = "hadong-an-toan-giao-thong"
CAMPAIGN_NAME = "An toàn giao thông Hà Đông"
# The clock's day (Tuesday 20 August 2024 in Hà Nội) and a few days on.
START, END = date(2024, 8, 20), date(2024, 8, 23)
DEFAULT_PLAYS = 10


def district_screens(database) -> list[Screen]:
    """The enabled screens of the district's subtree, read straight from the tables: the count the pages must
    show."""
    with database.sessions() as session:
        root = session.get(Organisation, DISTRICT).path
        screens = session.scalars(
            select(Screen).join(Site).join(Organisation, Site.organisation_id == Organisation.id)
            .where(Organisation.path.startswith(root), Screen.enabled).order_by(Screen.id)).all()
        session.expunge_all()
        return list(screens)


def newest_plan(database, screen_id: str) -> Plan:
    with database.sessions() as session:
        body = newest_body(session, screen_id)
    assert body is not None, f"{screen_id} has no plan"
    return Plan.model_validate_json(body)


def sign_out(page: Page) -> None:
    page.locator("form[action='/logout'] button[type=submit]").click()
    expect(page).to_have_url(re.compile(r"/login"))


def upload_clip(page: Page, server: LiveServer, clip) -> str:
    page.goto(server.url("/media"))
    page.locator("#media-file").set_input_files(str(clip))
    shot(page, "media library with the clip chosen")
    page.locator("#media-upload").click()
    expect(page.locator("#media-notice")).to_contain_text(clip.name)
    sha256 = hashlib.sha256(clip.read_bytes()).hexdigest()  # the library is content-addressed
    expect(page.locator(f"#media-{sha256} .media-kind")).to_be_visible()
    shot(page, "clip uploaded")
    return sha256


def save_step(page: Page, following: str) -> None:
    page.locator("#save-step").click()
    expect(page).to_have_url(re.compile(rf"/campaigns/{CAMPAIGN_ID}/edit\?step={following}$"))


def create_and_submit(page: Page, server: LiveServer, sha256: str, screens: list[Screen]) -> None:
    page.goto(server.url("/campaigns"))
    page.locator("#new-campaign").click()
    expect(page).to_have_url(re.compile(r"/campaigns/new$"))
    page.locator("#campaign-name").fill(CAMPAIGN_NAME)
    page.locator("#campaign-id").fill(CAMPAIGN_ID)
    expect(page.locator("#campaign-organisation")).to_have_value(DISTRICT)
    shot(page, "new campaign")
    save_step(page, "media")

    page.locator(f"#media-{sha256[:12]}").check()
    shot(page, "campaign media")
    save_step(page, "targets")

    page.locator(f"#target-org-{DISTRICT}").check()
    expect(page.locator("#target-count")).to_have_text(str(len(screens)))  # the live count, asked as ticked
    shot(page, "campaign targets the district")
    save_step(page, "dates")

    page.locator("#start-date").fill(START.isoformat())
    page.locator("#end-date").fill(END.isoformat())
    shot(page, "campaign dates")
    save_step(page, "frequency")

    expect(page.locator("#plays-per-day")).to_have_value(str(DEFAULT_PLAYS))
    expect(page.locator("#window-peak")).to_be_checked()
    shot(page, "campaign frequency (default)")
    save_step(page, "preview")

    displays = [s for s in screens if s.kind is not ScreenKind.speaker]
    preview = page.locator("#capacity-preview")
    expect(preview.locator("#preview-screens")).to_have_text(str(len(screens)))
    expect(preview.locator("#preview-plays")).to_have_text(str(DEFAULT_PLAYS))
    expect(preview.locator("#preview-spots")).to_have_text(str(DEFAULT_PLAYS * len(displays)))
    expect(preview.locator("#capacity-ok")).to_be_visible()
    # The district's loudspeaker cannot play a clip, and the preview says so.
    expect(preview.locator("#warning-speakers_without_audio")).to_be_visible()
    shot(page, "capacity preview")

    page.locator("#submit-campaign").click()
    expect(page).to_have_url(re.compile(rf"/campaigns/{CAMPAIGN_ID}\?done=submitted$"))
    expect(page.locator("#campaign-status")).to_have_attribute("data-status", CampaignStatus.submitted.value)
    shot(page, "campaign submitted")


def approve(page: Page, server: LiveServer) -> None:
    page.goto(server.url("/campaigns"))
    page.locator(f"#campaign-{CAMPAIGN_ID} a").click()
    expect(page).to_have_url(re.compile(rf"/campaigns/{CAMPAIGN_ID}$"))
    expect(page.locator("#campaign-status")).to_have_attribute("data-status", CampaignStatus.submitted.value)
    expect(page.locator("#capacity-preview #preview-screens")).to_be_visible()
    shot(page, "head of unit reviews the campaign")

    page.locator("#approve-campaign").click()
    expect(page).to_have_url(re.compile(rf"/campaigns/{CAMPAIGN_ID}\?done=approved$"))
    # It starts today, so it is on air at once rather than scheduled.
    expect(page.locator("#campaign-status")).to_have_attribute("data-status", CampaignStatus.active.value)
    expect(page.locator("#approved-by")).to_contain_text("Hadong Head")  # by name, not user name
    shot(page, "campaign approved")


def test_staff_upload_a_clip_and_submit_a_district_campaign_the_head_approves_it_and_its_screens_get_plans(
        live_server, browser_page, database, make_media, settings, clock):
    page = browser_page
    screens = district_screens(database)
    assert len(screens) == 5  # examples/hanoi-fleet.yaml: two wards' offices and the Ba La crossroads
    clip = make_media("an-toan-giao-thong.mp4", seconds=2.5)

    sign_in_as(page, live_server, "hadong-staff")
    expect(page.locator("#who")).to_contain_text("Hadong Staff")
    sha256 = upload_clip(page, live_server, clip)
    create_and_submit(page, live_server, sha256, screens)
    sign_out(page)

    sign_in_as(page, live_server, "hadong-head")
    expect(page.locator("#who")).to_contain_text("Hadong Head")
    approve(page, live_server)
    with database.sessions() as session:
        assert session.get(Campaign, CAMPAIGN_ID).status is CampaignStatus.active

    # One round of the server's planning job, on the test's database and virtual clock.
    planned = PlanningService(database, clock, settings.timezone).tick()
    assert planned is not None
    hanoi = ZoneInfo(settings.timezone)
    for screen in screens:
        plan = newest_plan(database, screen.id)
        ours = [spot for spot in plan.spots if spot.campaign_id == CAMPAIGN_ID]
        if screen.kind is ScreenKind.speaker:
            assert ours == [], screen.id  # as the preview warned
            continue
        assert {spot.media for spot in ours} == {sha256}, screen.id
        per_day = {day: sum(1 for s in ours if s.start.astimezone(hanoi).date() == day)
                   for day in (date(2024, 8, 21), date(2024, 8, 22))}  # the plan's whole days
        assert per_day == dict.fromkeys(per_day, DEFAULT_PLAYS), screen.id

    shown = next(s for s in screens if s.kind is not ScreenKind.speaker)
    page.goto(live_server.url(f"/screens/{shown.id}"))
    expect(page.locator("#screen-name")).to_have_text(shown.name)
    expect(page.locator(f"#timeline g.legend[data-campaign='{CAMPAIGN_ID}']")).to_contain_text(CAMPAIGN_NAME)
    shot(page, "a screen's timeline with the campaign")
