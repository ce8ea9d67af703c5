"""A campaign's poster: the template drawn (media/posters.py) once for each screen format the campaign's screens
have, each PNG taken into the owning unit's media library as an upload is (media/upload.py), and added to the
campaign as the versions of one creative, so each screen plays the version of its format (scheduler/planner.py).

Plain functions over a session and an Actor, as the rest of the domain: another unit's campaign is NotFound, and
nothing is drawn or stored before the user is known to be allowed to change the campaign's media.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from campaigns import workflow
from campaigns.access import Actor
from campaigns.kinds import Orientation, ScreenKind
from campaigns.models import Campaign, Screen
from campaigns.workflow import slug_from_name
from media.library import may_upload
from media.models import MediaAsset
from media.posters import PosterTemplate, render_poster
from media.store import MediaStore
from media.thumbnails import Thumbnails
from media.upload import Received, accept_upload, display_ms_from_seconds
from signage.clock import Clock
from signage.errors import Invalid

# A screen whose resolution is not recorded gets the common full-HD format of its orientation.
DEFAULT_SIZES = {Orientation.landscape: (1920, 1080), Orientation.portrait: (1080, 1920)}
MAX_FORMATS = 16  # distinct formats one poster is drawn in: a city-wide campaign has about ten


@dataclass(frozen=True)
class PosterVersion:
    width: int
    height: int
    asset: MediaAsset


def screen_size(width: int | None, height: int | None, orientation: Orientation | None) -> tuple[int, int]:
    """The format a poster is drawn in for a screen: its resolution, turned to its orientation when that is
    recorded; its orientation's default without a resolution."""
    if not (width and height):
        return DEFAULT_SIZES[orientation or Orientation.landscape]
    if orientation is not None and (orientation is Orientation.portrait) != (height > width):
        return height, width
    return width, height


def poster_sizes(session: Session, campaign: Campaign) -> list[tuple[int, int]]:
    """The distinct formats of the screens the campaign targets that show pictures (in service, not speakers),
    landscape ones first, the largest first."""
    ids = [s.id for s in workflow.campaign_screens(session, campaign) if s.kind is not ScreenKind.speaker]
    rows = session.execute(select(Screen.width, Screen.height, Screen.orientation).where(Screen.id.in_(ids)))
    sizes = {screen_size(width, height, orientation) for width, height, orientation in rows}
    if not sizes:
        raise Invalid("the campaign targets no screen that shows pictures, so no poster format is known",
                      "choose its screens first (the wizard's step 'targets'), then make the poster")
    if len(sizes) > MAX_FORMATS:
        raise Invalid(f"the campaign's screens have {len(sizes)} formats", f"target screens of at most {MAX_FORMATS}")
    return sorted(sizes, key=lambda size: (size[1] > size[0], -size[0] * size[1], size))


def _stored(session: Session, store: MediaStore, actor: Actor, clock: Clock, campaign: Campaign, png: bytes,
            name: str, display_ms: int | None) -> MediaAsset:
    incoming = store.incoming()
    try:
        incoming.write(png)
    except BaseException:
        incoming.discard()
        raise
    accepted = accept_upload(session, store, Thumbnails.beside(store), Received(incoming, name),
                             campaign.organisation_id, display_ms, actor, clock)
    return accepted.asset


def make_campaign_poster(session: Session, store: MediaStore, actor: Actor, clock: Clock, timezone: str,
                         campaign_id: str, template: PosterTemplate,
                         display_seconds: str | None = None) -> list[PosterVersion]:
    """Draws the poster in each format of the campaign's screens, stores each PNG in the campaign's unit's media
    library, and adds them to the campaign as versions of one creative. The caller commits."""
    campaign, owned = workflow.find_campaign(session, actor, campaign_id)
    may_upload(actor)
    workflow.may_change_media(actor, campaign, owned)
    display_ms = display_ms_from_seconds(display_seconds)
    name = slug_from_name(template.title)
    versions = []
    for width, height in poster_sizes(session, campaign):
        png = render_poster(template, campaign.organisation.name, width, height)
        asset = _stored(session, store, actor, clock, campaign, png, f"{name}-{width}x{height}.png", display_ms)
        versions.append(PosterVersion(width, height, asset))
    seconds = display_ms / 1000 if display_ms else None
    workflow.add_versions(session, actor, clock, timezone, campaign.id,
                          [(version.asset.sha256, seconds) for version in versions])
    return versions


__all__ = ["DEFAULT_SIZES", "PosterVersion", "make_campaign_poster", "poster_sizes", "screen_size"]
