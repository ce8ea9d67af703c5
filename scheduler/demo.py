"""The demo: the example fleet and the iHanoi campaign, moved so that it plays from today."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

from campaigns.campaign_file import CampaignFile
from campaigns.fleet_file import ImportReport, import_fleet
from media.store import MediaStore
from scheduler.capacity import import_campaigns_checked
from scheduler.database import open_database
from signage.clock import Clock, local_today
from signage.config import Settings
from signage.db import transaction


def starting_on(first_day: date):
    """A campaign-file transform that moves every campaign to start on `first_day`, keeping its length."""

    def move(document: CampaignFile) -> CampaignFile:
        moved = []
        for campaign in document.campaigns:
            length = campaign.end_date - campaign.start_date
            moved.append(campaign.model_copy(update={"start_date": first_day, "end_date": first_day + length}))
        return document.model_copy(update={"campaigns": moved})

    return move


@dataclass
class DemoSetup:
    fleet: ImportReport
    campaigns: ImportReport
    first_day: date


def prepare_demo(settings: Settings, clock: Clock, fleet_file: Path, campaign_file: Path) -> DemoSetup:
    database = open_database(settings)
    try:
        today = local_today(clock, settings.timezone)
        with transaction(database.sessions) as session:
            fleet = import_fleet(session, fleet_file, settings.timezone)
        with transaction(database.sessions) as session:
            campaigns, _ = import_campaigns_checked(session, campaign_file, MediaStore(settings.media_dir), clock,
                                                    settings.timezone, transform=starting_on(today))
        return DemoSetup(fleet, campaigns, today)
    finally:
        database.dispose()
