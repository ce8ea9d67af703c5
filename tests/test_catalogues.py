"""The UI's gettext catalogues (scheduler/web/locale): every key the code and templates use has Vietnamese words
and an English translation, and the compiled .mo files say what the .po files say."""

from __future__ import annotations

import string
from pathlib import Path
from typing import get_args

import jinja2
import pytest
from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po

from campaigns.kinds import (
    AlertSeverity,
    CampaignStatus,
    MediaKind,
    OrgKind,
    Role,
    ScreenKind,
    SiteKind,
    WindowPolicy,
)
from scheduler.web.i18n import LANGUAGES, catalogue_file, install_translations, translate, translations
from signage.protocol import PlayKind, PlayStatus

ROOT = Path(__file__).resolve().parents[1]
# The keywords the Makefile's `catalogues` target passes to pybabel extract (-k translate -k t -k N_).
KEYWORDS = {**DEFAULT_KEYWORDS, "translate": None, "t": None, "N_": None}

# Labels looked up by a value's name ("site." + kind): each value needs its key.
LABELLED_VALUES = [("org.", list(OrgKind)), ("site.", list(SiteKind)), ("screen.", list(ScreenKind)),
                   ("role.", list(Role)), ("campaign.status.", list(CampaignStatus)),
                   ("campaign.window.", list(WindowPolicy)), ("campaign.media.kind.", list(MediaKind)),
                   ("media.kind.", list(MediaKind)), ("alert.severity.", list(AlertSeverity)),
                   ("play.kind.", get_args(PlayKind)), ("play.status.", get_args(PlayStatus))]


def catalogue(language: str):
    with catalogue_file(language, ".po").open("rb") as file:
        return read_po(file, locale=language)


@pytest.fixture(scope="module")
def used_keys() -> dict[str, str]:
    """Every key that pybabel extract finds, as `make catalogues` runs it: key -> the first file using it."""
    with (ROOT / "babel.cfg").open() as file:
        method_map, options_map = parse_mapping_cfg(file)
    keys: dict[str, str] = {}
    for filename, _line, message, _comments, _context in extract_from_dir(
            str(ROOT), method_map, options_map, keywords=KEYWORDS):
        for key in message if isinstance(message, tuple) else (message,):
            if key:
                keys.setdefault(key, filename)
    return keys


def test_extraction_sees_code_and_templates(used_keys):
    """A guard on the guard: the map in babel.cfg still reaches Python modules and templates."""
    assert "nav.fleet" in used_keys  # scheduler/web/deps.py, marked with N_
    assert "app.title" in used_keys  # base.html
    assert "chart.target" in used_keys  # scheduler/reports/charts.py, through t()
    assert len(used_keys) > 300


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_used_key_has_words(used_keys, language):
    words = {message.id: message.string for message in catalogue(language) if message.id}
    missing = sorted(f"{key} ({where})" for key, where in used_keys.items() if key not in words)
    empty = sorted(f"{key} ({where})" for key, where in used_keys.items() if key in words and not words[key])
    assert not missing, f"keys used but not in the {language} catalogue (run `make catalogues`): {missing}"
    assert not empty, f"keys without words in the {language} catalogue: {empty}"


def test_every_labelled_value_has_a_key(used_keys):
    """A new site kind, status or role needs its label: the templates build these keys from the value."""
    missing = [prefix + value for prefix, values in LABELLED_VALUES for value in values
               if prefix + value not in used_keys]
    assert not missing, f"add these keys (scheduler/web/i18n.py BUILT_KEYS) and their words: {missing}"


def test_catalogues_are_complete_and_agree():
    vi, en = catalogue("vi"), catalogue("en")
    vi_keys = {message.id for message in vi if message.id}
    en_keys = {message.id for message in en if message.id}
    assert vi_keys == en_keys, f"only in vi: {sorted(vi_keys - en_keys)}; only in en: {sorted(en_keys - vi_keys)}"
    for language, messages in (("vi", vi), ("en", en)):
        empty = sorted(message.id for message in messages if message.id and not message.string)
        fuzzy = sorted(message.id for message in messages if message.id and message.fuzzy)
        assert not empty, f"the {language} catalogue has keys without words: {empty}"
        assert not fuzzy, f"the {language} catalogue has fuzzy (unchecked) words: {fuzzy}"


def fields(text: str) -> set[str]:
    return {name for _literal, name, _spec, _conversion in string.Formatter().parse(text) if name}


def test_translations_keep_the_placeholders():
    """The code fills {count}, {max}... by name: an English text must name the same fields as the Vietnamese."""
    vi = {message.id: message.string for message in catalogue("vi") if message.id}
    differing = [(message.id, fields(vi[message.id]), fields(message.string)) for message in catalogue("en")
                 if message.id in vi and fields(vi[message.id]) != fields(message.string)]
    assert not differing


@pytest.mark.parametrize("language", LANGUAGES)
def test_compiled_catalogues_match_their_sources(language):
    """The .mo the server loads is compiled from the .po (scripts/setup.sh, make catalogues): not a stale one."""
    stale = [message.id for message in catalogue(language)
             if message.id and message.string and translations(language).gettext(message.id) != message.string]
    assert not stale, f"{catalogue_file(language)} is older than its .po: run `make catalogues`"


def test_english_falls_back_to_vietnamese_and_keys_stay_visible():
    assert translate("nav.fleet", "vi") == "Đơn vị & điểm đặt"
    assert translate("nav.fleet", "en") == "Units & sites"
    assert translate("nav.fleet", "fr") == "Đơn vị & điểm đặt"
    assert translate("no.such.key", "en") == "no.such.key"


def test_one_environment_renders_each_page_in_its_own_language():
    """The app's one Environment serves requests in both languages at once: `_()` reads the page's `lang`,
    included templates too, and nothing is installed per request."""
    environment = install_translations(jinja2.Environment(loader=jinja2.DictLoader({
        "page.html": '{{ _("nav.fleet") }}|{% include "part.html" %}', "part.html": '{{ gettext("nav.reports") }}'}),
        autoescape=True))
    page = environment.get_template("page.html")
    assert page.render(lang="en") == "Units &amp; sites|Reports"
    assert page.render(lang="vi") == "Đơn vị &amp; điểm đặt|" + translate("nav.reports", "vi")
    assert page.render() == page.render(lang="vi")
