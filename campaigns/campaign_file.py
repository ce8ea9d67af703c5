"""The campaign file `signage.campaigns/1`: campaigns with their media, dates, targets and overrides.

Media paths are relative to the campaign file. Like the fleet import, a campaign import checks the
whole file first (references, the owner's scope, every media file probed) and then writes it in
one transaction; importing the same file again changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator
from sqlalchemy.orm import Session

from campaigns.calendar import status_on
from campaigns.fleet_file import ImportReport
from campaigns.kinds import CampaignStatus, MediaKind, SiteKind, WindowPolicy
from campaigns.models import Campaign, CampaignCreative, CampaignTarget, FrequencyOverride
from campaigns.schema_types import Name, ScheduleSpec, Slug, StrictModel
from campaigns.scope import is_within, organisation_paths, owning_organisation
from campaigns.yaml_source import FileRejected, Problem, YamlDocument
from media.models import MediaAsset
from media.probe import ProbeResult, probe
from media.store import MediaStore
from signage.clock import Clock, local_today
from signage.errors import Invalid

CAMPAIGNS_SCHEMA = "signage.campaigns/1"
DEFAULT_IMAGE_SECONDS = 10.0
TARGET_KINDS = ("organisations", "site_kinds", "sites", "screens", "groups")


class CreativeIn(StrictModel):
    file: str
    duration_s: float | None = Field(None, gt=0, le=3600, description="display time; still images only")


class TargetsIn(StrictModel):
    """Screens targeted: those of the organisation subtrees (all of the owner's when only site kinds are
    given) of the listed site kinds (any when none are listed), plus the listed sites, screens and groups."""

    organisations: list[Slug] = Field(default_factory=list)
    site_kinds: list[SiteKind] = Field(default_factory=list)
    sites: list[Slug] = Field(default_factory=list)
    screens: list[Slug] = Field(default_factory=list)
    groups: list[Slug] = Field(default_factory=list)

    @model_validator(mode="after")
    def _targets_something(self) -> TargetsIn:
        if not any(getattr(self, kind) for kind in TARGET_KINDS):
            raise Invalid("the campaign targets no screens",
                          "list organisations, site_kinds, sites, screens or groups under targets")
        return self

    def rows(self) -> list[tuple[str, str]]:
        """(kind, ref) pairs as stored, sorted."""
        singular = {"organisations": "organisation", "site_kinds": "site_kind", "sites": "site",
                    "screens": "screen", "groups": "group"}
        return sorted({(singular[kind], str(ref)) for kind in TARGET_KINDS for ref in getattr(self, kind)})


class OverrideIn(StrictModel):
    organisation: Slug | None = None
    site: Slug | None = None
    plays_per_day: int = Field(ge=1, le=1000)
    by: Name
    reason: Name
    at: datetime | None = None

    @model_validator(mode="after")
    def _one_scope(self) -> OverrideIn:
        if (self.organisation is None) == (self.site is None):
            raise Invalid("an override applies to exactly one organisation or one site",
                          "give either organisation: or site:, not both and not neither")
        if self.at is not None and self.at.tzinfo is None:
            raise Invalid("the override's time has no timezone", "write it like 2024-08-20T09:00:00+07:00")
        return self


class CampaignIn(StrictModel):
    id: Slug
    name: Name
    organisation: Slug
    description: str | None = None
    start_date: date
    end_date: date
    plays_per_day: int = Field(10, ge=1, le=1000)
    window: WindowPolicy = WindowPolicy.peak
    windows: ScheduleSpec | None = None
    priority: int = Field(0, ge=0, le=100)
    status: Literal["draft", "scheduled"] = "scheduled"
    creatives: list[CreativeIn] = Field(min_length=1)
    targets: TargetsIn
    overrides: list[OverrideIn] = Field(default_factory=list)

    @model_validator(mode="after")
    def _consistent(self) -> CampaignIn:
        if self.end_date < self.start_date:
            raise Invalid(f"the campaign ends ({self.end_date}) before it starts ({self.start_date})",
                          "set end_date on or after start_date")
        if (self.window is WindowPolicy.explicit) != (self.windows is not None):
            raise Invalid("windows: goes with window: explicit, and only with it",
                          "either set window: explicit and list windows, or remove windows")
        for override in self.overrides:
            if override.plays_per_day < self.plays_per_day:
                raise Invalid(f"an override of {override.plays_per_day} plays a day is below the campaign's "
                              f"own {self.plays_per_day}", "overrides may only raise the frequency")
        return self


class CampaignFile(StrictModel):
    schema_: Literal["signage.campaigns/1"] = Field(alias="schema")
    campaigns: list[CampaignIn] = Field(min_length=1)


@dataclass
class _Creative:
    source: Path
    probed: ProbeResult
    duration_ms: int


def read_campaign_file(path: Path) -> tuple[YamlDocument, CampaignFile]:
    document = YamlDocument.load(path)
    return document, document.validate(CampaignFile)


def import_campaigns(session: Session, path: Path, store: MediaStore, clock: Clock, timezone: str,
                     transform: Any = None) -> ImportReport:
    """Upsert the campaign file in the caller's transaction, or raise FileRejected.

    `transform`, if given, edits the parsed file before it is checked (the demo moves the dates to today).
    """
    document, campaign_file = read_campaign_file(path)
    if transform is not None:
        campaign_file = transform(campaign_file)
    base_dir = path.parent
    problems: list[Problem] = []
    creatives: dict[str, list[_Creative]] = {}
    seen: set[str] = set()
    paths = organisation_paths(session)
    for index, campaign in enumerate(campaign_file.campaigns):
        where = ("campaigns", index)
        if campaign.id in seen:
            problems.append(document.problem((*where, "id"), f"the campaign id {campaign.id!r} appears twice",
                                             "give each campaign its own id"))
        seen.add(campaign.id)
        problems.extend(_check_scope(session, document, where, campaign, paths))
        creatives[campaign.id] = _probe_creatives(document, where, campaign, base_dir, problems)
    if problems:
        raise FileRejected(document.filename, problems)

    report = ImportReport(document.filename)
    now = clock.now()
    today = local_today(clock, timezone)
    for campaign in campaign_file.campaigns:
        shas = [_store_media(session, store, c, campaign.organisation, now, report) for c in creatives[campaign.id]]
        _upsert_campaign(session, campaign, list(zip(shas, creatives[campaign.id], strict=True)), now, today,
                         report)
    session.flush()
    return report


def _check_scope(session: Session, doc: YamlDocument, where: tuple, campaign: CampaignIn,
                 paths: dict[str, str]) -> list[Problem]:
    problems = []
    owner_path = paths.get(campaign.organisation)
    if owner_path is None:
        return [doc.problem((*where, "organisation"), f"no organisation has the id {campaign.organisation!r}",
                            "import the fleet file first, or correct the id")]

    def check(path: tuple, kind: str, ref: str) -> None:
        owner = owning_organisation(session, kind, ref)
        if owner is None:
            problems.append(doc.problem(path, f"no {kind} has the id {ref!r}",
                                        "correct the id, or add it to the fleet file and import that first"))
        elif not is_within(paths[owner], owner_path):
            problems.append(doc.problem(path, f"the {kind} {ref!r} is outside {campaign.organisation!r}'s scope",
                                        f"target only screens of {campaign.organisation!r} and the units below "
                                        "it, or let a higher unit own the campaign"))

    singular = {"organisations": "organisation", "sites": "site", "screens": "screen", "groups": "group"}
    for kind, one in singular.items():
        for i, ref in enumerate(getattr(campaign.targets, kind)):
            check((*where, "targets", kind, i), one, ref)
    for i, override in enumerate(campaign.overrides):
        if override.organisation is not None:
            check((*where, "overrides", i, "organisation"), "organisation", override.organisation)
        else:
            check((*where, "overrides", i, "site"), "site", override.site)
    return problems


def _probe_creatives(doc: YamlDocument, where: tuple, campaign: CampaignIn, base_dir: Path,
                     problems: list[Problem]) -> list[_Creative]:
    found = []
    for i, creative in enumerate(campaign.creatives):
        at = (*where, "creatives", i)
        source = (base_dir / creative.file).resolve()
        if not source.is_file():
            problems.append(doc.problem((*at, "file"), f"the media file {creative.file!r} does not exist "
                                        f"(looked at {source})", "paths are relative to the campaign file"))
            continue
        try:
            probed = probe(source)
        except Invalid as exc:
            problems.append(doc.problem((*at, "file"), exc.problem, exc.fix))
            continue
        if probed.kind is MediaKind.image:
            duration_ms = round((creative.duration_s or DEFAULT_IMAGE_SECONDS) * 1000)
        elif creative.duration_s is not None:
            problems.append(doc.problem((*at, "duration_s"), "duration_s is for still images only",
                                        "remove it: a clip or audio spot plays for its own length"))
            continue
        else:
            duration_ms = probed.duration_ms or 0
        found.append(_Creative(source, probed, duration_ms))
    return found


def _store_media(session: Session, store: MediaStore, creative: _Creative, owner: str, now: datetime,
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


def _upsert_campaign(session: Session, campaign: CampaignIn, creatives: list[tuple[str, _Creative]],
                     now: datetime, today: date, report: ImportReport) -> None:
    status = (CampaignStatus.draft if campaign.status == "draft"
              else status_on(campaign.start_date, campaign.end_date, today))
    values = {
        "organisation_id": campaign.organisation, "name": campaign.name, "description": campaign.description,
        "start_date": campaign.start_date, "end_date": campaign.end_date,
        "plays_per_day": campaign.plays_per_day, "window_policy": campaign.window,
        "explicit_windows": campaign.windows, "priority": campaign.priority, "status": status,
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

    wanted_creatives = [(sha, campaign.organisation, c.duration_ms) for sha, c in creatives]
    if [(c.media_sha256, c.media_organisation_id, c.duration_ms) for c in row.creatives] != wanted_creatives:
        _replace(session, row, "creatives", [
            CampaignCreative(position=i, media_sha256=sha, media_organisation_id=holder, duration_ms=ms)
            for i, (sha, holder, ms) in enumerate(wanted_creatives)])
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


__all__ = ["CAMPAIGNS_SCHEMA", "CampaignFile", "CampaignIn", "import_campaigns", "read_campaign_file"]
