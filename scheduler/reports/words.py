"""How a person reads the codes that report rows hold: the catalogue's labels for kinds and statuses, and for the
reasons players give. The rows keep the codes and the players' own words: the CSV writes them as they are, for the
tools that read it; pages (`in_words`), PDFs and XLSX (scheduler/reports/exports.py) show these labels
(`Column.words`)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from typing import Any

from scheduler.reports.table import Sheet
from scheduler.web.i18n import N_, translate


def labelled(prefix: str) -> Callable[[Any, str], str]:
    """The label of a code in the catalogue under `prefix` ("play.kind." + "spot"); a value the catalogue has no
    label for (a totals row's "Tổng") as it is."""
    def words(value: Any, language: str) -> str:
        code = getattr(value, "value", value)  # an enum member or its value
        key = f"{prefix}{code}"
        label = translate(key, language)
        return str(code) if label == key else label
    return words


# The reasons players write on a play record that did not complete (player/programme.py, programme_run.py,
# takeover.py, agent.py), each with its label: whole texts, then those a detail follows (an alert's id, libVLC's
# message), which the CSV keeps.
REASONS = {
    "media not cached": N_("play.reason.media_not_cached"),
    "too late to join": N_("play.reason.too_late"),
    "joined late": N_("play.reason.joined_late"),
    "cut": N_("play.reason.cut"),
    "playback restarted by staff": N_("play.reason.restarted_by_staff"),
    "the clock was set back during the play": N_("play.reason.clock_set_back"),
}
REASON_PREFIXES = {
    "urgent alert ": N_("play.reason.urgent_alert"),
    "playback error": N_("play.reason.playback_error"),
}
OTHER_REASON = N_("play.reason.other")


def reason_words(reason: Any, language: str) -> str:
    """A player's reason by its label; one the labels do not know, after the words "other reason"."""
    text = str(reason)
    key = REASONS.get(text) or next((key for prefix, key in REASON_PREFIXES.items() if text.startswith(prefix)),
                                    None)
    if key is not None:
        return translate(key, language)
    return f"{translate(OTHER_REASON, language)}: {text}"


def in_words(sheet: Sheet, language: str) -> Sheet:
    """The sheet as a page shows it: each value of a column of codes (`Column.words`) as its words; the rows stay
    a stream."""
    coded = [column for column in sheet.columns if column.words is not None]
    if not coded:
        return sheet

    def rows() -> Iterator[dict[str, Any]]:
        for row in sheet.rows:
            yield {**row, **{c.key: c.words(row[c.key], language) for c in coded if row.get(c.key) is not None}}

    return replace(sheet, rows=rows())
