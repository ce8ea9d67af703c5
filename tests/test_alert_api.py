"""The alerts API (/api/v1/alerts...) and pages: issuing, approval, stopping and the delivery table over HTTP,
scoped by the organisation hierarchy, errors as problem+json; and the unit's approval rule on the organisation.

These apps run without a broker (the dispatcher is None): what players acknowledge is written to
`alert_deliveries` by hand, as ingest would.
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from campaigns.models import Alert, AuditEntry
from scheduler.models import AlertDelivery
from signage.db import transaction
from tests.conftest import sign_in
from tests.test_campaign_workflow import add_to_library

# examples/hanoi-fleet.yaml: Phú La's office (two LCDs, and a loudspeaker that shows no text nor picture), Văn
# Quán's office, the Ba La crossroads.
HADONG_DISPLAYS = ["hn-hadong-phula-001", "hn-hadong-phula-002", "hn-hadong-vanquan-001", "hn-nt-bala-001"]
FLOOD = {"title": "Ngập úng", "text": "Đường Quang Trung ngập sâu, đề nghị người dân đi đường khác."}


def issue(client, targets: dict, status: int = 201, **fields) -> dict:
    answer = client.post("/api/v1/alerts", json={**FLOOD, "targets": targets, **fields})
    assert answer.status_code == status, answer.text
    return answer.json()


def problem(answer, status: int) -> str:
    assert (answer.status_code, answer.headers["content-type"]) == (status, "application/problem+json"), answer.text
    return answer.json()["detail"]


@pytest.fixture
def phula_alert(api) -> str:
    """An info alert of Phú La on its ward office, showing now for an hour."""
    return issue(api("phula-staff"), {"sites": ["hadong-phula"]})["id"]


@pytest.fixture
def phula_needs_approval(api) -> None:
    answer = api("city-admin").patch("/api/v1/organisations/hn-hadong-phula", json={"alerts_need_approval": True})
    assert answer.status_code == 200, answer.text


@pytest.fixture
def pending_alert(api, phula_needs_approval) -> str:
    alert = issue(api("phula-staff"), {"sites": ["hadong-phula"]})
    assert alert["status"] == "pending"
    return alert["id"]


# -- issuing ------------------------------------------------------------------------------------------------


def test_district_staff_issue_an_alert_for_the_district_that_goes_out_at_once_to_its_screens(api, clock):
    alert = issue(api("hadong-staff"), {"organisations": ["hn-hadong"]}, severity="urgent")
    # Its displays, and Phú La's loudspeaker, which reads the text aloud (tests/test_speech.py).
    assert (alert["organisation_id"], alert["status"], alert["phase"], alert["severity"], alert["screens"]) == (
        "hn-hadong", "approved", "active", "urgent", len(HADONG_DISPLAYS) + 1)
    assert alert["spoken"] is not None
    assert (alert["approved_by"], alert["created_by"]) == ("hadong-staff", "hadong-staff")
    assert alert["expires_at"] == (clock.now() + timedelta(hours=1)).isoformat().replace("+00:00", "Z")


def test_ward_staff_targeting_another_wards_screen_are_refused_with_the_screen_named_and_the_fix(api, database):
    detail = problem(api("phula-staff").post("/api/v1/alerts", json={
        **FLOOD, "targets": {"screens": ["hn-hadong-vanquan-001"]}}), 422)
    assert "there is no screen 'hn-hadong-vanquan-001' within hn-hadong-phula" in detail
    assert "target only screens of hn-hadong-phula and the units below it" in detail
    with database.sessions() as session:
        assert session.scalars(select(Alert)).all() == []


def test_a_ward_cannot_issue_in_the_name_of_another_ward(api):
    answer = api("phula-staff").post("/api/v1/alerts", json={
        **FLOOD, "organisation_id": "hn-hadong-vanquan", "targets": {"sites": ["hadong-vanquan"]}})
    assert "there is no organisation 'hn-hadong-vanquan'" in problem(answer, 404)


def test_an_expiry_in_the_past_is_refused_with_the_fix(api, clock):
    past = (clock.now() - timedelta(minutes=5)).isoformat()
    answer = api("phula-staff").post("/api/v1/alerts", json={**FLOOD, "targets": {"sites": ["hadong-phula"]},
                                                             "expires_at": past})
    detail = problem(answer, 422)
    assert "which has passed" in detail and "give an expiry in the future" in detail


def test_a_media_alert_without_its_media_is_refused_with_the_fix(api):
    answer = api("phula-staff").post("/api/v1/alerts", json={**FLOOD, "kind": "media",
                                                             "targets": {"sites": ["hadong-phula"]}})
    detail = problem(answer, 422)
    assert "a media alert names its media" in detail and "choose a clip or an image" in detail


def test_a_media_alert_shows_a_clip_of_the_units_library(api, database, settings, clock, make_media):
    with transaction(database.sessions) as session:
        clip = add_to_library(session, settings, clock, make_media("lu.mp4", seconds=3), "hn-hadong-phula")
    alert = issue(api("phula-staff"), {"sites": ["hadong-phula"]}, kind="media", media=clip)
    assert (alert["kind"], alert["media"]) == ("media", clip)


def test_a_manager_may_not_issue_an_alert(api):
    answer = api("hadong-manager").post("/api/v1/alerts", json={**FLOOD, "targets": {"organisations": ["hn-hadong"]}})
    assert "your role (manager) may not issue alerts" in problem(answer, 403)


def test_an_alert_that_starts_later_is_scheduled(api, clock):
    alert = issue(api("phula-staff"), {"sites": ["hadong-phula"]},
                  starts_at=(clock.now() + timedelta(hours=2)).isoformat())
    assert (alert["status"], alert["phase"]) == ("approved", "scheduled")


def test_the_live_count_tells_how_many_screens_an_alerts_targets_hit(api):
    answer = api("hadong-staff").post("/api/v1/alerts/targets/count", json={
        "organisation_id": "hn-hadong", "targets": {"organisations": ["hn-hadong"]}})
    assert answer.json() == {"organisation_id": "hn-hadong", "screens": len(HADONG_DISPLAYS), "sites": 3,
                             "speakers": 1}


def test_the_live_count_refuses_targets_outside_the_issuer(api):
    answer = api("phula-staff").post("/api/v1/alerts/targets/count", json={
        "targets": {"screens": ["hn-hadong-vanquan-001"]}})
    assert "hn-hadong-vanquan-001" in problem(answer, 422)


# -- scope --------------------------------------------------------------------------------------------------


def test_a_user_of_another_ward_gets_404_for_the_alert_through_every_endpoint(api, phula_alert):
    path = f"/api/v1/alerts/{phula_alert}"
    calls = [("get", path, None), ("get", f"{path}/deliveries", None), ("post", f"{path}/approve", None),
             ("post", f"{path}/reject", {"note": "Không"}), ("post", f"{path}/stop", {"reason": "Nhầm"})]
    for username in ("vanquan-staff", "vanquan-head"):
        client = api(username)
        for method, url, body in calls:
            assert "within your organisation" in problem(client.request(method, url, json=body), 404), (
                username, method, url)
        assert client.get("/api/v1/alerts").json()["items"] == []


def test_the_district_and_the_city_see_a_wards_alert(api, phula_alert):
    for username in ("hadong-manager", "city-manager"):
        assert [a["id"] for a in api(username).get("/api/v1/alerts").json()["items"]] == [phula_alert]


def test_the_list_filters_by_phase_severity_and_organisation(api, clock):
    district = issue(api("hadong-staff"), {"organisations": ["hn-hadong"]}, severity="urgent")["id"]
    ward = issue(api("phula-staff"), {"sites": ["hadong-phula"]})["id"]
    later = issue(api("phula-staff"), {"sites": ["hadong-phula"]},
                  starts_at=(clock.now() + timedelta(days=1)).isoformat())["id"]
    client = api("hadong-head")

    def ids(**params) -> list[str]:
        return sorted(a["id"] for a in client.get("/api/v1/alerts", params=params).json()["items"])

    assert ids() == sorted([district, ward, later])
    assert ids(phase="active") == sorted([district, ward])
    assert ids(phase="scheduled") == [later]
    assert ids(severity="urgent") == [district]
    assert ids(organisation_id="hn-hadong-phula") == sorted([ward, later])


def test_the_list_is_paginated(api, clock):
    for _ in range(3):
        issue(api("phula-staff"), {"sites": ["hadong-phula"]})
    page = api("phula-staff").get("/api/v1/alerts", params={"limit": 2, "offset": 2}).json()
    assert (len(page["items"]), page["total"], page["limit"], page["offset"]) == (1, 3, 2, 2)


# -- approval -----------------------------------------------------------------------------------------------


def test_in_a_unit_that_requires_approval_a_staff_alert_waits_for_the_head(api, pending_alert):
    alert = api("phula-staff").get(f"/api/v1/alerts/{pending_alert}").json()
    assert (alert["status"], alert["phase"], alert["approved_by"]) == ("pending", "pending", None)


def test_the_head_approves_a_pending_alert_and_it_goes_out(api, pending_alert):
    answer = api("phula-head").post(f"/api/v1/alerts/{pending_alert}/approve", json={"note": "Đồng ý"})
    assert answer.status_code == 200, answer.text
    alert = answer.json()
    assert (alert["status"], alert["phase"], alert["approved_by"], alert["review_note"]) == (
        "approved", "active", "phula-head", "Đồng ý")


def test_neither_staff_nor_a_manager_may_approve_an_alert(api, pending_alert):
    for username in ("phula-staff", "hadong-manager"):
        answer = api(username).post(f"/api/v1/alerts/{pending_alert}/approve")
        assert "it takes the head of unit" in problem(answer, 403), username


def test_a_heads_own_alert_needs_no_second_approval(api, phula_needs_approval):
    assert issue(api("phula-head"), {"sites": ["hadong-phula"]})["status"] == "approved"


def test_rejecting_an_alert_needs_a_note(api, pending_alert):
    head = api("phula-head")
    assert "the note is empty" in problem(head.post(f"/api/v1/alerts/{pending_alert}/reject", json={}), 422)
    rejected = head.post(f"/api/v1/alerts/{pending_alert}/reject", json={"note": "Sai địa chỉ"}).json()
    assert (rejected["phase"], rejected["review_note"]) == ("rejected", "Sai địa chỉ")


def test_approving_an_alert_that_is_not_pending_is_a_conflict(api, phula_alert):
    assert "only a pending alert" in problem(api("phula-head").post(f"/api/v1/alerts/{phula_alert}/approve"), 409)


# -- stopping -----------------------------------------------------------------------------------------------


def test_stopping_an_active_alert_takes_it_off_the_air(api, phula_alert):
    answer = api("phula-staff").post(f"/api/v1/alerts/{phula_alert}/stop", json={"reason": "Đã hết ngập"})
    assert answer.status_code == 200, answer.text
    assert (answer.json()["phase"], answer.json()["stopped_by"]) == ("stopped", "phula-staff")


def test_stopping_an_ended_alert_is_a_conflict(api, phula_alert, clock):
    clock.advance(timedelta(hours=2))
    detail = problem(api("phula-staff").post(f"/api/v1/alerts/{phula_alert}/stop"), 409)
    assert "the alert is ended" in detail


def test_the_audit_log_keeps_the_alerts_creation_approval_and_stop(api, pending_alert, database):
    assert api("phula-head").post(f"/api/v1/alerts/{pending_alert}/approve").status_code == 200
    assert api("hadong-manager").post(f"/api/v1/alerts/{pending_alert}/stop").status_code == 200
    with database.sessions() as session:
        entries = session.scalars(select(AuditEntry).where(AuditEntry.entity_kind == "alert",
                                                           AuditEntry.entity_id == pending_alert)
                                  .order_by(AuditEntry.id)).all()
        assert [(e.action, e.username, e.organisation_id) for e in entries] == [
            ("create", "phula-staff", "hn-hadong-phula"), ("approve", "phula-head", "hn-hadong-phula"),
            ("stop", "hadong-manager", "hn-hadong-phula")]


# -- deliveries ---------------------------------------------------------------------------------------------


@pytest.fixture
def acknowledged(api, database, clock) -> str:
    """A district alert sent to four screens: one player silent, one showing it, one done, one interrupted."""
    alert_id = issue(api("hadong-staff"), {"organisations": ["hn-hadong"]})["id"]
    now = clock.now()
    sent = {"sent_at": now, "sends": 1}
    with transaction(database.sessions) as session:
        session.add_all([
            AlertDelivery(alert_id=alert_id, screen_id="hn-hadong-phula-001", **sent),
            AlertDelivery(alert_id=alert_id, screen_id="hn-hadong-phula-002", **sent,
                          started_at=now + timedelta(seconds=1)),
            AlertDelivery(alert_id=alert_id, screen_id="hn-hadong-vanquan-001", **sent,
                          started_at=now + timedelta(seconds=1), ended_at=now + timedelta(minutes=1),
                          outcome="completed"),
            AlertDelivery(alert_id=alert_id, screen_id="hn-nt-bala-001", sent_at=now, sends=2,
                          started_at=now + timedelta(seconds=2), ended_at=now + timedelta(seconds=30),
                          outcome="failed", reason="the media could not be decoded"),
        ])
    return alert_id


def test_the_deliveries_list_screen_by_screen_what_the_players_acknowledged(api, acknowledged):
    page = api("hadong-staff").get(f"/api/v1/alerts/{acknowledged}/deliveries").json()
    assert page["total"] == 4
    assert [(d["screen_id"], d["state"], d["outcome"], d["sends"]) for d in page["items"]] == [
        ("hn-hadong-phula-001", "waiting", None, 1), ("hn-hadong-phula-002", "showing", None, 1),
        ("hn-hadong-vanquan-001", "ended", "completed", 1), ("hn-nt-bala-001", "ended", "failed", 2)]
    first, last = page["items"][0], page["items"][-1]
    assert (first["screen_name"], first["site_id"]) == ("Khu tiếp dân – màn LCD 1", "hadong-phula")
    assert last["reason"] == "the media could not be decoded"


def test_the_alert_sums_up_its_deliveries(api, acknowledged):
    alert = api("hadong-staff").get(f"/api/v1/alerts/{acknowledged}").json()
    assert alert["screens"] == len(HADONG_DISPLAYS) + 1  # and Phú La's loudspeaker, which reads the text aloud
    assert alert["delivery"] == {
        "sent": 4, "started": 3, "ended": 2, "outcomes": {"completed": 1, "interrupted": 0, "failed": 1},
        "states": {"waiting": 1, "showing": 1, "ended": 2, "not acknowledged": 0}}


def test_a_screen_that_never_acknowledged_an_alert_that_is_over_is_marked_so(api, acknowledged, clock):
    clock.advance(timedelta(hours=1, minutes=1))
    client = api("hadong-staff")
    first = client.get(f"/api/v1/alerts/{acknowledged}/deliveries", params={"limit": 1}).json()["items"][0]
    assert (first["screen_id"], first["state"]) == ("hn-hadong-phula-001", "not acknowledged")
    assert client.get(f"/api/v1/alerts/{acknowledged}").json()["delivery"]["states"]["not acknowledged"] == 1


# -- the unit's approval rule -------------------------------------------------------------------------------


def test_organisations_show_whether_their_alerts_need_approval(api):
    assert api("phula-staff").get("/api/v1/organisations/hn-hadong-phula").json()["alerts_need_approval"] is False


def test_staff_may_not_require_approval_of_alerts(api):
    answer = api("phula-staff").patch("/api/v1/organisations/hn-hadong-phula", json={"alerts_need_approval": True})
    assert "admin account or the head of unit of hn-hadong-phula" in problem(answer, 403)


def test_a_head_of_another_unit_may_not_require_approval_of_a_wards_alerts(api):
    answer = api("hadong-head").patch("/api/v1/organisations/hn-hadong-phula", json={"alerts_need_approval": True})
    problem(answer, 403)


def test_the_head_of_the_unit_requires_approval_of_its_alerts(api):
    answer = api("phula-head").patch("/api/v1/organisations/hn-hadong-phula", json={"alerts_need_approval": True})
    assert answer.status_code == 200 and answer.json()["alerts_need_approval"] is True


def test_an_admin_requires_approval_of_a_units_alerts_and_it_is_audited(api, database):
    answer = api("city-admin").patch("/api/v1/organisations/hn-hadong-phula", json={"alerts_need_approval": True})
    assert answer.status_code == 200 and answer.json()["alerts_need_approval"] is True
    with database.sessions() as session:
        (entry,) = session.scalars(select(AuditEntry).where(AuditEntry.entity_id == "hn-hadong-phula")).all()
        assert (entry.username, entry.action, entry.before, entry.after) == (
            "city-admin", "organisation.alerts_need_approval", {"alerts_need_approval": False},
            {"alerts_need_approval": True})


# -- pages --------------------------------------------------------------------------------------------------


def alert_form(csrf: str, **fields) -> dict:
    return {"csrf_token": csrf, "organisation_id": "hn-hadong", **FLOOD, "severity": "info", "kind": "text",
            "start": "now", "duration": "60", "organisations": "hn-hadong", **fields}


def test_the_form_issues_an_urgent_alert_only_once_its_interruption_is_confirmed(web):
    csrf = sign_in(web, "hadong-staff")
    unconfirmed = web.post("/alerts/new", data=alert_form(csrf, severity="urgent"), follow_redirects=False)
    assert unconfirmed.status_code == 422
    assert 'id="form-error"' in unconfirmed.text and "cảnh báo khẩn cấp cần xác nhận" in unconfirmed.text
    confirmed = web.post("/alerts/new", data=alert_form(csrf, severity="urgent", confirm_urgent="yes"),
                         follow_redirects=False)
    assert confirmed.status_code == 303
    assert re.fullmatch(r"/alerts/alert-20240820-[0-9a-f]{8}\?done=created", confirmed.headers["location"])


def test_the_form_counts_a_duration_from_the_start_in_local_time(web, database):
    csrf = sign_in(web, "hadong-staff")
    answer = web.post("/alerts/new", data=alert_form(csrf, start="at", starts_at="2024-08-20T14:00",
                                                     duration="30"), follow_redirects=False)
    assert answer.status_code == 303, answer.text
    with database.sessions() as session:
        alert = session.scalars(select(Alert)).one()
        assert (alert.starts_at.isoformat(), alert.expires_at.isoformat()) == (
            "2024-08-20T07:00:00+00:00", "2024-08-20T07:30:00+00:00")  # 14:00–14:30 in Hà Nội


def test_the_form_refuses_a_start_more_than_a_year_ahead(web):
    csrf = sign_in(web, "hadong-staff")
    answer = web.post("/alerts/new", data=alert_form(csrf, start="at", starts_at="9999-12-31T23:30"))
    assert answer.status_code == 422 and "more than a year ahead; start it within a year" in answer.text


def test_the_form_shows_the_workflows_refusal_and_keeps_what_was_written(web):
    csrf = sign_in(web, "phula-staff")
    answer = web.post("/alerts/new", data=alert_form(csrf, organisation_id="hn-hadong-phula", organisations="",
                                                     screens="hn-hadong-vanquan-001"))
    assert answer.status_code == 422
    assert "there is no screen &#39;hn-hadong-vanquan-001&#39; within hn-hadong-phula" in answer.text
    assert FLOOD["text"] in answer.text


def test_the_alert_page_shows_the_delivery_table_and_refreshes_while_active(web, acknowledged):
    sign_in(web, "hadong-staff")
    page = web.get(f"/alerts/{acknowledged}").text
    assert 'data-phase="active"' in page and 'id="deliveries" data-live="1"' in page
    assert 'id="delivery-hn-hadong-phula-002" data-state="showing"' in page
    assert 'id="confirm-stop"' in page


def test_the_head_approves_a_pending_alert_on_its_page(web, pending_alert):
    csrf = sign_in(web, "phula-head")
    assert 'id="approve-alert"' in web.get(f"/alerts/{pending_alert}").text
    answer = web.post(f"/alerts/{pending_alert}/approve", data={"csrf_token": csrf}, follow_redirects=False)
    assert answer.headers["location"] == f"/alerts/{pending_alert}?done=approved"
    page = web.get(answer.headers["location"]).text
    assert 'data-phase="active"' in page
    # Who did what, by name and in words (not user names and codes).
    assert "Phula Staff" in page[page.index('id="created-by"'):] and "Phula Head" in page
    trail = page[page.index('id="audit-trail"'):]
    assert "Tạo thông báo" in trail and "Phê duyệt" in trail and "<code>create</code>" not in trail


def test_the_alert_pages_speak_english_on_request(web, phula_alert):
    sign_in(web, "phula-staff")
    assert "Messages and alerts" in web.get("/alerts?lang=en").text
    assert "On air" in web.get(f"/alerts/{phula_alert}?lang=en").text


def test_a_user_of_another_ward_gets_404_for_the_alerts_page(web, phula_alert):
    sign_in(web, "vanquan-staff")
    assert web.get(f"/alerts/{phula_alert}").status_code == 404
    assert phula_alert not in web.get("/alerts").text


def test_a_manager_gets_no_new_alert_button_nor_form(web):
    sign_in(web, "hadong-manager")
    assert 'id="new-alert"' not in web.get("/alerts").text
    assert web.get("/alerts/new").status_code == 403


def test_a_start_years_ahead_without_an_expiry_is_refused(api):
    answer = api("phula-staff").post("/api/v1/alerts", json={**FLOOD, "targets": {"sites": ["hadong-phula"]},
                                                             "starts_at": "9999-12-31T23:30:00Z"})
    assert "more than a year ahead" in problem(answer, 422)
