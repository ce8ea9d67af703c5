"""The fleet API: organisations, sites with their peak windows, screens with their live state, groups; every
route scoped to the caller's organisation subtree."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import select

from campaigns.campaign_file import import_campaigns
from campaigns.kinds import CampaignStatus
from campaigns.models import AuditEntry, Campaign, CampaignTarget, Screen, Site
from campaigns.revision import current_revision
from media.store import MediaStore
from scheduler.ingest import ingest_status
from scheduler.models import PublishedPlan
from scheduler.plan_store import newest_body
from scheduler.planning import plan_and_store
from signage.db import transaction
from signage.protocol import Plan, Status
from tests.conftest import CAMPAIGN_FILE

TZ = "Asia/Ho_Chi_Minh"
PHULA_SCREENS = ["hn-hadong-phula-001", "hn-hadong-phula-002", "hn-hadong-phula-003"]


def report_status(database, player_id: str, at, state: str = "online", **fields) -> None:
    """A player's status as the MQTT bridge stores it: through the real ingest."""
    status = Status(player_id=player_id, state=state, sent_at=at, **fields)
    with transaction(database.sessions) as session:
        assert ingest_status(session, player_id, status.model_dump_json().encode(), at)


def audit_entries(database, entity_id: str) -> list[AuditEntry]:
    with database.sessions() as session:
        return list(session.scalars(select(AuditEntry).where(AuditEntry.entity_id == entity_id)
                                    .order_by(AuditEntry.id)))


def revision(database) -> int:
    with database.sessions() as session:
        return current_revision(session)


def ids(answer) -> list[str]:
    assert answer.status_code == 200, answer.text
    return [item["id"] for item in answer.json()["items"]]


# -- scope ------------------------------------------------------------------------------------------------


def test_another_wards_objects_answer_404_through_every_endpoint(api):
    vanquan = api("vanquan-staff")
    assert vanquan.post("/api/v1/groups", json={"id": "vq-desk", "name": "Quầy", "organisation_id":
                                                "hn-hadong-vanquan", "screens": ["hn-hadong-vanquan-001"]}
                        ).status_code == 201
    requests = [
        ("GET", "/api/v1/organisations/hn-hadong-vanquan", None),
        ("GET", "/api/v1/organisations?parent_id=hn-hadong", None),
        ("PATCH", "/api/v1/organisations/hn-hadong-vanquan", {"name": "Đổi tên"}),
        ("POST", "/api/v1/organisations", {"id": "hn-x", "name": "X", "kind": "ward",
                                           "parent_id": "hn-hadong-vanquan"}),
        ("GET", "/api/v1/sites/hadong-vanquan", None),
        ("GET", "/api/v1/sites?organisation_id=hn-hadong-vanquan", None),
        ("PATCH", "/api/v1/sites/hadong-vanquan", {"peak_windows": {"mon-fri": ["08:00-10:00"]}}),
        ("GET", "/api/v1/screens/hn-hadong-vanquan-001", None),
        ("GET", "/api/v1/screens?organisation_id=hn-hadong-vanquan", None),
        ("GET", "/api/v1/screens?site_id=hadong-vanquan", None),
        ("PATCH", "/api/v1/screens/hn-hadong-vanquan-001", {"name": "Đổi tên"}),
        ("GET", "/api/v1/groups/vq-desk", None),
        ("GET", "/api/v1/groups?organisation_id=hn-hadong-vanquan", None),
        ("GET", "/api/v1/groups?screen_id=hn-hadong-vanquan-001", None),
        ("POST", "/api/v1/groups", {"id": "pl-x", "name": "X", "organisation_id": "hn-hadong-vanquan"}),
        ("PATCH", "/api/v1/groups/vq-desk", {"name": "Đổi tên"}),
        ("DELETE", "/api/v1/groups/vq-desk", None),
    ]
    answers = {}
    for username in ("phula-head", "phula-staff"):
        client = api(username)
        for method, path, body in requests:
            answer = client.request(method, path, json=body)
            answers[(username, method, path)] = (answer.status_code, answer.headers["content-type"])
    assert {key: value for key, value in answers.items() if value != (404, "application/problem+json")} == {}


def test_a_ward_user_lists_only_the_wards_organisations_sites_screens_and_groups(api):
    client = api("phula-staff")
    assert ids(client.get("/api/v1/organisations")) == ["hn-hadong-phula"]
    assert ids(client.get("/api/v1/sites")) == ["hadong-phula"]
    assert ids(client.get("/api/v1/screens")) == PHULA_SCREENS
    assert ids(client.get("/api/v1/groups")) == []  # the one-stop group belongs to the city


def test_a_wards_screen_lists_only_the_groups_its_user_may_see(api):
    assert api("phula-staff").get("/api/v1/screens/hn-hadong-phula-001").json()["groups"] == []
    assert api("city-manager").get("/api/v1/screens/hn-hadong-phula-001").json()["groups"] == ["one-stop"]


def test_the_api_asks_for_a_sign_in(web):
    answer = web.get("/api/v1/screens")
    assert answer.status_code == 401 and answer.headers["content-type"] == "application/problem+json"


# -- organisations ----------------------------------------------------------------------------------------


def test_organisations_filter_by_kind_and_parent(api):
    client = api("city-manager")
    assert ids(client.get("/api/v1/organisations", params={"kind": "ward", "parent_id": "hn-hadong"})) == [
        "hn-hadong-phula", "hn-hadong-vanquan"]
    assert ids(client.get("/api/v1/organisations", params={"kind": "partner", "q": "noibai"})) == ["acv-noibai"]


def test_one_organisation_is_answered_with_its_parent_and_path(api):
    org = api("hadong-staff").get("/api/v1/organisations/hn-hadong-phula").json()
    assert (org["name"], org["kind"], org["parent_id"], org["path"]) == (
        "UBND phường Phú La", "ward", "hn-hadong", "/hn/hn-hadong/hn-hadong-phula/")


def test_an_admin_creates_an_organisation_inside_their_subtree_and_it_is_audited(api, database):
    answer = api("city-admin").post("/api/v1/organisations", json={
        "id": "hn-hadong-kienhung", "name": "UBND phường Kiến Hưng", "kind": "ward", "parent_id": "hn-hadong"})
    assert answer.status_code == 201, answer.text
    assert answer.json()["path"] == "/hn/hn-hadong/hn-hadong-kienhung/"
    assert "hn-hadong-kienhung" in ids(api("hadong-staff").get("/api/v1/organisations"))
    (entry,) = audit_entries(database, "hn-hadong-kienhung")
    assert (entry.username, entry.action, entry.before) == ("city-admin", "organisation.create", None)
    assert entry.after == {"name": "UBND phường Kiến Hưng", "kind": "ward", "parent_id": "hn-hadong"}


def test_only_admins_create_or_rename_organisations(api):
    body = {"id": "hn-hadong-kienhung", "name": "UBND phường Kiến Hưng", "kind": "ward", "parent_id": "hn-hadong"}
    assert api("city-staff").post("/api/v1/organisations", json=body).status_code == 403
    answer = api("hadong-head").patch("/api/v1/organisations/hn-hadong-phula", json={"name": "Phú La"})
    assert answer.status_code == 403 and "admin" in answer.json()["detail"]


def test_a_taken_organisation_id_is_refused_with_409(api):
    answer = api("city-admin").post("/api/v1/organisations", json={
        "id": "hn-bavi", "name": "Ba Vì", "kind": "district", "parent_id": "hn"})
    assert answer.status_code == 409 and "choose another" in answer.json()["detail"]


def test_an_admin_renames_an_organisation_and_the_old_name_is_kept_in_the_audit_log(api, database):
    answer = api("city-admin").patch("/api/v1/organisations/hn-hadong-phula", json={"name": "UBND phường Phú La (mới)"})
    assert answer.status_code == 200 and answer.json()["name"] == "UBND phường Phú La (mới)"
    (entry,) = audit_entries(database, "hn-hadong-phula")
    assert (entry.before["name"], entry.after["name"]) == ("UBND phường Phú La", "UBND phường Phú La (mới)")


# -- sites ------------------------------------------------------------------------------------------------


def test_sites_filter_by_organisation_subtree_kind_and_text(api):
    client = api("city-manager")
    assert ids(client.get("/api/v1/sites", params={"organisation_id": "hn-hadong", "kind": "ward_office"})) == [
        "hadong-phula", "hadong-vanquan"]
    assert ids(client.get("/api/v1/sites", params={"organisation_id": "hn-hadong"})) == [
        "nt-bala", "hadong-phula", "hadong-vanquan"]
    assert ids(client.get("/api/v1/sites", params={"q": "Nội Bài", "kind": "airport"})) == ["nb-t1", "nb-t2"]


def test_a_site_is_answered_with_its_effective_hours_for_each_weekday(api):
    site = api("phula-staff").get("/api/v1/sites/hadong-phula").json()
    assert site["peak_windows"] is None and site["operating_hours"] is None  # the ward office defaults
    assert site["week"]["mon"] == {"operating": ["07:30-17:00"], "peak": ["08:00-11:00", "14:00-16:30"]}
    assert site["week"]["sat"] == {"operating": ["07:30-11:30"], "peak": ["08:00-11:00"]}
    assert site["week"]["sun"] == {"operating": [], "peak": []}
    assert site["screens"] == 3


def test_a_head_of_unit_sets_a_sites_peak_windows_and_they_are_stored_as_the_fleet_file_would(api):
    answer = api("phula-head").patch("/api/v1/sites/hadong-phula", json={
        "peak_windows": {"daily": ["07:30-09:00"], "sat": ["08:00-10:00"], "sun": []}})
    assert answer.status_code == 200, answer.text
    site = answer.json()
    assert site["peak_windows"] == {"mon-fri": ["07:30-09:00"], "sat": ["08:00-10:00"]}
    assert site["week"]["tue"]["peak"] == ["07:30-09:00"]
    assert site["operating_hours"] is None


def test_a_change_of_hours_is_audited_with_before_and_after(api, database):
    api("phula-head").patch("/api/v1/sites/hadong-phula", json={"peak_windows": {"mon-fri": ["08:00-10:00"]}})
    (entry,) = audit_entries(database, "hadong-phula")
    assert (entry.username, entry.action, entry.entity_kind, entry.organisation_id) == (
        "phula-head", "site.hours", "site", "hn-hadong-phula")
    assert entry.before == {"operating_hours": None, "peak_windows": None}
    assert entry.after == {"operating_hours": None, "peak_windows": {"mon-fri": ["08:00-10:00"]}}


def test_null_resets_a_sites_windows_to_its_kinds_defaults(api, database):
    client = api("city-admin")
    assert client.get("/api/v1/sites/ga-hn").json()["peak_windows"] == {"daily": ["06:00-09:00", "18:00-22:30"]}
    answer = client.patch("/api/v1/sites/ga-hn", json={"peak_windows": None, "operating_hours": None})
    assert answer.status_code == 200
    assert answer.json()["peak_windows"] is None
    with database.sessions() as session:
        assert session.get(Site, "ga-hn").peak_windows is None


def test_a_peak_window_outside_operating_hours_is_refused_naming_the_day_and_the_fix(api, database):
    answer = api("phula-head").patch("/api/v1/sites/hadong-phula", json={
        "peak_windows": {"mon-fri": ["08:00-11:00"], "sat": ["06:00-08:00"]}})
    assert answer.status_code == 422
    assert answer.headers["content-type"] == "application/problem+json"
    (error,) = answer.json()["errors"]
    assert (error["field"], error["day"]) == ("peak_windows", "sat")
    assert "outside operating hours (07:30-11:30)" in error["problem"]
    assert "move it inside them or widen the operating hours" in error["fix"]
    assert audit_entries(database, "hadong-phula") == []


def test_a_window_that_is_not_hh_mm_is_refused_naming_the_day_spec(api):
    answer = api("phula-head").patch("/api/v1/sites/hadong-phula", json={
        "peak_windows": {"mon-fri": ["8h-11h"], "sat": ["08:00-11:00"]}})
    assert answer.status_code == 422
    (error,) = answer.json()["errors"]
    assert (error["field"], error["day"]) == ("peak_windows", "mon-fri")
    assert "HH:MM" in error["fix"]
    assert "peak_windows mon-fri" in answer.json()["detail"]


def test_overlapping_windows_are_refused(api):
    answer = api("phula-head").patch("/api/v1/sites/hadong-phula", json={
        "peak_windows": {"mon": ["08:00-10:00", "09:30-11:00"]}})
    assert answer.status_code == 422
    (error,) = answer.json()["errors"]
    assert error["day"] == "mon" and "overlap" in error["problem"] and "merge them" in error["fix"]


def test_narrowing_operating_hours_below_the_peak_windows_is_refused(api):
    answer = api("phula-head").patch("/api/v1/sites/hadong-phula", json={"operating_hours": {"mon-fri": ["09:00-17:00"],
                                                                                              "sat": ["07:30-11:30"]}})
    assert answer.status_code == 422
    assert {e["day"] for e in answer.json()["errors"]} == {"mon", "tue", "wed", "thu", "fri"}


def test_communications_staff_may_read_but_not_change_a_sites_hours(api):
    client = api("phula-staff")
    assert client.get("/api/v1/sites/hadong-phula").status_code == 200
    answer = client.patch("/api/v1/sites/hadong-phula", json={"peak_windows": {"mon-fri": ["08:00-10:00"]}})
    assert answer.status_code == 403 and "head" in answer.json()["detail"]


def test_a_district_head_changes_the_hours_of_a_ward_below_it(api):
    answer = api("hadong-head").patch("/api/v1/sites/hadong-vanquan",
                                      json={"peak_windows": {"mon-fri": ["08:00-10:00"]}})
    assert answer.status_code == 200


def test_changed_windows_move_the_planning_revision_and_the_next_plans_follow_them(api, database, settings, clock):
    with transaction(database.sessions) as session:
        import_campaigns(session, CAMPAIGN_FILE, MediaStore(settings.media_dir), clock, TZ)
        plan_and_store(session, clock.now())
    before = revision(database)
    answer = api("phula-head").patch("/api/v1/sites/hadong-phula", json={"peak_windows": {"mon-fri": ["09:00-10:00"],
                                                                                          "sat": ["08:00-11:00"]}})
    assert answer.status_code == 200
    assert revision(database) > before
    with transaction(database.sessions) as session:
        round_ = plan_and_store(session, clock.now())
        assert round_.changed == PHULA_SCREENS
        body = newest_body(session, "hn-hadong-phula-001")
    plan = Plan.model_validate_json(body)
    today = [w for w in plan.peak_windows if w.start.date() == date(2024, 8, 20)]
    assert [(w.start.strftime("%H:%M"), w.end.strftime("%H:%M")) for w in today] == [("09:00", "10:00")]


# -- screens ----------------------------------------------------------------------------------------------


def test_screens_filter_by_organisation_site_kind_screen_kind_and_text(api):
    client = api("city-manager")
    assert ids(client.get("/api/v1/screens", params={"organisation_id": "hn-hadong", "kind": "speaker"})) == [
        "hn-hadong-phula-003"]
    assert ids(client.get("/api/v1/screens", params={"site_id": "hadong-vanquan"})) == ["hn-hadong-vanquan-001"]
    airport = client.get("/api/v1/screens", params={"site_kind": "airport", "limit": 5}).json()
    assert airport["total"] == 17 and len(airport["items"]) == 5
    assert ids(client.get("/api/v1/screens", params={"q": "loa truyền thanh"})) == [
        "hn-bavi-tanlinh-002", "hn-dongda-vanmieu-002", "hn-hadong-phula-003", "hn-hoankiem-hangbac-003"]


def test_a_screen_that_never_reported_is_never_seen(api):
    state = api("phula-staff").get("/api/v1/screens/hn-hadong-phula-001").json()["state"]
    assert state["state"] == "never" and state["last_seen"] is None and state["plan_confirmed"] is None


def test_a_screens_state_comes_from_its_players_ingested_status(api, database, clock):
    report_status(database, "hn-hadong-phula-001", clock.now(), plan_version="a" * 64,
                  now_playing={"kind": "filler", "media": "b" * 64, "spot_id": None},
                  cache={"ready": 3, "missing": 1, "bytes": 4096}, journal_backlog=7, clock_offset_ms=-120,
                  software_version="0.4.0")
    state = api("phula-staff").get("/api/v1/screens/hn-hadong-phula-001").json()["state"]
    assert state["state"] == "online"
    assert state["plan_confirmed"] == "a" * 64
    assert state["now_playing"]["kind"] == "filler"
    assert state["cache"] == {"ready": 3, "missing": 1, "bytes": 4096}
    assert (state["journal_backlog"], state["clock_offset_ms"], state["software_version"]) == (7, -120, "0.4.0")
    assert state["last_seen"].startswith("2024-08-20T03:00:00")


def test_a_screen_silent_for_more_than_two_minutes_is_offline(api, database, clock):
    report_status(database, "hn-hadong-phula-001", clock.now())
    clock.advance(timedelta(minutes=2))
    assert api("phula-staff").get("/api/v1/screens/hn-hadong-phula-001").json()["state"]["state"] == "online"
    clock.advance(timedelta(seconds=1))
    assert api("phula-staff").get("/api/v1/screens/hn-hadong-phula-001").json()["state"]["state"] == "offline"


def test_a_players_last_will_makes_its_screen_offline_at_once(api, database, clock):
    report_status(database, "hn-hadong-phula-001", clock.now(), journal_backlog=2)
    report_status(database, "hn-hadong-phula-001", clock.now(), state="offline")
    state = api("phula-staff").get("/api/v1/screens/hn-hadong-phula-001").json()["state"]
    assert state["state"] == "offline" and state["journal_backlog"] == 2


def test_screens_filter_by_state(api, database, clock):
    report_status(database, "hn-hadong-phula-001", clock.now() - timedelta(minutes=10))
    report_status(database, "hn-hadong-phula-002", clock.now())
    client = api("phula-staff")
    assert ids(client.get("/api/v1/screens", params={"state": "online"})) == ["hn-hadong-phula-002"]
    assert ids(client.get("/api/v1/screens", params={"state": "offline"})) == ["hn-hadong-phula-001"]
    assert ids(client.get("/api/v1/screens", params={"state": "never"})) == ["hn-hadong-phula-003"]


def test_a_screen_is_current_when_it_confirms_the_newest_plan_it_was_sent(api, database, settings, clock):
    with transaction(database.sessions) as session:
        import_campaigns(session, CAMPAIGN_FILE, MediaStore(settings.media_dir), clock, TZ)
        plan_and_store(session, clock.now())
        sent = session.scalar(select(PublishedPlan.version).where(PublishedPlan.player_id == "hn-hadong-phula-001"))
    client = api("phula-staff")
    report_status(database, "hn-hadong-phula-001", clock.now(), plan_version="0" * 64)
    state = client.get("/api/v1/screens/hn-hadong-phula-001").json()["state"]
    assert (state["plan_sent"], state["plan_current"]) == (sent, False)
    report_status(database, "hn-hadong-phula-001", clock.now(), plan_version=sent)
    assert client.get("/api/v1/screens/hn-hadong-phula-001").json()["state"]["plan_current"] is True


def test_an_admin_renames_and_disables_a_screen_with_an_audit_entry_and_a_new_revision(api, database):
    before = revision(database)
    answer = api("city-admin").patch("/api/v1/screens/hn-ga-hn-004", json={"name": "Quầy vé", "enabled": False})
    assert answer.status_code == 200
    assert (answer.json()["name"], answer.json()["enabled"]) == ("Quầy vé", False)
    assert revision(database) > before
    (entry,) = audit_entries(database, "hn-ga-hn-004")
    assert (entry.action, entry.before["name"], entry.before["enabled"]) == ("screen.update", "Khu bán vé – màn LCD",
                                                                              True)
    assert (entry.after["name"], entry.after["enabled"]) == ("Quầy vé", False)


def test_staff_and_heads_change_their_units_screens_and_managers_do_not(api):
    # Who may: campaigns/fleet_changes.py (tests/test_fleet_changes.py has the rest).
    assert api("phula-head").patch("/api/v1/screens/hn-hadong-phula-001", json={"enabled": False}).status_code == 200
    assert api("phula-staff").patch("/api/v1/screens/hn-hadong-phula-001", json={"enabled": True}).status_code == 200
    assert api("hadong-manager").patch("/api/v1/screens/hn-hadong-phula-001", json={"name": "X"}).status_code == 403


# -- groups -----------------------------------------------------------------------------------------------


def test_staff_create_a_group_of_their_wards_screens_and_it_is_audited(api, database):
    answer = api("phula-staff").post("/api/v1/groups", json={
        "id": "phula-desk", "name": "Quầy tiếp dân", "organisation_id": "hn-hadong-phula",
        "screens": ["hn-hadong-phula-002", "hn-hadong-phula-001"]})
    assert answer.status_code == 201, answer.text
    assert answer.json()["screens"] == ["hn-hadong-phula-001", "hn-hadong-phula-002"]
    assert ids(api("phula-staff").get("/api/v1/groups")) == ["phula-desk"]
    (entry,) = audit_entries(database, "phula-desk")
    assert (entry.action, entry.after["screens"]) == ("group.create", ["hn-hadong-phula-001", "hn-hadong-phula-002"])


def test_another_wards_screen_cannot_be_put_in_a_group(api, database):
    answer = api("phula-staff").post("/api/v1/groups", json={
        "id": "phula-desk", "name": "Quầy", "organisation_id": "hn-hadong-phula",
        "screens": ["hn-hadong-phula-001", "hn-hadong-vanquan-001"]})
    assert answer.status_code == 404 and "hn-hadong-vanquan-001" in answer.json()["detail"]
    assert ids(api("city-manager").get("/api/v1/groups")) == ["nb-arrivals", "one-stop", "transerco-bx"]


def test_a_group_holds_only_screens_of_its_owners_subtree_even_for_a_user_who_sees_both(api):
    answer = api("hadong-staff").post("/api/v1/groups", json={
        "id": "phula-desk", "name": "Quầy", "organisation_id": "hn-hadong-phula",
        "screens": ["hn-hadong-vanquan-001"]})
    assert answer.status_code == 422
    assert "outside the group owner 'hn-hadong-phula'" in answer.json()["detail"]


def test_a_group_is_renamed_and_its_members_replaced(api, database):
    client = api("phula-staff")
    client.post("/api/v1/groups", json={"id": "phula-desk", "name": "Quầy", "organisation_id": "hn-hadong-phula",
                                        "screens": ["hn-hadong-phula-001"]})
    before = revision(database)
    answer = client.patch("/api/v1/groups/phula-desk", json={"name": "Quầy một cửa",
                                                              "screens": ["hn-hadong-phula-003"]})
    assert answer.status_code == 200
    assert (answer.json()["name"], answer.json()["screens"]) == ("Quầy một cửa", ["hn-hadong-phula-003"])
    assert revision(database) > before
    assert ids(client.get("/api/v1/groups", params={"screen_id": "hn-hadong-phula-003"})) == ["phula-desk"]
    assert [e.action for e in audit_entries(database, "phula-desk")] == ["group.create", "group.update"]


def test_a_group_is_deleted_and_the_deletion_audited(api, database):
    client = api("phula-staff")
    client.post("/api/v1/groups", json={"id": "phula-desk", "name": "Quầy", "organisation_id": "hn-hadong-phula",
                                        "screens": ["hn-hadong-phula-001"]})
    assert client.delete("/api/v1/groups/phula-desk").status_code == 204
    assert client.get("/api/v1/groups/phula-desk").status_code == 404
    (_, deleted) = audit_entries(database, "phula-desk")
    assert (deleted.action, deleted.before["screens"], deleted.after) == ("group.delete", ["hn-hadong-phula-001"], None)
    with database.sessions() as session:
        assert session.get(Screen, "hn-hadong-phula-001") is not None


def test_a_group_that_campaigns_target_is_not_deleted(api, database, clock):
    with transaction(database.sessions) as session:
        session.add(Campaign(id="one-stop-notice", organisation_id="hn", name="Thông báo", start_date=date(2024, 9, 1),
                             end_date=date(2024, 9, 30), status=CampaignStatus.draft, created_at=clock.now(),
                             updated_at=clock.now(), targets=[CampaignTarget(kind="group", ref="one-stop")]))
    answer = api("city-staff").delete("/api/v1/groups/one-stop")
    assert answer.status_code == 409 and "one-stop-notice" in answer.json()["detail"]
    assert api("city-staff").get("/api/v1/groups/one-stop").status_code == 200


def test_heads_and_managers_may_not_change_groups(api):
    body = {"id": "phula-desk", "name": "Quầy", "organisation_id": "hn-hadong-phula", "screens": []}
    assert api("phula-head").post("/api/v1/groups", json=body).status_code == 403
    assert api("city-manager").patch("/api/v1/groups/one-stop", json={"name": "X"}).status_code == 403


@pytest.mark.parametrize("body", [{"id": "Not A Slug", "name": "X", "organisation_id": "hn"},
                                  {"id": "ok-id", "name": "", "organisation_id": "hn"},
                                  {"id": "ok-id", "name": "X", "organisation_id": "hn", "colour": "red"}])
def test_a_malformed_group_is_refused_with_the_field_to_fix(api, body):
    answer = api("city-staff").post("/api/v1/groups", json=body)
    assert answer.status_code == 422 and answer.json()["errors"][0]["field"].startswith("body")



def test_a_sites_international_audience_is_set_through_the_api_and_null_gives_back_its_kinds_default(api, database):
    client = api("phula-staff")
    site = client.get("/api/v1/sites/hadong-phula").json()
    assert (site["international_audience"], site["plays_language_versions"]) == (None, False)
    answer = client.patch("/api/v1/sites/hadong-phula", json={"international_audience": True})
    assert answer.status_code == 200, answer.text
    assert (answer.json()["international_audience"], answer.json()["plays_language_versions"]) == (True, True)
    [entry] = audit_entries(database, "hadong-phula")
    assert (entry.before["international_audience"], entry.after["international_audience"]) == (None, True)
    answer = client.patch("/api/v1/sites/hadong-phula", json={"international_audience": None})
    assert (answer.json()["international_audience"], answer.json()["plays_language_versions"]) == (None, False)
    assert api("city-admin").get("/api/v1/sites/nb-t1").json()["plays_language_versions"] is True
    # Another unit's site answers 404, its audience unchanged.
    assert client.patch("/api/v1/sites/nb-t1", json={"international_audience": False}).status_code == 404
