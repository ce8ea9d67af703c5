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

    following = re.search(r'id="page-next" href="([^"]+)"', first.text).group(1).replace("&amp;", "&")
    second = web.get(following)
    rest = re.findall(r'data-attention="(\w+)" data-screen="([\w-]+)"', now_sheet(second.text))
    assert len(rest) == 32 and {kind for kind, _ in rest} == {"never"}
    assert re.findall(r'id="group-(\w+)"', now_sheet(second.text)) == ["never"]
    assert {screen for _, screen in rows + rest} >= {DARK, OFFLINE, DEGRADED, FINE} and len(
        {screen for _, screen in rows + rest}) == 82
    assert 'id="page-previous"' in second.text


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
