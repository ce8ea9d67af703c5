"""The demo: the example fleet, the iHanoi campaign moved so that it plays from today, and a user of each role.

The demo users share one password made afresh on every run and printed on start: a demo left running on a
reachable address is not open to a password anyone could read in the repository, and nothing secret is
committed. A run resets the accounts of the run before, so the printed password is always the one that works.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from campaigns.accounts import create_user, set_password
from campaigns.campaign_file import CampaignFile, read_campaign_file
from campaigns.fleet_file import ImportReport, import_fleet
from campaigns.kinds import CampaignStatus, Role
from campaigns.models import Campaign, Organisation, User
from media.store import MediaStore
from scheduler.capacity import import_campaigns_checked
from scheduler.database import open_database
from signage.clock import Clock, local_today
from signage.config import Settings
from signage.db import transaction

# (user name prefix, organisation): the city, which sees everything, and one ward, which sees only its own.
DEMO_ORGANISATIONS = (("city", "hn"), ("phula", "hn-hadong-phula"))
DEMO_ROLES = (Role.admin, Role.staff, Role.head, Role.manager)
# Who approved a campaign that came in through a campaign file: no user did, and this name can be no user's
# (user names have no spaces), so the campaign pages can say so in their own words; the review note holds the
# file's name (data, in no language).
FILE_APPROVER = "campaign file"
_PASSWORD_LETTERS = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i: read off a terminal, typed on a phone


def starting_on(first_day: date):
    """A campaign-file transform that moves every campaign to start on `first_day`, keeping its length."""

    def move(document: CampaignFile) -> CampaignFile:
        moved = []
        for campaign in document.campaigns:
            length = campaign.end_date - campaign.start_date
            moved.append(campaign.model_copy(update={"start_date": first_day, "end_date": first_day + length}))
        return document.model_copy(update={"campaigns": moved})

    return move


def demo_password() -> str:
    """A fresh password: three groups of four letters and digits that are hard to misread (about 59 bits)."""
    return "-".join("".join(secrets.choice(_PASSWORD_LETTERS) for _ in range(4)) for _ in range(3))


@dataclass(frozen=True)
class DemoUser:
    username: str
    role: Role
    organisation_id: str
    organisation_name: str


def seed_demo_users(session: Session, password: str, clock: Clock) -> list[DemoUser]:
    """One user of each role for the city and for the ward Phú La, all with `password`. Users of an earlier run
    get their role, organisation and this password back; an organisation the fleet lacks is left out."""
    seeded = []
    for prefix, organisation_id in DEMO_ORGANISATIONS:
        organisation = session.get(Organisation, organisation_id)
        if organisation is None:
            continue
        for role in DEMO_ROLES:
            username = f"{prefix}-{role.value}"
            full_name = f"{organisation.name} (demo)"
            user = session.scalars(select(User).where(User.username == username)).one_or_none()
            if user is None:
                create_user(session, username=username, full_name=full_name, role=role,
                            organisation_id=organisation_id, password=password, clock=clock)
            else:
                user.full_name, user.role, user.organisation_id, user.active = full_name, role, organisation_id, True
                set_password(user, password)
            seeded.append(DemoUser(username, role, organisation_id, organisation.name))
    session.flush()
    return seeded


def mark_approved_by_file(session: Session, campaign_ids: set[str], source: Path, clock: Clock) -> None:
    """Campaigns a file scheduled were approved by the file, not by a user of the app: say so where the app
    shows who approved a campaign. Campaigns approved in the app keep their approver."""
    for campaign in session.scalars(select(Campaign).where(Campaign.id.in_(campaign_ids))):
        if campaign.status is CampaignStatus.draft or campaign.approved_by is not None:
            continue
        campaign.approved_by, campaign.approved_at = FILE_APPROVER, clock.now()
        campaign.review_note = source.name
    session.flush()


@dataclass
class DemoSetup:
    fleet: ImportReport
    campaigns: ImportReport
    first_day: date
    users: list[DemoUser]
    password: str
    campaign_statuses: dict[str, CampaignStatus]


def prepare_demo(settings: Settings, clock: Clock, fleet_file: Path, campaign_file: Path,
                 password: str | None = None) -> DemoSetup:
    """Load the fleet and the campaigns (from today), and seed the demo users with `password` (a fresh one
    unless given)."""
    password = password or demo_password()
    database = open_database(settings)
    try:
        today = local_today(clock, settings.timezone)
        with transaction(database.sessions) as session:
            fleet = import_fleet(session, fleet_file, settings.timezone)
        with transaction(database.sessions) as session:
            campaigns, _ = import_campaigns_checked(session, campaign_file, MediaStore(settings.media_dir), clock,
                                                    settings.timezone, transform=starting_on(today))
            ids = {c.id for c in read_campaign_file(campaign_file)[1].campaigns}
            mark_approved_by_file(session, ids, campaign_file, clock)
            statuses = dict(session.execute(select(Campaign.id, Campaign.status).where(Campaign.id.in_(ids))
                                            .order_by(Campaign.id)).all())
        with transaction(database.sessions) as session:
            users = seed_demo_users(session, password, clock)
        return DemoSetup(fleet, campaigns, today, users, password, statuses)
    finally:
        database.dispose()
