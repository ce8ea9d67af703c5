"""Posters from a template (issue 21, item 5): each PNG decodes back to its link with zbarimg at every size and
orientation; Vietnamese is drawn by a font that has its letters; hostile input is refused with its fix; a
campaign's poster is stored in its unit's library as an upload is, added as versions of one creative, and each
screen's plan plays the version of its format."""

from __future__ import annotations

import io
import subprocess
from datetime import date
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import select

from campaigns import workflow
from campaigns.kinds import MediaKind
from campaigns.models import AuditEntry, Campaign, Screen
from media import posters
from media.models import MediaAsset
from media.poster_creatives import make_campaign_poster, poster_sizes, screen_size
from media.posters import BOLD, REGULAR, FontMissing, checked_template, font_characters, render_poster
from media.store import MediaStore
from media.upload import UPLOAD_ACTION
from scheduler.plan_store import newest_body
from scheduler.planning import plan_and_store
from signage.errors import Invalid, NotAllowed, NotFound
from signage.protocol import Plan
from tests import test_campaign_workflow
from tests.test_campaign_workflow import add_to_library

TZ = "Asia/Ho_Chi_Minh"
LINK = "https://ihanoi.hanoi.gov.vn/cai-dat?nguon=bang-tin"
HOTLINE = "Tổng đài 1022 - nhánh số 8"
TEMPLATE = {"title": "Cài đặt ứng dụng iHanoi – Hà Nội số",
            "text": "Kênh tương tác giữa chính quyền và người dân Thủ đô: phản ánh hiện trường, tra cứu thủ tục, "
                    "nhận thông báo của phường. Quét mã QR để tải ứng dụng.",
            "link": LINK, "hotline": HOTLINE}
VIETNAMESE_LETTERS = ("aàáảãạăằắẳẵặâầấẩẫậbcdđeèéẻẽẹêềếểễệghiìíỉĩịklmnoòóỏõọôồốổỗộơờớởỡợpqrstuùúủũụưừứửữựvxyỳýỷỹỵ"
                      "–…“”‘’")
# The AEON Mall of Hà Đông (examples/hanoi-fleet.yaml): a 3840x2160 LED, a 1080x1920 portrait LCD, a 1920x1080 LCD.
MALL = "aeon-hadong"
who = test_campaign_workflow.who  # the fixture: who("city-staff") is that user as the actor
MALL_FORMATS = {"hn-aeon-hadong-001": (3840, 2160), "hn-aeon-hadong-002": (1080, 1920),
                "hn-aeon-hadong-003": (1920, 1080)}


def decoded(png: bytes, directory: Path) -> str:
    """What zbarimg reads in the PNG (Debian's zbar-tools)."""
    path = directory / "poster.png"
    path.write_bytes(png)
    answer = subprocess.run(["zbarimg", "--raw", "-q", str(path)], capture_output=True, text=True, timeout=60)
    assert answer.returncode == 0, answer.stderr
    return answer.stdout.strip()


# -- the drawing --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [(1280, 720), (720, 1280), (1920, 1080), (1080, 1920), (3840, 2160), (2160, 3840),
                                  (5760, 1080), (2880, 960), (1280, 768)], ids=lambda s: f"{s[0]}x{s[1]}")
def test_the_poster_decodes_back_to_its_link_at_every_size(tmp_path, size):
    png = render_poster(checked_template(TEMPLATE), "UBND phường Phú La", *size)
    with Image.open(io.BytesIO(png)) as image:
        assert (image.format, image.size) == ("PNG", size)
    assert decoded(png, tmp_path) == LINK


def test_the_fonts_draw_every_vietnamese_letter():
    letters = VIETNAMESE_LETTERS + VIETNAMESE_LETTERS.upper()
    for name in (REGULAR, BOLD):
        assert posters.font_file(name).is_relative_to("/usr/share/fonts")
        missing = [ch for ch in letters if ord(ch) not in font_characters(name)]
        assert missing == [], name


def test_a_character_the_font_cannot_draw_is_refused_not_drawn_as_a_box():
    with pytest.raises(Invalid, match=r"U\+6F22") as refused:
        render_poster(checked_template({**TEMPLATE, "title": "iHanoi 漢"}), "UBND", 1920, 1080)
    assert "letters" in refused.value.fix


@pytest.mark.parametrize(("field", "value", "says"), [
    ("title", "   ", "title"),
    ("title", "x" * (posters.MAX_TITLE + 1), "title"),
    ("title", "Dòng một\nDòng hai", "one line"),
    ("text", "chữ " * 1000, "text"),
    ("link", "javascript:alert(1)", "not an http"),
    ("link", "ftp://ihanoi.hanoi.gov.vn/app", "not an http"),
    ("link", "https://", "not an http"),
    ("link", "https://ihanoi.hanoi.gov.vn/cài đặt", "spaces"),
    ("link", "https://a.vn/" + "x" * posters.MAX_LINK, "link"),
    ("hotline", "1022 " * 20, "hotline"),
], ids=["empty-title", "long-title", "title-two-lines", "huge-text", "javascript", "ftp", "no-host", "spaces",
        "long-link", "long-hotline"])
def test_hostile_input_is_refused_with_what_is_wrong(field, value, says):
    with pytest.raises(Invalid, match=says) as refused:
        checked_template({**TEMPLATE, field: value})
    assert refused.value.fix


def test_sizes_outside_screens_are_refused():
    template = checked_template(TEMPLATE)
    for size in [(100, 100), (20000, 1080), (8192, 8192)]:
        with pytest.raises(Invalid, match="pixels"):
            render_poster(template, "UBND", *size)


def test_without_the_debian_fonts_the_error_says_which_package(monkeypatch, tmp_path):
    monkeypatch.setattr(posters, "FONT_DIRS", (tmp_path,))
    posters.font_file.cache_clear()
    try:
        with pytest.raises(FontMissing, match="fonts-dejavu-core"):
            posters.font_file(REGULAR)
    finally:
        posters.font_file.cache_clear()


def test_a_screen_without_a_resolution_gets_its_orientations_default():
    from campaigns.kinds import Orientation

    assert screen_size(None, None, Orientation.portrait) == (1080, 1920)
    assert screen_size(None, None, None) == (1920, 1080)
    assert screen_size(1920, 1080, Orientation.portrait) == (1080, 1920)  # a landscape panel turned on its side
    assert screen_size(1280, 768, None) == (1280, 768)


# -- a campaign's poster ------------------------------------------------------------------------------------


@pytest.fixture
def mall_campaign(session, who, clock) -> str:
    """A draft of the city's staff on the three screens of AEON Mall Hà Đông, from today."""
    campaign = workflow.create_draft(session, who("city-staff"), clock, TZ, name="iHanoi tại AEON Hà Đông",
                                     start_date=date(2024, 8, 20), end_date=date(2024, 8, 31))
    workflow.set_targets(session, who("city-staff"), clock, TZ, campaign.id, {"sites": [MALL]})
    return campaign.id


def test_the_poster_is_drawn_for_each_format_of_the_campaigns_screens_stored_as_uploads_and_added_as_versions(
        session, settings, who, clock, mall_campaign, tmp_path):
    store = MediaStore(settings.media_dir)
    versions = make_campaign_poster(session, store, who("city-staff"), clock, TZ, mall_campaign,
                                    checked_template(TEMPLATE), "15")
    session.flush()
    assert [(v.width, v.height) for v in versions] == [(3840, 2160), (1920, 1080), (1080, 1920)]
    for version in versions:
        asset = version.asset
        assert (asset.kind, asset.mime, asset.width, asset.height) == (MediaKind.image, "image/png", version.width,
                                                                       version.height)
        assert asset.organisation_id == "hn" and asset.original_name.endswith(f"-{version.width}x{version.height}.png")
        assert decoded(store.path_for(asset.sha256).read_bytes(), tmp_path) == LINK
    uploads = session.scalars(select(AuditEntry).where(AuditEntry.action == UPLOAD_ACTION)).all()
    assert sorted(entry.entity_id for entry in uploads) == sorted(v.asset.sha256 for v in versions)
    assert {entry.after["display_ms"] for entry in uploads} == {15_000}
    creatives = session.get(Campaign, mall_campaign).creatives
    assert [c.media_sha256 for c in creatives] == [v.asset.sha256 for v in versions]
    assert {c.slot for c in creatives} == {creatives[0].position}  # one creative, in versions
    assert {c.duration_ms for c in creatives} == {15_000}


def test_a_poster_after_other_media_takes_a_slot_of_its_own(session, settings, who, clock, mall_campaign,
                                                            make_media):
    still = add_to_library(session, settings, clock, make_media("still.png"), "hn")
    workflow.set_creatives(session, who("city-staff"), clock, TZ, mall_campaign, [(still, 10)])
    make_campaign_poster(session, MediaStore(settings.media_dir), who("city-staff"), clock, TZ, mall_campaign,
                         checked_template(TEMPLATE))
    creatives = session.get(Campaign, mall_campaign).creatives
    assert [c.slot for c in creatives] == [0, 1, 1, 1]
    assert creatives[1].duration_ms == 10_000  # an image's default display time, as for an upload


def test_a_screen_without_a_resolution_is_drawn_for_in_its_orientations_default(session, who, mall_campaign):
    screen = session.get(Screen, "hn-aeon-hadong-001")
    screen.width = screen.height = None
    session.flush()
    assert poster_sizes(session, session.get(Campaign, mall_campaign)) == [(1920, 1080), (1080, 1920)]


def test_another_units_campaign_is_not_found_and_a_manager_may_not_make_posters(session, settings, who, clock,
                                                                               mall_campaign):
    store = MediaStore(settings.media_dir)
    template = checked_template(TEMPLATE)
    with pytest.raises(NotFound):
        make_campaign_poster(session, store, who("phula-staff"), clock, TZ, mall_campaign, template)
    with pytest.raises(NotAllowed):
        make_campaign_poster(session, store, who("city-manager"), clock, TZ, mall_campaign, template)
    assert session.scalars(select(MediaAsset)).all() == []  # nothing drawn into the library


def test_a_campaign_without_picture_screens_has_no_format(session, settings, who, clock):
    campaign = workflow.create_draft(session, who("phula-staff"), clock, TZ, name="Loa Phú La")
    workflow.set_targets(session, who("phula-staff"), clock, TZ, campaign.id, {"screens": ["hn-hadong-phula-003"]})
    with pytest.raises(Invalid, match="no screen that shows pictures"):
        make_campaign_poster(session, MediaStore(settings.media_dir), who("phula-staff"), clock, TZ, campaign.id,
                             checked_template(TEMPLATE))


def test_the_poster_plays_on_landscape_and_portrait_screens_each_in_its_own_format(session, settings, who, clock,
                                                                                  mall_campaign):
    versions = make_campaign_poster(session, MediaStore(settings.media_dir), who("city-staff"), clock, TZ,
                                    mall_campaign, checked_template(TEMPLATE))
    by_size = {(v.width, v.height): v.asset.sha256 for v in versions}
    workflow.submit(session, who("city-staff"), clock, TZ, mall_campaign)
    workflow.approve(session, who("city-manager"), clock, TZ, mall_campaign)
    plan_and_store(session, clock.now())
    for screen_id, size in MALL_FORMATS.items():
        plan = Plan.model_validate_json(newest_body(session, screen_id))
        played = {spot.media for spot in plan.spots if spot.campaign_id == mall_campaign}
        assert played == {by_size[size]}, screen_id


def test_the_example_campaigns_posters_decode_to_the_ihanoi_link_with_the_hotline_drawn(tmp_path):
    from tests.conftest import EXAMPLES

    for name, size in {"ihanoi-poster.png": (1920, 1080), "ihanoi-poster-portrait.png": (1080, 1920)}.items():
        png = (EXAMPLES / "media" / name).read_bytes()
        with Image.open(io.BytesIO(png)) as image:
            assert image.size == size, name
        assert decoded(png, tmp_path) == "https://ihanoi.hanoi.gov.vn", name
