"""The screen health page sorts by what needs action: dark in its peak hours now, offline, degraded, fine, and the
screens never connected last in a group of their own; paged, in Vietnamese first. Statuses through the real ingest
at 10:00 on a Tuesday in Hà Nội (the clock fixture), inside the ward offices' peak hours (08:00–11:00) and outside
the intersections' (07:00–09:00)."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from scheduler.ingest import ingest_status
from signage.db import transaction
from signage.protocol import CacheFigures, Status
from tests.conftest import sign_in

DARK = "hn-hadong-phula-001"  # ward office, silent since 09:40
OFFLINE = "hn-nt-bala-001"  # intersection, silent since 09:30: outside its peak
DEGRADED = "hn-hadong-phula-002"  # plays, but two files are missing from its cache
FINE = "hn-hadong-vanquan-001"
GROUPS = ["dark_in_peak", "offline", "degraded", "ok", "never"]


def report(database, player_id: str, at, **fields) -> None:
    status = Status(player_id=player_id, state="online", sent_at=at, **fields)
    with transaction(database.sessions) as session:
        assert ingest_status(session, player_id, status.model_dump_json().encode(), at)


@pytest.fixture
def statuses(database, clock) -> None:
    now = clock.now()
    report(database, DARK, now - timedelta(minutes=20))
    report(database, OFFLINE, now - timedelta(minutes=30))
    report(database, DEGRADED, now, cache=CacheFigures(ready=3, missing=2, bytes=10**6))
    report(database, FINE, now, cache=CacheFigures(ready=5, missing=0, bytes=10**6), journal_backlog=0)


def now_sheet(page: str) -> str:
    return re.search(r'<table class="report" id="sheet-1">(.*?)</table>', page, re.S).group(1)


def test_the_health_page_lists_what_needs_action_first_and_never_connected_screens_last(web, statuses):
    sign_in(web, "city-manager")
    first = web.get("/reports", params={"kind": "health", "organisation_id": "hn"})
    assert first.status_code == 200
    sheet = now_sheet(first.text)
    assert re.findall(r'id="group-(\w+)"', sheet) == GROUPS
    rows = re.findall(r'data-attention="(\w+)" data-screen="([\w-]+)"', sheet)
    assert len(rows) == 50  # a page of 50 screens: the other 32 on the next
    assert [screen for _, screen in rows[:4]] == [DARK, OFFLINE, DEGRADED, FINE]
    assert {kind for kind, _ in rows[4:]} == {"never"}
    assert "Tắt trong giờ cao điểm" in sheet and "Cần kiểm tra: thiếu media" in sheet
    assert "Chưa kết nối lần nào" in sheet and ">never<" not in sheet and "Never" not in sheet

    following = next_page(first.text, 1)
    second = web.get(following)
    rest = re.findall(r'data-attention="(\w+)" data-screen="([\w-]+)"', now_sheet(second.text))
    assert len(rest) == 32 and {kind for kind, _ in rest} == {"never"}
    assert re.findall(r'id="group-(\w+)"', now_sheet(second.text)) == ["never"]
    assert {screen for _, screen in rows + rest} >= {DARK, OFFLINE, DEGRADED, FINE} and len(
        {screen for _, screen in rows + rest}) == 82
    assert 'id="page-previous-1"' in second.text


def next_page(page: str, sheet: int) -> str:
    return re.search(rf'id="page-next-{sheet}" href="([^"]+)"', page).group(1).replace("&amp;", "&")


def day_rows(page: str) -> list[tuple[str, str]]:
    sheet = re.search(r'<table class="report" id="sheet-2">(.*?)</table>', page, re.S).group(1)
    return re.findall(r"<td class=\"\">(\d\d/\d\d/\d{4})</td>\s*<td class=\"\">([\w-]+)</td>", sheet)


def test_each_sheet_of_the_health_page_pages_on_its_own(web, statuses):
    """The "Now" sheet has 82 screens, "By day" 82 a day for a week: the second page of one leaves the other where
    it was, so an operator never meets an empty "Now" above a "By day" that goes on."""
    sign_in(web, "city-manager")
    first = web.get("/reports", params={"kind": "health", "organisation_id": "hn"}).text
    days = day_rows(first)
    assert len(days) == 50

    now_second = web.get(next_page(first, 1)).text
    assert len(re.findall(r'data-screen="', now_sheet(now_second))) == 32 and 'id="page-next-1"' not in now_second
    assert day_rows(now_second) == days  # "By day" stays on its first page

    days_second = web.get(next_page(now_second, 2)).text
    assert len(re.findall(r'data-screen="', now_sheet(days_second))) == 32  # "Now" stays on its second page
    assert len(day_rows(days_second)) == 50 and not set(day_rows(days_second)) & set(days)
    assert "Dòng 51–100" in days_second
    back = web.get(re.search(r'id="page-previous-2" href="([^"]+)"', days_second).group(1).replace("&amp;", "&"))
    assert day_rows(back.text) == days


def test_the_health_page_in_english_says_the_same_in_english(web, statuses):
    sign_in(web, "city-manager")
    sheet = now_sheet(web.get("/reports", params={"kind": "health", "organisation_id": "hn", "lang": "en"}).text)
    assert "Dark in their peak hours now — act first" in sheet and "Never connected" in sheet
    assert "Degraded: media missing" in sheet


def test_the_health_report_of_the_api_is_in_the_same_order(api, statuses):
    answer = api("city-manager").get("/api/v1/reports/health", params={"organisation_id": "hn", "limit": 5})
    rows = answer.json()["sheets"][0]["rows"]
    assert [(r["screen_id"], r["attention_kind"]) for r in rows[:4]] == [
        (DARK, "dark_in_peak"), (OFFLINE, "offline"), (DEGRADED, "degraded"), (FINE, "ok")]
    assert rows[4]["state"] == "Chưa kết nối lần nào"


def test_a_retired_screen_needs_no_action_and_is_listed_last_in_a_group_of_its_own(api, web, statuses):
    assert api("phula-staff").post(f"/api/v1/screens/{DARK}/retire").status_code == 200
    rows = api("city-manager").get("/api/v1/reports/health", params={"organisation_id": "hn", "limit": 100}
                                   ).json()["sheets"][0]["rows"]
    assert [(r["screen_id"], r["attention_kind"]) for r in rows[:3]] == [
        (OFFLINE, "offline"), (DEGRADED, "degraded"), (FINE, "ok")]
    assert (rows[-1]["screen_id"], rows[-1]["attention_kind"], rows[-1]["attention"]) == (
        DARK, "retired", "Đã ngừng sử dụng")
    assert [r["attention_kind"] for r in rows].count("dark_in_peak") == 0

    sign_in(web, "city-manager")
    first = web.get("/reports", params={"kind": "health", "organisation_id": "hn"}).text
    assert re.findall(r'id="group-(\w+)"', now_sheet(first)) == ["offline", "degraded", "ok", "never"]
    second = now_sheet(web.get(next_page(first, 1)).text)
    assert re.findall(r'id="group-(\w+)"', second) == ["never", "retired"]
    assert "Đã ngừng sử dụng (không cần xử lý)" in second and f'data-screen="{DARK}"' in second
