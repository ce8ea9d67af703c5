"""Language versions of a creative (issue 21, item 6) through the stored campaign: added in the API and the wizard
(another unit's media is not found), shown on the campaign page, planned in turn at an airport, and counted as plays
of the one campaign: ten a day, half in each language, compliance 10 of 10."""

from __future__ import annotations

import json
import uuid
from collections import Counter
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import select

from campaigns.models import Site
from scheduler.ingest import ScreenDirectory, ingest_pop
from scheduler.ledger import close_days
from scheduler.models import DeliveryRollup
from scheduler.plan_store import newest_body
from scheduler.planning import plan_and_store
from scheduler.reports.compliance import summarise
from scheduler.reports.scope import Scope
from signage.db import transaction
from signage.protocol import Plan
from tests.conftest import sign_in
from tests.test_campaign_workflow import add_to_library
from tests.test_ledger import HANOI

TUESDAY = date(2024, 8, 20)
AIRPORT_SCREEN = "hn-nb-t1-003"  # Nội Bài T1, baggage claim: an LCD of 1920x1080


def poster(directory: Path, name: str, colour: str, size: tuple[int, int] = (1920, 1080)) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, colour).save(directory / name)
    return directory / name


@pytest.fixture
def posters(database, fleet, settings, clock, tmp_path) -> dict[str, str]:
    """Phú La's posters in Vietnamese and English, and one held by Văn Quán only."""
    with transaction(database.sessions) as session:
        return {name: add_to_library(session, settings, clock, poster(tmp_path / "media", f"{name}.png", colour), org)
                for name, colour, org in (("vi", "red", "hn-hadong-phula"), ("en", "blue", "hn-hadong-phula"),
                                          ("vanquan", "green", "hn-hadong-vanquan"))}


def draft(client, posters: dict[str, str], targets: dict | None = None, **fields) -> str:
    answer = client.post("/api/v1/campaigns", json={"name": "Chào mừng", "start_date": "2024-08-20",
                                                    "end_date": "2024-08-31", **fields})
    assert answer.status_code == 201, answer.text
    campaign_id = answer.json()["id"]
    assert client.put(f"/api/v1/campaigns/{campaign_id}/creatives", json={"creatives": [
        {"sha256": posters["vi"], "duration_s": 12, "language": "vi"}]}).status_code == 200
    assert client.put(f"/api/v1/campaigns/{campaign_id}/targets",
                      json=targets or {"sites": ["hadong-phula"]}).status_code == 200
    return campaign_id


def test_staff_add_a_version_in_english_through_the_api_and_keep_it_when_the_media_are_saved_again(api, posters):
    client = api("phula-staff")
    campaign_id = draft(client, posters)
    answer = client.post(f"/api/v1/campaigns/{campaign_id}/creatives/0/versions",
                         json={"sha256": posters["en"], "language": "EN"})
    assert answer.status_code == 201, answer.text
    creatives = [(c["position"], c["slot"], c["language"], c["sha256"], c["duration_ms"])
                 for c in answer.json()["creatives"]]
    # The version shows as long as the creative it is a version of.
    assert creatives == [(0, 0, "vi", posters["vi"], 12000), (1, 0, "en", posters["en"], 12000)]
    # The media saved again as they are (the wizard's media step does so): still versions of one creative.
    again = client.put(f"/api/v1/campaigns/{campaign_id}/creatives", json={"creatives": [
        {"sha256": posters["vi"], "duration_s": 12}, {"sha256": posters["en"], "duration_s": 12}]})
    assert [(c["slot"], c["language"]) for c in again.json()["creatives"]] == [(0, "vi"), (0, "en")]
    audit = client.get(f"/api/v1/campaigns/{campaign_id}/audit").json()["items"]
    added = next(e for e in audit if e["action"] == "campaign.media" and len(e["after"]["creatives"]) == 2)
    assert added["after"]["creatives"][1] == {"media": posters["en"], "duration_ms": 12000, "slot": 0,
                                              "language": "en"}


def test_another_units_media_or_campaign_is_not_found_and_a_word_is_no_language(api, posters):
    client = api("phula-staff")
    campaign_id = draft(client, posters)
    versions = f"/api/v1/campaigns/{campaign_id}/creatives/0/versions"
    refused = client.post(versions, json={"sha256": posters["vanquan"], "language": "en"})
    assert refused.status_code == 404
    assert refused.headers["content-type"].startswith("application/problem+json")
    assert api("vanquan-staff").post(versions, json={"sha256": posters["vanquan"], "language": "en"}).status_code \
        == 404
    assert client.post(f"/api/v1/campaigns/{campaign_id}/creatives/7/versions",
                       json={"sha256": posters["en"], "language": "en"}).status_code == 404
    wrong = client.post(versions, json={"sha256": posters["en"], "language": "english"})
    assert wrong.status_code == 422 and "language code" in wrong.text
    assert client.post(versions, json={"sha256": posters["vi"], "language": "en"}).status_code == 409
    assert [c["sha256"] for c in client.get(f"/api/v1/campaigns/{campaign_id}").json()["creatives"]] == [
        posters["vi"]]


def test_the_wizard_adds_a_version_and_the_campaign_page_shows_the_versions(web, api, posters):
    campaign_id = draft(api("phula-staff"), posters)
    csrf = sign_in(web, "phula-staff")
    step = web.get(f"/campaigns/{campaign_id}/edit?step=media")
    assert 'id="version-form"' in step.text and "Thêm phiên bản ngôn ngữ khác" in step.text
    added = web.post(f"/campaigns/{campaign_id}/edit/media/version", data={
        "csrf_token": csrf, "version_of": "0", "version_media": posters["en"], "version_language": "en"},
        follow_redirects=False)
    assert added.status_code == 303, added.text
    assert 'id="version-of-' + posters["en"][:12] + '"' in web.get(f"/campaigns/{campaign_id}/edit?step=media").text
    refused = web.post(f"/campaigns/{campaign_id}/edit/media/version", data={
        "csrf_token": csrf, "version_of": "0", "version_media": posters["vanquan"], "version_language": "zh"})
    assert refused.status_code == 404
    page = web.get(f"/campaigns/{campaign_id}").text
    assert 'id="language-0"' in page and 'id="language-1"' in page and "Phiên bản" in page


def test_versions_in_two_languages_at_an_airport_are_ten_plays_of_the_campaign_half_each_and_compliant(
        api, posters, database, clock):
    staff = api("city-staff")
    campaign_id = draft(staff, posters, {"screens": [AIRPORT_SCREEN]}, plays_per_day=10)
    assert staff.post(f"/api/v1/campaigns/{campaign_id}/creatives/0/versions",
                      json={"sha256": posters["en"], "language": "en"}).status_code == 201
    assert staff.post(f"/api/v1/campaigns/{campaign_id}/submit").status_code == 200
    assert api("city-manager").post(f"/api/v1/campaigns/{campaign_id}/approve").status_code == 200

    with transaction(database.sessions) as session:
        plan_and_store(session, clock.now())
    with database.sessions() as session:
        plan = Plan.model_validate_json(newest_body(session, AIRPORT_SCREEN))
    spots = [s for s in plan.spots if s.campaign_id == campaign_id and s.start.astimezone(HANOI).date() == TUESDAY]
    assert [s.media for s in spots] == [posters["vi"], posters["en"]] * 5

    records = [{"play_id": str(uuid.uuid4()), "player_id": AIRPORT_SCREEN, "spot_id": s.spot_id,
                "campaign_id": s.campaign_id, "media": s.media, "kind": "spot",
                "scheduled_start": s.start.isoformat(), "started_at": s.start.isoformat(),
                "ended_at": (s.start + timedelta(milliseconds=s.duration_ms)).isoformat(),
                "duration_ms": s.duration_ms, "status": "completed", "reason": None, "plan_version": plan.version}
               for s in spots]
    with transaction(database.sessions) as session:
        ingest_pop(session, [(AIRPORT_SCREEN, json.dumps({"schema": "signage.pop/1", "batch_id": "b1",
                                                          "records": records}).encode())],
                   ScreenDirectory(), clock.now())
    clock.set(datetime(2024, 8, 21, 0, 30, tzinfo=HANOI))
    with transaction(database.sessions) as session:
        close_days(session, clock.now())
    with database.sessions() as session:
        row = session.scalar(select(DeliveryRollup).where(DeliveryRollup.screen_id == AIRPORT_SCREEN,
                                                          DeliveryRollup.campaign_id == campaign_id,
                                                          DeliveryRollup.local_date == TUESDAY))
        total = summarise(session, Scope("hn", "Hà Nội", "/hn/", TUESDAY, TUESDAY, campaign_id)).total
    assert (row.required, row.planned, row.completed_in_peak, row.cause) == (10, 10, 10, None)
    assert (total.screen_days, total.compliant, total.required, total.delivered) == (1, 1, 10, 10)
    assert Counter(r["media"] for r in records) == {posters["vi"]: 5, posters["en"]: 5}


def test_the_site_form_sets_the_audience_and_the_site_page_says_it(web, database):
    csrf = sign_in(web, "phula-staff")
    assert "Theo loại điểm" in web.get("/sites/hadong-phula/edit").text
    page = web.get("/sites/hadong-phula").text
    assert "Trong nước: phát bản tiếng Việt (theo loại điểm)" in page  # a ward office, by its kind
    saved = web.post("/sites/hadong-phula/edit", data={
        "csrf_token": csrf, "name": "UBND phường Phú La", "kind": "ward_office", "organisation": "hn-hadong-phula",
        "address": "", "audience": "international", "action": "save"}, follow_redirects=False)
    assert saved.status_code == 303, saved.text
    with database.sessions() as session:
        site = session.get(Site, "hadong-phula")
        assert (site.international_audience, site.name) == (True, "UBND phường Phú La")
    assert "Quốc tế: các phiên bản ngôn ngữ phát lần lượt</dd>" in web.get("/sites/hadong-phula").text
    assert '<option value="international" selected>' in web.get("/sites/hadong-phula/edit").text
