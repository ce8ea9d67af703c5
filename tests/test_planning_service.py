"""Planning from the database: the example fleet and campaign, stored plans, the lease, the jobs."""

import json
import threading
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from campaigns.campaign_file import import_campaigns
from campaigns.fleet_file import import_fleet
from campaigns.kinds import CampaignStatus, SiteKind
from campaigns.models import Campaign, FrequencyOverride, Screen
from campaigns.revision import current_revision
from media.store import MediaStore
from scheduler.capacity import import_campaigns_checked
from scheduler.jobs import PlanningService, start_jobs
from scheduler.models import PublishedPlan, RecordedShortfall
from scheduler.plan_inputs import load_planning_inputs
from scheduler.plan_store import newest_bodies, newest_versions
from scheduler.planner import plan_fleet
from signage.clock import VirtualClock
from signage.db import transaction
from tests.conftest import CAMPAIGN_FILE, FLEET_FILE

TZ = "Asia/Ho_Chi_Minh"
HANOI = ZoneInfo(TZ)


@pytest.fixture
def loaded(database, settings, clock):
    with transaction(database.sessions) as session:
        import_fleet(session, FLEET_FILE, TZ)
        import_campaigns(session, CAMPAIGN_FILE, MediaStore(settings.media_dir), clock, TZ)
    return database


def plan_days(database, first: date, days: int):
    with database.sessions() as session:
        inputs = load_planning_inputs(session)
    return plan_fleet(inputs.screens, inputs.campaigns, first, days, datetime(2024, 8, 1, tzinfo=UTC)), inputs


def spots_by_local_day(plan) -> dict[date, list]:
    days: dict[date, list] = {}
    for spot in plan.spots:
        days.setdefault(spot.start.astimezone(HANOI).date(), []).append(spot)
    return days


def test_ihanoi_gives_every_screen_ten_spots_a_day_in_its_peak_windows_until_the_end_date(loaded):
    # 9 and 10 October 2024 are a Wednesday and a Thursday; the campaign ends on the 10th.
    result, inputs = plan_days(loaded, date(2024, 10, 9), 3)
    overridden = {s.id for s in inputs.screens if s.organisation_path.startswith("/hn/hn-hadong/hn-hadong-phula/")}
    for screen in inputs.screens:
        plan = result.plans[screen.id]
        by_day = spots_by_local_day(plan)
        expected = 15 if screen.id in overridden else 10
        assert [len(by_day.get(date(2024, 10, d), [])) for d in (9, 10, 11)] == [expected, expected, 0], screen.id
        peaks = [(w.start, w.end) for w in plan.peak_windows]
        for spot in plan.spots:
            end = spot.start + timedelta(milliseconds=spot.duration_ms)
            assert any(start <= spot.start and end <= stop for start, stop in peaks), (screen.id, spot.start)


def test_a_ward_office_gets_nothing_on_sunday(loaded):
    result, inputs = plan_days(loaded, date(2024, 8, 24), 2)  # Saturday and Sunday
    wards = [s for s in inputs.screens if s.site_kind is SiteKind.ward_office and s.kind.value != "speaker"]
    assert wards
    for screen in wards:
        by_day = spots_by_local_day(result.plans[screen.id])
        assert date(2024, 8, 25) not in by_day


def test_a_head_of_units_override_to_15_applies_to_that_units_screens_only(loaded):
    result, inputs = plan_days(loaded, date(2024, 8, 20), 1)
    counts = {s.id: len(result.plans[s.id].spots) for s in inputs.screens}
    assert {counts[i] for i in counts if i.startswith("hn-hadong-phula-")} == {15}
    assert {counts[i] for i in counts if not i.startswith("hn-hadong-phula-")} == {10}


def test_speakers_get_only_the_audio_spot_and_screens_never_get_it(loaded):
    result, inputs = plan_days(loaded, date(2024, 8, 20), 1)
    for screen in inputs.screens:
        plan = result.plans[screen.id]
        mimes = {plan.media[spot.media].mime for spot in plan.spots}
        if screen.kind.value == "speaker":
            assert mimes == {"audio/mpeg"}
        else:
            assert mimes and not any(m.startswith("audio/") for m in mimes)


def test_any_change_to_what_the_planner_reads_moves_the_revision_and_a_repeat_import_does_not(loaded):
    with loaded.sessions() as session:
        before = current_revision(session)
    with transaction(loaded.sessions) as session:
        import_fleet(session, FLEET_FILE, TZ)
    with loaded.sessions() as session:
        assert current_revision(session) == before
    with transaction(loaded.sessions) as session:
        session.get(Screen, "hn-ga-hn-001").enabled = False
    with loaded.sessions() as session:
        assert current_revision(session) > before


def test_a_changed_override_stores_new_plans_only_for_the_players_it_touches(loaded, clock):
    service = PlanningService(loaded, clock, TZ)
    first = service.tick()
    assert len(first.changed) == len(first.result.player_ids) == 82
    assert service.tick() is None  # nothing changed: no new round
    with transaction(loaded.sessions) as session:
        override = session.scalars(select(FrequencyOverride)).one()
        override.plays_per_day = 12
    again = service.tick()
    assert again.changed == ["hn-hadong-phula-001", "hn-hadong-phula-002", "hn-hadong-phula-003"]
    with loaded.sessions() as session:
        assert session.scalar(select(func.count()).select_from(PublishedPlan)) == 85


def test_the_plans_to_publish_are_each_players_newest_and_players_without_one_are_left_out(loaded, clock):
    service = PlanningService(loaded, clock, TZ)
    service.tick()
    with transaction(loaded.sessions) as session:
        session.scalars(select(FrequencyOverride)).one().plays_per_day = 12
    service.tick()
    wanted = ["hn-hadong-phula-001", "hn-nb-t2-001", "no-such-screen"]
    with loaded.sessions() as session:
        bodies = newest_bodies(session, wanted)
        newest = newest_versions(session)
        versions = session.scalar(select(func.count()).select_from(PublishedPlan)
                                  .where(PublishedPlan.player_id == "hn-hadong-phula-001"))
    assert versions == 2 and set(bodies) == {"hn-hadong-phula-001", "hn-nb-t2-001"}
    for player_id, body in bodies.items():
        assert json.loads(body)["version"] == newest[player_id]


def test_stored_plans_carry_the_version_of_their_canonical_body(loaded, clock):
    PlanningService(loaded, clock, TZ).tick()
    with loaded.sessions() as session:
        stored = session.scalars(select(PublishedPlan).where(PublishedPlan.player_id == "hn-nb-t2-001")).one()
        assert newest_versions(session)["hn-nb-t2-001"] == stored.version
    body = json.loads(stored.body)
    assert body["version"] == stored.version and body["player_id"] == "hn-nb-t2-001"
    assert body["valid_from"] == "2024-08-20T00:00:00+07:00"
    assert body["valid_until"] == "2024-08-23T00:00:00+07:00"


def test_plans_roll_a_few_minutes_after_local_midnight(loaded):
    clock = VirtualClock(datetime(2024, 8, 20, 23, 50, tzinfo=HANOI))
    service = PlanningService(loaded, clock, TZ)
    assert service.tick().first_day == date(2024, 8, 20)
    clock.set(datetime(2024, 8, 21, 0, 2, tzinfo=HANOI))
    assert service.tick() is None
    clock.set(datetime(2024, 8, 21, 0, 6, tzinfo=HANOI))
    rolled = service.tick()
    assert rolled.first_day == date(2024, 8, 21)
    assert len(rolled.changed) == 82


def test_a_second_server_stands_by_until_the_first_lets_go_or_its_lease_runs_out(loaded, clock):
    first, second = PlanningService(loaded, clock, TZ), PlanningService(loaded, clock, TZ)
    assert first.tick() is not None
    assert second.tick() is None and not second.holding
    clock.advance(timedelta(seconds=10))
    assert first.holds_lease(clock.now())  # renewed
    clock.advance(timedelta(seconds=10))
    assert not second.holds_lease(clock.now())
    clock.advance(timedelta(seconds=16))  # the first stopped renewing: its lease ran out
    assert second.holds_lease(clock.now())
    assert not first.holds_lease(clock.now())
    second.stop()
    assert first.holds_lease(clock.now())


def test_campaign_statuses_follow_the_local_date(loaded):
    clock = VirtualClock(datetime(2024, 8, 14, 12, 0, tzinfo=HANOI))
    with transaction(loaded.sessions) as session:
        session.get(Campaign, "ihanoi-2024").status = CampaignStatus.scheduled
    service = PlanningService(loaded, clock, TZ)
    assert service.update_campaign_statuses() == []
    clock.set(datetime(2024, 8, 15, 0, 1, tzinfo=HANOI))
    assert service.update_campaign_statuses() == [("ihanoi-2024", CampaignStatus.active)]
    clock.set(datetime(2024, 10, 11, 0, 1, tzinfo=HANOI))
    assert service.update_campaign_statuses() == [("ihanoi-2024", CampaignStatus.ended)]


def test_the_jobs_replan_soon_after_a_change_made_elsewhere(loaded, clock):
    rounds, first, changed = [], threading.Event(), threading.Event()

    def seen(planned):
        rounds.append(planned)
        (changed if first.is_set() else first).set()

    service = PlanningService(loaded, clock, TZ, on_plans_changed=seen)
    jobs = start_jobs(service, TZ)
    try:
        assert {job.id for job in jobs.get_jobs()} == {"replan-on-change", "daily-roll", "campaign-status",
                                                     "close-ledger-days"}
        assert first.wait(timeout=10), "the jobs never planned"
        with transaction(loaded.sessions) as session:
            session.scalars(select(FrequencyOverride)).one().plays_per_day = 20
        assert changed.wait(timeout=10), "no re-plan after the change"
    finally:
        jobs.shutdown(wait=True)
        service.stop()
    assert rounds[-1].changed == ["hn-hadong-phula-001", "hn-hadong-phula-002", "hn-hadong-phula-003"]


def test_a_campaign_that_does_not_fit_is_refused_or_saved_with_its_shortfall_recorded(database, settings, tmp_path,
                                                                                       make_media, snapshot):
    clock = VirtualClock(datetime(2024, 8, 19, 1, 0, tzinfo=UTC))
    with transaction(database.sessions) as session:
        import_fleet(session, FLEET_FILE, TZ)
    make_media("clip.mp4", seconds=30)
    path = tmp_path / "heavy.yaml"
    path.write_text("""schema: signage.campaigns/1
campaigns:
  - id: heavy
    name: Quá tải
    organisation: hn-hadong-phula
    start_date: 2024-08-19
    end_date: 2024-08-20
    plays_per_day: 400
    creatives: [{file: media/clip.mp4}]
    targets: {sites: [hadong-phula]}
""", encoding="utf-8")
    store = MediaStore(settings.media_dir)
    before = snapshot()
    from campaigns.yaml_source import FileRejected

    with pytest.raises(FileRejected) as rejected, transaction(database.sessions) as session:
        import_campaigns_checked(session, path, store, clock, TZ)
    messages = [p.message for p in rejected.value.problems]
    assert any("at site hadong-phula on 2024-08-19" in m and "no capacity" in m for m in messages)
    assert snapshot() == before
    with transaction(database.sessions) as session:
        _, shortfalls = import_campaigns_checked(session, path, store, clock, TZ, allow_shortfall=True)
    with database.sessions() as session:
        recorded = session.scalars(select(RecordedShortfall).order_by(RecordedShortfall.date)).all()
    assert [(r.site_id, r.date, r.reason) for r in recorded] == [
        ("hadong-phula", date(2024, 8, 19), "no capacity"), ("hadong-phula", date(2024, 8, 20), "no capacity")]
    assert all(r.missing > 0 for r in recorded)
