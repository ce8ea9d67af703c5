"""Issue 8's staff side in a real Chromium, on a phone-sized screen: an urgent alert from the form to the air and off.

Communications staff of the district of Hà Đông write an urgent text alert for the ward of Phú La, see the live
count of the screens it will interrupt and confirm the warning, issue it, watch its page (which refreshes its
delivery table by itself while the alert is on air, as players acknowledge it) and stop it. The server runs without
a broker, so the players' acknowledgement is written into `alert_deliveries` as ingest would. Each step is kept as
a screenshot under tests/artifacts/<test>/.
"""

from __future__ import annotations

import re
from datetime import timedelta

from playwright.sync_api import Page, expect
from sqlalchemy import select

from campaigns.kinds import AlertSeverity, AlertStatus, ScreenKind
from campaigns.models import Alert, Screen, Site
from scheduler.models import AlertDelivery
from signage.db import transaction
from tests.browser import LiveServer, shot, sign_in_as

WARD, WARD_SITE = "hn-hadong-phula", "hadong-phula"
TEXT = "Mưa lớn gây ngập đường Quang Trung. Người dân hạn chế ra đường, đi vòng qua phố Tô Hiệu."
PHONE = {"width": 390, "height": 844}


def ward_displays(database) -> list[str]:
    """The ward's screens that show text, read straight from the tables: the count the form must show."""
    with database.sessions() as session:
        return list(session.scalars(select(Screen.id).join(Site).where(
            Site.organisation_id == WARD, Screen.enabled, Screen.kind != ScreenKind.speaker).order_by(Screen.id)))


def write_the_alert(page: Page, server: LiveServer, displays: list[str]) -> None:
    page.goto(server.url("/alerts"))
    page.locator("#new-alert").click()
    expect(page).to_have_url(re.compile(r"/alerts/new$"))
    expect(page.locator("#alert-organisation")).to_have_value("hn-hadong")
    page.locator("#alert-title").fill("Ngập úng Quang Trung")
    page.locator("#alert-text").fill(TEXT)
    expect(page.locator("#text-count")).to_have_text(str(len(TEXT)))
    page.locator("#severity-urgent").check()
    expect(page.locator("#urgent-warning")).to_be_visible()
    page.locator(f"#target-org-{WARD}").check()
    expect(page.locator("#target-count")).to_have_text(str(len(displays)))  # the live count, asked as ticked
    expect(page.locator("#urgent-warning-text")).to_contain_text(f"{len(displays)} màn hình")
    expect(page.locator("#duration")).to_have_value("60")
    shot(page, "urgent alert written with the warning")


def issue_it(page: Page) -> str:
    # Not confirmed yet: the browser itself holds the form back at the warning's box.
    page.locator("#issue-alert").click()
    expect(page).to_have_url(re.compile(r"/alerts/new$"))
    page.locator("#confirm-urgent").check()
    page.locator("#issue-alert").click()
    expect(page).to_have_url(re.compile(r"/alerts/alert-[0-9a-z-]+\?done=created$"))
    return re.search(r"/alerts/(alert-[0-9a-z-]+)", page.url).group(1)


def test_district_staff_issue_an_urgent_alert_for_a_ward_watch_it_on_air_and_stop_it(
        live_server, browser_page, database, clock):
    page = browser_page
    page.set_viewport_size(PHONE)
    displays = ward_displays(database)
    assert len(displays) == 2  # examples/hanoi-fleet.yaml: the ward office's two LCDs (and a loudspeaker)

    sign_in_as(page, live_server, "hadong-staff")
    expect(page.locator("#who")).to_contain_text("Hadong Staff")
    write_the_alert(page, live_server, displays)
    alert_id = issue_it(page)

    expect(page.locator("#alert-phase")).to_have_attribute("data-phase", "active")
    expect(page.locator("#alert-text")).to_have_text(TEXT)
    expect(page.locator("#alert-screens")).to_have_text(str(len(displays)))
    expect(page.locator("#deliveries")).to_have_attribute("data-live", "1")
    shot(page, "the alert on air")
    with database.sessions() as session:
        alert = session.get(Alert, alert_id)
        assert (alert.severity, alert.status, alert.organisation_id, alert.targets) == (
            AlertSeverity.urgent, AlertStatus.approved, "hn-hadong", {"organisations": [WARD]})
        assert alert.expires_at - alert.starts_at == timedelta(hours=1)

    # A player acknowledges it (as ingest notes proof-of-play): the page shows it without a reload.
    now = clock.now()
    with transaction(database.sessions) as session:
        session.add(AlertDelivery(alert_id=alert_id, screen_id=displays[0], sent_at=now, sends=1,
                                  started_at=now + timedelta(seconds=1)))
    expect(page.locator(f"#delivery-{displays[0]}")).to_have_attribute("data-state", "showing")
    expect(page.locator("#count-started")).to_have_text("1")
    shot(page, "a screen shows the alert")

    page.locator("#stop-alert").click()
    expect(page.locator("#stop-warning")).to_be_visible()
    page.locator("#stop-reason").fill("Nước đã rút")
    shot(page, "stopping asks for confirmation")
    page.locator("#confirm-stop").click()
    expect(page).to_have_url(re.compile(rf"/alerts/{alert_id}\?done=stopped$"))
    expect(page.locator("#alert-phase")).to_have_attribute("data-phase", "stopped")
    expect(page.locator("#stopped-by")).to_contain_text("Hadong Staff")  # by name, not user name
    shot(page, "the alert stopped")
    with database.sessions() as session:
        assert session.get(Alert, alert_id).status is AlertStatus.stopped

    page.goto(live_server.url("/alerts"))
    expect(page.locator(f"#alert-{alert_id}")).to_have_attribute("data-phase", "stopped")
    shot(page, "the list of alerts")
