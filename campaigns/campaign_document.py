"""What a campaign file `signage.campaigns/1` may say: its pydantic models, and its checks of the whole file
(references, the owner's scope, every media file probed). The one set of rules for importing a campaign file
(campaigns/campaign_file.py) and for planning from it without a database (scheduler/plan_files.py). No database
here: what the fleet holds is asked through `owner_of`, and media through `probe`."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from campaigns.calendar import status_on
from campaigns.kinds import CampaignStatus, MediaKind, SiteKind, WindowPolicy
from campaigns.org_paths import is_within
from campaigns.schema_types import Language, Name, ScheduleSpec, Slug, StrictModel
from campaigns.yaml_source import FileRejected, Problem, YamlDocument
from media.probe import ProbeResult
from signage.errors import Invalid

DEFAULT_IMAGE_SECONDS = 10.0
TARGET_KINDS = ("organisations", "site_kinds", "sites", "screens", "groups")

# (kind, id) -> the id of the organisation that owns that organisation, site, screen or group; None if unknown.
OwnerOf = Callable[[str, str], str | None]
Probe = Callable[[Path], ProbeResult]


class VersionIn(StrictModel):
    """Another version of a creative: in another language, or for another screen format (its media's size)."""

    file: str
    language: Language | None = Field(None, description='e.g. "en"; none: for any audience')
    duration_s: float | None = Field(None, gt=0, le=3600, description="display time; still images only; "
                                                                      "left out: the creative's")


class CreativeIn(StrictModel):
    file: str
    language: Language | None = Field(None, description='e.g. "vi"; none: for any audience')
    duration_s: float | None = Field(None, gt=0, le=3600, description="display time; still images only")
    versions: list[VersionIn] = Field(default_factory=list, max_length=50,
                                      description="other versions: one plays where the creative is due")

    def all_versions(self) -> list[VersionIn]:
        """The creative itself, its first version, then the others."""
        return [VersionIn(file=self.file, language=self.language, duration_s=self.duration_s), *self.versions]


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

    # The stored override's names (campaigns.models.FrequencyOverride), so that the planner takes a file's override
    # and a stored one by one rule (scheduler/plan_inputs.py:plan_override).
    @property
    def organisation_id(self) -> str | None:
        return self.organisation

    @property
    def site_id(self) -> str | None:
        return self.site


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


@dataclass(frozen=True)
class ProbedCreative:
    """One version of a creative, probed; `slot` is the creative's place in the file (its versions share it)."""

    source: Path
    probed: ProbeResult
    duration_ms: int
    slot: int = 0
    language: str | None = None


def read_campaign_file(path: Path) -> tuple[YamlDocument, CampaignFile]:
    document = YamlDocument.load(path)
    return document, document.validate(CampaignFile)


def checked_creatives(document: YamlDocument, campaign_file: CampaignFile, base_dir: Path, paths: Mapping[str, str],
                      owner_of: OwnerOf, probe: Probe) -> dict[str, list[ProbedCreative]]:
    """Each campaign's creatives, probed, by campaign id, once the whole file is checked (ids unique, targets and
    overrides within the owner's scope, every media file playable); or FileRejected with every problem found.
    Media paths are relative to `base_dir`, the campaign file's directory."""
    problems: list[Problem] = []
    creatives: dict[str, list[ProbedCreative]] = {}
    seen: set[str] = set()
    for index, campaign in enumerate(campaign_file.campaigns):
        where = ("campaigns", index)
        if campaign.id in seen:
            problems.append(document.problem((*where, "id"), f"the campaign id {campaign.id!r} appears twice",
                                             "give each campaign its own id"))
        seen.add(campaign.id)
        problems.extend(_check_scope(document, where, campaign, paths, owner_of))
        creatives[campaign.id] = _probe_creatives(document, where, campaign, base_dir, probe, problems)
    if problems:
        raise FileRejected(document.filename, problems)
    return creatives


def campaign_status(campaign: CampaignIn, today: date) -> CampaignStatus:
    """The status a campaign of the file has on `today` (a local date)."""
    return (CampaignStatus.draft if campaign.status == "draft"
            else status_on(campaign.start_date, campaign.end_date, today))


def _check_scope(doc: YamlDocument, where: tuple, campaign: CampaignIn, paths: Mapping[str, str],
                 owner_of: OwnerOf) -> list[Problem]:
    problems = []
    owner_path = paths.get(campaign.organisation)
    if owner_path is None:
        return [doc.problem((*where, "organisation"), f"no organisation has the id {campaign.organisation!r}",
                            "import the fleet file first, or correct the id")]

    def check(path: tuple, kind: str, ref: str) -> None:
        owner = owner_of(kind, ref)
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


def _probe_creatives(doc: YamlDocument, where: tuple, campaign: CampaignIn, base_dir: Path, probe: Probe,
                     problems: list[Problem]) -> list[ProbedCreative]:
    found = []
    for i, creative in enumerate(campaign.creatives):
        for k, version in enumerate(creative.all_versions()):
            at = (*where, "creatives", i) if k == 0 else (*where, "creatives", i, "versions", k - 1)
            source = (base_dir / version.file).resolve()
            if not source.is_file():
                problems.append(doc.problem((*at, "file"), f"the media file {version.file!r} does not exist "
                                            f"(looked at {source})", "paths are relative to the campaign file"))
                continue
            try:
                probed = probe(source)
            except Invalid as exc:
                problems.append(doc.problem((*at, "file"), exc.problem, exc.fix))
                continue
            seconds = version.duration_s or creative.duration_s
            if probed.kind is MediaKind.image:
                duration_ms = round((seconds or DEFAULT_IMAGE_SECONDS) * 1000)
            elif version.duration_s is not None:
                problems.append(doc.problem((*at, "duration_s"), "duration_s is for still images only",
                                            "remove it: a clip or audio spot plays for its own length"))
                continue
            else:
                duration_ms = probed.duration_ms or 0
            found.append(ProbedCreative(source, probed, duration_ms, i, version.language))
    return found


__all__ = ["DEFAULT_IMAGE_SECONDS", "TARGET_KINDS", "CampaignFile", "CampaignIn", "CreativeIn", "OverrideIn", "OwnerOf",
           "Probe", "ProbedCreative", "TargetsIn", "VersionIn", "campaign_status", "checked_creatives",
           "read_campaign_file"]
