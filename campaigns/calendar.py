"""When a campaign is on: its dates are local dates, read in each screen's site timezone."""

from __future__ import annotations

from datetime import date, datetime

from campaigns.kinds import CampaignStatus
from signage.clock import local_date


def is_active_on(start_date: date, end_date: date, local_day: date) -> bool:
    return start_date <= local_day <= end_date


def is_active_at(start_date: date, end_date: date, instant: datetime, timezone: str) -> bool:
    """Whether the campaign runs at `instant` on a screen whose site is in `timezone`."""
    return is_active_on(start_date, end_date, local_date(instant, timezone))


def status_on(start_date: date, end_date: date, today: date) -> CampaignStatus:
    """The status an approved campaign has on `today` (a local date)."""
    if today < start_date:
        return CampaignStatus.scheduled
    if today > end_date:
        return CampaignStatus.ended
    return CampaignStatus.active
