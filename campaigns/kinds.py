"""The closed vocabularies of the domain, and each site kind's defaults (hours, audience)."""

from __future__ import annotations

from enum import StrEnum

from campaigns.windows import WeekSchedule


class OrgKind(StrEnum):
    city = "city"
    department = "department"
    district = "district"
    ward = "ward"
    commune = "commune"
    partner = "partner"


class SiteKind(StrEnum):
    airport = "airport"
    railway_station = "railway_station"
    bus_station = "bus_station"
    bus = "bus"
    bus_stop = "bus_stop"
    ward_office = "ward_office"
    intersection = "intersection"
    hospital = "hospital"
    school = "school"
    mall = "mall"
    apartment = "apartment"
    office = "office"


class ScreenKind(StrEnum):
    lcd = "lcd"
    led = "led"
    speaker = "speaker"


class Orientation(StrEnum):
    landscape = "landscape"
    portrait = "portrait"


class WindowPolicy(StrEnum):
    peak = "peak"
    operating = "operating"
    explicit = "explicit"


class CampaignStatus(StrEnum):
    draft = "draft"
    submitted = "submitted"
    scheduled = "scheduled"
    active = "active"
    ended = "ended"
    archived = "archived"


class Role(StrEnum):
    admin = "admin"
    staff = "staff"  # communications staff
    head = "head"  # head of unit
    manager = "manager"


class AlertSeverity(StrEnum):
    info = "info"  # a ticker over whatever plays (a clip plays in the gaps): the unit's regular message
    urgent = "urgent"  # takes the screen over at once


class AlertKind(StrEnum):
    text = "text"
    media = "media"


class AlertStatus(StrEnum):
    """Where an alert stands with people; when it shows is its times' business (see campaigns/alerts.py)."""

    pending = "pending"  # waits for the head of unit's approval
    approved = "approved"  # goes out at its start, until its expiry
    rejected = "rejected"
    stopped = "stopped"  # taken off the screens before its expiry


class MediaKind(StrEnum):
    video = "video"
    image = "image"
    audio = "audio"


# Defaults per site kind, from docs/design.md §6 where it gives them; the rest are assumptions to tune
# per site. Peak windows must lie inside operating hours.
_KIND_HOURS: dict[SiteKind, tuple[dict[str, list[str]], dict[str, list[str]]]] = {
    SiteKind.ward_office: (
        {"mon-fri": ["07:30-17:00"], "sat": ["07:30-11:30"]},
        {"mon-fri": ["08:00-11:00", "14:00-16:30"], "sat": ["08:00-11:00"]},
    ),
    SiteKind.bus_station: ({"daily": ["05:00-22:00"]}, {"daily": ["06:00-08:30", "16:30-19:00"]}),
    SiteKind.bus: ({"daily": ["05:00-22:00"]}, {"daily": ["06:00-08:30", "16:30-19:00"]}),
    SiteKind.bus_stop: ({"daily": ["05:00-22:00"]}, {"daily": ["06:00-08:30", "16:30-19:00"]}),
    SiteKind.airport: ({"daily": ["04:30-24:00"]}, {"daily": ["05:30-09:00", "17:00-22:00"]}),
    SiteKind.railway_station: ({"daily": ["05:00-23:30"]}, {"daily": ["06:00-09:00", "18:00-22:30"]}),
    SiteKind.intersection: ({"daily": ["05:00-23:00"]}, {"daily": ["07:00-09:00", "17:00-19:00"]}),
    SiteKind.hospital: ({"daily": ["06:00-20:00"]}, {"daily": ["07:00-11:00", "13:30-16:00"]}),
    SiteKind.school: (
        {"mon-fri": ["06:30-17:30"], "sat": ["06:30-11:30"]},
        {"mon-fri": ["06:30-07:30", "11:00-12:00", "16:30-17:30"], "sat": ["06:30-07:30", "10:30-11:30"]},
    ),
    SiteKind.mall: ({"daily": ["09:00-22:00"]}, {"daily": ["11:00-13:00", "18:00-21:00"]}),
    SiteKind.apartment: ({"daily": ["05:00-23:00"]}, {"daily": ["06:30-08:30", "17:30-20:30"]}),
    SiteKind.office: (
        {"mon-fri": ["07:30-17:30"]},
        {"mon-fri": ["07:45-08:45", "11:30-13:30"]},
    ),
}


def default_operating_hours(kind: SiteKind) -> WeekSchedule:
    return WeekSchedule.from_spec(_KIND_HOURS[kind][0])


def default_peak_windows(kind: SiteKind) -> WeekSchedule:
    return WeekSchedule.from_spec(_KIND_HOURS[kind][1])


def effective_operating_hours(kind: SiteKind, spec: dict | None) -> WeekSchedule:
    """A site's operating hours: its own schedule, or its kind's default when it has none."""
    return default_operating_hours(kind) if spec is None else WeekSchedule.from_spec(spec)


def effective_peak_windows(kind: SiteKind, spec: dict | None) -> WeekSchedule:
    """A site's peak windows: its own schedule, or its kind's default when it has none."""
    return default_peak_windows(kind) if spec is None else WeekSchedule.from_spec(spec)


# Where travellers from abroad are the audience, a creative's language versions play in turn (scheduler/planner.py).
_INTERNATIONAL_KINDS = frozenset({SiteKind.airport, SiteKind.railway_station})


def default_international_audience(kind: SiteKind) -> bool:
    return kind in _INTERNATIONAL_KINDS


def effective_international_audience(kind: SiteKind, setting: bool | None) -> bool:
    """Whether a site's audience is international: its own setting, or its kind's default when it has none."""
    return default_international_audience(kind) if setting is None else setting


# -- reporting rounds (campaigns/reporting_rounds.py) ------------------------------------------------------------

class FieldKind(StrEnum):
    """What a reporting round's form field holds: typed by the unit, or a figure the system fills."""

    integer = "integer"
    number = "number"
    percent = "percent"  # 0..100
    text = "text"
    yes_no = "yes_no"
    figure = "figure"  # filled by the system: `ReportFigure`


class ReportFigure(StrEnum):
    """The figures the system fills on a round's form, over the round's period and the unit's subtree."""

    screens = "screens"
    required_plays = "required_plays"
    delivered_plays = "delivered_plays"
    compliance = "compliance"  # delivered over required plays, in %
    regular_messages = "regular_messages"
    urgent_alerts = "urgent_alerts"
    mobile_rounds_planned = "mobile_rounds_planned"  # mobile loudspeaker rounds (campaigns/mobile_rounds.py)
    mobile_rounds_done = "mobile_rounds_done"


class SubmissionStatus(StrEnum):
    draft = "draft"
    submitted = "submitted"  # waiting for the head's approval when the series asks for it; final otherwise
    approved = "approved"
    returned = "returned"  # sent back by the head, with a note: the unit corrects and submits again
