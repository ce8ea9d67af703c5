"""The web pages "Screens and sites": the screens table, a site with its peak-windows editor, a screen with its
state, latest screenshot and today's plan as a timeline."""

from __future__ import annotations

import re
from datetime import date
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from campaigns.campaign_file import import_campaigns
from campaigns.models import AuditEntry, Site
from media.models import MediaAsset
from media.store import MediaStore
from scheduler.ingest import ingest_status
from scheduler.models import PublishedPlan
from scheduler.planning import plan_and_store
from scheduler.screen_actions import store_screenshot
from signage.db import transaction
from signage.protocol import Plan, Status
from tests.conftest import CAMPAIGN_FILE, sign_in

TZ = "Asia/Ho_Chi_Minh"
HANOI = ZoneInfo(TZ)
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
# The ward office defaults, as the editor shows them.
WARD_OPERATING = {**dict.fromkeys(DAYS[:5], "07:30-17:00"), "sat": "07:30-11:30", "sun": ""}
WARD_PEAKS = {**dict.fromkeys(DAYS[:5], "08:00-11:00, 14:00-16:30"), "sat": "08:00-11:00", "sun": ""}


def editor_form(csrf: str, action: str = "save", operating: dict | None = None, peaks: dict | None = None) -> dict:
    form = {"csrf_token": csrf, "action": action}
    for day in DAYS:
        form[f"operating_hours.{day}"] = {**WARD_OPERATING, **(operating or {})}[day]
        form[f"peak_windows.{day}"] = {**WARD_PEAKS, **(peaks or {})}[day]
    return form


def stored_site(database, site_id: str) -> Site:
    with database.sessions() as session:
        return session.get(Site, site_id)


def report_status(database, player_id: str, at, **fields) -> None:
    status = Status(player_id=player_id, state="online", sent_at=at, **fields)
    with transaction(database.sessions) as session:
        assert ingest_status(session, player_id, status.model_dump_json().encode(), at)


def section(page: str, element_id: str) -> str:
    """The element with this id, up to its closing tag (for elements that do not nest their own kind)."""
    start = page.rindex("<", 0, page.index(f'id="{element_id}"'))
    tag = re.match(r"<(\w+)", page[start:])[1]
    return page[start:page.index(f"</{tag}>", start)]


@pytest.fixture
def planned(database, settings, clock):
    """The iHanoi campaign imported from its example file and planned for the fleet, as the server would."""
    with transaction(database.sessions) as session:
        import_campaigns(session, CAMPAIGN_FILE, MediaStore(settings.media_dir), clock, TZ)
        plan_and_store(session, clock.now())
    return database


# -- signing in -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/screens", "/sites/hadong-phula", "/screens/hn-hadong-phula-001",
                                  "/screens/hn-hadong-phula-001/screenshot.png"])
def test_the_pages_send_visitors_who_are_not_signed_in_to_the_login_page(web, path):
    answer = web.get(path, follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"].startswith("/login?next=")


# -- the screens table ------------------------------------------------------------------------------------


def test_the_screens_page_lists_the_wards_screens_with_their_state(web, database, clock):
    report_status(database, "hn-hadong-phula-002", clock.now())
    sign_in(web, "phula-staff")
    page = web.get("/screens").text
    assert re.findall(r'<tr id="screen-([^"]+)"', page) == ["hn-hadong-phula-001", "hn-hadong-phula-002",
                                                             "hn-hadong-phula-003"]
    assert re.findall(r'id="state-[^"]+"\s+data-state="(\w+)"', page) == ["never", "online", "never"]
    assert "Trực tuyến" in page and "Chưa từng kết nối" in page
    assert 'href="/screens/hn-hadong-phula-002"' in page and 'href="/sites/hadong-phula"' in page


def test_the_screens_page_filters_by_site_kind_and_state(web, database, clock):
    report_status(database, "hn-ga-hn-002", clock.now())
    sign_in(web, "city-manager")
    page = web.get("/screens", params={"site_kind": "railway_station"}).text
    assert re.search(r'id="count-screens">(\d+)<', page)[1] == "5"
    page = web.get("/screens", params={"site_kind": "railway_station", "state": "online"}).text
    assert re.findall(r'<tr id="screen-([^"]+)"', page) == ["hn-ga-hn-002"]
    assert '<option value="online" selected>' in page


def test_the_screens_page_filters_by_organisation_and_text(web):
    sign_in(web, "city-manager")
    page = web.get("/screens", params={"org": "hn-hadong", "q": "loa"}).text
    assert re.findall(r'<tr id="screen-([^"]+)"', page) == ["hn-hadong-phula-003"]


def test_the_screens_page_says_when_nothing_matches(web):
    sign_in(web, "phula-staff")
    page = web.get("/screens", params={"site_kind": "airport"}).text
    assert 'id="screens-empty"' in page


def test_the_screens_page_speaks_english_on_request(web):
    sign_in(web, "phula-staff")
    page = web.get("/screens?lang=en").text
    assert "Screens and their state" in page and "Never seen" in page


def test_the_fleet_page_links_its_sites_and_screens_to_their_pages(web):
    sign_in(web, "phula-staff")
    page = web.get("/fleet").text
    assert 'href="/sites/hadong-phula"' in page
    assert 'href="/screens/hn-hadong-phula-001">Khu tiếp dân – màn LCD 1</a>' in page  # the name, the id under it
    assert 'href="/screens"' in page


def test_the_fleet_page_names_only_the_groups_its_user_may_see(web):
    sign_in(web, "city-manager")
    assert "Màn hình bộ phận một cửa phường, xã" in web.get("/fleet").text
    sign_in(web, "phula-staff")
    assert "Màn hình bộ phận một cửa phường, xã" not in web.get("/fleet").text


# -- a site and its peak-windows editor --------------------------------------------------------------------


def test_the_site_page_shows_each_weekdays_windows_in_an_editor_for_a_head_of_unit(web):
    sign_in(web, "phula-head")
    page = web.get("/sites/hadong-phula").text
    assert 'id="site-hours-form"' in page
    assert re.search(r'name="peak_windows.mon" id="peak_windows-mon" value="([^"]*)"', page)[1] == \
        "08:00-11:00, 14:00-16:30"
    assert re.search(r'name="operating_hours.sat" id="operating_hours-sat" value="([^"]*)"', page)[1] == \
        "07:30-11:30"
    assert '<tr id="hours-tue" class="today">' in page  # 20 August 2024 is a Tuesday


def test_the_site_page_is_read_only_for_communications_staff(web):
    csrf = sign_in(web, "phula-staff")
    page = web.get("/sites/hadong-phula").text
    assert 'id="site-hours-form"' not in page and 'id="site-readonly"' in page
    assert "08:00-11:00, 14:00-16:30" in section(page, "hours-mon")
    answer = web.post("/sites/hadong-phula", data=editor_form(csrf, peaks={"mon": "08:00-09:00"}))
    assert answer.status_code == 403


def test_saving_the_editor_stores_the_new_windows_and_says_so(web, database):
    csrf = sign_in(web, "phula-head")
    answer = web.post("/sites/hadong-phula", data=editor_form(csrf, peaks={d: "07:30-09:00, 16:00-17:00"
                                                                           for d in DAYS[:5]}),
                      follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"] == "/sites/hadong-phula?saved=1"
    assert stored_site(database, "hadong-phula").peak_windows == {"mon-fri": ["07:30-09:00", "16:00-17:00"],
                                                                  "sat": ["08:00-11:00"]}
    assert stored_site(database, "hadong-phula").operating_hours is None
    assert 'id="site-saved"' in web.get(answer.headers["location"]).text


def test_saving_the_editor_unchanged_keeps_the_kinds_defaults(web, database):
    csrf = sign_in(web, "phula-head")
    answer = web.post("/sites/hadong-phula", data=editor_form(csrf), follow_redirects=False)
    assert answer.headers["location"] == "/sites/hadong-phula?saved=0"
    site = stored_site(database, "hadong-phula")
    assert (site.operating_hours, site.peak_windows) == (None, None)


def test_a_peak_window_outside_operating_hours_is_shown_with_the_day_and_the_fix_and_nothing_is_saved(web, database):
    csrf = sign_in(web, "phula-head")
    answer = web.post("/sites/hadong-phula", data=editor_form(csrf, peaks={"sat": "06:00-08:00"}))
    assert answer.status_code == 422
    error = section(answer.text, "site-error")
    assert "Thứ Bảy" in error
    assert "outside operating hours (07:30-11:30)" in error and "move it inside them" in error
    assert re.search(r'<input name="peak_windows.sat"[^>]* value="06:00-08:00"[^>]* class="invalid"', answer.text)
    assert stored_site(database, "hadong-phula").peak_windows is None


def test_a_window_that_is_not_hh_mm_is_shown_with_the_day_and_the_fix(web):
    csrf = sign_in(web, "phula-head")
    answer = web.post("/sites/hadong-phula?lang=en", data=editor_form(csrf, peaks={"wed": "8h-11h"}))
    assert answer.status_code == 422
    error = section(answer.text, "site-error")
    assert "Wednesday" in error and "write times as HH:MM" in error


def test_reset_to_defaults_gives_the_site_its_kinds_windows_again_and_is_audited(web, database):
    csrf = sign_in(web, "phula-head")
    web.post("/sites/hadong-phula", data=editor_form(csrf, peaks={"mon": "09:00-10:00"}))
    answer = web.post("/sites/hadong-phula", data=editor_form(csrf, action="reset_peak"), follow_redirects=False)
    assert answer.headers["location"] == "/sites/hadong-phula?saved=1"
    assert stored_site(database, "hadong-phula").peak_windows is None
    with database.sessions() as session:
        entries = session.scalars(select(AuditEntry).where(AuditEntry.entity_id == "hadong-phula")
                                  .order_by(AuditEntry.id)).all()
    assert [(e.username, e.after["peak_windows"] is None) for e in entries] == [("phula-head", False),
                                                                                ("phula-head", True)]


def test_another_wards_site_and_screen_pages_are_not_found(web):
    sign_in(web, "phula-head")
    for path in ("/sites/hadong-vanquan", "/screens/hn-hadong-vanquan-001",
                 "/screens/hn-hadong-vanquan-001/screenshot.png"):
        answer = web.get(path)
        assert answer.status_code == 404 and 'id="not-found"' in answer.text, path


# -- a screen ---------------------------------------------------------------------------------------------


def test_the_screen_page_shows_todays_plan_as_a_timeline_of_the_stored_plan(web, planned, clock):
    with planned.sessions() as session:
        body = session.scalar(select(PublishedPlan.body).where(PublishedPlan.player_id == "hn-hadong-phula-001"))
    today = [s for s in Plan.model_validate_json(body).spots if s.start.astimezone(HANOI).date() == date(2024, 8, 20)]
    sign_in(web, "phula-staff")
    page = web.get("/screens/hn-hadong-phula-001").text
    svg = page[page.index("<svg"):page.index("</svg>")]
    marks = re.findall(r'class="spot" data-campaign="([^"]+)" data-start="([^"]+)"', svg)
    assert len(marks) == 15  # the ward head's override: 15 a day on Phú La's screens
    assert marks == [(s.campaign_id, s.start.astimezone(HANOI).strftime("%H:%M:%S")) for s in today]
    assert "Tuyên truyền ứng dụng iHanoi – Hà Nội số (15 lượt)" in svg  # the legend
    assert re.findall(r'class="peak"[^>]*><title>Cao điểm ([^<]+)</title>', svg) == ["08:00–11:00", "14:00–16:30"]
    assert re.findall(r'class="operating"[^>]*><title>Giờ hoạt động ([^<]+)</title>', svg) == ["07:30–17:00"]
    assert len(re.findall(r'class="hour"', svg)) == 13  # 00, 02, ... 24
    assert 'id="timeline-now"' in svg  # 10:00 in Hà Nội


def test_the_screen_page_says_when_there_is_no_plan_yet(web):
    sign_in(web, "phula-staff")
    page = web.get("/screens/hn-hadong-phula-001").text
    assert 'id="timeline-none"' in page and "<svg" not in page


def test_the_screen_page_shows_what_the_player_last_reported(web, planned, clock):
    with planned.sessions() as session:
        sent, body = session.execute(select(PublishedPlan.version, PublishedPlan.body)
                                     .where(PublishedPlan.player_id == "hn-hadong-phula-001")).one()
    spot = Plan.model_validate_json(body).spots[0]
    report_status(planned, "hn-hadong-phula-001", clock.now(), plan_version=sent,
                  now_playing={"kind": "makegood", "media": spot.media, "spot_id": spot.spot_id},
                  cache={"ready": 2, "missing": 0, "bytes": 3 * 1048576}, journal_backlog=4, clock_offset_ms=35)
    sign_in(web, "phula-staff")
    page = web.get("/screens/hn-hadong-phula-001").text
    assert 'data-state="online"' in page
    assert "20/08/2024 10:00:00" in section(page, "state-last-seen")  # in the site's zone
    assert "Đã nhận kế hoạch mới nhất" in page
    # The plans by when they were made, not by their sha256 versions (those only on hover).
    made = Plan.model_validate_json(body).generated_at.astimezone(HANOI).strftime("%d/%m/%Y %H:%M")
    assert f"Lập lúc {made}" in section(page, "state-plan-sent") and "Kế hoạch mới nhất" in page
    assert sent[:12] not in re.sub(r'title="[^"]*"', "", section(page, "state-plan-sent"))
    assert "2 sẵn sàng · 0 còn thiếu" in section(page, "state-cache")
    assert "4" in section(page, "state-journal") and "+35 ms" in section(page, "state-clock")
    # What plays, by name: the make-good's campaign and the file as its unit named it; the sha256 only on hover.
    with planned.sessions() as session:
        file_name = session.scalar(select(MediaAsset.original_name).where(MediaAsset.sha256 == spot.media))
    playing = re.sub(r'title="[^"]*"', "", section(page, "state-now-playing"))
    assert "Phát bù" in playing and "Tuyên truyền ứng dụng iHanoi – Hà Nội số" in playing and file_name in playing
    assert spot.media[:8] not in playing and "makegood" not in playing.replace('id="playing-', "")


def test_the_screen_page_says_filler_plays_without_naming_a_file_by_its_hash(web, planned, clock):
    report_status(planned, "hn-hadong-phula-001", clock.now(),
                  now_playing={"kind": "filler", "media": "c" * 64, "spot_id": None})
    sign_in(web, "phula-staff")
    playing = section(web.get("/screens/hn-hadong-phula-001").text, "state-now-playing")
    assert "Nội dung chờ" in playing and "cccccccc" not in playing


def test_the_screen_page_shows_only_the_groups_its_user_may_see(web):
    sign_in(web, "city-manager")
    assert 'id="group-one-stop"' in web.get("/screens/hn-hadong-phula-001").text
    sign_in(web, "phula-staff")
    assert 'id="group-one-stop"' not in web.get("/screens/hn-hadong-phula-001").text


def test_the_latest_screenshot_is_shown_and_served_only_within_scope(web, settings, clock, make_media):
    png = make_media("shot.png").read_bytes()
    store_screenshot(settings.data_dir, "hn-hadong-phula-001", png, clock.now())
    sign_in(web, "phula-staff")
    assert 'id="screenshot"' in web.get("/screens/hn-hadong-phula-001").text
    answer = web.get("/screens/hn-hadong-phula-001/screenshot.png")
    assert answer.status_code == 200 and answer.content == png and answer.headers["content-type"] == "image/png"
    assert 'id="screenshot-none"' in web.get("/screens/hn-hadong-phula-002").text
    sign_in(web, "vanquan-staff")
    assert web.get("/screens/hn-hadong-phula-001/screenshot.png").status_code == 404
