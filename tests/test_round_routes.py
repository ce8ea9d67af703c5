"""Reporting rounds over HTTP (scheduler/web/routes/rounds.py): the JSON API opens a series and a round, a commune
saves and submits, the district reads the overview and exports it; another district's ward gets 404; the pages
render in Vietnamese with the forms' CSRF token. Both databases."""

from __future__ import annotations

import io

import pytest
from openpyxl import load_workbook

from campaigns.accounts import create_user
from signage.db import transaction
from tests.conftest import sign_in
from tests.test_reporting_rounds import BATRAI, BAVI, INSTALLS, TANLINH, add_batrai, hanoi, ihanoi_series


@pytest.fixture
def bavi_users(database, staff, clock, password_hash):
    with transaction(database.sessions) as session:
        add_batrai(session)
        for username, role, unit in (("bavi-manager", "manager", BAVI), ("tanlinh-staff", "staff", TANLINH),
                                     ("tanlinh-head", "head", TANLINH), ("batrai-staff", "staff", BATRAI)):
            create_user(session, username=username, full_name=username.replace("-", " ").title(), role=role,
                        organisation_id=unit, password_hash=password_hash, clock=clock)


def open_round_of(client, organisation_id: str, series_id: str, name: str, needs_approval: bool = False) -> int:
    """A series of `organisation_id` with the iHanoi form, and its first round (22/8/2024), through the API."""
    series = ihanoi_series(needs_approval).model_dump(mode="json") | {"id": series_id, "name": name}
    made = client.post("/api/v1/rounds/series", json={"organisation_id": organisation_id, "series": series})
    assert made.status_code == 201, made.text
    opened = client.post("/api/v1/rounds", json={"series_id": series_id, "name": "Báo cáo lần 1",
                                                 "period_start": "2024-08-01", "period_end": "2024-08-19",
                                                 "deadline": hanoi(2024, 8, 22).isoformat()})
    assert opened.status_code == 201, opened.text
    return opened.json()["id"]


def test_the_api_opens_a_round_takes_a_submission_and_keeps_scope(web, api, bavi_users, clock):
    district, tanlinh, phula = api("bavi-manager"), api("tanlinh-staff"), api("phula-staff")
    round_id = open_round_of(district, BAVI, "ba-vi-ihanoi-2024", "Báo cáo triển khai ứng dụng iHanoi")
    assert phula.get(f"/api/v1/rounds/{round_id}").status_code == 404
    assert phula.put(f"/api/v1/rounds/{round_id}/submission", json={"values": {}}).status_code == 404
    assert tanlinh.get("/api/v1/rounds").json()[0]["state"] == "not_due"
    refused = tanlinh.put(f"/api/v1/rounds/{round_id}/submission", json={"values": {INSTALLS: 150}, "submit": True})
    assert refused.status_code == 422 and "outside 0–100" in refused.json()["detail"]
    done = tanlinh.put(f"/api/v1/rounds/{round_id}/submission", json={"values": {INSTALLS: 90}, "submit": True})
    assert done.status_code == 200 and done.json()["state"] == "submitted"
    again = tanlinh.put(f"/api/v1/rounds/{round_id}/submission", json={"values": {INSTALLS: 91}, "submit": True})
    assert again.status_code == 409
    overview = district.get(f"/api/v1/rounds/{round_id}").json()
    assert [(u["name"], u["state"]) for u in overview["units"]] == [("UBND xã Ba Trại", "not_due"),
                                                                    ("UBND xã Tản Lĩnh", "submitted")]
    assert overview["totals"][INSTALLS] == 90
    exported = district.get(f"/api/v1/rounds/{round_id}/export?format=xlsx")
    assert exported.status_code == 200
    sheet = load_workbook(io.BytesIO(exported.content)).worksheets[1]
    rows = [[cell.value for cell in row] for row in sheet.iter_rows()]
    assert rows[0][:3] == ["Đơn vị", "Tình trạng", "Thời điểm nộp"]
    assert [row[0] for row in rows[1:]] == ["UBND xã Ba Trại", "UBND xã Tản Lĩnh", "Tổng 1 báo cáo"]
    csv = district.get(f"/api/v1/rounds/{round_id}/export?format=csv")
    assert csv.content.startswith(b"\xef\xbb\xbf") and "UBND xã Tản Lĩnh" in csv.text
    pdf = district.get(f"/api/v1/rounds/{round_id}/export?format=pdf")
    assert pdf.headers["content-type"] == "application/pdf" and pdf.content.startswith(b"%PDF")
    assert tanlinh.get(f"/api/v1/rounds/{round_id}/export?format=csv").status_code == 404  # not the district's


def test_the_pages_render_for_both_sides(web, bavi_users, clock):
    sign_in(web, "bavi-manager")
    page = web.get("/rounds/new")
    assert page.status_code == 200 and "Mở đợt báo cáo" in page.text
    token = page.text.split('name="csrf_token" value="')[1].split('"')[0]
    opened = web.post("/rounds/new", data={
        "csrf_token": token, "series_id": "", "organisation_id": BAVI, "series_name": "Báo cáo iHanoi",
        "figures": ["screens", "compliance"], "field_label_1": "Tỷ lệ cài đặt", "field_kind_1": "percent",
        "field_required_1": "yes", "round_name": "Báo cáo lần 1", "period_start": "2024-08-01",
        "period_end": "2024-08-19", "deadline_date": "2024-08-22", "deadline_time": "17:00"},
        follow_redirects=False)
    assert opened.status_code == 303, opened.text
    overview = web.get(opened.headers["location"])
    assert "Chưa nộp, chưa đến hạn" in overview.text and "22/08/2024 17:00" in overview.text
    assert "Báo cáo định kỳ" in web.get("/rounds").text


def test_the_head_approves_or_returns_through_the_api(web, api, bavi_users, clock):
    round_id = open_round_of(api("bavi-manager"), BAVI, "ba-vi-duyet", "Báo cáo cần duyệt", needs_approval=True)
    staff, head = api("tanlinh-staff"), api("tanlinh-head")
    assert staff.put(f"/api/v1/rounds/{round_id}/submission", json={"values": {INSTALLS: 70}, "submit": True}
                     ).status_code == 200
    assert staff.post(f"/api/v1/rounds/{round_id}/submission/approve").status_code == 403
    assert head.post(f"/api/v1/rounds/{round_id}/submission/return", json={}).status_code == 422  # no note
    returned = head.post(f"/api/v1/rounds/{round_id}/submission/return", json={"note": "Sai tỷ lệ"})
    assert returned.json()["status"] == "returned" and returned.json()["return_note"] == "Sai tỷ lệ"
    staff.put(f"/api/v1/rounds/{round_id}/submission", json={"values": {INSTALLS: 72}, "submit": True})
    assert head.post(f"/api/v1/rounds/{round_id}/submission/approve").json()["status"] == "approved"
    overview = api("bavi-manager").get(f"/api/v1/rounds/{round_id}").json()
    assert overview["counted"] == 1 and overview["totals"][INSTALLS] == 72
