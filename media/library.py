"""The media library as staff see it and change it: the files of their organisation subtree, who uses them, their
deletion, and the acceptance of an upload. Plain functions over the database, knowing nothing of HTTP (the routes
are scheduler/web/routes/media_library.py).

Every read is limited to the media of the user's organisation subtree (MediaAsset.organisation_id): another
unit's media is `NotFound`, like what does not exist. Staff and admins upload and delete; everyone in scope may
look. Each unit holding a file has its own row (media/models.py); a file is reached by its sha256 as the actor's
earliest row of it, and the store's file is removed with the last row.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

from sqlalchemy import Select, false, func, select
from sqlalchemy.orm import Session

from campaigns.access import Actor
from campaigns.audit import record_change
from campaigns.kinds import MediaKind, Role
from campaigns.models import AuditEntry, Campaign, CampaignCreative, Organisation
from campaigns.schema_types import SLUG_PATTERN
from media.models import MediaAsset, held_by
from media.store import SHA256_RE, MediaStore
from media.thumbnails import Thumbnails
from media.upload import UPLOAD_ACTION, Accepted, Received, accept_upload, display_ms_from, display_ms_from_seconds
from signage.clock import Clock
from signage.config import Settings
from signage.errors import Conflict, NotFound, Refused
from signage.text import search_text

EDITORS = (Role.staff,)  # and admins: who upload and delete


class InUse(Conflict):
    """Campaigns (the actor's, or other units') still use the file; `details["campaigns"]` names the actor's."""

    def __init__(self, asset: MediaAsset, visible: list[str], hidden: int) -> None:
        names = ", ".join(visible)
        others = f"{' and ' if visible else ''}{hidden} campaign(s) of other units" if hidden else ""
        super().__init__(f"{asset.original_name} is used by {names}{others}",
                         "remove it from those campaigns first (archived campaigns keep their media too)",
                         campaigns=visible)
        self.campaigns = visible


class FileMissing(NotFound):
    """The library holds the item but the store lost its file."""

    def __init__(self, asset: MediaAsset) -> None:
        Refused.__init__(self, f"{asset.original_name} is in the library but its file is missing from the server's "
                               "store", "upload it again (or import its campaign file again) to restore it")
        self.kind = "media"
        self.ref = asset.sha256


def asset_in_scope(session: Session, actor: Actor, sha256: str) -> MediaAsset:
    # The pattern is checked first: an id is never joined to a path or sent to the database unchecked.
    if SHA256_RE.fullmatch(sha256) is None:
        raise NotFound("media", sha256[:80])
    asset = session.scalar(held_by(sha256, actor.org_ids()))
    if asset is None:
        raise NotFound("media", sha256)
    return asset


def library_query(session: Session, actor: Actor, kind: MediaKind | None = None, organisation_id: str | None = None,
                  q: str | None = None) -> Select:
    """The actor's media, newest first; `organisation_id` narrows it to that unit and the units below it."""
    query = (select(MediaAsset).where(MediaAsset.organisation_id.in_(actor.org_ids()))
             .order_by(MediaAsset.created_at.desc(), MediaAsset.sha256))
    if kind is not None:
        query = query.where(MediaAsset.kind == kind)
    if organisation_id:
        path = session.scalar(select(Organisation.path).where(Organisation.id == organisation_id))
        if path is None:
            return query.where(false())
        query = query.where(MediaAsset.organisation_id.in_(
            select(Organisation.id).where(Organisation.path.startswith(path, autoescape=True))))
    q = search_text(q).replace("\x00", "").lower()
    if q:
        query = query.where(func.lower(MediaAsset.original_name).contains(q, autoescape=True))
    return query


def key_of(asset: MediaAsset) -> tuple[str, str]:
    """A library row's key: (sha256, organisation id)."""
    return asset.sha256, asset.organisation_id


def campaigns_using(session: Session, assets: Sequence[MediaAsset],
                    actor: Actor | None = None) -> dict[tuple[str, str], list[Campaign]]:
    """The campaigns whose creatives use each library row (by `key_of`), by name; only the actor's when an actor
    is given."""
    query = (select(CampaignCreative.media_sha256, CampaignCreative.media_organisation_id, Campaign).join(Campaign)
             .where(CampaignCreative.media_sha256.in_(list({asset.sha256 for asset in assets})))
             .order_by(Campaign.name, Campaign.id))
    if actor is not None:
        query = query.where(Campaign.organisation_id.in_(actor.org_ids()))
    found: dict[tuple[str, str], list[Campaign]] = defaultdict(list)
    for sha, organisation_id, campaign in session.execute(query):
        if campaign not in found[sha, organisation_id]:
            found[sha, organisation_id].append(campaign)
    return found


def uploads_of(session: Session, assets: Sequence[MediaAsset]) -> dict[tuple[str, str], AuditEntry]:
    """The audit entry of each library row's upload (who, and an image's display time), if it was uploaded, by
    `key_of`: each unit's own, never another unit's upload of the same bytes."""
    uploads: dict[tuple[str, str], AuditEntry] = {}
    for entry in session.scalars(select(AuditEntry).where(
            AuditEntry.entity_kind == "media", AuditEntry.action == UPLOAD_ACTION,
            AuditEntry.entity_id.in_(list({asset.sha256 for asset in assets}))).order_by(AuditEntry.id)):
        uploads[entry.entity_id, entry.organisation_id] = entry
    return uploads


def organisation_names(session: Session, organisation_ids: set[str]) -> dict[str, str]:
    return dict(session.execute(select(Organisation.id, Organisation.name)
                                .where(Organisation.id.in_(organisation_ids))).all())


def visible_organisations(session: Session, actor: Actor) -> list[Organisation]:
    return list(session.scalars(select(Organisation).where(Organisation.id.in_(actor.org_ids()))
                                .order_by(Organisation.path)))


def may_upload(actor: Actor) -> None:
    actor.require(*EDITORS, to="upload media")


def accept(session: Session, store: MediaStore, received: Received, actor: Actor, clock: Clock,
           seconds_field: bool) -> Accepted:
    """A received upload into the library, for the form's unit (default the actor's own), committed. Its display
    time comes as `display_s` (seconds: the page's form) or `display_ms` (the API)."""
    may_upload(actor)
    fields = received.fields
    organisation_id = fields.get("organisation_id", "").strip() or actor.user.organisation_id
    if re.fullmatch(SLUG_PATTERN, organisation_id) is None or not actor.sees_organisation(session, organisation_id):
        raise NotFound("organisation", organisation_id[:80])
    display_ms = display_ms_from_seconds(fields.get("display_s")) if seconds_field else display_ms_from(
        fields.get("display_ms"))
    accepted = accept_upload(session, store, Thumbnails.beside(store), received, organisation_id, display_ms, actor,
                             clock)
    session.commit()
    return accepted


def delete_asset(session: Session, actor: Actor, clock: Clock, asset: MediaAsset) -> None:
    """Removes the library's row (the caller commits, then removes the files); raises InUse while any campaign,
    the actor's or another unit's, uses it."""
    users = campaigns_using(session, [asset]).get(key_of(asset), [])
    if users:
        visible = [c.name for c in users if c.organisation.path.startswith(actor.org_path)]
        raise InUse(asset, visible, len(users) - len(visible))
    record_change(session, actor, clock, action="media.delete", entity_kind="media", entity_id=asset.sha256,
                  organisation_id=asset.organisation_id,
                  before={"name": asset.original_name, "kind": asset.kind.value, "bytes": asset.bytes})
    session.delete(asset)


def delete_media(session: Session, actor: Actor, clock: Clock, sha256: str) -> MediaAsset:
    """Staff and admins delete a file of their subtree that no campaign uses (the caller commits, then removes the
    files with `remove_files`, which keeps them while another unit holds the bytes)."""
    actor.require(*EDITORS, to="delete media")
    asset = asset_in_scope(session, actor, sha256)
    delete_asset(session, actor, clock, asset)
    return asset


def stored_file(store: MediaStore, asset: MediaAsset) -> Path:
    path = store.path_for(asset.sha256)
    if not path.is_file():
        raise FileMissing(asset)
    return path


def remove_files(session: Session, settings: Settings, sha256: str) -> None:
    """Removes the stored file and its thumbnails once no unit's library holds the bytes (after the commit of a
    deletion)."""
    if session.scalar(held_by(sha256).limit(1)) is not None:
        return
    store = MediaStore(settings.media_dir)
    store.remove(sha256)
    Thumbnails.beside(store).remove(sha256)


__all__ = ["InUse", "accept", "asset_in_scope", "campaigns_using", "delete_asset", "delete_media", "key_of",
           "library_query", "may_upload", "organisation_names", "remove_files", "stored_file", "uploads_of",
           "visible_organisations"]
