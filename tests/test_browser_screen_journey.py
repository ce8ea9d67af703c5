"""Issue 19's journey in a real Chromium with real parts (Mosquitto, the server with its MQTT bridge, a headless player
agent on libVLC's dummy output): a ward's staff add a site and a screen in the browser, start a screen PC with no
config, type the code it prints on the screen's page; the screen takes a signed plan and its first proof-of-play
comes back; the officer takes a screenshot with the page's button and sees it; then moves the screen to another site
of the ward and retires it. Each step is kept as a screenshot under tests/artifacts/<test>/."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from campaigns.accounts import create_user
from campaigns.models import Screen
from scheduler.models import PlayRecord
from signage.db import transaction
from tests.browser import LiveServer, shot, sign_in_as
from tests.conftest import PASSWORD
from tests.test_player_e2e import media_table, publish_plan, stack, wait_for_records  # noqa: F401
from tests.test_screen_actions import answered

STAFF = "ward-a-staff"
OTHER_SITE = "e2e-a"  # the ward's site in test_player_e2e's fleet
SITE_NAME = "Bộ phận một cửa"
SITE_ID = "bo-phan-mot-cua"
SCREEN_ID = "e2e-a-002"


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'signage.db'}"
    return request.getfixturevalue("postgres").create_database()


def test_ward_staff_add_pair_plan_screenshot_move_and_retire_a_screen_in_the_browser(stack, browser_page, spawn,  # noqa: F811
                                                                                     tmp_path, clock, password_hash):
    with transaction(stack.database.sessions) as session:
        create_user(session, username=STAFF, full_name="Cán bộ phường A", role="staff",
                    organisation_id="e2e-ward-a", password_hash=password_hash, clock=clock)
    server = LiveServer(stack.url, None, clock)
    page = browser_page
    sign_in_as(page, server, STAFF)
    expect(page.locator("#who")).to_contain_text("Cán bộ phường A")

    # A new site of the ward, and a new screen at it.
    page.goto(server.url("/fleet/sites/new"))
    page.locator("#site-name-input").fill(SITE_NAME)
    page.locator("#site-kind").select_option("office")
    expect(page.locator("#site-organisation")).to_have_value("e2e-ward-a")
    page.locator("#site-submit").click()
    expect(page).to_have_url(re.compile(rf"/sites/{SITE_ID}\?saved=1$"))
    shot(page, "site added")

    page.goto(server.url(f"/fleet/screens/new?site={SITE_ID}"))
    expect(page.locator("#screen-site")).to_have_value(SITE_ID)
    page.locator("#screen-name-input").fill("Sảnh một cửa – màn LCD")
    page.locator("#screen-id-input").fill(SCREEN_ID)
    page.locator("#screen-resolution").fill("1280x720")
    page.locator("#screen-submit").click()
    expect(page).to_have_url(re.compile(rf"/screens/{SCREEN_ID}\?saved=1$"))
    shot(page, "screen added")

    # The screen PC starts with no config and prints its code; staff type it on the screen's page.
    config_path = tmp_path / "new-screen" / "config.json"
    signage = str(Path(sys.executable).parent / "signage")
    player = spawn([signage, "player", "run", "--config", str(config_path), "--server-url", stack.url,
                    "--headless", "--player-data-dir", str(tmp_path / "new-screen-data")], {})
    code = re.search(r"pairing code: (\w{3}-\w{3})", player.wait_for("pairing code:")).group(1)
    page.locator("#pairing-code").fill(code)
    page.locator("#pairing-submit").click()
    expect(page.locator("#pairing-result")).to_contain_text("Đã ghép nối")
    shot(page, "paired")
    player.wait_for(f"paired as {SCREEN_ID}")

    # A planning round gives it a signed plan (the player checks the signature before taking it), and its first
    # proof-of-play comes back.
    publish_plan(stack.database, stack.bridge, SCREEN_ID, [], media_table(stack.database)["loop.png"])
    player.wait_for("taken: 0 spots", timeout=60)

    def first_play_came_back(rows: list[PlayRecord]) -> bool:
        return any(r.player_id == SCREEN_ID and r.kind == "filler" and r.status == "completed" for r in rows)

    wait_for_records(stack.bridge, stack.database, first_play_came_back, timeout=90)
    page.reload()
    shot(page, "planned and playing")

    # A screenshot asked with the page's button comes back and is shown with its time.
    page.locator("#action-screenshot").click()
    expect(page).to_have_url(re.compile(rf"/screens/{SCREEN_ID}\?action="))
    command_id = re.search(r"action=([^&#]+)", page.url).group(1)
    with httpx.Client(base_url=stack.url, timeout=30) as api:
        token = api.post("/api/v1/auth/token", json={"username": STAFF, "password": PASSWORD})
        api.headers["Authorization"] = f"Bearer {token.json()['access_token']}"
        assert answered(stack, api, SCREEN_ID, {"id": command_id})["state"] == "done"
    page.reload()
    expect(page.locator("#action-asked .action-state")).to_have_attribute("data-state", "done")
    expect(page.locator("#screenshot-at")).to_contain_text("Chụp lúc")
    screenshot = page.locator("#screenshot")
    expect(screenshot).to_be_visible()
    screenshot.evaluate("img => img.decode()")
    assert screenshot.evaluate("img => img.naturalWidth") > 0
    shot(page, "screenshot shown")

    # Moved to the ward's other site, then retired; its page stays.
    page.locator("#edit-screen").click()
    page.locator("#screen-site").select_option(OTHER_SITE)
    page.locator("#screen-submit").click()
    expect(page.locator("#screen-details")).to_contain_text("Điểm A")
    shot(page, "moved to another site")

    page.locator("#edit-screen").click()
    page.locator("#screen-retire-confirm").check()
    page.locator("#screen-retire").click()
    expect(page.locator("#screen-retired")).to_contain_text("đã ngừng sử dụng")
    shot(page, "retired")
    with stack.database.sessions() as session:
        retired = session.get(Screen, SCREEN_ID)
        assert (retired.site_id, retired.retired_at is not None) == (OTHER_SITE, True)
        # Retired, its proof-of-play is kept.
        assert session.scalars(select(PlayRecord).where(PlayRecord.player_id == SCREEN_ID)).first() is not None
