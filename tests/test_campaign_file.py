from pathlib import Path

import pytest
from sqlalchemy import select

from campaigns.campaign_file import import_campaigns
from campaigns.fleet_file import import_fleet
from campaigns.kinds import CampaignStatus, MediaKind
from campaigns.models import Campaign
from campaigns.yaml_source import FileRejected
from media.models import MediaAsset
from media.store import MediaStore
from signage.db import transaction
from tests.conftest import CAMPAIGN_FILE, FLEET_FILE

TZ = "Asia/Ho_Chi_Minh"


@pytest.fixture
def fleet(database):
    with transaction(database.sessions) as session:
        import_fleet(session, FLEET_FILE, TZ)


@pytest.fixture
def store(settings) -> MediaStore:
    return MediaStore(settings.media_dir)


def load(database, store, clock, path: Path):
    with transaction(database.sessions) as session:
        return import_campaigns(session, path, store, clock, TZ)


def campaign_file(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "campaigns.yaml"
    path.write_text("schema: signage.campaigns/1\ncampaigns:\n" + body, encoding="utf-8")
    return path


def one_campaign(owner: str = "hn-hadong-phula", targets: str = "{organisations: [hn-hadong-phula]}",
                 extra: str = "", start: str = "2024-08-15", end: str = "2024-10-10",
                 creatives: str = "[{file: media/clip.mp4}]") -> str:
    return f"""  - id: test-campaign
    name: Thông báo thử
    organisation: {owner}
    start_date: {start}
    end_date: {end}
    creatives: {creatives}
    targets: {targets}
{extra}"""


def test_the_ihanoi_campaign_imports_with_its_three_kinds_of_media(fleet, database, store, clock):
    report = load(database, store, clock, CAMPAIGN_FILE)
    assert report.counts["media"].created == 4  # the poster in two formats
    with database.sessions() as session:
        campaign = session.get(Campaign, "ihanoi-2024")
        assert (campaign.start_date.isoformat(), campaign.end_date.isoformat()) == ("2024-08-15", "2024-10-10")
        assert campaign.plays_per_day == 10
        assert campaign.status is CampaignStatus.active  # the clock stands on 20 August 2024
        assert [c.media.kind for c in campaign.creatives] == [MediaKind.video, MediaKind.image, MediaKind.image,
                                                              MediaKind.audio]
        # the poster's landscape and portrait versions: one creative, one slot, the display time of the first
        assert [(c.media.width, c.media.height, c.slot) for c in campaign.creatives[1:3]] == [(1920, 1080, 1),
                                                                                            (1080, 1920, 1)]
        assert campaign.creatives[2].duration_ms == 15000
        assert campaign.creatives[1].duration_ms == 15000
        assert campaign.creatives[0].duration_ms == 30000
        assert [(o.organisation_id, o.plays_per_day) for o in campaign.overrides] == [("hn-hadong-phula", 15)]
        for asset in session.scalars(select(MediaAsset)):
            assert store.has(asset.sha256)


def test_importing_the_same_campaigns_twice_changes_nothing(fleet, database, store, clock, snapshot):
    load(database, store, clock, CAMPAIGN_FILE)
    before = snapshot()
    report = load(database, store, clock, CAMPAIGN_FILE)
    assert not report.changed
    assert snapshot() == before


def test_a_campaign_of_a_ward_cannot_target_another_wards_screens(fleet, database, store, clock, tmp_path,
                                                                 make_media, snapshot):
    make_media("clip.mp4")
    before = snapshot()
    path = campaign_file(tmp_path, one_campaign(targets="{screens: [hn-hadong-phula-001, hn-hoankiem-hangtrong-001]}"))
    with pytest.raises(FileRejected) as rejected:
        load(database, store, clock, path)
    [problem] = rejected.value.problems
    assert problem.path == "campaigns[0].targets.screens[1]"
    assert "outside 'hn-hadong-phula'" in problem.message
    assert snapshot() == before


@pytest.mark.parametrize("case, extra, start, end, where, words", [
    ("end before start", "", "2024-10-10", "2024-08-15", "campaigns[0]", "set end_date on or after"),
    ("override below the rate",
     "    plays_per_day: 10\n    overrides: [{organisation: hn-hadong-phula, plays_per_day: 5, by: A, reason: B}]\n",
     "2024-08-15", "2024-10-10", "campaigns[0]", "only raise"),
    ("explicit window without windows", "    window: explicit\n", "2024-08-15", "2024-10-10", "campaigns[0]",
     "window: explicit"),
])
def test_an_inconsistent_campaign_is_refused_with_the_fix(case, extra, start, end, where, words, fleet, database,
                                                          store, clock, tmp_path, make_media):
    make_media("clip.mp4")
    with pytest.raises(FileRejected) as rejected:
        load(database, store, clock, campaign_file(tmp_path, one_campaign(extra=extra, start=start, end=end)))
    assert [p.path for p in rejected.value.problems] == [where]
    assert words in rejected.value.problems[0].render("f")


def test_a_text_file_named_mp4_is_refused_and_nothing_is_stored(fleet, database, store, clock, tmp_path, snapshot):
    (tmp_path / "media").mkdir()
    (tmp_path / "media" / "clip.mp4").write_text("this is not a video")
    before = snapshot()
    with pytest.raises(FileRejected) as rejected:
        load(database, store, clock, campaign_file(tmp_path, one_campaign()))
    [problem] = rejected.value.problems
    assert problem.path == "campaigns[0].creatives[0].file"
    assert "not a media file" in problem.message
    assert snapshot() == before
    assert not store.root.exists() or not any(store.root.rglob("*.*"))


def test_a_missing_media_file_is_named_with_where_it_was_looked_for(fleet, database, store, clock, tmp_path):
    with pytest.raises(FileRejected) as rejected:
        load(database, store, clock, campaign_file(tmp_path, one_campaign()))
    assert "does not exist" in rejected.value.problems[0].message
    assert str(tmp_path / "media" / "clip.mp4") in rejected.value.problems[0].message


def test_a_still_image_plays_for_its_display_time_and_a_clip_for_its_own_length(fleet, database, store, clock,
                                                                                tmp_path, make_media):
    make_media("clip.mp4", seconds=3)
    make_media("still.png")
    path = campaign_file(tmp_path, one_campaign(
        creatives="[{file: media/clip.mp4}, {file: media/still.png, duration_s: 7.5}]"))
    load(database, store, clock, path)
    with database.sessions() as session:
        clip, still = session.get(Campaign, "test-campaign").creatives
        assert abs(clip.duration_ms - 3000) < 100
        assert still.duration_ms == 7500


def test_a_campaign_that_ended_is_imported_as_ended(fleet, database, store, clock, tmp_path, make_media):
    make_media("clip.mp4")
    load(database, store, clock, campaign_file(tmp_path, one_campaign(start="2024-01-01", end="2024-01-31")))
    with database.sessions() as session:
        assert session.get(Campaign, "test-campaign").status is CampaignStatus.ended


def test_an_edited_campaign_is_updated_in_place(fleet, database, store, clock, tmp_path, make_media):
    make_media("clip.mp4")
    load(database, store, clock, campaign_file(tmp_path, one_campaign()))
    report = load(database, store, clock, campaign_file(tmp_path, one_campaign(
        targets="{organisations: [hn-hadong-phula], site_kinds: [ward_office]}")))
    assert report.counts["campaigns"].updated == 1
    with database.sessions() as session:
        targets = [(t.kind, t.ref) for t in session.get(Campaign, "test-campaign").targets]
    assert targets == [("organisation", "hn-hadong-phula"), ("site_kind", "ward_office")]


def _versions(directory: Path) -> None:
    from PIL import Image

    directory.mkdir(parents=True, exist_ok=True)
    for name, size, colour in (("vi.png", (1920, 1080), "red"), ("en.png", (1920, 1080), "blue"),
                               ("en-tall.png", (1080, 1920), "blue"), ("map.png", (1280, 720), "green")):
        Image.new("RGB", size, colour).save(directory / name)


VERSIONED = """[{file: media/vi.png, language: vi, duration_s: 8,
                  versions: [{file: media/en.png, language: en},
                             {file: media/en-tall.png, language: en, duration_s: 9}]},
                 {file: media/map.png}]"""


def test_a_creatives_versions_import_as_rows_of_one_slot_and_import_again_unchanged(fleet, database, store, clock,
                                                                                    tmp_path, snapshot):
    _versions(tmp_path / "media")
    path = campaign_file(tmp_path, one_campaign(creatives=VERSIONED))
    assert load(database, store, clock, path).counts["campaigns"].created == 1
    with database.sessions() as session:
        rows = [(c.position, c.slot, c.language, c.media.original_name, c.duration_ms)
                for c in session.get(Campaign, "test-campaign").creatives]
    assert rows == [(0, 0, "vi", "vi.png", 8000), (1, 0, "en", "en.png", 8000), (2, 0, "en", "en-tall.png", 9000),
                    (3, 3, None, "map.png", 10000)]
    before = snapshot()
    assert not load(database, store, clock, path).changed
    assert snapshot() == before
    # The old form of the same creatives (no versions) is a change back to four creatives of their own.
    plain = "[{file: media/vi.png}, {file: media/en.png}, {file: media/en-tall.png}, {file: media/map.png}]"
    load(database, store, clock, campaign_file(tmp_path, one_campaign(creatives=plain)))
    with database.sessions() as session:
        assert [(c.slot, c.language) for c in session.get(Campaign, "test-campaign").creatives] == [
            (0, None), (1, None), (2, None), (3, None)]


def test_a_version_in_no_language_code_or_of_a_missing_file_is_refused_where_it_is(fleet, database, store, clock,
                                                                                 tmp_path):
    _versions(tmp_path / "media")
    bad_language = "[{file: media/vi.png, versions: [{file: media/en.png, language: english}]}]"
    with pytest.raises(FileRejected) as rejected:
        load(database, store, clock, campaign_file(tmp_path, one_campaign(creatives=bad_language)))
    [problem] = rejected.value.problems
    assert problem.path == "campaigns[0].creatives[0].versions[0].language"
    assert "not a language code" in problem.message
    missing = "[{file: media/vi.png, versions: [{file: media/zh.png, language: zh}]}]"
    with pytest.raises(FileRejected) as rejected:
        load(database, store, clock, campaign_file(tmp_path, one_campaign(creatives=missing)))
    [problem] = rejected.value.problems
    assert problem.path == "campaigns[0].creatives[0].versions[0].file"
