"""A what-if plan from files (`signage plan --fleet --campaigns`): the plans the same files give once imported, the
imports' own checks, and media probed once per content through the probe cache."""

import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys
from collections import Counter
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from campaigns.campaign_file import import_campaigns
from campaigns.fleet_file import import_fleet
from campaigns.yaml_source import FileRejected
from media.probe import probe
from media.probe_cache import ProbeCache
from media.store import MediaStore
from scheduler.plan_files import inputs_from_files, summary_document
from scheduler.plan_inputs import load_planning_inputs
from scheduler.planner import plan_fleet
from signage.clock import VirtualClock
from signage.db import transaction
from tests.conftest import CAMPAIGN_FILE, FLEET_FILE

TZ = "Asia/Ho_Chi_Minh"
MEDIA = CAMPAIGN_FILE.parent / "media"
NOW = datetime(2024, 8, 20, 3, tzinfo=UTC)

# Beside the example campaign: a draft (not planned), explicit windows on a group and a site kind, a site's override,
# an image's own display time, and a campaign of a unit below the city's.
MORE_CAMPAIGNS = f"""
  - id: nb-arrivals-welcome
    name: Chào mừng khách đến Nội Bài
    organisation: hn
    start_date: 2024-08-19
    end_date: 2024-08-30
    plays_per_day: 6
    window: explicit
    windows: {{daily: ["10:00-12:00", "20:00-21:00"]}}
    priority: 20
    creatives:
      - file: {MEDIA}/ihanoi-poster.png
        duration_s: 8
    targets: {{groups: [nb-arrivals], site_kinds: [hospital]}}
    overrides:
      - {{site: nb-t2, plays_per_day: 9, by: "Cảng hàng không", reason: "Mùa cao điểm"}}
  - id: hadong-draft
    name: Bản nháp của Hà Đông
    organisation: hn-hadong
    status: draft
    start_date: 2024-08-19
    end_date: 2024-08-30
    creatives: [{{file: {MEDIA}/ihanoi-30s.mp4}}]
    targets: {{organisations: [hn-hadong]}}
  - id: hadong-audio
    name: Thông báo phường
    organisation: hn-hadong
    start_date: 2024-08-01
    end_date: 2024-08-21
    plays_per_day: 4
    window: operating
    creatives: [{{file: {MEDIA}/ihanoi-spot.mp3}}]
    targets: {{organisations: [hn-hadong]}}
"""


# A creative in versions (issue 21, item 6): Vietnamese and English, landscape and portrait, on the airports' and the
# railway station's screens (international audiences) and on a ward's (Vietnamese only).
VERSIONED_CAMPAIGN = """
  - id: welcome-versions
    name: Chào mừng khách đến Hà Nội
    organisation: hn
    start_date: 2024-08-19
    end_date: 2024-08-30
    creatives:
      - file: versions/vi-h.png
        language: vi
        duration_s: 8
        versions:
          - {file: versions/vi-v.png, language: vi}
          - {file: versions/en-h.png, language: en}
          - {file: versions/en-v.png, language: EN}
      - file: versions/map.png
    targets: {groups: [nb-arrivals], sites: [ga-hn], organisations: [hn-hadong-phula]}
"""
VERSION_IMAGES = {"vi-h.png": ((1920, 1080), "red"), "vi-v.png": ((1080, 1920), "red"),
                  "en-h.png": ((1920, 1080), "blue"), "en-v.png": ((1080, 1920), "blue"),
                  "map.png": ((1280, 720), "green")}


def versioned_campaign_file(directory: Path) -> Path:
    from PIL import Image

    (directory / "versions").mkdir(exist_ok=True)
    for name, (size, colour) in VERSION_IMAGES.items():
        Image.new("RGB", size, colour).save(directory / "versions" / name)
    path = directory / "versioned.yaml"
    path.write_text("schema: signage.campaigns/1\ncampaigns:\n" + VERSIONED_CAMPAIGN, encoding="utf-8")
    return path


@pytest.fixture
def campaign_file(tmp_path: Path) -> Path:
    text = CAMPAIGN_FILE.read_text(encoding="utf-8").replace("file: media/", f"file: {MEDIA}/")
    path = tmp_path / "campaigns.yaml"
    path.write_text(text + MORE_CAMPAIGNS, encoding="utf-8")
    return path


class CountingProbe:
    def __init__(self) -> None:
        self.asked: list[str] = []

    def __call__(self, path: Path):
        self.asked.append(path.name)
        return probe(path)


def plan_bytes(inputs) -> tuple[dict[str, bytes], str]:
    result = plan_fleet(inputs.screens, inputs.campaigns, date(2024, 8, 20), 3, NOW)
    summary = json.dumps(summary_document(result, NOW), sort_keys=True)
    return {player: result.plan_json(player) for player in result.player_ids}, summary


@pytest.mark.parametrize("campaigns", ["example", "more", "versions"])
def test_plans_from_files_are_the_plans_of_the_same_files_imported(database, settings, tmp_path, campaign_file,
                                                                    campaigns):
    path = {"example": CAMPAIGN_FILE, "more": campaign_file}.get(campaigns) or versioned_campaign_file(tmp_path)
    clock = VirtualClock(NOW)
    with transaction(database.sessions) as session:
        import_fleet(session, FLEET_FILE, TZ)
        import_campaigns(session, path, MediaStore(settings.media_dir), clock, TZ)
    with database.sessions() as session:
        from_database = plan_bytes(load_planning_inputs(session))
    from_files = plan_bytes(inputs_from_files(FLEET_FILE, path, clock, TZ, ProbeCache(tmp_path / "probe.json")))
    plans, summary = from_files
    assert len(plans) == 82
    assert {c["campaign_id"] for c in json.loads(summary)["campaigns"]} == {
        "example": {"ihanoi-2024"}, "more": {"ihanoi-2024", "nb-arrivals-welcome", "hadong-audio"},
        "versions": {"welcome-versions"}}[campaigns]
    assert from_files == from_database


def test_versions_from_files_play_by_language_and_format_as_one_campaign(tmp_path):
    clock = VirtualClock(NOW)
    path = versioned_campaign_file(tmp_path)
    inputs = inputs_from_files(FLEET_FILE, path, clock, TZ, ProbeCache(tmp_path / "probe.json"))
    result = plan_fleet(inputs.screens, inputs.campaigns, date(2024, 8, 20), 1, NOW)
    shas = {name: hashlib.sha256((tmp_path / "versions" / name).read_bytes()).hexdigest() for name in VERSION_IMAGES}

    def played(player_id: str) -> Counter:
        return Counter(name for s in result.plan(player_id).spots for name, sha in shas.items() if sha == s.media)

    # Nội Bài (an airport): a landscape screen and a portrait one, each in turn in Vietnamese and English.
    assert played("hn-nb-t1-003") == {"vi-h.png": 3, "en-h.png": 2, "map.png": 5}
    assert played("hn-nb-t2-005") == {"vi-v.png": 3, "en-v.png": 2, "map.png": 5}
    # A ward's screen: Vietnamese only; still ten plays of the one campaign.
    ward = next(s.id for s in inputs.screens if s.site_kind.value == "ward_office"
                and s.organisation_path.endswith("/hn-hadong-phula/") and s.kind.value != "speaker")
    assert set(played(ward)) <= {"vi-h.png", "vi-v.png", "map.png"}
    assert sum(played(ward).values()) == 10
    displays = {s.id for s in inputs.screens if s.kind.value != "speaker"}
    assert {(row.required, row.planned) for row in result.summary
            if row.campaign_id == "welcome-versions" and row.screen_id in displays} == {(10, 10)}


def test_media_are_probed_once_per_content_and_again_when_they_change(tmp_path, campaign_file):
    clock, cache_path = VirtualClock(NOW), tmp_path / "cache" / "signage" / "probe.json"
    first = CountingProbe()
    inputs_from_files(FLEET_FILE, campaign_file, clock, TZ, ProbeCache(cache_path, first))
    assert sorted(first.asked) == ["ihanoi-30s.mp4", "ihanoi-poster-portrait.png", "ihanoi-poster.png",
                                   "ihanoi-spot.mp3"]
    assert stat.S_IMODE(cache_path.stat().st_mode) == 0o600
    assert stat.S_IMODE(cache_path.parent.stat().st_mode) == 0o700

    again = CountingProbe()
    cached = inputs_from_files(FLEET_FILE, campaign_file, clock, TZ, ProbeCache(cache_path, again))
    assert again.asked == []
    assert cached == inputs_from_files(FLEET_FILE, campaign_file, clock, TZ, ProbeCache(tmp_path / "fresh.json"))

    # The same content under another name is known; another content under a known name is not.
    moved = tmp_path / "media"
    moved.mkdir()
    shutil.copy(MEDIA / "ihanoi-poster.png", moved / "renamed.png")
    shutil.copy(MEDIA / "ihanoi-spot.mp3", moved / "ihanoi-30s.mp4")
    text = campaign_file.read_text(encoding="utf-8")
    text = text.replace(f"{MEDIA}/ihanoi-poster.png", f"{moved}/renamed.png")
    changed = tmp_path / "changed.yaml"
    changed.write_text(text.replace(f"{MEDIA}/ihanoi-30s.mp4", f"{moved}/ihanoi-30s.mp4"), encoding="utf-8")
    third = CountingProbe()
    inputs = inputs_from_files(FLEET_FILE, changed, clock, TZ, ProbeCache(cache_path, third))
    assert third.asked == []  # the "clip" now holds the audio spot's bytes, probed before
    clip = next(c for c in inputs.campaigns if c.id == "ihanoi-2024").creatives[0]
    assert clip.kind.value == "audio" and clip.mime == "audio/mpeg"

    (moved / "ihanoi-30s.mp4").write_bytes((MEDIA / "ihanoi-30s.mp4").read_bytes()[:-1] + b"\0")
    fourth = CountingProbe()
    inputs_from_files(FLEET_FILE, changed, clock, TZ, ProbeCache(cache_path, fourth))
    assert fourth.asked == ["ihanoi-30s.mp4"]


def test_an_unreadable_probe_cache_is_started_again(tmp_path, campaign_file):
    cache_path = tmp_path / "probe.json"
    cache_path.write_text("{not json", encoding="utf-8")
    counting = CountingProbe()
    inputs_from_files(FLEET_FILE, campaign_file, VirtualClock(NOW), TZ, ProbeCache(cache_path, counting))
    assert len(counting.asked) == 4  # the example's clip, its poster in two formats, its audio spot
    assert len(json.loads(cache_path.read_text(encoding="utf-8"))["results"]) == 4


def rejection(action) -> list[tuple]:
    with pytest.raises(FileRejected) as rejected:
        action()
    return [(p.path, p.message, p.line) for p in rejected.value.problems]


def test_files_are_refused_from_files_as_their_imports_refuse_them(database, settings, tmp_path, campaign_file):
    clock, store = VirtualClock(NOW), MediaStore(settings.media_dir)
    fleet = tmp_path / "fleet.yaml"
    text = FLEET_FILE.read_text(encoding="utf-8")
    fleet.write_text(text.replace("site: nb-t1,", "site: nb-t9,", 1).replace("groups: [nb-arrivals]",
                                                                               "groups: [nb-gone]", 1),
                     encoding="utf-8")
    refused = rejection(lambda: inputs_from_files(fleet, campaign_file, clock, TZ, ProbeCache(tmp_path / "p.json")))

    def import_it():
        with transaction(database.sessions) as session:
            import_fleet(session, fleet, TZ)

    assert refused == rejection(import_it)
    assert {message for _, message, _ in refused} == {"no site has the id 'nb-t9'", "no group has the id 'nb-gone'"}

    campaigns = tmp_path / "bad-campaigns.yaml"
    campaigns.write_text(campaign_file.read_text(encoding="utf-8")
                         .replace("targets: {organisations: [hn-hadong]}", "targets: {sites: [nb-t1]}")
                         .replace("duration_s: 8", "duration_s: 8\n      - file: missing.mp4"), encoding="utf-8")
    refused = rejection(lambda: inputs_from_files(FLEET_FILE, campaigns, clock, TZ, ProbeCache(tmp_path / "p.json")))
    with transaction(database.sessions) as session:
        import_fleet(session, FLEET_FILE, TZ)

    def import_campaigns_file():
        with transaction(database.sessions) as session:
            import_campaigns(session, campaigns, store, clock, TZ)

    assert refused == rejection(import_campaigns_file)
    messages = [message for _, message, _ in refused]
    assert any("outside 'hn-hadong''s scope" in m for m in messages)
    assert any("missing.mp4" in m for m in messages)


def test_the_command_plans_from_files_without_the_database_layer(cli_env, tmp_path):
    """The what-if loads neither SQLAlchemy nor the server's modules (what most of its time went to), and keeps its
    probe cache under XDG_CACHE_HOME."""
    env = {**cli_env, "XDG_CACHE_HOME": str(tmp_path / "xdg")}
    script = ("import sys, signage_cli\n"
              "code = 0\ntry:\n    signage_cli.main()\nexcept SystemExit as exit:\n    code = exit.code\n"
              "print('LOADED', sorted(m for m in sys.modules if m.split('.')[0] in ('sqlalchemy', 'alembic', "
              "'fastapi')), code)\n")
    args = ["plan", "--date", "2024-08-20", "--days", "1", "--out", str(tmp_path / "plans"), "--fleet", str(FLEET_FILE),
            "--campaigns", str(CAMPAIGN_FILE)]
    result = subprocess.run([sys.executable, "-c", script, *args], env=env, capture_output=True, text=True,
                            timeout=120, cwd=os.getcwd())
    assert result.returncode == 0, result.stderr
    assert "LOADED [] 0" in result.stdout, result.stdout[-2000:]
    assert len(list((tmp_path / "plans").glob("hn-*.json"))) == 82
    assert len(json.loads((tmp_path / "xdg" / "signage" / "probe.json").read_text())["results"]) == 4
