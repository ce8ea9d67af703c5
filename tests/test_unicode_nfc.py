"""Vietnamese text in one form, NFC, at every boundary: HTTP bodies and browser forms, campaign and fleet files, the
MQTT wire; and searches find a name however either side was typed (issue 16, item 7). A name written decomposed
(NFD, as some macOS file names and copy-pastes are) looked the same as the composed one and was not found by it."""

from __future__ import annotations

import unicodedata

from sqlalchemy import select

from campaigns.campaign_file import import_campaigns
from campaigns.fleet_file import import_fleet
from campaigns.models import Campaign, Organisation, Screen, Site
from media.store import MediaStore
from signage.db import transaction
from signage.protocol import PopRecord, SignedEnvelope
from tests.conftest import CAMPAIGN_FILE, FLEET_FILE, sign_in

NAME = "Tuyên truyền Hà Nội số"  # as a keyboard types it: NFC
WORD = "truyền"


def nfd(text: str) -> str:
    return unicodedata.normalize("NFD", text)


def is_nfc(text: str) -> bool:
    return unicodedata.is_normalized("NFC", text)


def test_the_spellings_differ_as_the_bug_needs():
    assert nfd(NAME) != NAME and nfd(WORD) not in NAME and WORD not in nfd(NAME)


def campaign_names(client, q: str) -> list[str]:
    answer = client.get("/api/v1/campaigns", params={"q": q})
    assert answer.status_code == 200, answer.text
    return [item["name"] for item in answer.json()["items"]]


def test_a_campaign_named_decomposed_through_the_api_is_stored_composed_and_found_by_a_composed_search(api,
                                                                                                     session):
    client = api("phula-staff")
    created = client.post("/api/v1/campaigns", json={"name": nfd(NAME), "description": nfd("Phường Phú La")})
    assert created.status_code == 201, created.text
    assert created.json()["name"] == NAME
    stored = session.get(Campaign, created.json()["id"])
    assert (stored.name, stored.description) == (NAME, "Phường Phú La")
    assert campaign_names(client, WORD) == [NAME]


def test_a_campaign_named_composed_is_found_by_a_decomposed_search(api):
    client = api("phula-staff")
    assert client.post("/api/v1/campaigns", json={"name": NAME}).status_code == 201
    assert campaign_names(client, nfd(WORD)) == [NAME]


def screen_ids(client, q: str) -> list[str]:
    answer = client.get("/api/v1/screens", params={"q": q})
    assert answer.status_code == 200, answer.text
    return [item["id"] for item in answer.json()["items"]]


def test_a_screen_renamed_decomposed_is_found_by_a_composed_search_and_the_other_way_round(api, session):
    admin = api("city-admin")
    answer = admin.patch("/api/v1/screens/hn-hadong-phula-001", json={"name": nfd("Màn hình sảnh Phú La")})
    assert answer.status_code == 200, answer.text
    assert session.get(Screen, "hn-hadong-phula-001").name == "Màn hình sảnh Phú La"
    assert screen_ids(admin, "sảnh Phú") == ["hn-hadong-phula-001"]
    assert screen_ids(admin, nfd("sảnh Phú")) == ["hn-hadong-phula-001"]


def test_a_campaign_made_on_the_page_from_a_decomposed_form_is_stored_composed(web, session):
    csrf = sign_in(web, "phula-staff")
    answer = web.post("/campaigns/new", data={"csrf_token": csrf, "name": nfd(NAME)}, follow_redirects=False)
    assert answer.status_code == 303, answer.text
    assert session.scalars(select(Campaign.name)).all() == [NAME]


def test_a_decomposed_fleet_file_lands_composed(database, tmp_path):
    written = tmp_path / "fleet.yaml"
    written.write_text(nfd(FLEET_FILE.read_text(encoding="utf-8")), encoding="utf-8")
    with transaction(database.sessions) as session:
        import_fleet(session, written, "Asia/Ho_Chi_Minh")
    with database.sessions() as session:
        texts = [*session.scalars(select(Organisation.name)), *session.scalars(select(Site.name)),
                 *session.scalars(select(Site.address)), *session.scalars(select(Screen.name))]
    assert texts and [text for text in texts if text and not is_nfc(text)] == []
    assert any("Phú La" in text for text in texts if text)


def test_a_decomposed_campaign_file_lands_composed(fleet, database, settings, clock, tmp_path):
    written = tmp_path / "campaign.yaml"
    written.write_text(nfd(CAMPAIGN_FILE.read_text(encoding="utf-8")), encoding="utf-8")
    (tmp_path / "media").symlink_to(CAMPAIGN_FILE.parent / "media")
    with transaction(database.sessions) as session:
        import_campaigns(session, written, MediaStore(settings.media_dir), clock, settings.timezone)
    with database.sessions() as session:
        (campaign,) = session.scalars(select(Campaign))
    assert campaign.name == "Tuyên truyền ứng dụng iHanoi – Hà Nội số"
    assert is_nfc(campaign.description or "")


def test_text_from_the_wire_is_composed_but_a_signed_payload_is_kept_as_signed():
    record = PopRecord.model_validate({
        "play_id": "play-0001", "player_id": "hn-hadong-phula-001", "kind": "spot", "spot_id": "s-1",
        "campaign_id": "ihanoi-2024", "media": "a" * 64, "scheduled_start": "2024-08-20T10:00:00+07:00",
        "started_at": "2024-08-20T10:00:00+07:00", "ended_at": "2024-08-20T10:00:30+07:00", "duration_ms": 30000,
        "status": "failed", "reason": nfd("không mở được tệp")})
    assert record.reason == "không mở được tệp"
    envelope = SignedEnvelope.model_validate({"payload": {"text": nfd(NAME)}, "alg": "ed25519", "key_id": "k",
                                              "sig": "s"})
    assert envelope.payload["text"] == nfd(NAME)


def test_names_stored_decomposed_before_are_composed_by_the_migration(settings):
    from datetime import UTC, date, datetime

    import sqlalchemy as sa

    from scheduler.database import migrate
    from signage.db import make_engine

    engine = make_engine(settings.resolved_database_url)
    migrate(engine, "0011")
    with engine.begin() as connection:
        now = datetime(2024, 8, 20, 3, 0, tzinfo=UTC)
        connection.execute(sa.text("INSERT INTO organisations (id, name, kind, path, alerts_need_approval) "
                                   "VALUES ('hn', :name, 'city', '/hn/', false)"), {"name": nfd("Hà Nội")})
        connection.execute(sa.text(
            "INSERT INTO campaigns (id, organisation_id, name, description, start_date, end_date, plays_per_day, "
            "window_policy, priority, status, created_at, updated_at) VALUES ('c1', 'hn', :name, :description, "
            ":start, :end, 1, 'peak', 0, 'draft', :now, :now)"),
            {"name": nfd(NAME), "description": None, "start": date(2024, 8, 15), "end": date(2024, 9, 15),
             "now": now})

    migrate(engine)

    with engine.connect() as connection:
        assert connection.execute(sa.text("SELECT name FROM organisations")).scalar() == "Hà Nội"
        assert connection.execute(sa.text("SELECT name, description FROM campaigns")).one() == (NAME, None)
    engine.dispose()
