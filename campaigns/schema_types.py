"""Field types shared by the file formats and the API."""

from __future__ import annotations

from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, ConfigDict, StringConstraints

from campaigns.windows import WeekSchedule
from signage.errors import Invalid
from signage.text import NfcModel

SLUG_PATTERN = r"^[a-z0-9][a-z0-9-]{1,62}$"
Slug = Annotated[str, StringConstraints(pattern=SLUG_PATTERN)]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=255)]


class StrictModel(NfcModel):
    """What files and the API give: no unknown fields, text in NFC without surrounding spaces."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


def _known_timezone(value: str) -> str:
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise Invalid(f"unknown timezone {value!r}",
                      "use an IANA name such as Asia/Ho_Chi_Minh or Asia/Bangkok") from None
    return value


def _normalised_schedule(value: dict[str, Any]) -> dict[str, list[str]]:
    if not isinstance(value, dict):
        raise Invalid("a schedule must be a mapping of days to windows",
                      'write e.g. {mon-fri: ["08:00-11:00"], sat: ["08:00-11:00"]}')
    return WeekSchedule.from_spec(value).to_spec()


def _resolution(value: str) -> str:
    width, sep, height = str(value).lower().partition("x")
    if not (sep and width.isdigit() and height.isdigit() and int(width) > 0 and int(height) > 0):
        raise Invalid(f"{value!r} is not a resolution", "write WIDTHxHEIGHT in pixels, e.g. 1920x1080")
    return f"{int(width)}x{int(height)}"


Timezone = Annotated[str, AfterValidator(_known_timezone)]
# A week schedule as written in files, normalised (days merged into ranges, windows sorted).
ScheduleSpec = Annotated[dict[str, Any], AfterValidator(_normalised_schedule)]
Resolution = Annotated[str, AfterValidator(_resolution)]


def _language(value: str) -> str:
    code = value.strip().lower()
    if not (2 <= len(code) <= 3 and code.isascii() and code.isalpha()):
        raise Invalid(f"{value[:20]!r} is not a language code", 'write its ISO 639 code: "vi", "en", "zh", "ko", "ja"')
    return code


# A creative version's language: a two- or three-letter ISO 639 code, kept in lowercase ("vi", "en", "zh").
Language = Annotated[str, StringConstraints(max_length=8), AfterValidator(_language)]
