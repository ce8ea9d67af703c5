"""Screens dark in their peak hours told to their units: statuses through the real ingest (the function the MQTT
bridge calls), time moved by the virtual clock, e-mails caught by a real SMTP server on 127.0.0.1 (aiosmtpd), on
both databases. Phú La's ward office: peak hours 08:00–11:00 and 14:00–16:30 on weekdays, open 07:30–17:00."""

from __future__ import annotations

import email
from datetime import UTC, datetime, timedelta
from email.header import decode_header, make_header

import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller
from sqlalchemy import select

from campaigns.accounts import create_user
from campaigns.models import User
from scheduler.ingest import ingest_status
from scheduler.jobs import PlanningService
from scheduler.models import Notice, ScreenOutage
from scheduler.notices import NoticeJob
from scheduler.outage_notices import outage_noter, recipients
from signage.db import transaction
from signage.protocol import Status
from tests.pg_server import free_port

LCD_1, LCD_2 = "hn-hadong-phula-001", "hn-hadong-phula-002"
VANQUAN = "hn-hadong-vanquan-001"
TOLD = {"manager@phula.example", "staff@phula.example"}


class Mailbox:
    """What the SMTP server received: (recipients, subject) per message."""

    def __init__(self) -> None:
        self.messages: list[tuple[tuple[str, ...], str]] = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's hook name
        message = email.message_from_bytes(envelope.content)
        self.messages.append((tuple(envelope.rcpt_tos), str(make_header(decode_header(message["Subject"])))))
        return "250 OK"


def mail_server(port: int) -> tuple[Controller, Mailbox]:
    box = Mailbox()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    return controller, box


@pytest.fixture
def smtp_port() -> int:
    return free_port()


@pytest.fixture
def notices(database, settings, clock, fleet, password_hash, smtp_port) -> NoticeJob:
    with transaction(database.sessions) as session:
        for username, role, organisation, address in (
                ("phula-manager", "manager", "hn-hadong-phula", "manager@phula.example"),
                ("phula-staff", "staff", "hn-hadong-phula", "staff@phula.example"),
                ("phula-head", "head", "hn-hadong-phula", "head@phula.example"),  # not one of those told
                ("hadong-manager", "manager", "hn-hadong", "manager@hadong.example"),  # the parent: not by default
                ("vanquan-manager", "manager", "hn-hadong-vanquan", "manager@vanquan.example")):
            user = create_user(session, username=username, full_name=username, role=role,
                               organisation_id=organisation, password_hash=password_hash, clock=clock)
            user.email = address
    configured = settings.model_copy(update={"smtp_host": "127.0.0.1", "smtp_port": smtp_port,
                                             "smtp_starttls": False, "offline_notice_minutes": 15})
    planning = PlanningService(database, clock, settings.timezone)
    return outage_job(database, clock, configured, planning.holds_lease)


def outage_job(database, clock, settings, holds_lease) -> NoticeJob:
    return NoticeJob(database, clock, settings, holds_lease, noters={"outages": outage_noter(settings)})


def hanoi(day: int, hour: int, minute: int = 0) -> datetime:
    """A local time in Hà Nội (UTC+7) in August 2024; the 20th is a Tuesday."""
    return datetime(2024, 8, day, hour, minute, tzinfo=UTC) - timedelta(hours=7)


def report(database, player_id: str, at: datetime, state: str = "online") -> None:
    status = Status(player_id=player_id, state=state, sent_at=at)
    with transaction(database.sessions) as session:
        assert ingest_status(session, player_id, status.model_dump_json().encode(), at)


def run_at(notices: NoticeJob, clock, at: datetime, online: tuple[str, ...] = ()) -> tuple[int, int, int]:
    """Moves the clock to `at`, the players of `online` report as they do every 30 s, then the job runs:
    (episodes opened, episodes closed, mails sent)."""
    clock.set(at)
    for player_id in online:
        report(notices.database, player_id, at)
    result = notices.run()
    return (*result["outages"], result["mailed"])


def test_a_player_stopped_in_its_peak_hours_is_mailed_once_to_its_unit_and_once_when_it_is_back(
        notices, database, clock, smtp_port):
    server, box = mail_server(smtp_port)
    try:
        both = (LCD_1, LCD_2)
        run_at(notices, clock, hanoi(20, 9, 58), online=both + (VANQUAN,))
        report(database, LCD_1, hanoi(20, 10, 1), state="offline")  # its Last Will: stopped at 10:01
        assert run_at(notices, clock, hanoi(20, 10, 10), online=(LCD_2, VANQUAN)) == (0, 0, 0)  # 9 minutes dark
        assert run_at(notices, clock, hanoi(20, 10, 16), online=(LCD_2, VANQUAN)) == (1, 0, 2)
        for minute in (17, 30, 45):  # still dark: nobody is told again
            assert run_at(notices, clock, hanoi(20, 10, minute), online=(LCD_2, VANQUAN)) == (0, 0, 0)
        assert {to for (to,), _ in box.messages} == TOLD and len(box.messages) == 2
        assert all(subject.startswith("Màn hình mất kết nối trong giờ cao điểm: Khu tiếp dân – màn LCD 1")
                   for _, subject in box.messages)

        assert run_at(notices, clock, hanoi(20, 10, 50), online=(LCD_1, LCD_2, VANQUAN)) == (0, 1, 2)  # restarted
        assert run_at(notices, clock, hanoi(20, 10, 55), online=(LCD_1, LCD_2, VANQUAN)) == (0, 0, 0)
        back = [(to, subject) for (to,), subject in box.messages[2:]]
        assert {to for to, _ in back} == TOLD and len(back) == 2
        assert all(subject.startswith("Màn hình đã hoạt động trở lại") for _, subject in back)

        # Outside the peak hours: LCD 2 stops at 11:05 (the morning's peak ended at 11:00), dark through lunch;
        # Văn Quán's screen stops after closing time and stays dark all night. Nobody is told.
        run_at(notices, clock, hanoi(20, 11, 5), online=(LCD_1, VANQUAN))
        for hour, minute in ((11, 30), (12, 45), (13, 50)):
            assert run_at(notices, clock, hanoi(20, hour, minute), online=(LCD_1, VANQUAN)) == (0, 0, 0)
        for hour, minute in ((13, 59), (14, 30), (16, 0), (16, 59)):  # all back for the afternoon's peak
            assert run_at(notices, clock, hanoi(20, hour, minute), online=both + (VANQUAN,)) == (0, 0, 0)
        for day, hour in ((20, 19), (20, 23), (21, 3), (21, 7)):
            assert run_at(notices, clock, hanoi(day, hour, 45), online=both) == (0, 0, 0)
        assert len(box.messages) == 4
    finally:
        server.stop()
    with database.sessions() as session:
        notes = session.execute(select(User.username, Notice.kind).join(User, User.id == Notice.user_id)
                                .order_by(Notice.id)).all()
        assert sorted(notes) == sorted([("phula-manager", "offline"), ("phula-staff", "offline"),
                                        ("phula-manager", "back_online"), ("phula-staff", "back_online")])
        [outage] = session.scalars(select(ScreenOutage)).all()
        assert (outage.screen_id, outage.dark_since, outage.ended_at) == (LCD_1, hanoi(20, 10, 1), hanoi(20, 10, 50))


def test_a_mail_server_that_is_down_keeps_the_notices_and_sends_each_once_when_it_is_back(
        notices, database, clock, smtp_port):
    run_at(notices, clock, hanoi(20, 8, 30), online=(LCD_1,))
    for minute in (50, 55):  # nobody listens on the port: the job goes on, the notices wait
        assert run_at(notices, clock, hanoi(20, 8, minute)) == ((1, 0, 0) if minute == 50 else (0, 0, 0))
    with database.sessions() as session:
        waiting = session.scalars(select(Notice).where(Notice.email_due.is_(True)).order_by(Notice.id)).all()
        assert len(waiting) == 2 and all(n.emailed_at is None for n in waiting)
        # A round stops at the first refusal (the rest would fail alike): the first notice tried in each round.
        assert [n.email_attempts for n in waiting] == [2, 0] and "Connection refused" in waiting[0].email_error
    server, box = mail_server(smtp_port)
    try:
        assert run_at(notices, clock, hanoi(20, 9, 0)) == (0, 0, 2)
        assert run_at(notices, clock, hanoi(20, 9, 1)) == (0, 0, 0)
    finally:
        server.stop()
    assert sorted(to for (to,), _ in box.messages) == sorted(TOLD)


def test_a_digest_user_gets_the_days_notices_in_one_mail_the_next_morning(notices, database, clock, smtp_port):
    with transaction(database.sessions) as session:
        session.scalar(select(User).where(User.username == "phula-staff")).notice_digest = True
    server, box = mail_server(smtp_port)
    try:
        run_at(notices, clock, hanoi(20, 8, 30), online=(LCD_1,))
        run_at(notices, clock, hanoi(20, 8, 50))  # told: the manager at once
        run_at(notices, clock, hanoi(20, 9, 30), online=(LCD_1,))  # back: the manager at once
        assert [to for (to,), _ in box.messages] == ["manager@phula.example"] * 2
        assert run_at(notices, clock, hanoi(21, 0, 10), online=(LCD_1,))[2] == 1  # the staff's digest
        assert run_at(notices, clock, hanoi(21, 0, 20), online=(LCD_1,))[2] == 0
    finally:
        server.stop()
    (to,), subject = box.messages[-1]
    assert to == "staff@phula.example" and subject == "Thông báo của hệ thống màn hình: 2 thông báo"


def test_the_parent_units_managers_are_told_only_when_the_setting_says_so(database, session, fleet, clock,
                                                                        password_hash):
    from campaigns.models import Site

    with transaction(database.sessions) as writer:
        for name, role, organisation in (("mgr1", "manager", "hn-hadong-phula"), ("mgr2", "manager", "hn-hadong"),
                                         ("stf3", "staff", "hn"), ("hed4", "head", "hn-hadong-phula")):
            create_user(writer, username=name, full_name=name, role=role, organisation_id=organisation,
                        password_hash=password_hash, clock=clock)
    site = session.get(Site, "hadong-phula")
    assert [u.username for u in recipients(session, site, include_parent=False)] == ["mgr1"]
    assert [u.username for u in recipients(session, site, include_parent=True)] == ["mgr1", "mgr2"]


def test_each_user_sees_their_own_notices_in_the_app_without_a_mail_server(app, api, web, database, settings,
                                                                         clock):
    from tests.conftest import sign_in

    planning = PlanningService(database, clock, settings.timezone)
    job = outage_job(database, clock, settings, planning.holds_lease)  # no SMTP_HOST: in the app only
    run_at(job, clock, hanoi(20, 8, 30), online=(LCD_1,))
    assert run_at(job, clock, hanoi(20, 8, 50)) == (1, 0, 0)
    staff, outsider = api("phula-staff"), api("vanquan-staff")
    [notice] = staff.get("/api/v1/notices").json()["items"]
    assert (notice["kind"], notice["screen_id"], notice["read_at"], notice["emailed_at"]) == (
        "offline", LCD_1, None, None)
    assert outsider.get("/api/v1/notices").json() == {"items": [], "total": 0, "limit": 50, "offset": 0}
    csrf = sign_in(web, "phula-staff")
    page = web.get("/notices").text
    assert "Khu tiếp dân – màn LCD 1 tại UBND phường Phú La" in page and "mất kết nối trong giờ cao điểm từ" in page
    assert 'class="unread"' in page
    assert web.post("/notices/read", data={"csrf_token": csrf}, follow_redirects=False).status_code == 303
    assert staff.get("/api/v1/notices").json()["items"][0]["read_at"] is not None


def test_users_set_where_their_notices_are_mailed_and_admins_set_it_for_their_users(api):
    staff, admin = api("phula-staff"), api("city-admin")
    answer = staff.patch("/api/v1/me", json={"email": "staff@phula.example", "notice_digest": True})
    assert answer.status_code == 200 and (answer.json()["email"], answer.json()["notice_digest"]) == (
        "staff@phula.example", True)
    refused = staff.patch("/api/v1/me", json={"email": "không phải địa chỉ"})
    assert refused.status_code == 422 and "email" in refused.text
    user_id = answer.json()["id"]
    changed = admin.patch(f"/api/v1/users/{user_id}", json={"email": ""}).json()
    assert (changed["email"], changed["notice_digest"]) == (None, True)


def test_a_retired_screen_raises_no_notice_and_retiring_a_dark_one_ends_its_episode_untold(
        notices, database, clock, smtp_port):
    from campaigns.models import Screen

    server, box = mail_server(smtp_port)
    try:
        run_at(notices, clock, hanoi(20, 8, 30), online=(LCD_1, LCD_2))
        assert run_at(notices, clock, hanoi(20, 8, 50)) == (2, 0, 4)  # both dark: the manager and the staff told
        with transaction(database.sessions) as session:
            session.get(Screen, LCD_1).retired_at = hanoi(20, 8, 55)
        assert run_at(notices, clock, hanoi(20, 9, 0)) == (0, 0, 0)  # LCD 1's episode ends, nobody told
        assert run_at(notices, clock, hanoi(20, 9, 30), online=(LCD_1, LCD_2)) == (0, 1, 2)  # only LCD 2's return
        with transaction(database.sessions) as session:
            session.get(Screen, LCD_2).retired_at = hanoi(20, 9, 31)
        assert run_at(notices, clock, hanoi(20, 10, 30), online=()) == (0, 0, 0)  # both dark again, both retired
    finally:
        server.stop()
    assert len(box.messages) == 6


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")  # 127.0.0.1, a test's own server
def test_the_mail_server_login_is_the_settings_and_a_wrong_password_keeps_the_notices(notices, clock, smtp_port):
    from aiosmtpd.smtp import AuthResult
    from pydantic import SecretStr

    logins = []

    def authenticator(server, session, envelope, mechanism, auth_data):
        logins.append((auth_data.login, auth_data.password))
        return AuthResult(success=auth_data.password == b"dung-mat-khau")

    box = Mailbox()
    server = Controller(box, hostname="127.0.0.1", port=smtp_port, authenticator=authenticator,
                        auth_require_tls=False, auth_required=True)
    server.start()
    try:
        notices.settings = notices.settings.model_copy(update={"smtp_user": "signage",
                                                               "smtp_password": SecretStr("sai-mat-khau")})
        run_at(notices, clock, hanoi(20, 8, 30), online=(LCD_1,))
        assert run_at(notices, clock, hanoi(20, 8, 50)) == (1, 0, 0) and box.messages == []
        notices.settings = notices.settings.model_copy(update={"smtp_password": SecretStr("dung-mat-khau")})
        assert run_at(notices, clock, hanoi(20, 8, 51)) == (0, 0, 2)
    finally:
        server.stop()
    assert logins[0] == (b"signage", b"sai-mat-khau") and logins[-1] == (b"signage", b"dung-mat-khau")
    assert sorted(to for (to,), _ in box.messages) == sorted(TOLD)


def test_the_command_line_creates_a_user_with_an_address_and_refuses_what_is_not_one(fleet, cli_env, database):
    import subprocess
    import sys
    from pathlib import Path

    def create(username: str, email: str) -> subprocess.CompletedProcess:
        command = [str(Path(sys.executable).parent / "signage"), "user", "create", username, "-o", "hn-hadong-phula",
                   "--role", "manager", "--email", email, "--password-stdin"]
        return subprocess.run(command, input="mat-khau-dai-du-10\n", capture_output=True, text=True, env=cli_env,
                              timeout=120)

    assert create("phula-manager", "manager@phula.example").returncode == 0
    refused = create("phula-other", "không phải địa chỉ")
    assert refused.returncode != 0 and "is not an e-mail address" in refused.stdout + refused.stderr
    with database.sessions() as session:
        assert session.scalar(select(User.email).where(User.username == "phula-manager")) == "manager@phula.example"
        assert session.scalar(select(User.id).where(User.username == "phula-other")) is None


def test_other_noters_tell_in_their_own_words_and_one_that_fails_keeps_no_one_else_back(
        notices, database, clock, smtp_port):
    from scheduler.notices import people_of, tell

    def broken(session, now):
        raise RuntimeError("a bug in one noter")

    def deadline(session, now):
        return tell(session, people_of(session, ["hn-hadong-phula"]), "round_due", now,
                    "Sắp đến hạn báo cáo: Báo cáo lần 1", "Hạn nộp 17:00 19/07/2024.", link="/rounds/1")

    job = NoticeJob(database, clock, notices.settings, notices.holds_lease,
                    noters={"broken": broken, "rounds": deadline})
    server, box = mail_server(smtp_port)
    try:
        clock.set(hanoi(20, 8, 0))
        assert job.run() == {"broken": None, "rounds": 2, "mailed": 2}
    finally:
        server.stop()
    assert sorted(to for (to,), _ in box.messages) == sorted(TOLD)
    assert {subject for _, subject in box.messages} == {"Sắp đến hạn báo cáo: Báo cáo lần 1"}
    with database.sessions() as session:
        made = session.scalars(select(Notice).where(Notice.kind == "round_due")).all()
    assert [(n.outage_id, n.link, n.emailed_at is not None) for n in made] == [(None, "/rounds/1", True)] * 2


def test_a_server_without_the_planning_lease_tells_nobody(database, clock, settings, fleet):
    made = []
    job = NoticeJob(database, clock, settings, lambda now: False, noters={"any": lambda s, now: made.append(now)})
    assert job.run() == {} and made == []


def test_notices_made_before_their_words_were_kept_get_them_on_migration(settings):
    from scheduler.database import migrate
    from signage.db import make_engine

    engine = make_engine(settings.resolved_database_url)
    migrate(engine, "0017")
    now = datetime(2024, 8, 20, 3, 0, tzinfo=UTC)
    rows = {
        "organisations": {"id": "hn", "name": "Hà Nội", "kind": "city", "path": "/hn/", "alerts_need_approval": False},
        "sites": {"id": "s1", "organisation_id": "hn", "name": "UBND phường Phú La", "kind": "ward_office",
                  "timezone": "Asia/Ho_Chi_Minh", "operating_hours": {}, "peak_windows": {}},
        "screens": {"id": "lcd-1", "site_id": "s1", "name": "Màn LCD 1", "kind": "lcd", "enabled": True},
        "users": {"id": 1, "username": "u", "full_name": "U", "role": "staff", "organisation_id": "hn",
                  "password_hash": "x", "active": True, "created_at": now, "notice_digest": False},
        "screen_outages": {"id": 1, "screen_id": "lcd-1", "dark_since": now, "noticed_at": now},
        "notices": {"id": 1, "user_id": 1, "outage_id": 1, "kind": "offline", "created_at": now,
                    "email_due": False, "email_attempts": 0},
    }
    metadata = sa.MetaData()
    metadata.reflect(engine)
    with engine.begin() as connection:
        for table, row in rows.items():
            connection.execute(metadata.tables[table].insert().values(**row))

    migrate(engine)

    with engine.connect() as connection:
        assert connection.execute(sa.text("SELECT subject, link FROM notices")).one() == (
            "Màn hình mất kết nối trong giờ cao điểm: Màn LCD 1 — UBND phường Phú La", "/screens/lcd-1")
    engine.dispose()
