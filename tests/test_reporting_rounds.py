"""Reporting rounds as plain functions (campaigns/reporting_rounds.py): Ba Vì's district office asks its communes
(Tản Lĩnh, and Ba Trại added here) for the iHanoi report in rounds with deadlines; who may see and do what; late by
the injected clock; typed values by their type and bounds; the figures from the reports; the totals. Both
databases."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import select

from campaigns.access import Actor
from campaigns.kinds import OrgKind, Role, SubmissionStatus
from campaigns.models import AuditEntry, Organisation, User
from campaigns.reporting_rounds import (
    RoundIn,
    SeriesIn,
    add_round,
    create_series,
    reminder_stage,
    review_submission,
    round_overview,
    rounds_for,
    save_submission,
    unit_view,
)
from signage.errors import Conflict, Invalid, NotAllowed, NotFound

BAVI, TANLINH, BATRAI = "hn-bavi", "hn-bavi-tanlinh", "hn-bavi-batrai"
# (username, role, unit): Ba Vì's office, its two communes, and a ward of another district.
BAVI_STAFF = [("bavi-manager", "manager", BAVI), ("bavi-staff", "staff", BAVI),
              ("tanlinh-staff", "staff", TANLINH), ("tanlinh-head", "head", TANLINH),
              ("batrai-staff", "staff", BATRAI), ("phula-staff", "staff", "hn-hadong-phula")]
INSTALLS = "staff_installed_percent"


def hanoi(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC) - timedelta(hours=7)


def add_batrai(session) -> None:
    """A second commune of Ba Vì (the example fleet has one), without screens."""
    session.add(Organisation(id=BATRAI, name="UBND xã Ba Trại", kind=OrgKind.commune, parent_id=BAVI,
                             path=f"/hn/{BAVI}/{BATRAI}/"))
    session.flush()


def ihanoi_series(needs_approval: bool = False) -> SeriesIn:
    return SeriesIn.model_validate({
        "id": "ba-vi-ihanoi-2024", "name": "Báo cáo triển khai ứng dụng iHanoi", "needs_approval": needs_approval,
        "fields": [
            {"key": "screens", "label": "Số màn hình", "figure": "screens"},
            {"key": "required_plays", "label": "Lượt phát yêu cầu", "figure": "required_plays"},
            {"key": "delivered_plays", "label": "Lượt phát đã phát", "figure": "delivered_plays"},
            {"key": "compliance", "label": "Tỷ lệ phát", "figure": "compliance"},
            {"key": "staff_total", "label": "Số cán bộ, viên chức", "kind": "integer", "minimum": 0},
            {"key": INSTALLS, "label": "Tỷ lệ cán bộ, viên chức đã cài đặt iHanoi (%)", "kind": "percent",
             "required": True},
            {"key": "notes", "label": "Ghi chú", "kind": "text"},
        ]})


ROUND_1 = RoundIn(name="Báo cáo lần 1", period_start=date(2024, 8, 1), period_end=date(2024, 8, 19),
                  deadline=hanoi(2024, 8, 22))


@pytest.fixture
def who(session, fleet, clock):
    add_batrai(session)
    session.add_all(User(username=name, full_name=name, role=Role(role), organisation_id=org, password_hash=None,
                         active=True, created_at=clock.now()) for name, role, org in BAVI_STAFF)
    session.flush()

    def actor(username: str) -> Actor:
        user = session.scalars(select(User).where(User.username == username)).one()
        return Actor(user, user.organisation.path, "token")

    return actor


@pytest.fixture
def round_id(session, who, clock) -> int:
    manager = who("bavi-manager")
    create_series(session, manager, clock, BAVI, ihanoi_series())
    return add_round(session, manager, clock, "ba-vi-ihanoi-2024", ROUND_1).id


def test_the_district_sees_each_commune_late_or_submitted_and_the_totals(session, who, clock, round_id):
    save_submission(session, who("tanlinh-staff"), clock, round_id,
                    {"staff_total": "40", INSTALLS: "92,5", "notes": "Đã phổ biến tại họp giao ban"}, submit=True)
    overview = round_overview(session, who("bavi-manager"), round_id, clock.now())
    assert [(u.name, u.state) for u in overview.units] == [("UBND xã Ba Trại", "not_due"),
                                                           ("UBND xã Tản Lĩnh", "submitted")]
    tanlinh = overview.units[1]
    assert tanlinh.values["staff_total"] == 40 and tanlinh.values[INSTALLS] == 92.5
    assert tanlinh.values["screens"] == 2  # Tản Lĩnh's screens in service, counted by the reports' query
    assert overview.totals["staff_total"] == 40 and overview.totals[INSTALLS] == 92.5
    assert overview.totals["screens"] == 2 and overview.counted == 1

    clock.set(hanoi(2024, 8, 22, 0, 1))  # past the deadline: Ba Trại is late
    overview = round_overview(session, who("bavi-manager"), round_id, clock.now())
    assert [u.state for u in overview.units] == ["late", "submitted"]
    save_submission(session, who("batrai-staff"), clock, round_id, {"staff_total": 10, INSTALLS: 50}, submit=True)
    overview = round_overview(session, who("bavi-manager"), round_id, clock.now())
    assert [(u.state, u.late_submission) for u in overview.units] == [("submitted", True), ("submitted", False)]
    assert overview.totals["staff_total"] == 50 and overview.totals[INSTALLS] == 71.2  # the mean of 92.5 and 50
    assert overview.totals["screens"] == 2  # Ba Trại holds none


def test_the_figures_are_the_reports_and_frozen_at_submission(session, who, clock, round_id):
    from scheduler.reports.build import make_scope
    from scheduler.reports.compliance import summarise

    view = unit_view(session, who("tanlinh-staff"), round_id, clock.now())
    scope = make_scope(session, TANLINH, ROUND_1.period_start, ROUND_1.period_end, None, clock.now().date())
    total = summarise(session, scope).total
    assert view.figures["required_plays"] == total.required and view.figures["delivered_plays"] == total.delivered
    assert set(view.figures) == {"screens", "required_plays", "delivered_plays", "compliance"}
    submitted = save_submission(session, who("tanlinh-staff"), clock, round_id, {INSTALLS: 100}, submit=True)
    assert submitted.figures == view.figures and submitted.status is SubmissionStatus.submitted


def test_a_commune_sees_its_own_submission_only_and_another_district_nothing(session, who, clock, round_id):
    save_submission(session, who("tanlinh-staff"), clock, round_id, {INSTALLS: 80}, submit=False)
    with pytest.raises(NotFound):  # Ba Trại asks for Tản Lĩnh's
        unit_view(session, who("batrai-staff"), round_id, clock.now(), organisation_id=TANLINH)
    with pytest.raises(NotFound):  # nor the district's overview
        round_overview(session, who("batrai-staff"), round_id, clock.now())
    assert unit_view(session, who("batrai-staff"), round_id, clock.now()).submission is None
    for doing in (lambda a: round_overview(session, a, round_id, clock.now()),
                  lambda a: unit_view(session, a, round_id, clock.now()),
                  lambda a: save_submission(session, a, clock, round_id, {INSTALLS: 1}, submit=True)):
        with pytest.raises(NotFound):
            doing(who("phula-staff"))
    assert rounds_for(session, who("phula-staff")) == []
    assert [r.id for r in rounds_for(session, who("batrai-staff"))] == [round_id]
    # the district sees Tản Lĩnh's draft
    assert unit_view(session, who("bavi-manager"), round_id, clock.now(), organisation_id=TANLINH
                     ).submission.values == {INSTALLS: 80}


def test_who_may_define_and_fill(session, who, clock, round_id):
    with pytest.raises(NotAllowed):
        add_round(session, who("bavi-staff"), clock, "ba-vi-ihanoi-2024", ROUND_1.model_copy(update={"name": "x"}))
    with pytest.raises(NotFound):  # a commune cannot ask its district's units
        create_series(session, who("tanlinh-head"), clock, BAVI, ihanoi_series().model_copy(update={"id": "other"}))
    with pytest.raises(NotAllowed):  # the district fills no commune's report
        save_submission(session, who("bavi-manager"), clock, round_id, {INSTALLS: 1}, submit=True)
    with pytest.raises(Conflict):
        add_round(session, who("bavi-manager"), clock, "ba-vi-ihanoi-2024", ROUND_1)


def test_submitting_twice_is_a_conflict_and_required_values_are_asked_for(session, who, clock, round_id):
    staff = who("tanlinh-staff")
    save_submission(session, staff, clock, round_id, {"notes": "nháp"}, submit=False)  # a draft may be partial
    with pytest.raises(Invalid, match="a value is required"):
        save_submission(session, staff, clock, round_id, {"notes": "nháp"}, submit=True)
    save_submission(session, staff, clock, round_id, {INSTALLS: 75}, submit=True)
    with pytest.raises(Conflict, match="already submitted"):
        save_submission(session, staff, clock, round_id, {INSTALLS: 76}, submit=True)
    actions = session.scalars(select(AuditEntry.action).where(AuditEntry.entity_kind == "round_submission")
                              .order_by(AuditEntry.id)).all()
    assert actions == ["save", "submit"]


@pytest.mark.parametrize(("values", "problem"), [
    ({INSTALLS: "101"}, "outside 0–100"),
    ({INSTALLS: "-1"}, "outside 0–100"),
    ({INSTALLS: 50, "staff_total": "4.5"}, "is not a whole number"),
    ({INSTALLS: 50, "staff_total": "-3"}, "outside 0–"),
    ({INSTALLS: "nhiều"}, "is not a number"),
    ({INSTALLS: 50, "screens": 99}, "no such field"),  # a figure is the system's, not typed
    ({INSTALLS: 50, "unknown": 1}, "no such field"),
    ({INSTALLS: 50, "notes": "x" * 2001}, "at most 2000"),
])
def test_typed_values_are_checked_by_their_type_and_bounds(session, who, clock, round_id, values, problem):
    with pytest.raises(Invalid, match=problem):
        save_submission(session, who("tanlinh-staff"), clock, round_id, values, submit=True)


def test_the_form_refuses_bad_fields():
    with pytest.raises(ValueError, match="within 0 and 100"):
        SeriesIn.model_validate({"id": "s1", "name": "x", "fields": [
            {"key": "p", "label": "p", "kind": "percent", "maximum": 120}]})
    with pytest.raises(ValueError, match="appear twice"):
        SeriesIn.model_validate({"id": "s1", "name": "x", "fields": [
            {"key": "p", "label": "p"}, {"key": "p", "label": "q"}]})
    with pytest.raises(ValueError, match="only integer, number and percent"):
        SeriesIn.model_validate({"id": "s1", "name": "x", "fields": [
            {"key": "p", "label": "p", "kind": "text", "minimum": 1}]})
    with pytest.raises(ValueError, match="before it starts"):
        RoundIn(name="r", period_start=date(2024, 8, 2), period_end=date(2024, 8, 1), deadline=hanoi(2024, 8, 3))


def test_with_approval_the_head_approves_or_returns(session, who, clock):
    manager = who("bavi-manager")
    create_series(session, manager, clock, BAVI, ihanoi_series(needs_approval=True))
    round_id = add_round(session, manager, clock, "ba-vi-ihanoi-2024", ROUND_1).id
    save_submission(session, who("tanlinh-staff"), clock, round_id, {INSTALLS: 60}, submit=True)
    assert round_overview(session, manager, round_id, clock.now()).counted == 0  # not approved yet
    with pytest.raises(NotAllowed):
        review_submission(session, who("tanlinh-staff"), clock, round_id, approve=True)
    with pytest.raises(Invalid, match="note is empty"):
        review_submission(session, who("tanlinh-head"), clock, round_id, approve=False)
    review_submission(session, who("tanlinh-head"), clock, round_id, approve=False, note="Sai tỷ lệ")
    save_submission(session, who("tanlinh-staff"), clock, round_id, {INSTALLS: 65}, submit=True)
    approved = review_submission(session, who("tanlinh-head"), clock, round_id, approve=True)
    assert approved.status is SubmissionStatus.approved and approved.approved_by == "tanlinh-head"
    overview = round_overview(session, manager, round_id, clock.now())
    assert overview.counted == 1 and overview.totals[INSTALLS] == 65


def test_reminder_stages():
    deadline = hanoi(2024, 7, 19)
    assert reminder_stage(deadline, deadline - timedelta(days=4)) is None
    assert reminder_stage(deadline, deadline - timedelta(days=3)) == "3_days"
    assert reminder_stage(deadline, deadline - timedelta(days=1, seconds=1)) == "3_days"
    assert reminder_stage(deadline, deadline - timedelta(days=1)) == "1_day"
    assert reminder_stage(deadline, deadline - timedelta(seconds=1)) == "1_day"
    assert reminder_stage(deadline, deadline) == "late"
    assert reminder_stage(deadline, deadline + timedelta(days=8)) is None


def test_mobile_loudspeaker_rounds_are_figures_from_their_own_progress(session, who, clock):
    from campaigns.mobile_rounds import PlanIn, mobile_round_progress, plan_rounds, record_round
    from campaigns.mobile_rounds import RoundIn as MobileRoundIn
    from scheduler.reports.round_figures import unit_figures

    plan_rounds(session, who("tanlinh-head"), clock, PlanIn(first_day=date(2024, 8, 19), last_day=date(2024, 8, 19),
                                                          peak_windows={"mon-sun": ["07:00-09:00"]}))
    record_round(session, who("tanlinh-staff"), clock, MobileRoundIn(
        started_at=hanoi(2024, 8, 19, 7, 30), duration_minutes=40, route="Thôn 1 → Thôn 4"))
    figures = unit_figures(session, BAVI, ROUND_1.period_start, ROUND_1.period_end, clock.now())
    progress = mobile_round_progress(session, [TANLINH], ROUND_1.period_start, ROUND_1.period_end)
    assert (figures["mobile_rounds_planned"], figures["mobile_rounds_done"]) == (progress.planned, progress.done)
    assert (progress.planned, progress.done) == (2, 1)
