"""Mobile loudspeaker rounds (issue 21, item 4): a ward plans "02 lượt/ngày vào các giờ cao điểm", its staff record
each round, and the days show planned, done and the shortfall. Phú La's ward office keeps its kind's peaks:
Monday to Friday 08:00-11:00 and 14:00-16:30, Saturday 08:00-11:00 (Hà Nội time, UTC+7)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from pydantic import ValidationError
from sqlalchemy import select

from campaigns.access import Actor
from campaigns.mobile_rounds import (
    PlanIn,
    RoundChange,
    RoundIn,
    correct_round,
    delete_round,
    get_round,
    mobile_round_progress,
    plan_rounds,
    record_round,
    round_standing,
)
from campaigns.models import AuditEntry, MobileRound, User
from signage.db import transaction
from signage.errors import Conflict, Invalid, NotFound
from tests.conftest import sign_in
from tests.test_cli import run

TUESDAY = date(2024, 8, 20)
PHULA = "hn-hadong-phula"


def hanoi(day: date, hour: int, minute: int = 0) -> datetime:
    """A Hà Nội wall-clock time as the aware UTC instant."""
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC) - timedelta(hours=7)


def actor_of(session, user_id: int) -> Actor:
    user = session.get(User, user_id)
    return Actor(user, user.organisation.path, via="token")


@pytest.fixture
def planned(database, clock, staff):
    """Phú La plans 2 rounds a day for August 2024, in its ward office's peak windows."""
    with transaction(database.sessions) as session:
        plan = plan_rounds(session, actor_of(session, staff["phula-head"]), clock,
                           PlanIn(first_day=date(2024, 8, 1), last_day=date(2024, 8, 31),
                                  note="Xe loa đi các tổ dân phố 1-12"))
        return plan.id


def record(database, clock, staff, started: datetime, user: str = "phula-staff", **fields):
    """Records the round an hour after it started (the clock moves on to then, never back)."""
    clock.set(max(clock.now(), started + timedelta(hours=1)))
    with transaction(database.sessions) as session:
        values = {"started_at": started, "duration_minutes": 45, "route": "Tổ 1 → Tổ 5, đường Phú La", **fields}
        return record_round(session, actor_of(session, staff[user]), clock, RoundIn(**values)).id


def progress(database, first: date = TUESDAY, last: date = TUESDAY):
    with database.sessions() as session:
        return mobile_round_progress(session, [PHULA], first, last)


def test_two_rounds_in_a_days_peak_are_compliant_and_one_missing_is_a_shortfall(database, clock, staff, planned):
    record(database, clock, staff, hanoi(TUESDAY, 8, 30))
    record(database, clock, staff, hanoi(TUESDAY, 15, 0))
    record(database, clock, staff, hanoi(TUESDAY + timedelta(days=1), 9, 0))  # Wednesday: one of two
    shown = progress(database, TUESDAY, TUESDAY + timedelta(days=1))
    tuesday, wednesday = shown.units[0].days
    assert (tuesday.planned, tuesday.done, tuesday.missed, tuesday.compliant) == (2, 2, 0, True)
    assert (wednesday.planned, wednesday.done, wednesday.missed, wednesday.compliant) == (2, 1, 1, False)
    assert shown.units[0].organisation_name == "UBND phường Phú La"
    assert (shown.planned, shown.done, shown.missed) == (4, 3, 1)


def test_a_round_outside_the_peak_is_kept_but_does_not_count(database, clock, staff, planned):
    noon = record(database, clock, staff, hanoi(TUESDAY, 12, 0))  # between the morning and afternoon peaks
    record(database, clock, staff, hanoi(TUESDAY, 11, 0))  # a window is [start, end): 11:00 is after it
    day = progress(database).units[0].days[0]
    assert (day.planned, day.done, day.missed, day.outside_peak) == (2, 0, 2, 2)
    with database.sessions() as session:
        assert round_standing(session, session.get(MobileRound, noon)) == "outside_peak"


def test_three_rounds_in_a_day_count_as_two_of_two(database, clock, staff, planned):
    for hour in (8, 9, 10):
        record(database, clock, staff, hanoi(TUESDAY, hour, 15), duration_minutes=30)
    day = progress(database).units[0].days[0]
    assert (day.planned, day.done, day.missed) == (2, 2, 0)


def test_a_round_counts_for_its_local_day_at_hanoi_midnight(database, clock, staff):
    with transaction(database.sessions) as session:  # late peaks, to put rounds near local midnight
        plan_rounds(session, actor_of(session, staff["phula-head"]), clock,
                    PlanIn(first_day=date(2024, 8, 18), last_day=date(2024, 8, 20), rounds_per_day=1,
                           peak_windows={"daily": ["00:00-01:00", "23:00-24:00"]}))
    monday = TUESDAY - timedelta(days=1)
    # 23:59:59 on Monday in Hà Nội is 16:59:59 UTC on Monday; 00:00 on Tuesday in Hà Nội is still Monday in UTC.
    record(database, clock, staff, hanoi(monday, 23, 59) + timedelta(seconds=59))
    record(database, clock, staff, hanoi(TUESDAY, 0, 0))
    days = {d.day: d for d in progress(database, date(2024, 8, 18), TUESDAY).units[0].days}
    assert days[monday].done == 1 and days[TUESDAY].done == 1
    assert days[date(2024, 8, 18)].missed == 1  # Sunday: nothing recorded


def test_a_day_without_peak_hours_asks_for_no_round(database, clock, staff, planned):
    sunday = date(2024, 8, 25)  # the ward office's peaks name no Sunday
    day = progress(database, sunday, sunday).units[0].days[0]
    assert (day.planned, day.done, day.missed) == (0, 0, 0)


def test_another_wards_round_is_not_found_and_rounds_are_recorded_only_in_ones_subtree(database, clock, staff,
                                                                                          planned):
    round_id = record(database, clock, staff, hanoi(TUESDAY, 8, 30))
    with transaction(database.sessions) as session:
        vanquan = actor_of(session, staff["vanquan-staff"])
        with pytest.raises(NotFound):
            get_round(session, vanquan, round_id)
        with pytest.raises(NotFound):
            delete_round(session, vanquan, clock, round_id)
        with pytest.raises(NotFound):
            record_round(session, vanquan, clock, RoundIn(organisation_id=PHULA, duration_minutes=30, route="x"))
    with database.sessions() as session:  # the district sees its wards' rounds
        assert get_round(session, actor_of(session, staff["hadong-staff"]), round_id).id == round_id


def test_hostile_input_is_refused(database, clock, staff, planned):
    for fields in ({"duration_minutes": -5}, {"duration_minutes": 0}, {"duration_minutes": 10**9},
                   {"route": "x" * 501}, {"route": "   "}, {"note": "n" * 1001},
                   {"started_at": "2024-08-20T10:00:00"}):  # a time without its zone
        with pytest.raises(ValidationError):
            RoundIn(**{"duration_minutes": 30, "route": "Tổ 1", **fields})
    with transaction(database.sessions) as session:
        actor = actor_of(session, staff["phula-staff"])
        with pytest.raises(Invalid):  # beyond the few minutes a phone's clock may be ahead
            record_round(session, actor, clock, RoundIn(started_at=clock.now() + timedelta(minutes=30),
                                                        duration_minutes=30, route="Tổ 1"))
        record_round(session, actor, clock, RoundIn(started_at=clock.now() + timedelta(minutes=2),
                                                    duration_minutes=30, route="Tổ 1"))  # within them


def test_a_second_plan_over_the_same_days_is_a_conflict(database, clock, staff, planned):
    with transaction(database.sessions) as session, pytest.raises(Conflict):
        plan_rounds(session, actor_of(session, staff["phula-staff"]), clock,
                    PlanIn(first_day=date(2024, 8, 31), last_day=date(2024, 9, 30)))


def test_a_wrong_record_is_corrected_or_deleted_and_audited(database, clock, staff, planned):
    round_id = record(database, clock, staff, hanoi(TUESDAY, 12, 30))  # typed the wrong hour
    assert progress(database).done == 0
    with transaction(database.sessions) as session:
        correct_round(session, actor_of(session, staff["phula-head"]), clock, round_id,
                      RoundChange(started_at=hanoi(TUESDAY, 9, 30)))
    assert progress(database).done == 1
    with transaction(database.sessions) as session:
        delete_round(session, actor_of(session, staff["phula-head"]), clock, round_id)
    assert progress(database).done == 0
    with database.sessions() as session:
        trail = session.execute(select(AuditEntry.action, AuditEntry.username, AuditEntry.before)
                                .where(AuditEntry.entity_kind == "mobile_round", AuditEntry.entity_id == str(round_id))
                                .order_by(AuditEntry.id)).all()
    assert [(action, who) for action, who, _ in trail] == [("record", "phula-staff"), ("correct", "phula-head"),
                                                           ("delete", "phula-head")]
    assert trail[1].before["started_at"] == hanoi(TUESDAY, 12, 30).isoformat()


# -- the API, the ward's report, the CLI ---------------------------------------------------------------------------

def test_the_wards_report_shows_the_compliant_day_and_the_shortfall(database, clock, staff, planned, api):
    ward = api("phula-staff")
    clock.set(hanoi(TUESDAY + timedelta(days=1), 18, 0))
    for started in (hanoi(TUESDAY, 8, 30), hanoi(TUESDAY, 15, 0), hanoi(TUESDAY + timedelta(days=1), 9, 0)):
        answer = ward.post("/api/v1/mobile-rounds", json={"started_at": started.isoformat(), "duration_minutes": 45,
                                                          "route": "Tổ 1 → Tổ 5"})
        assert answer.status_code == 201, answer.text
        assert answer.json()["standing"] == "counted"
        assert answer.json()["recorded_by_name"] == "Phula Staff"
    report = ward.get("/api/v1/reports/mobile", params={"organisation_id": PHULA, "from": "2024-08-20",
                                                        "to": "2024-08-21"})
    assert report.status_code == 200, report.text
    by_day, by_unit = report.json()["sheets"]
    assert [(r["unit"], r["planned"], r["done"], r["missed"]) for r in by_unit["rows"]] == [
        ("UBND phường Phú La", 4, 3, 1)]
    assert [(r["date"], r["planned"], r["done"], r["missed"]) for r in by_day["rows"]] == [
        ("2024-08-20", 2, 2, 0), ("2024-08-21", 2, 1, 1)]
    csv = ward.get("/api/v1/reports/mobile/export", params={"organisation_id": PHULA, "from": "2024-08-20",
                                                            "to": "2024-08-21", "format": "csv"})
    assert csv.status_code == 200
    lines = csv.content.decode("utf-8-sig").splitlines()
    assert lines[0].startswith("Ngày,Đơn vị,Mã đơn vị,Lượt loa kế hoạch,Lượt đã chạy (giờ cao điểm),Lượt thiếu")
    assert any(line.startswith("2024-08-21,UBND phường Phú La,hn-hadong-phula,2,1,1") for line in lines), lines
    xlsx = ward.get("/api/v1/reports/mobile/export", params={"organisation_id": PHULA, "from": "2024-08-20",
                                                             "to": "2024-08-21", "format": "xlsx"})
    assert xlsx.status_code == 200 and xlsx.content[:2] == b"PK"
    pdf = ward.get("/api/v1/reports/mobile/export", params={"organisation_id": PHULA, "from": "2024-08-20",
                                                            "to": "2024-08-21", "format": "pdf"})
    assert pdf.status_code == 200 and pdf.content[:4] == b"%PDF"
    english = ward.get("/api/v1/reports/mobile", params={"organisation_id": PHULA, "from": "2024-08-20",
                                                         "to": "2024-08-21", "lang": "en"}).json()
    assert [c["title"] for c in english["sheets"][0]["columns"]][3:6] == ["Rounds planned", "Rounds done (peak)",
                                                                           "Rounds short"]
    progress_answer = ward.get("/api/v1/mobile-rounds/progress", params={"from": "2024-08-20", "to": "2024-08-21"})
    assert [(d["date"], d["compliant"], d["missed"]) for d in progress_answer.json()["days"]] == [
        ("2024-08-20", True, 0), ("2024-08-21", False, 1)]


def test_the_api_refuses_hostile_input_and_answers_another_wards_round_404(database, clock, staff, planned, api):
    ward = api("phula-staff")
    body = {"duration_minutes": 45, "route": "Tổ 1"}
    for bad in ({"duration_minutes": -1}, {"duration_minutes": 10**12}, {"route": "đ" * 501},
                {"started_at": (clock.now() + timedelta(hours=2)).isoformat()}, {"recorded_by": "vanquan-staff"},
                {"started_at": "2024-08-20T09:00:00"}):
        answer = ward.post("/api/v1/mobile-rounds", json={**body, **bad})
        assert answer.status_code == 422, (bad, answer.text)
        assert answer.headers["content-type"].startswith("application/problem+json")
    round_id = ward.post("/api/v1/mobile-rounds", json=body).json()["id"]
    other = api("vanquan-staff")
    assert other.get(f"/api/v1/mobile-rounds/{round_id}").status_code == 404
    assert other.patch(f"/api/v1/mobile-rounds/{round_id}", json={"duration_minutes": 5}).status_code == 404
    assert other.delete(f"/api/v1/mobile-rounds/{round_id}").status_code == 404
    assert other.post("/api/v1/mobile-rounds", json={**body, "organisation_id": PHULA}).status_code == 404
    assert other.get("/api/v1/mobile-rounds").json()["items"] == []
    assert ward.patch(f"/api/v1/mobile-rounds/{round_id}", json={"duration_minutes": 60}).json()[
        "duration_minutes"] == 60
    assert ward.delete(f"/api/v1/mobile-rounds/{round_id}").status_code == 204


def test_signage_report_mobile_writes_the_wards_sheet(database, clock, staff, planned, cli_env, tmp_path):
    record(database, clock, staff, hanoi(TUESDAY, 9, 0))
    out = tmp_path / "mobile.csv"
    done = run(cli_env, "report", "mobile", "--scope", PHULA, "--from", "2024-08-20", "--to", "2024-08-20",
               "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert "2024-08-20,UBND phường Phú La,hn-hadong-phula,2,1,1" in out.read_text("utf-8-sig")


def test_the_page_corrects_a_wrong_record_and_another_ward_gets_404(database, clock, staff, planned, web):
    round_id = record(database, clock, staff, hanoi(TUESDAY, 12, 30))  # typed the wrong hour: outside the peaks
    csrf = sign_in(web, "phula-staff")
    page = web.get("/mobile-rounds")
    assert page.status_code == 200
    assert 'name="viewport"' in page.text and "Bắt đầu lượt" in page.text
    assert "không tính: bắt đầu ngoài giờ cao điểm" in page.text
    answer = web.post(f"/mobile-rounds/{round_id}/correct", data={
        "csrf_token": csrf, "started_at": "2024-08-20T09:30", "duration_minutes": "50", "route": "Tổ 1 → Tổ 5"},
        follow_redirects=False)
    assert answer.status_code == 303, answer.text
    shown = web.get(answer.headers["location"]).text
    assert "Đã sửa lượt ghi sai." in shown and "được tính" in shown
    assert progress(database).done == 1
    refused = web.post("/mobile-rounds", data={"csrf_token": csrf, "organisation_id": PHULA, "when": "now",
                                               "duration_minutes": "45", "route": "x" * 501})
    assert refused.status_code == 422 and 'id="mobile-error"' in refused.text

    other = web.__class__(web.app, base_url="http://127.0.0.1")
    other_csrf = sign_in(other, "vanquan-staff")
    assert other.post(f"/mobile-rounds/{round_id}/delete", data={"csrf_token": other_csrf},
                      follow_redirects=False).status_code == 404
    assert other.get(f"/mobile-rounds?organisation_id={PHULA}").status_code == 404
    assert f"round-{round_id}" not in other.get("/mobile-rounds").text
