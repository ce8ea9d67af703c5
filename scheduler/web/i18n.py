"""The UI's words: Vietnamese first, English on request (?lang=en, remembered in a cookie).

The words live in gettext catalogues, scheduler/web/locale/<language>/LC_MESSAGES/messages.po, compiled to .mo by
`make catalogues` (and by scripts/setup.sh). The msgids are symbolic keys ("nav.fleet"): the vi catalogue holds the
wording, the en catalogue its translation (docs/architecture.md says why). Python code calls `translate(key,
language)`; templates call `_(key)` through Jinja2's i18n extension, in the language of the page being rendered."""

from __future__ import annotations

from functools import cache
from pathlib import Path

import jinja2
from babel.support import Translations
from fastapi import Request

LANGUAGES = ("vi", "en")
LOCALE_DIR = Path(__file__).parent / "locale"
DOMAIN = "messages"


def N_(key: str) -> str:
    """Marks a key for `pybabel extract` where the code looks it up built from a value ("site." + kind)."""
    return key


# Keys looked up built from a value, in templates ("site." ~ kind, "campaign.status." ~ status): pybabel extract
# sees only literal keys, and `pybabel update` would retire these from the catalogues without this list.
BUILT_KEYS = (
    N_("org.city"), N_("org.department"), N_("org.district"), N_("org.ward"), N_("org.commune"), N_("org.partner"),
    N_("site.airport"), N_("site.railway_station"), N_("site.bus_station"), N_("site.bus"), N_("site.bus_stop"),
    N_("site.ward_office"), N_("site.intersection"), N_("site.hospital"), N_("site.school"), N_("site.mall"),
    N_("site.apartment"), N_("site.office"),
    N_("screen.lcd"), N_("screen.led"), N_("screen.speaker"),
    N_("screenstate.online"), N_("screenstate.offline"), N_("screenstate.never"),
    N_("screenaction.screenshot"), N_("screenaction.reload"), N_("screenaction.sync"), N_("screenaction.restart"),
    N_("screenaction.state.done"), N_("screenaction.state.refused"), N_("screenaction.state.waiting"),
    N_("screenaction.state.sent"), N_("screenaction.state.queued"), N_("screenaction.state.expired"),
    N_("play.kind.spot"), N_("play.kind.makegood"), N_("play.kind.filler"), N_("play.kind.alert"),
    N_("play.status.completed"), N_("play.status.interrupted"), N_("play.status.failed"), N_("play.status.missed"),
    N_("play.status.started"),
    N_("role.admin"), N_("role.staff"), N_("role.head"), N_("role.manager"),
    N_("media.kind.video"), N_("media.kind.image"), N_("media.kind.audio"),
    N_("media.notice.uploaded"), N_("media.notice.duplicate"),
    N_("campaign.status.draft"), N_("campaign.status.submitted"), N_("campaign.status.scheduled"),
    N_("campaign.status.active"), N_("campaign.status.ended"), N_("campaign.status.archived"),
    N_("campaign.step.draft"), N_("campaign.step.media"), N_("campaign.step.targets"), N_("campaign.step.dates"),
    N_("campaign.step.frequency"), N_("campaign.step.preview"),
    N_("campaign.window.peak"), N_("campaign.window.operating"), N_("campaign.window.explicit"),
    N_("campaign.media.kind.video"), N_("campaign.media.kind.image"), N_("campaign.media.kind.audio"),
    N_("campaign.done.submitted"), N_("campaign.done.approved"), N_("campaign.done.rejected"),
    N_("campaign.done.archived"), N_("campaign.done.override"),
    N_("campaign.warn.audio_without_speakers"), N_("campaign.warn.speakers_without_audio"),
    N_("campaign.warn.displays_without_picture"),
    N_("reports.compliance"), N_("reports.pop"), N_("reports.health"), N_("reports.rounds"), N_("reports.cadence"),
    N_("reports.mobile"),
    N_("fleet.day.mon"), N_("fleet.day.tue"), N_("fleet.day.wed"), N_("fleet.day.thu"), N_("fleet.day.fri"),
    N_("fleet.day.sat"), N_("fleet.day.sun"),
    N_("alert.phase.pending"), N_("alert.phase.scheduled"), N_("alert.phase.active"), N_("alert.phase.ended"),
    N_("alert.phase.stopped"), N_("alert.phase.rejected"),
    N_("alert.severity.info"), N_("alert.severity.urgent"),
    N_("alert.severity.info.help"), N_("alert.severity.urgent.help"),
    N_("alert.done.created"), N_("alert.done.pending"), N_("alert.done.approved"), N_("alert.done.rejected"),
    N_("alert.done.stopped"),
    N_("alert.state.waiting"), N_("alert.state.showing"), N_("alert.state.ended"), N_("alert.state.not acknowledged"),
    N_("alert.outcome.completed"), N_("alert.outcome.interrupted"), N_("alert.outcome.failed"),
)


def catalogue_file(language: str, suffix: str = ".mo") -> Path:
    return LOCALE_DIR / language / "LC_MESSAGES" / f"{DOMAIN}{suffix}"


@cache
def translations(language: str) -> Translations:
    """The compiled catalogue of a language, loaded once; English falls back to Vietnamese for a key it lacks."""
    path = catalogue_file(language)
    if not path.is_file():
        raise RuntimeError(f"{path} is missing: compile the catalogues with `make catalogues`")
    with path.open("rb") as file:
        catalogue = Translations(file, domain=DOMAIN)
    if language != "vi":
        catalogue.add_fallback(translations("vi"))
    return catalogue


def language_of(request: Request) -> str:
    asked = request.query_params.get("lang") or request.cookies.get("lang")
    return asked if asked in LANGUAGES else "vi"


def translate(key: str, language: str) -> str:
    """The words for `key` in `language` (Vietnamese for a language the UI does not have); the key itself when no
    catalogue has it."""
    return translations(language if language in LANGUAGES else "vi").gettext(key)


@jinja2.pass_context
def _template_gettext(context: jinja2.runtime.Context, key: str) -> str:
    # The language comes from the page's own context: one Environment serves concurrent requests in both languages.
    return translate(key, context.get("lang", "vi"))


@jinja2.pass_context
def _template_ngettext(context: jinja2.runtime.Context, singular: str, plural: str, n: int) -> str:
    language = context.get("lang", "vi")
    return translations(language if language in LANGUAGES else "vi").ngettext(singular, plural, n)


def install_translations(environment: jinja2.Environment) -> jinja2.Environment:
    """Gives an Environment's templates `_()` (and gettext/ngettext) in the language of the `lang` they render with."""
    environment.add_extension("jinja2.ext.i18n")
    environment.install_gettext_callables(  # type: ignore[attr-defined]
        gettext=_template_gettext, ngettext=_template_ngettext, newstyle=False)
    return environment
