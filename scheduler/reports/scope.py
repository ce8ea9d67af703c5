"""What a report covers, and how every report's queries keep to it: an organisation subtree, a period of local
dates (inclusive), optionally one campaign."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Select, and_, not_, or_, select
from sqlalchemy.orm import Session

from campaigns.models import Organisation, Screen, Site
from scheduler.models import DeliveryRollup, PlayHours, PlayRecord


@dataclass
class Scope:
    """What a report covers: an organisation subtree, a period (local dates, inclusive), optionally a campaign."""

    organisation_id: str
    organisation_name: str
    path: str
    first: date
    last: date
    campaign_id: str | None = None
    campaign_name: str | None = None
    # Screens of the subtree retired, by the local date (their site's) of their last day in service: no screen-day
    # counts after it (`retired_screens` fills it; make_scope does).
    retired: Mapping[str, date] = field(default_factory=dict)

    def in_service_on(self, screen_id: str, day: date) -> bool:
        retired = self.retired.get(screen_id)
        return retired is None or day <= retired

    def filter_organisations(self, query: Select) -> Select:
        """`query`, which reads Organisation, kept to the organisations of the scope's subtree."""
        return query.where(Organisation.path.startswith(self.path, autoescape=True))

    def filter_screens(self, query: Select, screen_id: ColumnElement[str] | None = None) -> Select:
        """`query`, which reads Screen, joined to the screen's site and the site's organisation and kept to the
        screens of the scope's subtree; given `screen_id` (the column of another table that holds a screen's id),
        joined from it to the screen first."""
        if screen_id is not None:
            query = query.join(Screen, Screen.id == screen_id)
        return self.filter_organisations(query.join(Site, Site.id == Screen.site_id)
                                         .join(Organisation, Organisation.id == Site.organisation_id))

    def filter_campaign(self, query: Select, campaign_id: ColumnElement[str]) -> Select:
        """`query` kept to the scope's campaign, when it names one (`campaign_id`: the column that holds a campaign's
        id); all campaigns otherwise."""
        return query if self.campaign_id is None else query.where(campaign_id == self.campaign_id)

    def filter_plays(self, query: Select) -> Select:
        """`query` of the proof-of-play log kept to the scope's screens, period (by local date) and campaign."""
        return self.filter_campaign(self.filter_screens(query, PlayRecord.player_id)
                                    .where(PlayRecord.local_date.between(self.first, self.last)),
                                    PlayRecord.campaign_id)

    def filter_play_hours(self, query: Select) -> Select:
        """`query` of the hourly roll-up (`play_hours`) joined to its site and the site's organisation, and kept to
        the scope's period (one range of its key), subtree and campaign."""
        query = (query.join(Site, Site.id == PlayHours.site_id)
                 .join(Organisation, Organisation.id == Site.organisation_id))
        return self.filter_campaign(self.filter_organisations(query)
                                    .where(PlayHours.local_date.between(self.first, self.last)), PlayHours.campaign_id)

    def filter_ledger(self, query: Select) -> Select:
        """`query` of the delivery ledger kept to the scope's screens, period and campaign, and to the screen-days
        that required any play, while the screen was in service (plays before its retirement stay)."""
        query = self.filter_screens(query, DeliveryRollup.screen_id).where(
            DeliveryRollup.local_date.between(self.first, self.last), DeliveryRollup.required > 0)
        if self.retired:
            query = query.where(not_(or_(*(and_(DeliveryRollup.screen_id == screen_id,
                                                 DeliveryRollup.local_date > last_day)
                                           for screen_id, last_day in self.retired.items()))))
        return self.filter_campaign(query, DeliveryRollup.campaign_id)

    def unit_of(self, path: str) -> str:
        """The organisation directly under the scope's root that holds `path` (the root itself for its own sites)."""
        rest = path[len(self.path):].strip("/")
        return rest.split("/", 1)[0] if rest else self.path.strip("/").rsplit("/", 1)[-1]

    def offset_minutes(self, timezone: str) -> int:
        """The zone's UTC offset on the period's first day, in minutes: the one offset the database applies to a
        period's timestamps (Hà Nội keeps one offset all year; a zone with daylight saving would be off by an hour
        for part of a period that crosses its change)."""
        offset = datetime.combine(self.first, time(12), ZoneInfo(timezone)).utcoffset()
        return int(offset.total_seconds() // 60) if offset else 0

    def campaign_note(self, language: str) -> str:
        """The line under a report's title that says which campaign it covers."""
        en = language == "en"
        if self.campaign_id is None:
            return "Tất cả chiến dịch" if not en else "All campaigns"
        return f"{'Chiến dịch' if not en else 'Campaign'}: {self.campaign_name or self.campaign_id}"


def retired_screens(session: Session, scope: Scope) -> dict[str, date]:
    """The scope's retired screens, each by the local date (in its site's zone) it was retired on."""
    rows = session.execute(scope.filter_screens(select(Screen.id, Screen.retired_at, Site.timezone))
                           .where(Screen.retired_at.is_not(None))).all()
    return {screen_id: retired_at.astimezone(ZoneInfo(zone)).date() for screen_id, retired_at, zone in rows}


__all__ = ["Scope", "retired_screens"]
