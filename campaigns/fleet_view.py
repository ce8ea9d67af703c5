"""What the fleet page shows: an organisation subtree with its sites, their hours today, and screens."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from campaigns.models import Organisation, Screen, Site
from signage.clock import Clock, local_date


@dataclass(frozen=True)
class SiteRow:
    site: Site
    screens: int
    operating_today: str
    peak_today: str


@dataclass(frozen=True)
class FleetOverview:
    root: Organisation | None
    organisations: list[tuple[Organisation, int]]  # with depth below the shown root
    sites: list[SiteRow]
    screens: list[Screen]


def fleet_overview(session: Session, clock: Clock, root_id: str | None = None) -> FleetOverview:
    root = session.get(Organisation, root_id) if root_id else None
    prefix = root.path if root else "/"
    orgs = session.scalars(
        select(Organisation).where(Organisation.path.startswith(prefix, autoescape=True)).order_by(Organisation.path)
    ).all()
    base_depth = prefix.count("/")
    org_ids = [o.id for o in orgs]
    sites = session.scalars(
        select(Site).join(Organisation).where(Site.organisation_id.in_(org_ids))
        .options(selectinload(Site.screens)).order_by(Organisation.path, Site.name)
    ).all()
    screens = session.scalars(
        select(Screen).join(Site).where(Site.organisation_id.in_(org_ids))
        .options(selectinload(Screen.groups), selectinload(Screen.site)).order_by(Screen.id)
    ).all()
    now = clock.now()
    rows = []
    for site in sites:
        today = local_date(now, site.timezone)
        rows.append(SiteRow(
            site=site, screens=len(site.screens),
            operating_today=", ".join(str(w) for w in site.effective_operating_hours().on(today)),
            peak_today=", ".join(str(w) for w in site.effective_peak_windows().on(today)),
        ))
    return FleetOverview(root, [(o, o.path.count("/") - base_depth) for o in orgs], rows, list(screens))
