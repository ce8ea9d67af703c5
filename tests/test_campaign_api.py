"""The campaigns API (/api/v1/campaigns..., /api/v1/targets/count): the workflow over HTTP, scoped by organisation,
errors as problem+json, and an approval that ends in plans for the targeted screens."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from campaigns.revision import current_revision
from scheduler.jobs import PlanningService
from scheduler.models import PublishedPlan
from signage.db import transaction
from tests.test_campaign_workflow import TZ, add_to_library

HADONG_DISPLAYS = ["hn-hadong-phula-001", "hn-hadong-phula-002", "hn-hadong-vanquan-001", "hn-nt-bala-001"]


@pytest.fixture
def clip(database, settings, clock, make_media) -> str:
    """A 20-second clip in Phú La's library: Phú La, Hà Đông and the city see it, Văn Quán does not."""
    with transaction(database.sessions) as session:
        return add_to_library(session, settings, clock, make_media("clip.mp4", seconds=20), "hn-hadong-phula")


def make_campaign(client, clip: str, targets: dict, **fields) -> str:
    answer = client.post("/api/v1/campaigns", json={"name": "Tuyên truyền iHanoi", "start_date": "2024-08-21",
                                                    "end_date": "2024-08-31", **fields})
    assert answer.status_code == 201, answer.text
    campaign_id = answer.json()["id"]
    assert client.put(f"/api/v1/campaigns/{campaign_id}/creatives",
                      json={"creatives": [{"sha256": clip}]}).status_code == 200
    assert client.put(f"/api/v1/campaigns/{campaign_id}/targets", json=targets).status_code == 200
    return campaign_id


@pytest.fixture
def phula_campaign(api, clip) -> str:
    """A complete draft of Phú La, on its ward office, from tomorrow to the end of August."""
    return make_campaign(api("phula-staff"), clip, {"sites": ["hadong-phula"]})


@pytest.fixture
def city_campaign(api, clip) -> str:
    """An approved campaign of the city on every screen, running today."""
    staff = api("city-staff")
    campaign_id = make_campaign(staff, clip, {"organisations": ["hn"]}, name="Thành phố", start_date="2024-08-20")
    assert staff.post(f"/api/v1/campaigns/{campaign_id}/submit").status_code == 200
    assert api("city-manager").post(f"/api/v1/campaigns/{campaign_id}/approve").status_code == 200
    return campaign_id


def test_staff_create_a_draft_and_read_it_back_with_what_they_may_do(api):
    client = api("phula-staff")
    created = client.post("/api/v1/campaigns", json={"name": "Chuyển đổi số", "plays_per_day": 12})
    assert created.status_code == 201
    body = client.get(f"/api/v1/campaigns/{created.json()['id']}").json()
    assert (body["id"], body["organisation_id"], body["status"], body["plays_per_day"], body["owned"]) == (
        "chuyen-doi-so", "hn-hadong-phula", "draft", 12, True)
    assert body["actions"] == ["edit", "media", "submit", "archive"]


def test_a_campaign_from_draft_to_approval_gets_planned_on_the_screens_it_targets(api, clip, database, clock):
    staff, head = api("hadong-staff"), api("hadong-head")
    campaign_id = make_campaign(staff, clip, {"organisations": ["hn-hadong"]}, start_date="2024-08-20",
                                end_date="2024-08-25")
    preview = staff.post(f"/api/v1/campaigns/{campaign_id}/preview").json()
    assert (preview["screens"], preview["spots_per_day"], preview["shortfalls"]) == (5, 40, [])
    assert staff.post(f"/api/v1/campaigns/{campaign_id}/submit").json()["status"] == "submitted"
    with database.sessions() as session:
        revision = current_revision(session)

    approved = head.post(f"/api/v1/campaigns/{campaign_id}/approve", json={"note": "Đồng ý phát"})

    assert (approved.json()["status"], approved.json()["approved_by"]) == ("active", "hadong-head")
    with database.sessions() as session:
        assert current_revision(session) > revision
    PlanningService(database, clock, TZ).tick()
    with database.sessions() as session:
        plans = {p.player_id: json.loads(p.body) for p in session.scalars(select(PublishedPlan))}
    carrying = sorted(player for player, plan in plans.items()
                      if any(spot["campaign_id"] == campaign_id for spot in plan["spots"]))
    assert carrying == HADONG_DISPLAYS  # the ward office's speaker takes no clip


def test_a_user_of_another_ward_gets_404_for_the_campaign_through_every_endpoint(api, phula_campaign):
    path = f"/api/v1/campaigns/{phula_campaign}"
    calls = [("get", path, None), ("patch", path, {"plays_per_day": 12}),
             ("put", f"{path}/targets", {"sites": ["hadong-vanquan"]}), ("put", f"{path}/creatives", {"creatives": []}),
             ("post", f"{path}/preview", None), ("post", f"{path}/submit", None), ("post", f"{path}/approve", None),
             ("post", f"{path}/reject", {"note": "Không"}), ("post", f"{path}/archive", None),
             ("get", f"{path}/overrides", None), ("get", f"{path}/audit", None),
             ("post", f"{path}/overrides", {"organisation_id": "hn-hadong-vanquan", "plays_per_day": 20,
                                            "reason": "Tăng"}), ("delete", f"{path}/overrides/1", None)]
    for username in ("vanquan-staff", "vanquan-head"):
        client = api(username)
        for method, url, body in calls:
            answer = client.request(method, url, json=body)
            assert (answer.status_code, answer.headers["content-type"]) == (404, "application/problem+json"), \
                (username, method, url, answer.text)
        assert phula_campaign not in [c["id"] for c in client.get("/api/v1/campaigns").json()["items"]]


def test_targeting_another_wards_screen_is_refused_naming_the_screen_and_the_fix(api, phula_campaign):
    answer = api("phula-staff").put(f"/api/v1/campaigns/{phula_campaign}/targets",
                                    json={"screens": ["hn-hadong-vanquan-001"]})
    assert answer.status_code == 422
    detail = answer.json()["detail"]
    assert "there is no screen 'hn-hadong-vanquan-001' within hn-hadong-phula" in detail
    assert "target only screens of hn-hadong-phula" in detail


def test_the_live_count_tells_how_many_screens_a_targeting_hits(api):
    answer = api("hadong-staff").get("/api/v1/targets/count",
                                     params={"organisation_id": "hn-hadong", "organisations": ["hn-hadong"]})
    assert answer.json() == {"organisation_id": "hn-hadong", "screens": 5, "sites": 3, "speakers": 1}


def test_the_live_count_refuses_screens_outside_the_owner_and_owners_outside_the_user(api):
    client = api("phula-staff")
    outside = client.get("/api/v1/targets/count", params={"screens": ["hn-ga-hn-001"]})
    assert outside.status_code == 422 and "hn-ga-hn-001" in outside.json()["detail"]
    assert client.get("/api/v1/targets/count", params={"organisation_id": "hn-hadong-vanquan"}).status_code == 404


def test_the_list_filters_by_status_organisation_text_and_day(api, clip, phula_campaign, city_campaign):
    client = api("hadong-head")

    def ids(**params) -> list[str]:
        return sorted(c["id"] for c in client.get("/api/v1/campaigns", params=params).json()["items"])

    assert ids() == [city_campaign, phula_campaign]
    assert ids(status=["draft"]) == [phula_campaign]
    assert ids(organisation_id="hn-hadong-phula") == [phula_campaign]
    assert ids(q="thành") == [city_campaign]
    assert ids(active_on="2024-08-20") == [city_campaign]


def test_the_list_is_paginated(api, phula_campaign, city_campaign):
    page = api("phula-staff").get("/api/v1/campaigns", params={"limit": 1, "offset": 1}).json()
    assert (len(page["items"]), page["total"], page["limit"], page["offset"]) == (1, 2, 1, 1)


def test_a_manager_may_not_create_a_campaign(api):
    answer = api("hadong-manager").post("/api/v1/campaigns", json={"name": "Không được"})
    assert answer.status_code == 403 and "manager" in answer.json()["detail"]


def test_approving_ones_own_submission_is_forbidden(api, phula_campaign):
    head = api("phula-head")
    assert head.post(f"/api/v1/campaigns/{phula_campaign}/submit").status_code == 200
    answer = head.post(f"/api/v1/campaigns/{phula_campaign}/approve")
    assert answer.status_code == 403 and "you submitted this campaign yourself" in answer.json()["detail"]


def test_approving_a_draft_is_a_conflict_that_says_what_comes_first(api, phula_campaign):
    answer = api("phula-head").post(f"/api/v1/campaigns/{phula_campaign}/approve")
    assert answer.status_code == 409 and "staff submit it first" in answer.json()["detail"]


def test_a_value_against_the_campaign_files_rules_is_answered_422_with_the_field(api, phula_campaign):
    answer = api("phula-staff").patch(f"/api/v1/campaigns/{phula_campaign}", json={"plays_per_day": 0})
    assert answer.status_code == 422 and "plays_per_day" in answer.json()["detail"]


def test_a_higher_units_campaign_is_read_by_a_ward_but_only_raised(api, city_campaign):
    body = api("phula-head").get(f"/api/v1/campaigns/{city_campaign}").json()
    assert (body["owned"], body["actions"]) == (False, ["override"])


def test_a_head_raises_the_frequency_and_the_override_is_listed_and_audited(api, city_campaign):
    head = api("phula-head")
    answer = head.post(f"/api/v1/campaigns/{city_campaign}/overrides",
                       json={"organisation_id": "hn-hadong-phula", "plays_per_day": 15, "reason": "Thí điểm"})
    assert answer.status_code == 201
    assert [(o["organisation_id"], o["plays_per_day"], o["set_by"]) for o in
            head.get(f"/api/v1/campaigns/{city_campaign}/overrides").json()["items"]] == [
        ("hn-hadong-phula", 15, "phula-head")]
    (entry,) = head.get(f"/api/v1/campaigns/{city_campaign}/audit").json()["items"]
    assert (entry["action"], entry["username"], entry["before"], entry["after"]["plays_per_day"]) == (
        "override.set", "phula-head", None, 15)


def test_each_user_lists_a_campaign_as_its_own_page_shows_it_to_them(api, city_campaign, phula_campaign):
    # The list reads each page's overrides in one query (overrides.unit_rates); the page asks for its own.
    for head, unit in (("phula-head", "hn-hadong-phula"), ("vanquan-head", "hn-hadong-vanquan")):
        assert api(head).post(f"/api/v1/campaigns/{city_campaign}/overrides", json={
            "organisation_id": unit, "plays_per_day": 15, "reason": "Thí điểm"}).status_code == 201
    seen = {}
    for username in ("city-admin", "hadong-head", "phula-staff", "vanquan-staff"):
        client = api(username)
        items = client.get("/api/v1/campaigns").json()["items"]
        for item in items:
            detail = client.get(f"/api/v1/campaigns/{item['id']}").json()
            assert item == {key: detail[key] for key in item}, (username, item["id"])
        seen[username] = {item["id"]: (item["owned"], [o["organisation_id"] for o in item["overrides"]])
                          for item in items}
    both = ["hn-hadong-phula", "hn-hadong-vanquan"]
    assert seen == {
        "city-admin": {city_campaign: (True, both), phula_campaign: (True, [])},
        "hadong-head": {city_campaign: (False, both), phula_campaign: (True, [])},
        "phula-staff": {city_campaign: (False, ["hn-hadong-phula"]), phula_campaign: (True, [])},
        "vanquan-staff": {city_campaign: (False, ["hn-hadong-vanquan"])},
    }


def test_the_list_gives_each_unit_the_planners_rate_and_who_raised_it(api, city_campaign, database):
    from scheduler.plan_inputs import load_planning_inputs

    def rates(username: str) -> dict:
        (item,) = [c for c in api(username).get("/api/v1/campaigns").json()["items"] if c["id"] == city_campaign]
        return {r["place_name"]: (r["plays_per_day"], r["raised_by"], r["raised_by_name"], r["raised_for"])
                for r in item["rates"]}

    def planned(screen_id: str) -> int:  # the planner's own rate for the screen
        with database.sessions() as session:
            inputs = load_planning_inputs(session, campaign_ids={city_campaign})
        return inputs.campaigns[0].required_plays(next(s for s in inputs.screens if s.id == screen_id))

    for head, unit, plays in (("phula-head", "hn-hadong-phula", 15), ("hadong-head", "hn-hadong", 12)):
        assert api(head).post(f"/api/v1/campaigns/{city_campaign}/overrides", json={
            "organisation_id": unit, "plays_per_day": plays, "reason": "Thí điểm"}).status_code == 201
    phula, hadong = "UBND phường Phú La", "UBND quận Hà Đông"
    assert rates("city-admin") == {phula: (15, "phula-head", "Phula Head", phula),
                                   hadong: (12, "hadong-head", "Hadong Head", hadong)}
    assert planned("hn-hadong-phula-001") == 15 and planned("hn-hadong-vanquan-001") == 12
    # The district's head raises it above the ward's own: the ward's screens get the district's rate, from them.
    assert api("hadong-head").post(f"/api/v1/campaigns/{city_campaign}/overrides", json={
        "organisation_id": "hn-hadong", "plays_per_day": 20, "reason": "Cao điểm"}).status_code == 201
    assert rates("phula-staff") == {phula: (20, "hadong-head", "Hadong Head", hadong)}
    assert planned("hn-hadong-phula-001") == 20
    # A ward without an override of its own sees what its screens get from the district, not Phú La's.
    assert rates("vanquan-staff") == {hadong: (20, "hadong-head", "Hadong Head", hadong)}
    detail = api("phula-staff").get(f"/api/v1/campaigns/{city_campaign}").json()
    assert [(r["place_name"], r["plays_per_day"]) for r in detail["rates"]] == [(phula, 20)]


def test_an_override_below_the_campaigns_rate_is_refused(api, city_campaign):
    answer = api("phula-head").post(f"/api/v1/campaigns/{city_campaign}/overrides",
                                    json={"site_id": "hadong-phula", "plays_per_day": 5, "reason": "Giảm"})
    assert answer.status_code == 422 and "below the campaign's own 10" in answer.json()["detail"]


def test_the_campaigns_audit_trail_keeps_every_step_with_before_and_after(api, phula_campaign):
    entries = api("phula-staff").get(f"/api/v1/campaigns/{phula_campaign}/audit").json()["items"]
    assert [e["action"] for e in entries] == ["campaign.targets", "campaign.media", "campaign.create"]
    assert (entries[0]["before"], entries[0]["after"]["targets"]["sites"]) == (
        {"targets": {"groups": [], "organisations": [], "screens": [], "site_kinds": [], "sites": []}},
        ["hadong-phula"])
