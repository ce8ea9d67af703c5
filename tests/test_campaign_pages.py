"""The campaign pages: the list, the wizard (forms with CSRF tokens, step by step to submission), the detail page
with approval, overrides and the audit trail."""

from __future__ import annotations

import re

import pytest

from signage.db import transaction
from tests.conftest import sign_in
from tests.test_campaign_api import make_campaign
from tests.test_campaign_workflow import add_to_library


@pytest.fixture
def clip(database, settings, clock, make_media) -> str:
    with transaction(database.sessions) as session:
        return add_to_library(session, settings, clock, make_media("clip.mp4", seconds=20), "hn-hadong-phula")


def location(answer) -> str:
    assert answer.status_code == 303, answer.text
    return answer.headers["location"]


@pytest.fixture
def submitted(api, clip) -> str:
    """A campaign of Hà Đông on the whole district from tomorrow, submitted by its staff."""
    staff = api("hadong-staff")
    campaign_id = make_campaign(staff, clip, {"organisations": ["hn-hadong"]})
    assert staff.post(f"/api/v1/campaigns/{campaign_id}/submit").status_code == 200
    return campaign_id


def test_the_list_shows_campaigns_status_filters_and_the_new_campaign_button(web, submitted):
    sign_in(web, "hadong-staff")
    page = web.get("/campaigns").text
    assert 'id="new-campaign"' in page and 'id="filter-submitted"' in page
    assert f'id="campaign-{submitted}"' in page and "Chờ duyệt" in page
    assert f'id="campaign-{submitted}"' not in web.get("/campaigns?status=draft").text


def test_a_manager_gets_no_new_campaign_button(web):
    sign_in(web, "hadong-manager")
    assert 'id="new-campaign"' not in web.get("/campaigns").text


def test_the_wizard_walks_from_a_new_draft_to_submission(web, clip):
    csrf = sign_in(web, "hadong-staff")
    assert 'id="campaign-name"' in web.get("/campaigns/new").text
    step = location(web.post("/campaigns/new", data={"csrf_token": csrf, "name": "Hà Đông số",
                                                      "organisation_id": "hn-hadong"}, follow_redirects=False))
    assert step == "/campaigns/ha-dong-so/edit?step=media"
    media = web.get(step).text
    assert f'value="{clip}"' in media and 'id="media-library-link" href="/media"' in media
    forms = [("media", {"media": clip}), ("targets", {"organisations": "hn-hadong"}),
             ("dates", {"start_date": "2024-08-21", "end_date": "2024-09-30"}),
             ("frequency", {"plays_per_day": "10", "window": "peak", "priority": "0"})]
    for name, fields in forms:
        step = location(web.post(f"/campaigns/ha-dong-so/edit/{name}", data={"csrf_token": csrf, **fields},
                                 follow_redirects=False))
    assert step == "/campaigns/ha-dong-so/edit?step=preview"
    preview = web.get(step).text
    assert 'id="capacity-preview"' in preview and 'id="preview-screens">5<' in preview
    assert 'id="capacity-ok"' in preview and 'id="submit-campaign"' in preview
    done = location(web.post("/campaigns/ha-dong-so/submit", data={"csrf_token": csrf}, follow_redirects=False))
    assert done == "/campaigns/ha-dong-so?done=submitted"
    assert 'data-status="submitted"' in web.get(done).text


def test_a_wizard_form_without_the_csrf_token_is_refused(web):
    sign_in(web, "hadong-staff")
    assert web.post("/campaigns/new", data={"name": "Không có mã"}, follow_redirects=False).status_code == 403


def test_a_step_with_a_mistake_comes_back_with_the_error_and_what_was_typed(web, submitted, api, clip):
    campaign_id = make_campaign(api("hadong-staff"), clip, {"sites": ["nt-bala"]}, name="Ba La")
    csrf = sign_in(web, "hadong-staff")
    answer = web.post(f"/campaigns/{campaign_id}/edit/dates",
                      data={"csrf_token": csrf, "start_date": "2024-09-10", "end_date": "2024-09-01"})
    assert answer.status_code == 422
    assert 'id="form-error"' in answer.text and "before it starts" in answer.text
    assert 'value="2024-09-10"' in answer.text


def test_the_targets_step_shows_the_live_count_and_its_endpoint_answers_the_signed_in_page(web, api, clip):
    campaign_id = make_campaign(api("hadong-staff"), clip, {"sites": ["nt-bala"]}, name="Ba La")
    sign_in(web, "hadong-staff")
    page = web.get(f"/campaigns/{campaign_id}/edit?step=targets").text
    assert re.search(r'id="target-count">\s*1\s*<', page) and "/api/v1/targets/count" in page
    assert 'id="target-screen-hn-hadong-vanquan-001"' in page and 'id="target-screen-hn-ga-hn-001"' not in page
    count = web.get("/api/v1/targets/count", params={"organisation_id": "hn-hadong", "site_kinds": "ward_office"})
    assert count.json()["screens"] == 4


def test_the_head_approves_from_the_detail_page(web, submitted):
    csrf = sign_in(web, "hadong-head")
    page = web.get(f"/campaigns/{submitted}").text
    assert 'id="approve-campaign"' in page and 'id="reject-campaign"' in page and 'id="capacity-preview"' in page
    done = location(web.post(f"/campaigns/{submitted}/approve", data={"csrf_token": csrf, "note": "Đồng ý"},
                             follow_redirects=False))
    page = web.get(done).text
    assert 'data-status="scheduled"' in page and 'id="approved-by"' in page


def test_the_head_rejects_with_a_note_and_the_campaign_goes_back_to_draft(web, submitted):
    csrf = sign_in(web, "hadong-head")
    done = location(web.post(f"/campaigns/{submitted}/reject", data={"csrf_token": csrf, "note": "Sửa tên"},
                             follow_redirects=False))
    page = web.get(done).text
    assert 'data-status="draft"' in page and "Sửa tên" in page


def test_staff_see_no_approval_buttons(web, submitted):
    sign_in(web, "hadong-staff")
    assert 'id="approve-campaign"' not in web.get(f"/campaigns/{submitted}").text


def test_a_head_of_another_district_gets_404_for_the_campaign_pages(web, submitted):
    csrf = sign_in(web, "phula-head")
    assert web.get(f"/campaigns/{submitted}").status_code == 404
    assert web.get(f"/campaigns/{submitted}/edit?step=targets").status_code == 404
    assert web.post(f"/campaigns/{submitted}/approve", data={"csrf_token": csrf}).status_code == 404


def test_a_head_raises_the_frequency_from_the_detail_page_and_the_audit_trail_shows_it(web, api, submitted):
    assert api("hadong-manager").post(f"/api/v1/campaigns/{submitted}/approve").status_code == 200
    csrf = sign_in(web, "phula-head")  # a ward of the district: the district's campaign plays on its screens
    page = web.get(f"/campaigns/{submitted}").text
    assert 'id="override-form"' in page and 'value="organisation:hn-hadong-phula"' in page
    assert 'value="organisation:hn-hadong-vanquan"' not in page
    done = location(web.post(f"/campaigns/{submitted}/overrides", follow_redirects=False, data={
        "csrf_token": csrf, "place": "organisation:hn-hadong-phula", "plays_per_day": "15", "reason": "Thí điểm"}))
    page = web.get(done).text
    assert 'id="overrides"' in page and "Thí điểm" in page
    trail = page[page.index('id="audit-trail"'):]
    assert "override.set" in trail and "&#34;plays_per_day&#34;: 15" in trail


def test_the_list_and_the_page_show_the_rate_a_unit_gets_with_who_raised_it(web, api, submitted):
    assert api("hadong-manager").post(f"/api/v1/campaigns/{submitted}/approve").status_code == 200
    assert api("phula-head").post(f"/api/v1/campaigns/{submitted}/overrides", json={
        "organisation_id": "hn-hadong-phula", "plays_per_day": 15, "reason": "Thí điểm"}).status_code == 201
    sign_in(web, "hadong-staff")
    row = web.get("/campaigns").text.split(f'id="campaign-{submitted}"')[1].split("</tr>")[0]
    assert re.search(r"UBND phường Phú La: <strong>15</strong> lượt/ngày\s*<span class=\"raised-by\">\(Phula Head nâng "
                     r"ngày \d\d/\d\d/\d{4}\)", row), row
    assert "Các màn hình khác: 10 lượt/ngày" in row and "hn-hadong-phula" not in row
    page = web.get(f"/campaigns/{submitted}").text
    overrides = page[page.index('id="overrides"'):page.index('id="audit-section"')]
    assert "UBND phường Phú La" in overrides and "Phula Head" in overrides and "hn-hadong-phula" not in overrides
    assert "UBND phường Phú La: <strong>15</strong>" in page[page.index('id="campaign-rate"'):]
    trail = page[page.index('id="audit-trail"'):]  # who did what, in words: the head's name, the action's words
    assert "Tăng tần suất" in trail and "Phula Head" in trail and ">phula-head<" not in trail
    sign_in(web, "vanquan-staff")  # another ward: the campaign of its district, not the rate of Phú La
    assert "Phú La" not in web.get("/campaigns").text.split(f'id="campaign-{submitted}"')[1].split("</tr>")[0]


def test_a_campaign_a_file_approved_says_so_in_the_pages_words(web, api, submitted, database):
    from campaigns.models import Campaign
    from scheduler.demo import FILE_APPROVER

    with transaction(database.sessions) as session:
        campaign = session.get(Campaign, submitted)
        campaign.approved_by, campaign.review_note = FILE_APPROVER, "ihanoi-campaign.yaml"
        campaign.approved_at = campaign.submitted_at
    sign_in(web, "hadong-staff")
    page = web.get(f"/campaigns/{submitted}").text
    assert "Nhập từ tệp chiến dịch" in page and FILE_APPROVER not in page
    assert "Imported from a campaign file" in web.get(f"/campaigns/{submitted}?lang=en").text


def test_an_override_below_the_rate_comes_back_with_the_error(web, api, submitted):
    assert api("hadong-manager").post(f"/api/v1/campaigns/{submitted}/approve").status_code == 200
    csrf = sign_in(web, "hadong-head")
    answer = web.post(f"/campaigns/{submitted}/overrides", data={
        "csrf_token": csrf, "place": "site:nt-bala", "plays_per_day": "3", "reason": "Giảm"})
    assert answer.status_code == 422 and "below the campaign" in answer.text


def test_the_pages_speak_english_on_request(web, submitted):
    sign_in(web, "hadong-staff")
    assert "Awaiting approval" in web.get("/campaigns?lang=en").text
