"""The campaign workflow's rules, one per test, on the example fleet: drafts, media, targets, dates, frequency, the
capacity preview, submission, approval, edits of approved campaigns, archiving, frequency overrides, the audit log.

The clock stands at 10:00 in Hà Nội on Tuesday 20 August 2024."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from sqlalchemy import select

from campaigns import overrides, workflow
from campaigns.access import Actor
from campaigns.campaign_file import ProbedCreative, _store_media
from campaigns.fleet_file import ImportReport
from campaigns.kinds import CampaignStatus, Role
from campaigns.models import AuditEntry, Campaign, FrequencyOverride, User
from campaigns.revision import current_revision
from media.probe import probe
from media.store import MediaStore
from scheduler.models import RecordedShortfall
from scheduler.plan_inputs import load_planning_inputs
from signage.errors import Conflict, Invalid, NotAllowed, NotFound
from tests.conftest import STAFF

TZ = "Asia/Ho_Chi_Minh"


def add_to_library(session, settings, clock, path: Path, organisation: str) -> str:
    """A real file into the media store and library, by the campaign import's own code path."""
    probed = probe(path)
    sha = _store_media(session, MediaStore(settings.media_dir), ProbedCreative(path, probed, probed.duration_ms or 1),
                       organisation, clock.now(), ImportReport(path.name))
    session.flush()
    return sha


@pytest.fixture
def who(session, fleet, clock):
    """who('phula-staff') -> that user (of tests.conftest.STAFF) as the actor. Plain functions need no login, so
    the users have no password (hashing ten with argon2 would cost seconds per test)."""
    session.add_all(User(username=name, full_name=name, role=Role(role), organisation_id=org, password_hash=None,
                         active=True, created_at=clock.now()) for name, role, org in STAFF)
    session.flush()

    def actor(username: str) -> Actor:
        user = session.scalars(select(User).where(User.username == username)).one()
        return Actor(user, user.organisation.path, "token")

    return actor


@pytest.fixture
def clip(session, settings, clock, make_media) -> str:
    """A 20-second clip in Phú La's library (seen by Phú La, Hà Đông and the city)."""
    return add_to_library(session, settings, clock, make_media("clip.mp4", seconds=20), "hn-hadong-phula")


def draft(session, who, clock, username="phula-staff", **fields) -> Campaign:
    return workflow.create_draft(session, who(username), clock, TZ, **{"name": "Tuyên truyền iHanoi", **fields})


@pytest.fixture
def ready(session, who, clock, clip) -> str:
    """A complete draft of Phú La: the clip on its ward office's screens from tomorrow for ten days."""
    campaign = draft(session, who, clock, start_date=date(2024, 8, 21), end_date=date(2024, 8, 30))
    workflow.set_creatives(session, who("phula-staff"), clock, TZ, campaign.id, [(clip, None)])
    workflow.set_targets(session, who("phula-staff"), clock, TZ, campaign.id, {"sites": ["hadong-phula"]})
    return campaign.id


@pytest.fixture
def submitted(session, who, clock, ready) -> str:
    workflow.submit(session, who("phula-staff"), clock, TZ, ready)
    return ready


@pytest.fixture
def approved(session, who, clock, submitted) -> str:
    workflow.approve(session, who("phula-head"), clock, TZ, submitted)
    return submitted


@pytest.fixture
def city_campaign(session, who, clock, settings, make_media) -> str:
    """An approved campaign of the city on every screen of Hà Nội, 10 plays a day, running today."""
    sha = add_to_library(session, settings, clock, make_media("city.mp4", seconds=15), "hn")
    campaign = draft(session, who, clock, "city-staff", name="Thành phố", start_date=date(2024, 8, 20),
                     end_date=date(2024, 8, 31))
    workflow.set_creatives(session, who("city-staff"), clock, TZ, campaign.id, [(sha, None)])
    workflow.set_targets(session, who("city-staff"), clock, TZ, campaign.id, {"organisations": ["hn"]})
    workflow.submit(session, who("city-staff"), clock, TZ, campaign.id)
    workflow.approve(session, who("city-manager"), clock, TZ, campaign.id)
    return campaign.id


def audit(session, campaign_id: str) -> list[AuditEntry]:
    return list(session.scalars(select(AuditEntry).where(AuditEntry.entity_id == campaign_id)
                                .order_by(AuditEntry.id)))


# -- drafts -------------------------------------------------------------------------------------------------


def test_a_draft_gets_its_id_from_the_name_and_belongs_to_the_users_unit(session, who, clock):
    campaign = draft(session, who, clock, name="Tuyên truyền Đô thị văn minh 2024")
    assert (campaign.id, campaign.organisation_id) == ("tuyen-truyen-do-thi-van-minh-2024", "hn-hadong-phula")
    assert (campaign.status, campaign.created_by) == (CampaignStatus.draft, "phula-staff")


def test_a_draft_runs_for_a_month_from_today_until_its_dates_are_set(session, who, clock):
    campaign = draft(session, who, clock)
    assert (campaign.start_date, campaign.end_date) == (date(2024, 8, 20), date(2024, 9, 18))


def test_the_same_name_again_gets_the_next_free_id(session, who, clock):
    draft(session, who, clock)
    assert draft(session, who, clock).id == "tuyen-truyen-ihanoi-2"


def test_an_id_that_is_taken_is_refused(session, who, clock):
    draft(session, who, clock, campaign_id="ihanoi-phula")
    with pytest.raises(Conflict, match="'ihanoi-phula' is taken"):
        draft(session, who, clock, campaign_id="ihanoi-phula")


def test_a_district_may_create_a_campaign_owned_by_one_of_its_wards(session, who, clock):
    assert draft(session, who, clock, "hadong-staff", organisation_id="hn-hadong-phula").organisation_id == \
        "hn-hadong-phula"


def test_a_ward_may_not_create_a_campaign_for_another_ward(session, who, clock):
    with pytest.raises(NotFound):
        draft(session, who, clock, organisation_id="hn-hadong-vanquan")


def test_a_manager_may_not_create_campaigns(session, who, clock):
    with pytest.raises(NotAllowed, match="manager"):
        draft(session, who, clock, "hadong-manager")


def test_dates_that_end_before_they_start_are_refused_in_the_campaign_files_words(session, who, clock):
    campaign = draft(session, who, clock)
    with pytest.raises(Invalid, match=r"ends \(2024-08-22\) before it starts \(2024-08-25\)"):
        workflow.update_campaign(session, who("phula-staff"), clock, TZ, campaign.id,
                                 {"start_date": date(2024, 8, 25), "end_date": date(2024, 8, 22)})


def test_plays_per_day_keeps_the_campaign_files_bounds(session, who, clock):
    campaign = draft(session, who, clock)
    with pytest.raises(Invalid, match="plays_per_day"):
        workflow.update_campaign(session, who("phula-staff"), clock, TZ, campaign.id, {"plays_per_day": 0})


def test_explicit_windows_are_kept_as_campaign_files_write_them(session, who, clock):
    campaign = draft(session, who, clock)
    workflow.update_campaign(session, who("phula-staff"), clock, TZ, campaign.id, {
        "window": "explicit", "windows": {"mon": ["08:00-09:00"], "tue": ["08:00-09:00"]}})
    assert campaign.explicit_windows == {"mon-tue": ["08:00-09:00"]}


def test_windows_without_the_explicit_window_are_refused(session, who, clock):
    campaign = draft(session, who, clock)
    with pytest.raises(Invalid, match="windows: goes with window: explicit"):
        workflow.update_campaign(session, who("phula-staff"), clock, TZ, campaign.id,
                                 {"window": "peak", "windows": {"mon": ["08:00-09:00"]}})


def test_own_windows_that_name_no_time_are_refused(session, who, clock):
    campaign = draft(session, who, clock)
    with pytest.raises(Invalid, match="names none"):
        workflow.update_campaign(session, who("phula-staff"), clock, TZ, campaign.id,
                                 {"window": "explicit", "windows": {"mon": []}})


def test_a_campaign_ends_within_ten_years(session, who, clock):
    with pytest.raises(Invalid, match="more than 10 years from today"):
        draft(session, who, clock, start_date=date(9999, 12, 30))


def test_choosing_peak_hours_again_drops_the_explicit_windows(session, who, clock):
    campaign = draft(session, who, clock, window="explicit", windows={"daily": ["08:00-09:00"]})
    workflow.update_campaign(session, who("phula-staff"), clock, TZ, campaign.id, {"window": "peak"})
    assert campaign.explicit_windows is None


# -- media --------------------------------------------------------------------------------------------------


def test_an_image_shows_for_ten_seconds_unless_given_its_own_time(session, who, clock, settings, make_media):
    still = add_to_library(session, settings, clock, make_media("poster.png"), "hn-hadong-phula")
    campaign = draft(session, who, clock)
    workflow.set_creatives(session, who("phula-staff"), clock, TZ, campaign.id, [(still, None)])
    assert [c.duration_ms for c in campaign.creatives] == [10000]
    workflow.set_creatives(session, who("phula-staff"), clock, TZ, campaign.id, [(still, 15)])
    assert [c.duration_ms for c in campaign.creatives] == [15000]


def test_a_clip_plays_for_its_own_length_and_takes_no_display_time(session, who, clock, clip):
    campaign = draft(session, who, clock)
    with pytest.raises(Invalid, match="duration_s is for still images only"):
        workflow.set_creatives(session, who("phula-staff"), clock, TZ, campaign.id, [(clip, 12)])


def test_media_of_another_ward_cannot_be_used(session, who, clock, settings, make_media):
    theirs = add_to_library(session, settings, clock, make_media("vanquan.mp4"), "hn-hadong-vanquan")
    campaign = draft(session, who, clock)
    with pytest.raises(Invalid, match="no media .* within your organisation"):
        workflow.set_creatives(session, who("phula-staff"), clock, TZ, campaign.id, [(theirs, None)])


def test_audio_on_a_campaign_without_speakers_is_a_warning_not_an_error(session, who, clock, settings, make_media):
    sound = add_to_library(session, settings, clock, make_media("spot.mp3"), "hn-hadong-phula")
    campaign = draft(session, who, clock)
    workflow.set_creatives(session, who("phula-staff"), clock, TZ, campaign.id, [(sound, None)])
    workflow.set_targets(session, who("phula-staff"), clock, TZ, campaign.id, {"screens": ["hn-hadong-phula-001"]})
    warnings = workflow.campaign_warnings(campaign, workflow.campaign_screens(session, campaign))
    assert [w.code for w in warnings] == ["audio_without_speakers", "displays_without_picture"]


# -- targets ------------------------------------------------------------------------------------------------


def test_a_ward_cannot_target_another_wards_screen_and_is_told_what_to_target(session, who, clock):
    campaign = draft(session, who, clock)
    with pytest.raises(Invalid) as refused:
        workflow.set_targets(session, who("phula-staff"), clock, TZ, campaign.id,
                             {"screens": ["hn-hadong-phula-001", "hn-hadong-vanquan-001"]})
    assert "there is no screen 'hn-hadong-vanquan-001' within hn-hadong-phula" in refused.value.problem
    assert "target only screens of hn-hadong-phula" in refused.value.fix
    assert campaign.targets == []


def test_the_live_count_is_the_planners_targeting_within_the_owner(session, who):
    count = workflow.count_targets(session, who("hadong-staff"), None, {"organisations": ["hn-hadong"]})
    assert (count.organisation_id, count.screens, count.sites, count.speakers) == ("hn-hadong", 5, 3, 1)


def test_site_kinds_alone_narrow_the_owners_whole_subtree(session, who):
    count = workflow.count_targets(session, who("hadong-staff"), None, {"site_kinds": ["ward_office"]})
    assert (count.screens, count.sites) == (4, 2)


def test_targets_are_stored_as_the_campaign_import_stores_them(session, who, clock):
    campaign = draft(session, who, clock, "hadong-staff")
    workflow.set_targets(session, who("hadong-staff"), clock, TZ, campaign.id,
                         {"organisations": ["hn-hadong-vanquan"], "site_kinds": ["ward_office"],
                          "screens": ["hn-nt-bala-001"]})
    assert sorted((t.kind, t.ref) for t in campaign.targets) == [
        ("organisation", "hn-hadong-vanquan"), ("screen", "hn-nt-bala-001"), ("site_kind", "ward_office")]


# -- submission ---------------------------------------------------------------------------------------------


def test_a_draft_without_media_is_not_submitted(session, who, clock):
    campaign = draft(session, who, clock)
    with pytest.raises(Invalid, match="has no media"):
        workflow.submit(session, who("phula-staff"), clock, TZ, campaign.id)


def test_a_campaign_starting_before_today_is_not_submitted(session, who, clock, ready):
    workflow.update_campaign(session, who("phula-staff"), clock, TZ, ready, {"start_date": date(2024, 8, 19)})
    with pytest.raises(Invalid, match=r"starts on 2024-08-19, before today \(2024-08-20\)"):
        workflow.submit(session, who("phula-staff"), clock, TZ, ready)


def test_submitting_records_who_and_when(session, clock, submitted):
    campaign = session.get(Campaign, submitted)
    assert (campaign.status, campaign.submitted_by, campaign.submitted_at) == (
        CampaignStatus.submitted, "phula-staff", clock.now())


def test_a_submitted_campaign_is_not_changed_while_it_awaits_approval(session, who, clock, submitted):
    with pytest.raises(Conflict, match="awaits approval"):
        workflow.update_campaign(session, who("phula-staff"), clock, TZ, submitted, {"plays_per_day": 12})


# -- review -------------------------------------------------------------------------------------------------


def test_a_head_of_the_owning_unit_approves_and_the_campaign_is_scheduled(session, who, clock, submitted):
    campaign = workflow.approve(session, who("phula-head"), clock, TZ, submitted, "Đồng ý")
    assert (campaign.status, campaign.approved_by, campaign.review_note) == (
        CampaignStatus.scheduled, "phula-head", "Đồng ý")


def test_a_manager_of_the_district_above_may_approve(session, who, clock, submitted):
    assert workflow.approve(session, who("hadong-manager"), clock, TZ, submitted).status is CampaignStatus.scheduled


def test_approval_makes_a_campaign_active_when_today_is_within_its_dates(session, who, clock, ready):
    workflow.update_campaign(session, who("phula-staff"), clock, TZ, ready, {"start_date": date(2024, 8, 20)})
    workflow.submit(session, who("phula-staff"), clock, TZ, ready)
    assert workflow.approve(session, who("phula-head"), clock, TZ, ready).status is CampaignStatus.active


def test_staff_may_not_approve(session, who, clock, submitted):
    with pytest.raises(NotAllowed, match="staff"):
        workflow.approve(session, who("hadong-staff"), clock, TZ, submitted)


def test_a_head_of_another_ward_does_not_even_see_the_campaign(session, who, clock, submitted):
    with pytest.raises(NotFound):
        workflow.approve(session, who("vanquan-head"), clock, TZ, submitted)


def test_a_head_may_not_approve_what_they_submitted_themselves(session, who, clock, ready):
    workflow.submit(session, who("phula-head"), clock, TZ, ready)
    with pytest.raises(NotAllowed, match="you submitted this campaign yourself"):
        workflow.approve(session, who("phula-head"), clock, TZ, ready)


def test_an_admin_may_approve_their_own_submission(session, who, clock, ready):
    workflow.submit(session, who("city-admin"), clock, TZ, ready)
    assert workflow.approve(session, who("city-admin"), clock, TZ, ready).approved_by == "city-admin"


def test_a_rejection_needs_a_note(session, who, clock, submitted):
    with pytest.raises(Invalid, match="the note is empty"):
        workflow.reject(session, who("phula-head"), clock, submitted, "  ")


def test_a_rejection_returns_the_campaign_to_draft_with_its_note(session, who, clock, submitted):
    campaign = workflow.reject(session, who("phula-head"), clock, submitted, "Đổi ảnh")
    assert (campaign.status, campaign.review_note) == (CampaignStatus.draft, "Đổi ảnh")


def test_approval_records_what_the_planner_cannot_fit(session, who, clock, ready):
    workflow.update_campaign(session, who("phula-staff"), clock, TZ, ready,
                             {"plays_per_day": 600, "end_date": date(2024, 8, 22)})
    workflow.submit(session, who("phula-staff"), clock, TZ, ready)
    workflow.approve(session, who("phula-head"), clock, TZ, ready)
    recorded = session.scalars(select(RecordedShortfall).order_by(RecordedShortfall.date)).all()
    assert [(r.site_id, r.date) for r in recorded] == [("hadong-phula", date(2024, 8, 21)),
                                                        ("hadong-phula", date(2024, 8, 22))]


# -- the capacity preview -----------------------------------------------------------------------------------


def test_the_preview_counts_the_screens_hit_and_the_plays_they_take(session, who, clock, ready):
    preview = workflow.preview(session, who("phula-staff"), clock, TZ, ready)
    # The ward office has two displays and a speaker; a clip plays on the displays only.
    assert (preview.screens, preview.sites, preview.speakers, preview.plays_per_day, preview.spots_per_day) == (
        3, 1, 1, 10, 20)
    assert [w.code for w in preview.warnings] == ["speakers_without_audio"]
    assert preview.shortfalls == []


def test_the_preview_names_the_sites_and_days_that_cannot_fit(session, who, clock, ready):
    workflow.update_campaign(session, who("phula-staff"), clock, TZ, ready,
                             {"plays_per_day": 600, "end_date": date(2024, 8, 22)})
    preview = workflow.preview(session, who("phula-staff"), clock, TZ, ready)
    assert [(s.site_id, s.site_name[:10], s.date, s.screens) for s in preview.shortfalls] == [
        ("hadong-phula", "UBND phườn", date(2024, 8, 21), 2), ("hadong-phula", "UBND phườn", date(2024, 8, 22), 2)]
    assert all(s.missing > 0 for s in preview.shortfalls)


def test_the_preview_of_a_long_campaign_looks_a_year_ahead(session, who, clock, ready):
    workflow.update_campaign(session, who("phula-staff"), clock, TZ, ready, {"end_date": date(2030, 1, 1)})
    preview = workflow.preview(session, who("phula-staff"), clock, TZ, ready)
    assert (preview.first_day, preview.last_day, preview.runs_beyond) == (
        date(2024, 8, 21), date(2025, 8, 21), True)


def test_the_preview_needs_media_first(session, who, clock):
    campaign = draft(session, who, clock)
    with pytest.raises(Invalid, match="no media yet"):
        workflow.preview(session, who("phula-staff"), clock, TZ, campaign.id)


# -- approved campaigns: edits, archive ---------------------------------------------------------------------


def test_editing_an_approved_campaign_keeps_it_planned_and_moves_the_planning_revision(session, who, clock,
                                                                                       approved):
    session.commit()
    before = current_revision(session)
    campaign = workflow.update_campaign(session, who("phula-staff"), clock, TZ, approved,
                                        {"plays_per_day": 12, "start_date": date(2024, 8, 20)})
    session.flush()
    assert campaign.status is CampaignStatus.active
    assert current_revision(session) > before
    assert approved in {c.id for c in load_planning_inputs(session).campaigns}


def test_an_approved_campaign_may_not_end_before_today(session, who, clock, approved):
    with pytest.raises(Invalid, match="to stop it, set its end date to today"):
        workflow.update_campaign(session, who("phula-head"), clock, TZ, approved, {
            "start_date": date(2024, 8, 1), "end_date": date(2024, 8, 19)})


def test_the_media_of_an_approved_campaign_does_not_change(session, who, clock, approved, clip):
    with pytest.raises(Conflict, match="approval was for what it shows"):
        workflow.set_creatives(session, who("phula-staff"), clock, TZ, approved, [(clip, None)])


def test_a_scheduled_campaign_is_not_archived(session, who, clock, approved):
    with pytest.raises(Conflict, match="only drafts and ended ones are"):
        workflow.archive(session, who("phula-staff"), clock, approved)


def test_an_ended_campaign_is_archived_and_leaves_planning(session, who, clock, approved):
    session.get(Campaign, approved).status = CampaignStatus.ended  # as the daily job does after its last day
    workflow.archive(session, who("phula-staff"), clock, approved)
    assert session.get(Campaign, approved).status is CampaignStatus.archived
    assert approved not in {c.id for c in load_planning_inputs(session).campaigns}


# -- the audit log ------------------------------------------------------------------------------------------


def test_an_edit_is_audited_with_only_what_changed_before_and_after(session, who, clock, approved):
    workflow.update_campaign(session, who("phula-head"), clock, TZ, approved, {"plays_per_day": 12})
    entry = audit(session, approved)[-1]
    assert (entry.username, entry.action, entry.at) == ("phula-head", "campaign.update", clock.now())
    assert (entry.before, entry.after) == ({"plays_per_day": 10}, {"plays_per_day": 12})


def test_every_state_change_is_audited(session, approved):
    assert [(e.action, e.before and e.before.get("status"), e.after.get("status")) for e in audit(session, approved)
            if e.action in ("campaign.create", "campaign.submit", "campaign.approve")] == [
        ("campaign.create", None, "draft"), ("campaign.submit", "draft", "submitted"),
        ("campaign.approve", "submitted", "scheduled")]


def test_an_edit_that_changes_nothing_leaves_no_audit_entry(session, who, clock, ready):
    entries = len(audit(session, ready))
    workflow.set_targets(session, who("phula-staff"), clock, TZ, ready, {"sites": ["hadong-phula"]})
    assert len(audit(session, ready)) == entries


# -- higher units' campaigns and frequency overrides --------------------------------------------------------


def test_a_ward_sees_a_city_campaign_on_its_screens_but_does_not_own_it(session, who, clock, city_campaign):
    campaign, owned = workflow.find_campaign(session, who("phula-staff"), city_campaign)
    assert (campaign.id, owned) == (city_campaign, False)
    with pytest.raises(NotAllowed, match="a unit above yours"):
        workflow.update_campaign(session, who("phula-staff"), clock, TZ, city_campaign, {"plays_per_day": 3})


def test_a_ward_does_not_see_a_city_campaign_that_plays_elsewhere(session, who, clock, city_campaign):
    workflow.set_targets(session, who("city-staff"), clock, TZ, city_campaign, {"sites": ["ga-hn"]})
    with pytest.raises(NotFound):
        workflow.find_campaign(session, who("phula-staff"), city_campaign)


def test_a_head_raises_the_frequency_on_their_units_screens_with_a_reason(session, who, clock, city_campaign):
    row = overrides.set_override(session, who("phula-head"), clock, TZ, city_campaign,
                                 organisation_id="hn-hadong-phula", plays_per_day=15, reason="Thí điểm một cửa")
    assert (row.plays_per_day, row.set_by, row.set_at, row.reason) == (15, "phula-head", clock.now(),
                                                                       "Thí điểm một cửa")
    inputs = load_planning_inputs(session)
    (plan,) = [c for c in inputs.campaigns if c.id == city_campaign]
    rates = {s.id: plan.required_plays(s) for s in inputs.screens}
    assert (rates["hn-hadong-phula-001"], rates["hn-hadong-vanquan-001"]) == (15, 10)


def test_an_override_below_the_campaigns_own_rate_is_refused(session, who, clock, city_campaign):
    with pytest.raises(Invalid, match="an override of 8 plays a day is below the campaign's own 10"):
        overrides.set_override(session, who("phula-head"), clock, TZ, city_campaign,
                               organisation_id="hn-hadong-phula", plays_per_day=8, reason="Ít hơn")


def test_a_head_may_not_raise_the_frequency_on_another_wards_screens(session, who, clock, city_campaign):
    with pytest.raises(Invalid, match="no organisation 'hn-hadong-vanquan' within your unit hn-hadong-phula"):
        overrides.set_override(session, who("phula-head"), clock, TZ, city_campaign,
                               organisation_id="hn-hadong-vanquan", plays_per_day=15, reason="Không phải của tôi")


def test_an_override_needs_a_place_the_campaign_plays_on(session, who, clock, approved):
    with pytest.raises(Invalid, match="plays on no screen of the site 'nt-bala'"):
        overrides.set_override(session, who("hadong-head"), clock, TZ, approved, site_id="nt-bala",
                               plays_per_day=15, reason="Ngã ba Ba La")


def test_staff_may_not_set_overrides(session, who, clock, city_campaign):
    with pytest.raises(NotAllowed, match="head"):
        overrides.set_override(session, who("phula-staff"), clock, TZ, city_campaign,
                               organisation_id="hn-hadong-phula", plays_per_day=15, reason="Tăng")


def test_changing_an_override_is_audited_with_who_when_before_and_after(session, who, clock, city_campaign):
    overrides.set_override(session, who("phula-head"), clock, TZ, city_campaign, site_id="hadong-phula",
                           plays_per_day=15, reason="Thí điểm")
    overrides.set_override(session, who("hadong-head"), clock, TZ, city_campaign, site_id="hadong-phula",
                           plays_per_day=20, reason="Mở rộng")
    entry = audit(session, city_campaign)[-1]
    assert (entry.action, entry.username, entry.at, entry.organisation_id) == (
        "override.change", "hadong-head", clock.now(), "hn-hadong-phula")
    assert (entry.before["plays_per_day"], entry.before["set_by"], entry.after["plays_per_day"],
            entry.after["reason"]) == (15, "phula-head", 20, "Mở rộng")
    assert session.scalars(select(FrequencyOverride.plays_per_day)).all() == [20]


def test_removing_an_override_is_audited(session, who, clock, city_campaign):
    row = overrides.set_override(session, who("phula-head"), clock, TZ, city_campaign,
                                 organisation_id="hn-hadong-phula", plays_per_day=15, reason="Thí điểm")
    overrides.remove_override(session, who("phula-head"), clock, TZ, city_campaign, row.id)
    entry = audit(session, city_campaign)[-1]
    assert (entry.action, entry.before["plays_per_day"], entry.after) == ("override.remove", 15, None)
    assert session.scalars(select(FrequencyOverride)).all() == []


def test_raising_the_campaigns_rate_above_an_override_is_refused_until_the_override_goes(session, who, clock,
                                                                                          city_campaign):
    overrides.set_override(session, who("phula-head"), clock, TZ, city_campaign, organisation_id="hn-hadong-phula",
                           plays_per_day=15, reason="Thí điểm")
    with pytest.raises(Invalid, match="override of 15 plays a day would fall below the new rate of 20"):
        workflow.update_campaign(session, who("city-staff"), clock, TZ, city_campaign, {"plays_per_day": 20})


def test_a_ward_head_sees_only_their_units_overrides_of_a_city_campaign(session, who, clock, city_campaign):
    overrides.set_override(session, who("phula-head"), clock, TZ, city_campaign, organisation_id="hn-hadong-phula",
                           plays_per_day=15, reason="Phú La")
    overrides.set_override(session, who("vanquan-head"), clock, TZ, city_campaign,
                           organisation_id="hn-hadong-vanquan", plays_per_day=12, reason="Văn Quán")
    seen = session.scalars(overrides.overrides_query(session, who("vanquan-head"), city_campaign)).all()
    assert [o.reason for o in seen] == ["Văn Quán"]
