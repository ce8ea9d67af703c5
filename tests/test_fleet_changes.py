"""Sites and screens made, changed, moved and retired through the API (issue 19, item 1): the fleet file's rules
with problem+json naming the field and its fix, the organisation scope (another unit's objects answer 404 on every
new route), who may, the audit log, plans that follow, and `signage fleet export` that has what the browser made."""

from __future__ import annotations

import json
from datetime import timedelta

import yaml
from sqlalchemy import func, select

from campaigns.models import AuditEntry, Screen, Site
from campaigns.revision import current_revision
from scheduler.models import DeliveryRollup, PublishedPlan
from scheduler.plan_store import newest_body
from scheduler.planning import plan_and_store
from scheduler.reports.build import make_scope
from scheduler.reports.compliance import screen_days
from scheduler.reports.operations import health_days, pop_log
from scheduler.reports.scope import Scope
from signage.db import transaction
from tests.test_cli import run
from tests.test_ledger import TUESDAY, VANQUAN, ledger  # noqa: F401

WARD = "hn-hadong-phula"
NEW_SITE = {"id": "phula-nha-van-hoa", "name": "Nhà văn hóa tổ dân phố 5", "kind": "office",
            "organisation_id": WARD, "address": "Ngõ 5 Phú La"}
NEW_SCREEN = {"id": "hn-hadong-phula-004", "site_id": "hadong-phula", "name": "Sảnh chờ – màn LCD 3",
              "kind": "lcd", "resolution": "1920x1080", "orientation": "landscape"}


def problem(answer, status: int) -> dict:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    return answer.json()


def audit(database, entity_id: str) -> list[tuple[str, str]]:
    with database.sessions() as session:
        return [(e.action, e.username) for e in session.scalars(
            select(AuditEntry).where(AuditEntry.entity_id == entity_id).order_by(AuditEntry.id))]


# -- create -----------------------------------------------------------------------------------------------


def test_ward_staff_add_a_site_and_a_screen_with_audit_entries(api, database):
    staff = api("phula-staff")
    site = staff.post("/api/v1/sites", json={**NEW_SITE, "timezone": None})
    assert site.status_code == 201, site.text
    assert site.json()["timezone"] == "Asia/Ho_Chi_Minh"  # the server's, as an import gives a site naming none
    assert (site.json()["kind"], site.json()["organisation_id"], site.json()["retired_at"]) == ("office", WARD, None)
    assert site.json()["operating_hours"] is None  # the kind's defaults
    assert site.json()["week"]["mon"]["peak"] == ["07:45-08:45", "11:30-13:30"]
    screen = staff.post("/api/v1/screens", json={**NEW_SCREEN, "site_id": NEW_SITE["id"]})
    assert screen.status_code == 201, screen.text
    assert (screen.json()["site_id"], screen.json()["resolution"], screen.json()["state"]["state"]) == (
        NEW_SITE["id"], "1920x1080", "never")
    assert audit(database, NEW_SITE["id"]) == [("site.create", "phula-staff")]
    assert audit(database, NEW_SCREEN["id"]) == [("screen.create", "phula-staff")]
    assert NEW_SCREEN["id"] in [s["id"] for s in staff.get("/api/v1/screens?limit=100").json()["items"]]


def test_a_screen_breaking_the_fleet_files_rules_is_refused_naming_the_field_and_the_fix(api):
    staff = api("phula-staff")
    body = problem(staff.post("/api/v1/screens", json={**NEW_SCREEN, "resolution": None}), 422)
    assert body["errors"] == [{"field": "", "problem": "a lcd screen needs its resolution",
                               "fix": "add e.g. resolution: 1920x1080"}]
    body = problem(staff.post("/api/v1/screens", json={**NEW_SCREEN, "resolution": "big"}), 422)
    assert body["errors"][0]["field"] == "resolution"
    assert "WIDTHxHEIGHT" in body["errors"][0]["fix"] and "WIDTHxHEIGHT" in body["detail"]
    body = problem(staff.post("/api/v1/screens", json={**NEW_SCREEN, "kind": "speaker"}), 422)
    assert body["errors"][0]["fix"] == "remove them from this screen"
    body = problem(staff.post("/api/v1/screens", json={**NEW_SCREEN, "id": "Màn 4"}), 422)
    assert body["errors"][0]["field"].endswith("id")


def test_a_site_whose_peaks_fall_outside_its_hours_is_refused_and_hours_are_the_heads(api):
    head = api("phula-head")
    body = problem(head.post("/api/v1/sites", json={**NEW_SITE, "operating_hours": {"daily": ["08:00-12:00"]},
                                                     "peak_windows": {"daily": ["13:00-14:00"]}}), 422)
    assert "outside" in body["detail"]
    assert problem(api("phula-staff").post("/api/v1/sites", json={
        **NEW_SITE, "peak_windows": {"daily": ["08:00-09:00"]}}), 403)["detail"].startswith("your role (staff)")
    answer = head.post("/api/v1/sites", json={**NEW_SITE, "peak_windows": {"mon-fri": ["08:00-09:00"]}})
    assert answer.status_code == 201 and answer.json()["peak_windows"] == {"mon-fri": ["08:00-09:00"]}


def test_a_taken_id_is_a_conflict_and_managers_change_nothing(api):
    assert problem(api("phula-staff").post("/api/v1/screens", json={**NEW_SCREEN, "id": "hn-hadong-phula-001"}),
                   409)["detail"].startswith("the screen id 'hn-hadong-phula-001' is taken")
    assert problem(api("phula-staff").post("/api/v1/sites", json={**NEW_SITE, "id": "hadong-phula"}), 409)
    problem(api("hadong-manager").post("/api/v1/sites", json=NEW_SITE), 403)
    problem(api("hadong-manager").post("/api/v1/screens", json=NEW_SCREEN), 403)
    problem(api("hadong-manager").patch("/api/v1/screens/hn-hadong-phula-001", json={"name": "X"}), 403)


# -- edit and move ----------------------------------------------------------------------------------------


def test_staff_edit_a_screen_and_the_planning_revision_moves(api, database):
    before = _revision(database)
    answer = api("phula-staff").patch("/api/v1/screens/hn-hadong-phula-002", json={
        "name": "Quầy một cửa", "orientation": "portrait", "resolution": "1080x1920", "enabled": False})
    assert answer.status_code == 200, answer.text
    assert {k: answer.json()[k] for k in ("name", "orientation", "resolution", "enabled")} == {
        "name": "Quầy một cửa", "orientation": "portrait", "resolution": "1080x1920", "enabled": False}
    assert _revision(database) > before
    with database.sessions() as session:
        (entry,) = session.scalars(select(AuditEntry).where(AuditEntry.entity_id == "hn-hadong-phula-002"))
    assert (entry.action, entry.before["name"], entry.after["name"]) == ("screen.update", "Khu tiếp dân – màn LCD 2",
                                                                         "Quầy một cửa")


def test_groups_of_units_above_keep_the_screen_when_staff_set_its_groups(api, database):
    staff = api("phula-staff")
    assert staff.post("/api/v1/groups", json={"id": "phula-desk", "name": "Quầy", "organisation_id": WARD}
                      ).status_code == 201
    answer = staff.patch("/api/v1/screens/hn-hadong-phula-001", json={"groups": ["phula-desk"]})
    assert answer.status_code == 200 and answer.json()["groups"] == ["phula-desk"]
    assert api("city-manager").get("/api/v1/screens/hn-hadong-phula-001").json()["groups"] == ["one-stop",
                                                                                                "phula-desk"]


def test_a_screen_moves_to_another_site_of_the_ward_and_is_planned_there(api, database, clock):
    with transaction(database.sessions) as session:
        plan_and_store(session, clock.now())
    with database.sessions() as session:
        before = json.loads(newest_body(session, "hn-hadong-phula-001"))
    staff = api("phula-staff")
    assert staff.post("/api/v1/sites", json=NEW_SITE).status_code == 201
    answer = staff.patch("/api/v1/screens/hn-hadong-phula-001", json={"site_id": NEW_SITE["id"]})
    assert answer.status_code == 200, answer.text
    assert (answer.json()["site_id"], answer.json()["site_kind"]) == (NEW_SITE["id"], "office")
    assert audit(database, "hn-hadong-phula-001") == [("screen.move", "phula-staff")]
    with transaction(database.sessions) as session:
        assert "hn-hadong-phula-001" in plan_and_store(session, clock.now()).changed
    with database.sessions() as session:
        after = json.loads(newest_body(session, "hn-hadong-phula-001"))
    # Planned by its new site's hours: an office's, no longer a ward office's.
    assert (after["operating_hours"], after["peak_windows"]) != (before["operating_hours"], before["peak_windows"])


def test_a_site_moves_to_another_unit_within_the_users_subtree(api, database):
    answer = api("hadong-staff").patch("/api/v1/sites/hadong-phula", json={"organisation_id": "hn-hadong-vanquan",
                                                                            "name": "Điểm tiếp dân (chuyển)"})
    assert answer.status_code == 200, answer.text
    assert (answer.json()["organisation_id"], answer.json()["name"]) == ("hn-hadong-vanquan",
                                                                         "Điểm tiếp dân (chuyển)")
    assert audit(database, "hadong-phula") == [("site.move", "hadong-staff")]
    # The ward's staff no longer see it: it is another unit's now.
    assert api("phula-staff").get("/api/v1/sites/hadong-phula").status_code == 404


def test_a_move_that_would_take_a_screen_out_of_its_groups_owner_is_refused(api):
    staff = api("phula-staff")
    assert staff.post("/api/v1/groups", json={"id": "phula-desk", "name": "Quầy", "organisation_id": WARD,
                                              "screens": ["hn-hadong-phula-001"]}).status_code == 201
    body = problem(api("hadong-staff").patch("/api/v1/screens/hn-hadong-phula-001",
                                             json={"site_id": "hadong-vanquan"}), 422)
    assert body["errors"][0]["field"] == "groups[1]"  # one-stop, the city's, still holds it; phula-desk would not
    assert "give the group to an organisation above both" in body["detail"]


def test_a_kind_change_is_checked_against_the_sites_own_hours(api):
    answer = api("phula-head").patch("/api/v1/sites/hadong-phula", json={"operating_hours": {"daily": ["07:00-17:00"]}})
    assert answer.status_code == 200, answer.text
    # A mall's default peaks run to 21:00, outside the hours this site keeps.
    body = problem(api("phula-staff").patch("/api/v1/sites/hadong-phula", json={"kind": "mall"}), 422)
    assert "outside" in body["detail"] and body["errors"][0]["fix"]
    assert api("phula-staff").patch("/api/v1/sites/hadong-phula", json={"kind": "office", "address": None}
                                    ).json()["kind"] == "office"


# -- retire -----------------------------------------------------------------------------------------------


def test_a_retired_screen_gets_no_new_plan_and_its_plays_stay_in_the_reports(ledger, api, clock):  # noqa: F811
    scope = Scope("hn-hadong-vanquan", "Phường Văn Quán", "/hn/hn-hadong/hn-hadong-vanquan/", TUESDAY, TUESDAY)
    with ledger.sessions() as session:
        plays = list(pop_log(session, scope))
        plans = session.scalar(select(func.count()).select_from(PublishedPlan)
                               .where(PublishedPlan.player_id == VANQUAN))
    assert len(plays) == 11 and plans >= 1

    answer = api("vanquan-staff").post(f"/api/v1/screens/{VANQUAN}/retire")
    assert answer.status_code == 200, answer.text
    assert answer.json()["retired_at"] is not None

    clock.advance(timedelta(days=1))  # a new day: every screen in service gets a new plan
    with transaction(ledger.sessions) as session:
        round_ = plan_and_store(session, clock.now())
    assert VANQUAN not in round_.result.player_ids
    with ledger.sessions() as session:
        assert session.scalar(select(func.count()).select_from(PublishedPlan)
                              .where(PublishedPlan.player_id == VANQUAN)) == plans
        assert len(list(pop_log(session, scope))) == 11
    assert api("vanquan-staff").get(f"/api/v1/screens/{VANQUAN}").status_code == 200  # its page stays
    listed = {flag: [s["id"] for s in api("vanquan-staff").get(f"/api/v1/screens?retired={flag}").json()["items"]]
              for flag in ("true", "false")}
    assert listed["true"] == [VANQUAN] and VANQUAN not in listed["false"]
    body = problem(api("vanquan-staff").patch(f"/api/v1/screens/{VANQUAN}", json={"name": "X"}), 409)
    assert "retired" in body["detail"]


def test_retiring_a_site_retires_its_screens_and_no_screen_is_added_there(api, database):
    staff = api("phula-staff")
    answer = staff.post("/api/v1/sites/hadong-phula/retire")
    assert answer.status_code == 200, answer.text
    assert answer.json()["retired_at"] is not None
    with database.sessions() as session:
        assert all(s.retired_at is not None for s in session.scalars(select(Screen).where(
            Screen.site_id == "hadong-phula")))
    assert [a for a, _ in audit(database, "hn-hadong-phula-001")] == ["screen.retire"]
    assert [a for a, _ in audit(database, "hadong-phula")] == ["site.retire"]
    body = problem(staff.post("/api/v1/screens", json=NEW_SCREEN), 422)
    assert body["errors"][0]["field"] == "site_id" and "retired" in body["detail"]


# -- the fleet file ---------------------------------------------------------------------------------------


def test_what_the_api_made_is_exported_and_imports_back_unchanged(api, cli_env, tmp_path):
    staff = api("phula-staff")
    assert staff.post("/api/v1/sites", json=NEW_SITE).status_code == 201
    assert staff.post("/api/v1/screens", json={**NEW_SCREEN, "site_id": NEW_SITE["id"]}).status_code == 201
    assert staff.post("/api/v1/screens/hn-hadong-phula-002/retire").status_code == 200
    exported = tmp_path / "fleet.yaml"
    assert run(cli_env, "fleet", "export", "--out", str(exported)).returncode == 0
    document = yaml.safe_load(exported.read_text(encoding="utf-8"))
    sites = {s["id"]: s for s in document["sites"]}
    screens = {s["id"]: s for s in document["screens"]}
    assert sites[NEW_SITE["id"]]["name"] == NEW_SITE["name"]
    assert screens[NEW_SCREEN["id"]]["site"] == NEW_SITE["id"]
    assert "retired_at" in screens["hn-hadong-phula-002"] and "retired_at" not in screens["hn-hadong-phula-001"]
    again = run(cli_env, "fleet", "import", str(exported), "--json")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["changed"] is False


# -- scope ------------------------------------------------------------------------------------------------


def test_another_wards_sites_and_screens_answer_404_on_every_new_route(api, database):
    requests = [
        ("POST", "/api/v1/sites", {**NEW_SITE, "organisation_id": "hn-hadong-vanquan"}),
        ("PATCH", "/api/v1/sites/hadong-vanquan", {"name": "Đổi tên"}),
        ("PATCH", "/api/v1/sites/hadong-phula", {"organisation_id": "hn-hadong-vanquan"}),
        ("POST", "/api/v1/sites/hadong-vanquan/retire", None),
        ("POST", "/api/v1/screens", {**NEW_SCREEN, "site_id": "hadong-vanquan"}),
        ("POST", "/api/v1/screens", {**NEW_SCREEN, "groups": ["vq-desk"]}),
        ("PATCH", "/api/v1/screens/hn-hadong-vanquan-001", {"name": "Đổi tên"}),
        ("PATCH", "/api/v1/screens/hn-hadong-phula-001", {"site_id": "hadong-vanquan"}),
        ("PATCH", "/api/v1/screens/hn-hadong-phula-001", {"groups": ["vq-desk"]}),
        ("POST", "/api/v1/screens/hn-hadong-vanquan-001/retire", None),
    ]
    assert api("vanquan-staff").post("/api/v1/groups", json={"id": "vq-desk", "name": "Quầy", "organisation_id":
                                                             "hn-hadong-vanquan"}).status_code == 201
    with database.sessions() as session:
        before = session.scalar(select(func.count()).select_from(AuditEntry))
    answers = {}
    for username in ("phula-head", "phula-staff"):
        client = api(username)
        for method, path, body in requests:
            answer = client.request(method, path, json=body)
            answers[(username, method, path, json.dumps(body))] = (answer.status_code,
                                                                   answer.headers["content-type"])
    assert {key: value for key, value in answers.items() if value != (404, "application/problem+json")} == {}
    with database.sessions() as session:
        assert session.scalar(select(func.count()).select_from(AuditEntry)) == before
        assert session.get(Site, "hadong-vanquan").retired_at is None


def _revision(database) -> int:
    with database.sessions() as session:
        return current_revision(session)


def test_a_retired_screen_counts_no_screen_days_after_its_retirement(ledger, api, clock):  # noqa: F811
    """Tuesday's plays stay; Wednesday, planned before the screen was retired, is no longer its screen-day."""
    wednesday = TUESDAY + timedelta(days=1)
    with transaction(ledger.sessions) as session:
        session.merge(DeliveryRollup(screen_id=VANQUAN, campaign_id="ihanoi-2024", local_date=wednesday,
                                     required=10, planned=10))

    def vanquan_days() -> list:
        with ledger.sessions() as session:
            scope = make_scope(session, "hn-hadong-vanquan", TUESDAY, wednesday, None, wednesday)
            return sorted(row["date"] for row in screen_days(session, scope) if row["screen_id"] == VANQUAN)

    assert vanquan_days() == [TUESDAY, wednesday]
    assert api("vanquan-staff").post(f"/api/v1/screens/{VANQUAN}/retire").status_code == 200  # on Tuesday
    assert vanquan_days() == [TUESDAY]
    with ledger.sessions() as session:
        scope = make_scope(session, "hn-hadong-vanquan", TUESDAY, wednesday, None, wednesday)
        assert {(r["date"], r["screen_id"]) for r in health_days(session, scope) if r["screen_id"] == VANQUAN} == {
            (TUESDAY, VANQUAN)}
