"""The poster page (/campaigns/{id}/poster): the form in Vietnamese, a preview of each format, the save with its
CSRF token, the refusals shown on the page, and another unit's campaign answering 404."""

from __future__ import annotations

import io
import re
from urllib.parse import parse_qs, urlsplit

import pytest
from PIL import Image
from sqlalchemy import select

from campaigns.models import Campaign
from media.models import MediaAsset
from tests.conftest import sign_in
from tests.test_posters import LINK, MALL, TEMPLATE

FORMATS = ["3840x2160", "1920x1080", "1080x1920"]


@pytest.fixture
def mall_campaign(api) -> str:
    """A draft of the city's staff on the three screens of AEON Mall Hà Đông (landscape and portrait)."""
    staff = api("city-staff")
    answer = staff.post("/api/v1/campaigns", json={"name": "iHanoi tại AEON Hà Đông", "start_date": "2024-08-21",
                                                   "end_date": "2024-08-31"})
    assert answer.status_code == 201, answer.text
    campaign_id = answer.json()["id"]
    assert staff.put(f"/api/v1/campaigns/{campaign_id}/targets", json={"sites": [MALL]}).status_code == 200
    return campaign_id


def test_the_page_offers_the_template_in_vietnamese_with_the_campaigns_formats(web, mall_campaign):
    sign_in(web, "city-staff")
    page = web.get(f"/campaigns/{mall_campaign}/poster")
    assert page.status_code == 200
    assert "Tạo áp phích" in page.text and 'id="poster-save"' in page.text
    assert re.findall(r'data-size="(\d+x\d+)"', page.text) == FORMATS
    wizard = web.get(f"/campaigns/{mall_campaign}/edit?step=media").text
    assert f'href="/campaigns/{mall_campaign}/poster"' in wizard


def test_a_preview_shows_each_format_drawn_by_the_server(web, mall_campaign):
    csrf = sign_in(web, "city-staff")
    page = web.post(f"/campaigns/{mall_campaign}/poster", data={"csrf_token": csrf, "action": "preview", **TEMPLATE})
    assert page.status_code == 200
    sources = re.findall(r'<img src="([^"]+)"', page.text)
    assert len(sources) == len(FORMATS)
    for source in sources:
        url = source.replace("&amp;", "&")
        asked = parse_qs(urlsplit(url).query)
        assert asked["link"] == [LINK]
        image = web.get(url)
        assert (image.status_code, image.headers["content-type"]) == (200, "image/png")
        with Image.open(io.BytesIO(image.content)) as png:
            width, height = int(asked["width"][0]), int(asked["height"][0])
            assert png.size[0] / png.size[1] == pytest.approx(width / height, rel=0.01)
            assert max(png.size) == 960
    assert session_media(web) == []  # a preview stores nothing


def session_media(web) -> list[str]:
    with web.app.state.database.sessions() as session:
        return list(session.scalars(select(MediaAsset.original_name)))


def test_saving_adds_the_poster_to_the_campaign_as_versions_of_one_creative(web, mall_campaign):
    csrf = sign_in(web, "city-staff")
    answer = web.post(f"/campaigns/{mall_campaign}/poster", data={"csrf_token": csrf, "action": "save",
                                                                  "display_s": "12", **TEMPLATE},
                      follow_redirects=False)
    assert answer.status_code == 303, answer.text
    page = web.get(answer.headers["location"]).text
    assert 'id="poster-saved"' in page
    assert len(re.findall(r'class="saved-version"', page)) == len(FORMATS)
    with web.app.state.database.sessions() as session:
        creatives = session.get(Campaign, mall_campaign).creatives
        assert [(c.media.width, c.media.height) for c in creatives] == [(3840, 2160), (1920, 1080), (1080, 1920)]
        assert len({c.slot for c in creatives}) == 1 and {c.duration_ms for c in creatives} == {12_000}


def test_a_save_without_the_csrf_token_is_refused(web, mall_campaign):
    sign_in(web, "city-staff")
    answer = web.post(f"/campaigns/{mall_campaign}/poster", data={"action": "save", **TEMPLATE},
                      follow_redirects=False)
    assert answer.status_code == 403
    assert session_media(web) == []


@pytest.mark.parametrize(("field", "value", "says"), [("link", "javascript:alert(1)", "not an http"),
                                                       ("title", "", "title"),
                                                       ("text", "x" * 5000, "text")])
def test_a_hostile_template_comes_back_with_the_error_and_stores_nothing(web, mall_campaign, field, value, says):
    csrf = sign_in(web, "city-staff")
    answer = web.post(f"/campaigns/{mall_campaign}/poster",
                      data={"csrf_token": csrf, "action": "save", **{**TEMPLATE, field: value}})
    assert answer.status_code == 422
    assert 'id="form-error"' in answer.text and says in answer.text
    assert session_media(web) == []


def test_a_preview_of_a_format_the_campaign_has_not_is_refused(web, mall_campaign):
    sign_in(web, "city-staff")
    answer = web.get(f"/campaigns/{mall_campaign}/poster.png", params={**TEMPLATE, "width": 7680, "height": 4320})
    assert answer.status_code == 422


def test_another_units_campaign_answers_404(web, mall_campaign):
    csrf = sign_in(web, "phula-staff")
    assert web.get(f"/campaigns/{mall_campaign}/poster").status_code == 404
    assert web.get(f"/campaigns/{mall_campaign}/poster.png",
                   params={**TEMPLATE, "width": 1920, "height": 1080}).status_code == 404
    assert web.post(f"/campaigns/{mall_campaign}/poster",
                    data={"csrf_token": csrf, "action": "save", **TEMPLATE}).status_code == 404
    assert session_media(web) == []


def test_a_manager_may_preview_but_not_save(web, mall_campaign):
    csrf = sign_in(web, "city-manager")
    page = web.get(f"/campaigns/{mall_campaign}/poster").text
    assert 'id="poster-save"' not in page and 'id="poster-read-only"' in page
    answer = web.post(f"/campaigns/{mall_campaign}/poster", data={"csrf_token": csrf, "action": "save", **TEMPLATE})
    assert answer.status_code == 403
    assert session_media(web) == []
