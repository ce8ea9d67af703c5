"""The media library once files are in it: lists with filters, details with the campaigns using each file,
thumbnails and previews, deletion only of what no campaign uses, and every read within the user's subtree."""

from __future__ import annotations

import re
from datetime import date, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from campaigns.campaign_file import import_campaigns
from campaigns.kinds import CampaignStatus, WindowPolicy
from campaigns.models import Campaign, CampaignCreative, CampaignTarget
from media.models import held_by
from media.store import MediaStore
from media.thumbnails import Thumbnails
from signage.db import transaction
from tests.conftest import CAMPAIGN_FILE, sign_in


def upload(client: TestClient, path: Path, **fields: str) -> dict:
    answer = client.post("/api/v1/media", files={"file": (path.name, path.read_bytes())}, data=fields)
    assert answer.status_code == 201, answer.text
    return answer.json()


def add_campaign(database, clock, campaign_id: str, organisation_id: str, name: str, *shas: str) -> None:
    """A campaign of `organisation_id` using the files `shas` (each as the unit that uploaded it holds it), written
    straight to the database."""
    with transaction(database.sessions) as session:
        holders = [session.scalar(held_by(sha)).organisation_id for sha in shas]
        session.add(Campaign(
            id=campaign_id, organisation_id=organisation_id, name=name, start_date=date(2024, 8, 20),
            end_date=date(2024, 9, 20), plays_per_day=10, window_policy=WindowPolicy.peak, priority=0,
            status=CampaignStatus.draft, created_at=clock.now(), updated_at=clock.now(),
            creatives=[CampaignCreative(position=i, media_sha256=sha, media_organisation_id=holder, duration_ms=10_000)
                       for i, (sha, holder) in enumerate(zip(shas, holders, strict=True))],
            targets=[CampaignTarget(kind="organisation", ref=organisation_id)]))


@pytest.fixture
def phula_clip(api, make_media) -> dict:
    """A clip in the library of ward Phú La."""
    return upload(api("phula-staff"), make_media("phula-clip.mp4"))


def names(answer) -> list[str]:
    assert answer.status_code == 200, answer.text
    return [item["name"] for item in answer.json()["items"]]


# -- lists ---------------------------------------------------------------------------------------------------


def test_the_list_is_paginated_newest_first(api, make_media, clock):
    client = api("phula-staff")
    for name in ("first.mp4", "second.png", "third.mp3"):
        upload(client, make_media(name))
        clock.advance(timedelta(minutes=1))
    page = client.get("/api/v1/media", params={"limit": 2}).json()
    assert (page["total"], page["limit"], page["offset"]) == (3, 2, 0)
    assert [item["name"] for item in page["items"]] == ["third.mp3", "second.png"]
    assert names(client.get("/api/v1/media", params={"limit": 2, "offset": 2})) == ["first.mp4"]


def test_the_list_filters_by_kind(api, make_media):
    client = api("phula-staff")
    for name in ("clip.mp4", "poster.png", "spot.mp3"):
        upload(client, make_media(name))
    assert names(client.get("/api/v1/media", params={"kind": "audio"})) == ["spot.mp3"]


def test_the_list_filters_by_a_part_of_the_name_in_any_case(api, make_media):
    client = api("phula-staff")
    for name in ("ihanoi-clip.mp4", "poster.png"):
        upload(client, make_media(name))
    assert names(client.get("/api/v1/media", params={"q": "IHANOI"})) == ["ihanoi-clip.mp4"]
    assert names(client.get("/api/v1/media", params={"q": "%"})) == []


def test_the_list_filters_by_a_unit_and_the_units_below_it(api, make_media, clock):
    client = api("hadong-staff")
    upload(client, make_media("district.mp4"))
    clock.advance(timedelta(minutes=1))
    upload(client, make_media("ward.png"), organisation_id="hn-hadong-phula")
    assert names(client.get("/api/v1/media", params={"organisation_id": "hn-hadong-phula"})) == ["ward.png"]
    assert names(client.get("/api/v1/media", params={"organisation_id": "hn-hadong"})) == ["ward.png", "district.mp4"]


def test_a_city_user_sees_the_media_of_every_unit(api, make_media):
    upload(api("phula-staff"), make_media("phula.mp4"))
    upload(api("vanquan-staff"), make_media("vanquan.png"))
    assert sorted(names(api("city-manager").get("/api/v1/media"))) == ["phula.mp4", "vanquan.png"]


def test_media_of_a_campaign_file_is_listed_with_its_campaign(api, database, clock, settings):
    with transaction(database.sessions) as session:
        import_campaigns(session, CAMPAIGN_FILE, MediaStore(settings.media_dir), clock, settings.timezone)
    items = api("city-staff").get("/api/v1/media").json()["items"]
    assert sorted(item["name"] for item in items) == ["ihanoi-30s.mp4", "ihanoi-poster-portrait.png",
                                                      "ihanoi-poster.png", "ihanoi-spot.mp3"]
    assert {c["id"] for item in items for c in item["used_by"]} == {"ihanoi-2024"}
    assert all(item["uploaded_by"] is None for item in items)


def test_media_of_a_campaign_file_gets_its_thumbnail_when_first_asked(api, database, clock, settings):
    with transaction(database.sessions) as session:
        import_campaigns(session, CAMPAIGN_FILE, MediaStore(settings.media_dir), clock, settings.timezone)
    client = api("city-staff")
    clip = client.get("/api/v1/media", params={"kind": "video"}).json()["items"][0]
    answer = client.get(clip["thumbnail_url"])
    assert answer.status_code == 200 and answer.content[:3] == b"\xff\xd8\xff"


# -- one item ------------------------------------------------------------------------------------------------


def test_the_detail_has_the_probe_data(api, phula_clip):
    item = api("phula-staff").get(f"/api/v1/media/{phula_clip['sha256']}").json()
    assert (item["kind"], item["video_codec"], item["width"], item["height"]) == ("video", "h264", 320, 180)
    assert item["organisation_name"] and item["used_by"] == []


def test_the_detail_names_the_campaigns_using_it_within_the_users_scope(api, phula_clip, database, clock):
    sha = phula_clip["sha256"]
    add_campaign(database, clock, "phula-week", "hn-hadong-phula", "Tuần lễ Phú La", sha)
    add_campaign(database, clock, "city-week", "hn", "Tuần lễ Thành phố", sha)
    seen_by_ward = api("phula-staff").get(f"/api/v1/media/{sha}").json()["used_by"]
    assert [c["name"] for c in seen_by_ward] == ["Tuần lễ Phú La"]
    seen_by_city = api("city-staff").get(f"/api/v1/media/{sha}").json()["used_by"]
    assert {c["id"] for c in seen_by_city} == {"city-week", "phula-week"}


def test_the_content_is_served_for_previews_with_byte_ranges(api, make_media):
    client = api("phula-staff")
    clip = make_media("clip.mp4")
    item = upload(client, clip)
    whole = client.get(item["content_url"])
    assert whole.status_code == 200 and whole.content == clip.read_bytes()
    assert whole.headers["content-type"] == "video/mp4" and whole.headers["cache-control"].startswith("private")
    part = client.get(item["content_url"], headers={"Range": "bytes=0-9"})
    assert part.status_code == 206 and part.content == clip.read_bytes()[:10]


def test_an_id_that_is_not_a_sha256_is_not_found(api):
    assert api("phula-staff").get("/api/v1/media/..%2F..%2Fsignage.db").status_code == 404


# -- deleting ------------------------------------------------------------------------------------------------


def test_deleting_an_unused_file_removes_it_its_file_and_its_thumbnail(api, phula_clip, settings):
    client, sha = api("phula-staff"), phula_clip["sha256"]
    store = MediaStore(settings.media_dir)
    assert store.has(sha) and Thumbnails.beside(store).path_for(sha).exists()
    assert client.delete(f"/api/v1/media/{sha}").status_code == 204
    assert client.get(f"/api/v1/media/{sha}").status_code == 404
    assert not store.has(sha) and not Thumbnails.beside(store).path_for(sha).exists()


def test_deleting_one_units_item_keeps_the_file_while_another_unit_holds_the_same_bytes(api, make_media, settings):
    clip, store = make_media("clip.mp4"), MediaStore(settings.media_dir)
    phula, vanquan = api("phula-staff"), api("vanquan-staff")
    sha = upload(phula, clip)["sha256"]
    assert upload(vanquan, clip)["sha256"] == sha

    assert vanquan.delete(f"/api/v1/media/{sha}").status_code == 204
    assert vanquan.get(f"/api/v1/media/{sha}").status_code == 404
    assert store.has(sha) and Thumbnails.beside(store).path_for(sha).exists()
    assert phula.get(f"/api/v1/media/{sha}/content").content == clip.read_bytes()

    assert phula.delete(f"/api/v1/media/{sha}").status_code == 204
    assert not store.has(sha) and not Thumbnails.beside(store).path_for(sha).exists()


def test_deleting_is_refused_while_a_campaign_uses_it_naming_the_campaign(api, phula_clip, database, clock,
                                                                          settings):
    sha = phula_clip["sha256"]
    add_campaign(database, clock, "phula-week", "hn-hadong-phula", "Tuần lễ Phú La", sha)
    answer = api("phula-staff").delete(f"/api/v1/media/{sha}")
    assert answer.status_code == 409
    assert "Tuần lễ Phú La" in answer.json()["detail"] and answer.json()["campaigns"] == ["Tuần lễ Phú La"]
    assert MediaStore(settings.media_dir).has(sha)


def test_a_campaign_of_another_unit_blocks_deletion_without_being_named(api, phula_clip, database, clock):
    sha = phula_clip["sha256"]
    add_campaign(database, clock, "city-week", "hn", "Tuần lễ Thành phố", sha)
    answer = api("phula-staff").delete(f"/api/v1/media/{sha}")
    assert answer.status_code == 409
    assert "phula-clip.mp4 is used by 1 campaign(s) of other units" in answer.json()["detail"]
    assert "Thành phố" not in answer.text


# -- roles and scope -----------------------------------------------------------------------------------------


def test_a_manager_may_read_the_library_but_not_delete(api, phula_clip):
    client, sha = api("hadong-manager"), phula_clip["sha256"]
    assert names(client.get("/api/v1/media")) == ["phula-clip.mp4"]
    assert client.get(f"/api/v1/media/{sha}").status_code == 200
    answer = client.delete(f"/api/v1/media/{sha}")
    assert answer.status_code == 403 and "may not delete media" in answer.json()["detail"]


def test_a_user_of_another_ward_gets_404_for_the_media_through_every_endpoint(api, phula_clip, settings):
    client, sha = api("vanquan-staff"), phula_clip["sha256"]
    for path in (f"/api/v1/media/{sha}", f"/api/v1/media/{sha}/thumbnail", f"/api/v1/media/{sha}/content"):
        assert client.get(path).status_code == 404, path
    assert client.delete(f"/api/v1/media/{sha}").status_code == 404
    assert MediaStore(settings.media_dir).has(sha)


def test_a_user_of_another_ward_does_not_see_the_media_in_lists(api, phula_clip):
    client = api("vanquan-staff")
    assert names(client.get("/api/v1/media")) == []
    assert names(client.get("/api/v1/media", params={"organisation_id": "hn-hadong-phula"})) == []


def test_a_user_of_another_ward_gets_404_for_the_media_pages(web, phula_clip):
    sign_in(web, "vanquan-staff")
    assert web.get(f"/media/{phula_clip['sha256']}/details").status_code == 404
    assert phula_clip["sha256"] not in web.get("/media").text


# -- pages ---------------------------------------------------------------------------------------------------


def test_the_library_page_lists_each_file_with_thumbnail_kind_size_and_campaigns(web, phula_clip, database, clock):
    sha = phula_clip["sha256"]
    add_campaign(database, clock, "phula-week", "hn-hadong-phula", "Tuần lễ Phú La", sha)
    sign_in(web, "phula-staff")
    page = web.get("/media").text
    row = re.search(rf'<tr id="media-{sha}".*?</tr>', page, re.S).group(0)
    assert f'src="/api/v1/media/{sha}/thumbnail"' in row and "Video" in row and "320×180" in row
    assert "phula-clip.mp4" in row and "Tuần lễ Phú La" in row and "Phú La" in row


def test_the_library_page_filters_by_kind(web, api, make_media):
    upload(api("phula-staff"), make_media("clip.mp4"))
    upload(api("phula-staff"), make_media("spot.mp3"))
    sign_in(web, "phula-staff")
    page = web.get("/media", params={"kind": "audio"}).text
    assert "spot.mp3" in page and "clip.mp4" not in page


def test_the_library_page_offers_the_upload_form_to_staff_only(web):
    sign_in(web, "phula-staff")
    assert 'id="media-file"' in web.get("/media").text
    web.cookies.clear()
    sign_in(web, "hadong-manager")
    page = web.get("/media")
    assert page.status_code == 200 and 'id="media-file"' not in page.text


def test_the_library_page_speaks_english_on_request(web):
    sign_in(web, "phula-staff")
    assert "Media library" in web.get("/media", params={"lang": "en"}).text
    assert "Thư viện media" in web.get("/media", params={"lang": "vi"}).text


def test_the_detail_page_shows_a_preview_and_the_campaigns_using_it(web, phula_clip, database, clock):
    sha = phula_clip["sha256"]
    add_campaign(database, clock, "phula-week", "hn-hadong-phula", "Tuần lễ Phú La", sha)
    sign_in(web, "phula-staff")
    page = web.get(f"/media/{sha}/details").text
    assert f'<video class="media-preview" id="media-preview" src="/api/v1/media/{sha}/content"' in page
    assert "Tuần lễ Phú La" in re.search(r'id="media-used-by".*?</ul>', page, re.S).group(0)
    assert 'id="media-delete"' not in page


def test_the_detail_page_names_the_uploader_by_full_name_and_the_api_keeps_the_user_name(web, api, phula_clip):
    sha = phula_clip["sha256"]
    sign_in(web, "phula-staff")
    page = web.get(f"/media/{sha}/details").text
    assert re.search(r'id="uploaded-by">([^<]*)<', page).group(1) == "Phula Staff"  # conftest's full name
    assert api("phula-staff").get(f"/api/v1/media/{sha}").json()["uploaded_by"] == "phula-staff"  # for tools


def test_deleting_from_the_detail_page_returns_to_the_library(web, phula_clip):
    csrf = sign_in(web, "phula-staff")
    sha = phula_clip["sha256"]
    answer = web.post(f"/media/{sha}/delete", data={"csrf_token": csrf}, follow_redirects=False)
    assert (answer.status_code, answer.headers["location"]) == (303, "/media?notice=deleted")
    assert web.get(f"/media/{sha}/details").status_code == 404


def test_deleting_from_the_page_while_another_units_campaign_uses_it_shows_why_not(web, phula_clip, database,
                                                                                   clock):
    sha = phula_clip["sha256"]
    add_campaign(database, clock, "city-week", "hn", "Tuần lễ Thành phố", sha)
    csrf = sign_in(web, "phula-staff")
    answer = web.post(f"/media/{sha}/delete", data={"csrf_token": csrf})
    assert answer.status_code == 409
    assert "campaign(s) of other units" in re.search(r'id="media-error"[^>]*>(.*?)</p>', answer.text, re.S).group(1)
