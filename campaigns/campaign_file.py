"""The campaign file `signage.campaigns/1`: campaigns with their media, dates, targets and overrides.

Media paths are relative to the campaign file. Like the fleet import, a campaign import checks the
whole file first (references, the owner's scope, every media file probed: campaigns/campaign_document.py)
and then writes it in one transaction; importing the same file again changes nothing.
"""

from __future__ import annotations

from datetime import date, datetime
from functools import partial
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from campaigns.campaign_document import (
    DEFAULT_IMAGE_SECONDS,
    TARGET_KINDS,
    CampaignFile,
    CampaignIn,
    CreativeIn,
    OverrideIn,
    ProbedCreative,
    TargetsIn,
    campaign_status,
    checked_creatives,
    read_campaign_file,
)
from campaigns.fleet_file import ImportReport
from campaigns.models import Campaign, CampaignCreative, CampaignTarget, FrequencyOverride
from campaigns.scope import organisation_paths, owning_organisation
from media.models import MediaAsset
from media.probe import probe
from media.store import MediaStore
from signage.clock import Clock, local_today

CAMPAIGNS_SCHEMA = "signage.campaigns/1"


def import_campaigns(session: Session, path: Path, store: MediaStore, clock: Clock, timezone: str,
                     transform: Any = None) -> ImportReport:
    """Upsert the campaign file in the caller's transaction, or raise FileRejected.

    `transform`, if given, edits the parsed file before it is checked (the demo moves the dates to today).
    """
    document, campaign_file = read_campaign_file(path)
    if transform is not None:
        campaign_file = transform(campaign_file)
    creatives = checked_creatives(document, campaign_file, path.parent, organisation_paths(session),
                                  partial(owning_organisation, session), probe)
    report = ImportReport(document.filename)
    now = clock.now()
    today = local_today(clock, timezone)
    for campaign in campaign_file.campaigns:
        shas = [_store_media(session, store, c, campaign.organisation, now, report) for c in creatives[campaign.id]]
        _upsert_campaign(session, campaign, list(zip(shas, creatives[campaign.id], strict=True)), now, today,
                         report)
    session.flush()
    return report


def _store_media(session: Session, store: MediaStore, creative: ProbedCreative, owner: str, now: datetime,
                 report: ImportReport) -> str:
    sha, size = store.add_file(creative.source)
    if session.get(MediaAsset, (sha, owner)) is not None:  # the campaign's unit has its own row of each file
        report.count("media", "unchanged")
        return sha
    p = creative.probed
    session.add(MediaAsset(sha256=sha, kind=p.kind, mime=p.mime, bytes=size, duration_ms=p.duration_ms,
                           width=p.width, height=p.height, container=p.container, video_codec=p.video_codec,
                           audio_codec=p.audio_codec, original_name=creative.source.name[:255],
                           organisation_id=owner, created_at=now))
    report.count("media", "created")
    return sha


def _upsert_campaign(session: Session, campaign: CampaignIn, creatives: list[tuple[str, ProbedCreative]],
                     now: datetime, today: date, report: ImportReport) -> None:
    values = {
        "organisation_id": campaign.organisation, "name": campaign.name, "description": campaign.description,
        "start_date": campaign.start_date, "end_date": campaign.end_date,
        "plays_per_day": campaign.plays_per_day, "window_policy": campaign.window,
        "explicit_windows": campaign.windows, "priority": campaign.priority, "status": campaign_status(campaign, today),
    }
    row = session.get(Campaign, campaign.id)
    created = row is None
    if row is None:
        row = Campaign(id=campaign.id, created_at=now, updated_at=now, **values)
        session.add(row)
    changed = False
    for name, value in values.items():
        if getattr(row, name) != value:
            setattr(row, name, value)
            changed = True

    # A slot is numbered by the position of its first version, as migration 0021 numbered the creatives before.
    first_positions: dict[int, int] = {}
    wanted_creatives = [(sha, campaign.organisation, c.duration_ms, first_positions.setdefault(c.slot, i), c.language)
                        for i, (sha, c) in enumerate(creatives)]
    if [(c.media_sha256, c.media_organisation_id, c.duration_ms, c.slot, c.language)
            for c in row.creatives] != wanted_creatives:
        _replace(session, row, "creatives", [
            CampaignCreative(position=i, media_sha256=sha, media_organisation_id=holder, duration_ms=ms, slot=slot,
                             language=language)
            for i, (sha, holder, ms, slot, language) in enumerate(wanted_creatives)])
        changed = True

    wanted_targets = campaign.targets.rows()
    if sorted((t.kind, t.ref) for t in row.targets) != wanted_targets:
        _replace(session, row, "targets", [CampaignTarget(kind=kind, ref=ref) for kind, ref in wanted_targets])
        changed = True

    # An override is the same when its fields are; its time is compared only when the file gives one.
    def same(have: FrequencyOverride, want: OverrideIn) -> bool:
        return ((have.organisation_id, have.site_id, have.plays_per_day, have.set_by, have.reason)
                == (want.organisation, want.site, want.plays_per_day, want.by, want.reason)
                and (want.at is None or have.set_at == want.at))

    if len(row.overrides) != len(campaign.overrides) or not all(
            same(h, w) for h, w in zip(row.overrides, campaign.overrides, strict=False)):
        _replace(session, row, "overrides", [
            FrequencyOverride(organisation_id=o.organisation, site_id=o.site, plays_per_day=o.plays_per_day,
                              set_by=o.by, reason=o.reason, set_at=o.at or now) for o in campaign.overrides])
        changed = True

    if created:
        report.count("campaigns", "created")
    elif changed:
        row.updated_at = now
        report.count("campaigns", "updated")
    else:
        report.count("campaigns", "unchanged")


def _replace(session: Session, row: Campaign, collection: str, items: list[Any]) -> None:
    # The old rows must be gone before the new ones go in: they may share keys (position, target).
    getattr(row, collection).clear()
    session.flush()
    setattr(row, collection, items)


# The file's models and rules live in campaigns/campaign_document.py; they are named here too, as the campaign file's.
__all__ = ["CAMPAIGNS_SCHEMA", "DEFAULT_IMAGE_SECONDS", "TARGET_KINDS", "CampaignFile", "CampaignIn", "CreativeIn",
           "OverrideIn", "ProbedCreative", "TargetsIn", "import_campaigns", "read_campaign_file"]
