"""Telling people when a screen goes dark in its peak hours, and when it is back: the outage noter of the notice
job (scheduler/notices.py), which makes an in-app notice for each of the unit's managers and staff
(`recipients`), e-mailed to those with an address.

`note_outages` opens an episode (`ScreenOutage`) once a screen has been dark `offline_notice_minutes` inside its
peak windows and operating hours (campaigns/screen_state.py's rule, the health page's), with a notice per
recipient, and closes it with a "back online" notice when the screen reports again.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload

from campaigns.models import Organisation, Screen, Site, User
from campaigns.screen_state import dark_since, screen_states
from scheduler.models import PlayerPresence, ScreenOutage
from scheduler.notices import Noter, people_of, tell
from signage.config import Settings

KINDS = ("offline", "back_online")


def recipients(session: Session, site: Site, include_parent: bool) -> list[User]:
    """Who is told about a screen of `site`: the active managers and staff of the site's own unit, and with
    `include_parent` (SIGNAGE_OFFLINE_NOTICE_PARENT) those of the unit above it. The one rule for every notice."""
    units = [site.organisation_id]
    if include_parent:
        parent = session.scalar(select(Organisation.parent_id).where(Organisation.id == site.organisation_id))
        if parent is not None:
            units.append(parent)
    return people_of(session, units)


def _tell(session: Session, outage: ScreenOutage, kind: str, screen: Screen, include_parent: bool,
          now: datetime) -> int:
    subject, body = outage_text(kind, outage, screen, now)
    return tell(session, recipients(session, screen.site, include_parent), kind, now, subject, body,
                link=f"/screens/{screen.id}", outage=outage)


def note_outages(session: Session, now: datetime, after: timedelta, include_parent: bool) -> tuple[int, int]:
    """Open an episode for each screen in service dark in its peak hours for `after` or longer, close the open
    ones whose screen reports again; returns (opened, closed). Idempotent: an open episode is never opened again."""
    open_outages = {o.screen_id: o for o in session.scalars(select(ScreenOutage).where(
        ScreenOutage.ended_at.is_(None)))}
    heard = select(PlayerPresence.player_id)
    screens = {s.id: s for s in session.scalars(
        select(Screen).options(joinedload(Screen.site)).where(
            Screen.in_service, Screen.id.in_(heard) | Screen.id.in_(list(open_outages))))}
    states = screen_states(session, list(screens), now)
    opened = closed = 0
    for screen_id, outage in open_outages.items():
        screen, state = screens.get(screen_id), states.get(screen_id)
        if screen is None:  # disabled or retired meanwhile: the episode ends untold
            outage.ended_at = now
        elif state is not None and state.state == "online":
            outage.ended_at = now
            _tell(session, outage, "back_online", screen, include_parent, now)
            closed += 1
    for screen_id, screen in screens.items():
        if screen_id in open_outages:
            continue
        since = dark_since(states[screen_id], screen.site, now)
        if since is None or now - since < after:
            continue
        outage = ScreenOutage(screen_id=screen_id, dark_since=since, noticed_at=now)
        session.add(outage)
        _tell(session, outage, "offline", screen, include_parent, now)
        opened += 1
    return opened, closed


# -- the words -------------------------------------------------------------------------------------------------

def _local(instant: datetime, zone: str) -> str:
    return instant.astimezone(ZoneInfo(zone)).strftime("%H:%M %d/%m/%Y")


def outage_text(kind: str, outage: ScreenOutage, screen: Screen, now: datetime) -> tuple[str, str]:
    """A notice's subject and body, in Vietnamese (the language of the unit's staff; the page offers English)."""
    site = screen.site
    where = f"{screen.name} — {site.name}"
    if kind == "offline":
        return (f"Màn hình mất kết nối trong giờ cao điểm: {where}",
                f"Màn hình {screen.name} ({screen.id}) tại {site.name} không hoạt động từ "
                f"{_local(outage.dark_since, site.timezone)}, trong giờ cao điểm của điểm đặt.\n"
                f"Hãy kiểm tra nguồn điện, mạng và máy phát của màn hình.")
    return (f"Màn hình đã hoạt động trở lại: {where}",
            f"Màn hình {screen.name} ({screen.id}) tại {site.name} đã hoạt động trở lại lúc "
            f"{_local(outage.ended_at or now, site.timezone)} "
            f"(mất kết nối từ {_local(outage.dark_since, site.timezone)}).")


def outage_noter(settings: Settings) -> Noter:
    """The job's outage step with the settings' delay and parent rule: returns (episodes opened, closed)."""
    after = timedelta(minutes=settings.offline_notice_minutes)

    def note(session: Session, now: datetime) -> tuple[int, int]:
        return note_outages(session, now, after, settings.offline_notice_parent)
    return note


__all__ = ["KINDS", "note_outages", "outage_noter", "outage_text", "recipients"]
