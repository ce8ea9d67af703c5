"""Reporting rounds' reminders (scheduler/round_notices.py) through the notice job: 3 days and 1 day before the
deadline and once late, each once, to the units that have not submitted, e-mailed through a real SMTP server on
127.0.0.1; none after a unit submits. Both databases."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from campaigns.access import Actor
from campaigns.accounts import create_user
from campaigns.models import User
from campaigns.reporting_rounds import add_round, create_series, save_submission
from scheduler.models import Notice
from scheduler.notices import NoticeJob
from scheduler.round_notices import round_noter
from signage.db import transaction
from tests.pg_server import free_port
from tests.test_outage_notices import mail_server
from tests.test_reporting_rounds import BATRAI, BAVI, INSTALLS, ROUND_1, TANLINH, add_batrai, ihanoi_series

DEADLINE = ROUND_1.deadline


def test_units_are_reminded_once_each_stage_and_not_after_submitting(database, settings, clock, fleet,
                                                                     password_hash):
    with transaction(database.sessions) as session:
        add_batrai(session)
        users = {}
        for username, role, unit in (("bavi-manager", "manager", BAVI), ("tanlinh-staff", "staff", TANLINH),
                                     ("batrai-staff", "staff", BATRAI)):
            user = create_user(session, username=username, full_name=username, role=role, organisation_id=unit,
                               password_hash=password_hash, clock=clock)
            user.email = f"{username}@bavi.example"
            users[username] = user.id
        manager = session.get(User, users["bavi-manager"])
        actor = Actor(manager, manager.organisation.path, "token")
        create_series(session, actor, clock, BAVI, ihanoi_series())
        round_id = add_round(session, actor, clock, "ba-vi-ihanoi-2024", ROUND_1).id
    port = free_port()
    configured = settings.model_copy(update={"smtp_host": "127.0.0.1", "smtp_port": port, "smtp_starttls": False})
    job = NoticeJob(database, clock, configured, lambda now: True, noters={"rounds": round_noter(configured)})
    server, box = mail_server(port)
    try:
        clock.set(DEADLINE - timedelta(days=4))
        assert job.run()["rounds"] == 0
        clock.set(DEADLINE - timedelta(days=3))
        assert job.run() == {"rounds": 2, "mailed": 2}  # one person in each commune
        clock.advance(timedelta(minutes=1))
        assert job.run() == {"rounds": 0, "mailed": 0}  # once
        with transaction(database.sessions) as session:  # Tản Lĩnh submits
            staff = session.get(User, users["tanlinh-staff"])
            save_submission(session, Actor(staff, staff.organisation.path, "token"), clock, round_id,
                            {INSTALLS: 90}, submit=True)
        clock.set(DEADLINE - timedelta(hours=23))
        assert job.run() == {"rounds": 1, "mailed": 1}  # Ba Trại only
        clock.set(DEADLINE + timedelta(minutes=1))
        assert job.run() == {"rounds": 1, "mailed": 1}
        clock.advance(timedelta(days=1))
        assert job.run() == {"rounds": 0, "mailed": 0}
    finally:
        server.stop()
    assert sorted(box.messages) == sorted([
        (("batrai-staff@bavi.example",), "Sắp đến hạn báo cáo: Báo cáo lần 1"),
        (("tanlinh-staff@bavi.example",), "Sắp đến hạn báo cáo: Báo cáo lần 1"),
        (("batrai-staff@bavi.example",), "Sắp đến hạn báo cáo: Báo cáo lần 1"),
        (("batrai-staff@bavi.example",), "Quá hạn báo cáo: Báo cáo lần 1")])
    with database.sessions() as session:
        notices = session.scalars(select(Notice).where(Notice.user_id == users["batrai-staff"])
                                  .order_by(Notice.id)).all()
    assert [(n.kind, n.link) for n in notices] == [("round_due", f"/rounds/{round_id}")] * 2 + [
        ("round_late", f"/rounds/{round_id}")]
    assert "còn 3 ngày" in notices[0].body and "00:00 22/08/2024" in notices[0].body
    assert "đã quá hạn" in notices[2].body and f"/rounds/{round_id}" in notices[2].body
