"""The message rhythm kept ahead of time (issue 21, item 2): a unit reminded a day before it goes late, its parent
told who is at risk, each unit's interval (its own, its ancestors', the setting), the cadence report on each unit's
interval, and regular messages as their own section. Time moved by the virtual clock; e-mails caught by a real SMTP
server on 127.0.0.1 (aiosmtpd); both databases.

Phú La and Văn Quán are wards of Hà Đông; dates are August 2024 in Hà Nội (UTC+7)."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest
import yaml
from sqlalchemy import select

from campaigns.fleet_file import export_fleet, import_fleet
from campaigns.kinds import AlertSeverity
from campaigns.models import Alert, AuditEntry, Organisation, User
from campaigns.yaml_source import FileRejected
from scheduler.models import Notice
from scheduler.notices import NoticeJob
from scheduler.reports.cadence import cadence_report
from scheduler.reports.scope import Scope
from scheduler.rhythm_notices import rhythm_noter
from signage.db import transaction
from tests.conftest import sign_in
from tests.pg_server import free_port
from tests.test_cadence_report import add, alert
from tests.test_outage_notices import mail_server

HANOI = ZoneInfo("Asia/Ho_Chi_Minh")
HADONG, PHULA, VANQUAN = "hn-hadong", "hn-hadong-phula", "hn-hadong-vanquan"
ADDRESSES = {"phula-staff": "staff@phula.example", "hadong-manager": "manager@hadong.example"}


def local(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2024, 8, day, hour, minute, tzinfo=HANOI)


@pytest.fixture
def smtp_port() -> int:
    return free_port()


@pytest.fixture
def job(database, settings, clock, staff, smtp_port) -> NoticeJob:
    """The notice job with the rhythm noter only, mailing through 127.0.0.1; the lease taken as held."""
    with transaction(database.sessions) as session:
        for user in session.scalars(select(User).where(User.username.in_(ADDRESSES))):
            user.email = ADDRESSES[user.username]
    configured = settings.model_copy(update={"smtp_host": "127.0.0.1", "smtp_port": smtp_port,
                                             "smtp_starttls": False})
    return NoticeJob(database, clock, configured, lambda now: True, noters={"rhythm": rhythm_noter(configured)})


def run_at(job: NoticeJob, clock, at: datetime) -> dict:
    clock.set(at)
    return job.run()


def told(database, username: str, kind: str = "rhythm_due") -> list[Notice]:
    with database.sessions() as session:
        return list(session.scalars(select(Notice).join(User, User.id == Notice.user_id).where(
            User.username == username, Notice.kind == kind).order_by(Notice.id)))


def cadence(database, now: datetime, organisation_id: str = PHULA) -> tuple[bool, str, datetime | None]:
    """(late, state, due by) of a unit in Hà Đông's cadence report from 1 August to `now`'s date."""
    scope = Scope(HADONG, "UBND quận Hà Đông", f"/hn/{HADONG}/", date(2024, 8, 1), now.date())
    with database.sessions() as session:
        rows = cadence_report(session, scope, now).sheets[0].rows
    row = next(row for row in rows if row["organisation_id"] == organisation_id)
    return row["is_late"], row["rhythm_state"], row["due_by"]


# -- the acceptance line ----------------------------------------------------------------------------------------

def test_a_unit_silent_for_two_days_is_reminded_by_mail_and_at_three_days_it_is_late(job, database, clock,
                                                                                      smtp_port):
    add(database, alert(PHULA, local(1, 10)))
    server, box = mail_server(smtp_port)
    try:
        run_at(job, clock, local(3, 9, 59))
        assert told(database, "phula-staff") == []
        run_at(job, clock, local(3, 10))  # 2 days without a message: a day before it goes late
        [notice] = told(database, "phula-staff")
        assert notice.subject == "Sắp đến hạn tin thường xuyên: UBND phường Phú La"
        assert "trước 10:00 04/08/2024" in notice.body and notice.link == "/messages"
        assert (("staff@phula.example",), notice.subject) in box.messages
        run_at(job, clock, local(3, 18))
        assert len(told(database, "phula-staff")) == 1  # once only
    finally:
        server.stop()
    assert [subject for to, subject in box.messages if to == ("staff@phula.example",)] == [notice.subject]
    assert cadence(database, local(4, 9)) == (False, "at_risk", local(4, 10))
    assert cadence(database, local(4, 10, 1))[:2] == (True, "late")  # over 3 days


def test_an_interval_of_two_days_reminds_after_one_and_is_late_after_two(job, api, database, clock):
    answer = api("phula-head").patch(f"/api/v1/organisations/{PHULA}", json={"message_interval_days": 2})
    assert answer.status_code == 200, answer.text
    assert answer.json()["message_interval_days"] == 2
    add(database, alert(PHULA, local(1, 10)))
    run_at(job, clock, local(2, 9, 59))
    assert told(database, "phula-staff") == []
    run_at(job, clock, local(2, 10))
    [notice] = told(database, "phula-staff")
    assert "trước 10:00 03/08/2024" in notice.body and "quy định 2 ngày một tin" in notice.body
    assert cadence(database, local(3, 9)) == (False, "at_risk", local(3, 10))
    assert cadence(database, local(3, 10, 1))[:2] == (True, "late")  # over 2 days, not 3


def test_the_server_setting_is_the_interval_of_units_that_set_none(database, fleet):
    add(database, alert(PHULA, local(1, 10)))
    scope = Scope(HADONG, "UBND quận Hà Đông", f"/hn/{HADONG}/", date(2024, 8, 1), date(2024, 8, 3))
    with database.sessions() as session:
        rows = cadence_report(session, scope, local(3, 12), message_interval_days=2).sheets[0].rows
    phula = next(row for row in rows if row["organisation_id"] == PHULA)
    assert (phula["interval_days"], phula["is_late"], phula["due_by"]) == (2, True, local(3, 10))


# -- the reminder ------------------------------------------------------------------------------------------------

def test_a_new_message_moves_the_due_date_and_the_next_reminder_with_it(job, database, clock):
    add(database, alert(PHULA, local(1, 10)))
    run_at(job, clock, local(3, 10))
    add(database, alert(PHULA, local(3, 20)))  # sent after the reminder: due 6 August 20:00 now
    run_at(job, clock, local(4, 10, 1))
    run_at(job, clock, local(5, 19, 59))
    assert len(told(database, "phula-staff")) == 1
    run_at(job, clock, local(5, 20))
    first, second = told(database, "phula-staff")
    assert "trước 20:00 06/08/2024" in second.body
    assert cadence(database, local(5, 21))[1:] == ("at_risk", local(6, 20))


def test_a_unit_that_never_sent_one_is_told_once_that_it_has_none(job, database, clock):
    run_at(job, clock, local(3, 10))
    run_at(job, clock, local(4, 10))
    [notice] = told(database, "phula-staff")
    assert notice.subject == "Chưa có tin thường xuyên: UBND phường Phú La"
    assert cadence(database, local(4, 10)) == (True, "late", None)


def test_a_unit_found_past_its_due_date_is_told_it_is_late(job, database, clock):
    add(database, alert(PHULA, local(1, 10)))
    run_at(job, clock, local(5, 10))  # the server was down when it went at risk
    [notice] = told(database, "phula-staff")
    assert notice.subject == "Đã quá hạn tin thường xuyên: UBND phường Phú La"


# -- the parent ----------------------------------------------------------------------------------------------------

def test_the_district_gets_one_morning_list_of_its_wards_at_risk_and_sees_them_on_its_page(job, web, database,
                                                                                            clock):
    add(database, alert(PHULA, local(1, 10)), alert(VANQUAN, local(1, 15)))
    run_at(job, clock, local(3, 16))  # both due on the 4th: at risk
    [notice] = told(database, "hadong-manager", "rhythm_at_risk")
    assert notice.subject == "2 đơn vị sắp đến hạn tin thường xuyên" and notice.link == "/messages"
    assert "UBND phường Phú La: hạn 10:00 04/08/2024" in notice.body
    assert "UBND phường Văn Quán: hạn 15:00 04/08/2024" in notice.body
    assert told(database, "phula-staff", "rhythm_at_risk") == []  # Phú La has no ward at risk below it
    run_at(job, clock, local(3, 17))
    run_at(job, clock, local(4, 6, 30))  # the next day, before the morning hour
    assert len(told(database, "hadong-manager", "rhythm_at_risk")) == 1
    run_at(job, clock, local(4, 8))
    assert len(told(database, "hadong-manager", "rhythm_at_risk")) == 2

    clock.set(local(4, 12))  # Phú La late now, Văn Quán still at risk, the district never sent one
    sign_in(web, "hadong-manager")
    page = web.get("/messages")
    assert page.status_code == 200 and "Tin thường xuyên" in page.text
    assert f'id="unit-{PHULA}" class="late"' in page.text
    assert f'id="unit-{VANQUAN}" class="at_risk"' in page.text and 'badge warn">Sắp đến hạn' in page.text
    assert f'id="unit-{HADONG}" class="late"' in page.text and 'badge bad">Quá hạn' in page.text
    rhythm = web.get("/api/v1/message-rhythm").json()
    assert {unit["organisation_id"]: unit["state"] for unit in rhythm}[VANQUAN] == "at_risk"


def test_a_ward_sees_only_its_own_rhythm(web, database, clock):
    clock.set(local(3, 12))
    sign_in(web, "phula-staff")
    page = web.get("/messages").text
    assert f'id="unit-{PHULA}"' in page and f'id="unit-{VANQUAN}"' not in page and f'id="unit-{HADONG}"' not in page
    assert 'id="interval-' not in page  # staff may not set the interval
    assert [unit["organisation_id"] for unit in web.get("/api/v1/message-rhythm").json()] == [PHULA]


# -- the interval --------------------------------------------------------------------------------------------------

def intervals(api, username: str) -> dict[str, tuple[int | None, int]]:
    return {unit["organisation_id"]: (unit["own_interval_days"], unit["interval_days"])
            for unit in api(username).get("/api/v1/message-rhythm").json()}


def test_a_unit_without_an_interval_takes_its_nearest_ancestors_then_the_setting(api, database):
    def patch(username: str, organisation_id: str, days: int | None) -> None:
        answer = api(username).patch(f"/api/v1/organisations/{organisation_id}",
                                     json={"message_interval_days": days})
        assert answer.status_code == 200, answer.text

    assert intervals(api, "phula-staff")[PHULA] == (None, 3)
    patch("city-admin", "hn", 10)
    patch("hadong-manager", HADONG, 5)
    assert intervals(api, "phula-staff")[PHULA] == (None, 5)
    patch("phula-head", PHULA, 2)
    assert intervals(api, "hadong-manager")[PHULA] == (2, 2) and intervals(api, "hadong-manager")[VANQUAN] == (None, 5)
    patch("phula-head", PHULA, None)
    patch("city-admin", HADONG, None)
    assert intervals(api, "phula-staff")[PHULA] == (None, 10)
    patch("city-admin", "hn", None)
    assert intervals(api, "phula-staff")[PHULA] == (None, 3)
    with database.sessions() as session:
        audit = session.scalars(select(AuditEntry).where(AuditEntry.action == "organisation.message_interval",
                                                         AuditEntry.entity_id == PHULA)).all()
    assert [(entry.username, entry.before, entry.after) for entry in audit] == [
        ("phula-head", {"message_interval_days": None}, {"message_interval_days": 2}),
        ("phula-head", {"message_interval_days": 2}, {"message_interval_days": None})]


def test_another_units_interval_is_not_found_and_the_bounds_are_kept(api, web):
    assert api("phula-head").patch(f"/api/v1/organisations/{VANQUAN}",
                                   json={"message_interval_days": 2}).status_code == 404
    assert api("phula-staff").patch(f"/api/v1/organisations/{PHULA}",
                                    json={"message_interval_days": 2}).status_code == 403
    for days in (0, 31):
        assert api("phula-head").patch(f"/api/v1/organisations/{PHULA}",
                                       json={"message_interval_days": days}).status_code == 422
    token = sign_in(web, "phula-head")

    def post(organisation_id: str, days: str):
        return web.post("/messages/interval", data={"csrf_token": token, "organisation_id": organisation_id,
                                                    "days": days}, follow_redirects=False)

    assert post(VANQUAN, "2").status_code == 404
    for days in ("0", "31", "hai"):
        answer = post(PHULA, days)
        assert answer.status_code == 422 and 'id="form-error"' in answer.text
    assert post(PHULA, "4").status_code == 303
    assert intervals(api, "phula-head")[PHULA] == (4, 4)
    assert post(PHULA, "").status_code == 303  # empty: inherit again
    assert intervals(api, "phula-head")[PHULA] == (None, 3)


# -- the section -----------------------------------------------------------------------------------------------------

def test_a_regular_message_written_on_its_page_is_an_info_alert_that_keeps_the_rhythm(web, database, clock):
    clock.set(local(3, 10))
    token = sign_in(web, "phula-staff")
    alerts = web.get("/alerts").text
    assert 'href="/messages"' in alerts and 'id="regular-messages-pointer"' in alerts  # the navigation's entry
    form = web.get("/messages/new")
    assert form.status_code == 200 and 'action="/messages/new"' in form.text
    assert 'id="severity-field"' not in form.text and 'name="severity" value="info"' in form.text
    answer = web.post("/messages/new", data={
        "csrf_token": token, "organisation_id": PHULA, "title": "Lịch tiêm chủng", "text": "Tiêm chủng tại trạm y tế",
        "severity": "urgent", "kind": "text", "start": "now", "duration": "60", "organisations": PHULA},
        follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"].startswith("/messages?done=created")
    with database.sessions() as session:
        [message] = session.scalars(select(Alert).where(Alert.organisation_id == PHULA)).all()
    assert message.severity is AlertSeverity.info  # a regular message, whatever the form said
    page = web.get("/messages?done=created").text
    assert f'id="message-{message.id}"' in page and f'id="unit-{PHULA}" class="on_track"' in page
    refused = web.post("/messages/new", data={"csrf_token": token, "organisation_id": PHULA, "title": "",
                                              "text": "x", "kind": "text", "start": "now", "duration": "60"})
    assert refused.status_code == 422 and 'action="/messages/new"' in refused.text


def test_the_fleet_file_sets_a_units_interval_and_exports_it_back(database, fleet, settings, tmp_path):
    with database.sessions() as session:
        document = yaml.safe_load(export_fleet(session))
    ward = next(org for org in document["organisations"] if org["id"] == VANQUAN)
    ward["message_interval_days"] = 2
    (tmp_path / "fleet.yaml").write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
    with transaction(database.sessions) as session:
        import_fleet(session, tmp_path / "fleet.yaml", settings.timezone)
    with database.sessions() as session:
        assert session.get(Organisation, VANQUAN).message_interval_days == 2
        exported = yaml.safe_load(export_fleet(session))
    assert next(org for org in exported["organisations"] if org["id"] == VANQUAN)["message_interval_days"] == 2
    assert "message_interval_days" not in next(org for org in exported["organisations"] if org["id"] == PHULA)
    ward["message_interval_days"] = 31
    (tmp_path / "fleet.yaml").write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
    with pytest.raises(FileRejected), transaction(database.sessions) as session:
        import_fleet(session, tmp_path / "fleet.yaml", settings.timezone)
