"""The campaign workflow: draft → media → targets → dates → frequency → preview → submit → approval →
scheduled → active → ended → archived. Plain functions over the database, knowing nothing of HTTP.

The field rules are the campaign file's (campaigns/campaign_file.py models, validated the same way), so that
whatever the API accepts a campaign file could say, and back. The rules of who may do what, and when, are in
one place: the `_may_*` checks below, which `allowed_actions` also asks to show only the buttons that work.

Errors are the kernel's four (signage/errors.py), saying what is wrong and how to fix it: `Invalid` (a value
breaks a rule), `NotFound` (not within the user's organisation: the same answer as for what does not exist),
`NotAllowed` (this role or person may not), `Conflict` (not in the campaign's present state).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, Field
from sqlalchemy import ColumnElement, Exists, Select, and_, func, or_, select
from sqlalchemy.orm import Session, aliased, joinedload, selectinload

from campaigns.access import Actor
from campaigns.audit import record_change
from campaigns.calendar import status_on
from campaigns.campaign_document import VersionIn
from campaigns.campaign_file import DEFAULT_IMAGE_SECONDS, TARGET_KINDS, CampaignIn, CreativeIn, TargetsIn
from campaigns.kinds import CampaignStatus, MediaKind, Role, ScreenKind, WindowPolicy
from campaigns.models import (
    AuditEntry,
    Campaign,
    CampaignCreative,
    CampaignTarget,
    Organisation,
    Screen,
    ScreenGroup,
    Site,
    screen_group_members,
)
from campaigns.schema_types import SLUG_PATTERN
from campaigns.scope import is_within, organisation_paths, owning_organisation
from campaigns.yaml_source import FileRejected, YamlDocument
from media.models import MediaAsset, held_by, held_by_any
from scheduler.capacity import CapacityCheck, check_capacity_within, record_shortfalls
from scheduler.plan_inputs import PLANNED_STATUSES, load_planning_inputs
from scheduler.planner import PlanCampaign, PlanScreen, SiteShortfall, resolve_targets
from signage.clock import Clock, local_date, local_today
from signage.errors import Conflict, Invalid, NotAllowed, NotFound
from signage.text import search_text

DEFAULT_DAYS = 30  # a new draft runs for a month from today until its dates are set
YEARS_AHEAD = 10  # campaigns end within this many years: the planner cannot look at dates without end
PREVIEW_DAYS = 366  # the capacity preview looks a year ahead at most
MAX_CREATIVES = 50
MAX_NOTE = 2000
APPROVED = (CampaignStatus.scheduled, CampaignStatus.active, CampaignStatus.ended)
EDITORS = (Role.staff, Role.head)
REVIEWERS = (Role.head, Role.manager)
CAMPAIGN = "campaign"
OVERRIDE = "frequency_override"
EDITABLE_FIELDS = ("name", "description", "start_date", "end_date", "plays_per_day", "window", "windows", "priority")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_SINGULAR = {"organisations": "organisation", "site_kinds": "site_kind", "sites": "site", "screens": "screen",
             "groups": "group"}
_PLURAL = {one: many for many, one in _SINGULAR.items()}


class CampaignDraft(CampaignIn):
    """The file's campaign while it is being written: media and targets may still be missing."""

    creatives: list[CreativeIn] = Field(default_factory=list)
    targets: TargetsIn | None = None
    status: Literal["draft", "scheduled"] = "draft"


M = TypeVar("M", bound=BaseModel)


def checked(model: type[M], data: dict[str, Any]) -> M:
    """`data` validated by a campaign file model, its problems (all of them) as one Invalid."""
    _refuse_nul(data, "")
    try:
        return YamlDocument("campaign", data, {}).validate(model)
    except FileRejected as exc:
        problems = "; ".join(f"{p.path}: {p.message}" if p.path else p.message for p in exc.problems)
        raise Invalid(problems, "; ".join(dict.fromkeys(p.fix for p in exc.problems))) from None


def _refuse_nul(value: Any, where: str) -> None:
    # PostgreSQL cannot store NUL in text; refuse it here, with its place, rather than fail on the write.
    if isinstance(value, str) and "\x00" in value:
        raise Invalid(f"{where or 'a value'} contains a NUL character", "remove control characters from it")
    if isinstance(value, dict):
        for key, item in value.items():
            _refuse_nul(key, where)
            _refuse_nul(item, f"{where}.{key}" if where else str(key))
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _refuse_nul(item, f"{where}[{index}]")


def plain_text(value: str | None, what: str, *, required: bool, limit: int = MAX_NOTE) -> str | None:
    """A free-text note or reason: stripped, within `limit` characters, no NUL."""
    text = (value or "").strip()
    _refuse_nul(text, what)
    if required and not text:
        raise Invalid(f"the {what} is empty", f"write the {what}: it is kept in the audit log")
    if len(text) > limit:
        raise Invalid(f"the {what} has {len(text)} characters", f"shorten it to at most {limit}")
    return text or None


def _days_after(day: date, days: int) -> date:
    return date.max if day > date.max - timedelta(days=days) else day + timedelta(days=days)


def _within_reach(draft: CampaignDraft, today: date) -> CampaignDraft:
    """Rules the planner needs beyond the file's: explicit windows that name some time, an end in sight."""
    if draft.window is WindowPolicy.explicit and not draft.windows:
        raise Invalid("the campaign plays in its own windows, and names none",
                      "list windows such as mon-fri: 08:00-11:00, or choose the sites' peak or operating hours")
    limit = _days_after(today, round(365.25 * YEARS_AHEAD))
    if draft.end_date > limit:
        raise Invalid(f"the campaign ends on {draft.end_date}, more than {YEARS_AHEAD} years from today",
                      f"end it by {limit}, and extend it later if it is still wanted")
    return draft


def is_slug(ref: str | None) -> bool:
    return ref is not None and re.fullmatch(SLUG_PATTERN, ref) is not None


# -- reading campaigns, within scope ------------------------------------------------------------------------


def _ancestor_paths(path: str) -> list[str]:
    parts = path.strip("/").split("/")
    return ["/" + "/".join(parts[:n]) + "/" for n in range(1, len(parts))]


def _plan_screens(session: Session) -> tuple[PlanScreen, ...]:
    return load_planning_inputs(session, campaign_ids=set()).screens


def _reaching_ids(session: Session, actor: Actor, campaign_ids: Iterable[str] | None = None) -> set[str]:
    """The ids of `_reaching` campaigns (of `campaign_ids`)."""
    reaching = _reaching(actor)
    if reaching is None:
        return set()
    query = select(Campaign.id).where(reaching)
    if campaign_ids is not None:
        query = query.where(Campaign.id.in_(list(campaign_ids)))
    return set(session.scalars(query))


def _reaching(actor: Actor) -> ColumnElement[bool] | None:
    """Approved campaigns of the units above the user's that play on screens of the user's unit: the user sees
    them (a head of unit may raise their frequency there) but does not own them. None when no unit is above."""
    return _reaching_from(actor.org_path)


@lru_cache(maxsize=4096)
def _reaching_from(org_path: str) -> ColumnElement[bool] | None:
    # Made once per unit: SQLAlchemy's expressions are immutable, and building this one cost more CPU than the
    # campaign list's query itself (bench/list_routes.py).
    above = _ancestor_paths(org_path)
    if not above:
        return None
    return and_(Campaign.organisation_id.in_(select(Organisation.id).where(Organisation.path.in_(above))),
                Campaign.status.in_(PLANNED_STATUSES), _targets_a_screen_within(org_path))


def _targets_a_screen_within(org_path: str) -> ColumnElement[bool]:
    """Whether the campaign of the enclosing query targets an enabled screen of the subtree at `org_path`: the
    planner's rule (`PlanCampaign.targets`) in SQL, so that a list asks it in one statement. A screen is targeted
    when its site kind is among the campaign's site kinds (if it names any) and its organisation is within a
    targeted one (or, with site kinds alone, within the owner's); or when its site, itself or a group of its is
    named. Only for campaigns of units above `org_path`: their owner's subtree holds every screen of it."""
    screen_org, target_org = aliased(Organisation), aliased(Organisation)

    # The campaign and the screen come from enclosing queries two and three levels up, which SQLAlchemy correlates
    # only when told.
    def named(kind: str, *where: ColumnElement[bool]) -> Exists:
        return (select(CampaignTarget.id).where(CampaignTarget.campaign_id == Campaign.id, CampaignTarget.kind == kind,
                                                *where).correlate_except(CampaignTarget).exists())

    within_named_organisation = (
        select(CampaignTarget.id).join(target_org, target_org.id == CampaignTarget.ref)
        .where(CampaignTarget.campaign_id == Campaign.id, CampaignTarget.kind == "organisation",
               func.substr(screen_org.path, 1, func.length(target_org.path)) == target_org.path)
        .correlate_except(CampaignTarget, target_org).exists())
    roots = or_(within_named_organisation, and_(named("site_kind"), ~named("organisation")))
    kind_ok = or_(~named("site_kind"), named("site_kind", CampaignTarget.ref == Site.kind))
    in_a_named_group = CampaignTarget.ref.in_(select(screen_group_members.c.group_id)
                                              .where(screen_group_members.c.screen_id == Screen.id)
                                              .correlate_except(screen_group_members))
    named_alone = or_(named("site", CampaignTarget.ref == Screen.site_id),
                      named("screen", CampaignTarget.ref == Screen.id), named("group", in_a_named_group))
    return (select(Screen.id).join(Site, Screen.site_id == Site.id)
            .join(screen_org, Site.organisation_id == screen_org.id)
            .where(Screen.in_service, screen_org.path.startswith(org_path, autoescape=True),
                   or_(and_(kind_ok, roots), named_alone)).correlate(Campaign).exists())


def find_campaign(session: Session, actor: Actor, campaign_id: str) -> tuple[Campaign, bool]:
    """The campaign and whether the user's unit owns it (False: a higher unit's campaign on the user's screens)."""
    campaign = session.get(Campaign, campaign_id) if is_slug(campaign_id) else None
    if campaign is None:
        raise NotFound(CAMPAIGN, campaign_id)
    if actor.sees_organisation(session, campaign.organisation_id):
        return campaign, True
    if _reaching_ids(session, actor, [campaign.id]):
        return campaign, False
    raise NotFound(CAMPAIGN, campaign_id)


def campaigns_query(session: Session, actor: Actor, *, statuses: Iterable[CampaignStatus] = (),
                    organisation_id: str | None = None, q: str | None = None,
                    active_on: date | None = None) -> Select:
    """The campaigns the user sees, newest change first; `organisation_id` keeps that unit's subtree,
    `active_on` the approved campaigns whose dates include that day, `q` a piece of the id, name or description.
    Each campaign comes with its owner (in the same statement); `with_contents` adds what the API shows."""
    seen = Campaign.organisation_id.in_(actor.org_ids())
    reaching = _reaching(actor)
    query = (select(Campaign).where(seen if reaching is None else or_(seen, reaching))
             .options(joinedload(Campaign.organisation, innerjoin=True))
             .order_by(Campaign.updated_at.desc(), Campaign.id))
    statuses = list(statuses)
    if statuses:
        query = query.where(Campaign.status.in_(statuses))
    if organisation_id is not None:
        path = session.scalar(select(Organisation.path).where(Organisation.id == organisation_id)) \
            if is_slug(organisation_id) else None
        if path is None or not (is_within(path, actor.org_path) or is_within(actor.org_path, path)):
            raise NotFound("organisation", organisation_id)
        query = query.where(Campaign.organisation_id.in_(
            select(Organisation.id).where(Organisation.path.startswith(path, autoescape=True))))
    q = search_text(q)
    if q:
        _refuse_nul(q, "the search")
        pattern = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        query = query.where(or_(Campaign.id.ilike(pattern, escape="\\"), Campaign.name.ilike(pattern, escape="\\"),
                                Campaign.description.ilike(pattern, escape="\\")))
    if active_on is not None:
        query = query.where(Campaign.start_date <= active_on, Campaign.end_date >= active_on,
                            Campaign.status.in_(PLANNED_STATUSES))
    return query


def with_contents(query: Select) -> Select:
    """`campaigns_query` with each campaign's creatives (and their media) and targets loaded for the page in two
    statements. Its overrides depend on who asks: `overrides.unit_rates`."""
    return query.options(selectinload(Campaign.creatives).joinedload(CampaignCreative.media),
                         selectinload(Campaign.targets))


def audit_query(session: Session, actor: Actor, campaign_id: str) -> Select:
    """The campaign's audit trail (its own changes and its frequency overrides'), newest first; of a higher
    unit's campaign, only what concerns the user's unit (its overrides)."""
    _, owned = find_campaign(session, actor, campaign_id)
    query = (select(AuditEntry).where(AuditEntry.entity_id == campaign_id,
                                      AuditEntry.entity_kind.in_((CAMPAIGN, OVERRIDE)))
             .order_by(AuditEntry.at.desc(), AuditEntry.id.desc()))
    return query if owned else query.where(AuditEntry.organisation_id.in_(actor.org_ids()))


# -- what the audit log keeps -------------------------------------------------------------------------------


def target_lists(campaign: Campaign) -> dict[str, list[str]]:
    lists: dict[str, list[str]] = {kind: [] for kind in TARGET_KINDS}
    for target in campaign.targets:
        lists[_PLURAL[target.kind]].append(target.ref)
    return {kind: sorted(refs) for kind, refs in lists.items()}


def describe(campaign: Campaign) -> dict[str, Any]:
    """The campaign's fields as JSON values, as the audit log keeps them."""
    return {
        "name": campaign.name, "description": campaign.description, "organisation_id": campaign.organisation_id,
        "status": campaign.status.value, "start_date": campaign.start_date.isoformat(),
        "end_date": campaign.end_date.isoformat(), "plays_per_day": campaign.plays_per_day,
        "window": campaign.window_policy.value, "windows": campaign.explicit_windows, "priority": campaign.priority,
        "creatives": [{"media": c.media_sha256, "duration_ms": c.duration_ms,
                       # a version of another creative, a language: said only when there are
                       **({"slot": c.slot} if c.slot != c.position else {}),
                       **({"language": c.language} if c.language else {})} for c in campaign.creatives],
        "targets": target_lists(campaign),
    }


def _changed(before: dict[str, Any], after: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    keys = [key for key in after if before.get(key) != after[key]]
    return {key: before.get(key) for key in keys}, {key: after[key] for key in keys}


def _audit(session: Session, actor: Actor, clock: Clock, campaign: Campaign, action: str,
           before: dict[str, Any] | None, after: dict[str, Any] | None, kind: str = CAMPAIGN) -> None:
    record_change(session, actor, clock, action=action, entity_kind=kind, entity_id=campaign.id,
                  organisation_id=campaign.organisation_id, before=before, after=after)


def file_form(campaign: Campaign) -> dict[str, Any]:
    """The campaign as a campaign file would write it (media named by sha256), for the file's validators."""
    targets = target_lists(campaign)
    return {
        "id": campaign.id, "name": campaign.name, "organisation": campaign.organisation_id,
        "description": campaign.description, "start_date": campaign.start_date, "end_date": campaign.end_date,
        "plays_per_day": campaign.plays_per_day, "window": campaign.window_policy.value,
        "windows": campaign.explicit_windows, "priority": campaign.priority,
        "creatives": [{"file": c.media_sha256,
                       "duration_s": c.duration_ms / 1000 if c.media.kind is MediaKind.image else None}
                      for c in campaign.creatives],
        "targets": {kind: refs for kind, refs in targets.items() if refs} or None,
        "overrides": [{"organisation": o.organisation_id, "site": o.site_id, "plays_per_day": o.plays_per_day,
                       "by": o.set_by, "reason": o.reason} for o in campaign.overrides],
    }


# -- who may do what, and when ------------------------------------------------------------------------------


def _role(actor: Actor, roles: tuple[Role, ...], to: str) -> None:
    if not actor.has_role(*roles):
        names = " or ".join(role.value for role in roles)
        raise NotAllowed(f"your role ({actor.role.value}) may not {to}", f"it takes a {names} account")


def _owned(campaign: Campaign, owned: bool) -> None:
    if not owned:
        raise NotAllowed(f"the campaign belongs to {campaign.organisation_id}, a unit above yours",
                         "ask its staff to change it; as a head of unit you may raise its frequency on your screens")


def _may_edit(actor: Actor, campaign: Campaign, owned: bool) -> None:
    _owned(campaign, owned)
    _role(actor, EDITORS, "change campaigns")
    if campaign.status is CampaignStatus.submitted:
        raise Conflict("the campaign awaits approval", "ask a head of unit or manager to approve it, or to reject "
                                                       "it with a note, after which it can be changed again")
    if campaign.status is CampaignStatus.archived:
        raise Conflict("the campaign is archived and keeps its history unchanged", "create a new campaign instead")


def _may_change_media(actor: Actor, campaign: Campaign, owned: bool) -> None:
    _may_edit(actor, campaign, owned)
    if campaign.status in APPROVED:
        raise Conflict("the media of an approved campaign cannot change: the approval was for what it shows",
                       "create a new campaign with the new media, and set this one's end date to today")


def _may_submit(actor: Actor, campaign: Campaign, owned: bool) -> None:
    _owned(campaign, owned)
    _role(actor, EDITORS, "submit campaigns")
    if campaign.status is not CampaignStatus.draft:
        raise Conflict(f"the campaign is {campaign.status.value}; only a draft is submitted",
                       "nothing to do: it has been submitted already")


def _may_review(actor: Actor, campaign: Campaign, owned: bool) -> None:
    _owned(campaign, owned)
    _role(actor, REVIEWERS, "approve or reject campaigns")
    if campaign.status is not CampaignStatus.submitted:
        raise Conflict(f"the campaign is {campaign.status.value}; only a submitted campaign is approved or rejected",
                       "staff submit it first")
    if campaign.submitted_by == actor.username and actor.role is not Role.admin:
        raise NotAllowed("you submitted this campaign yourself",
                         f"another head of unit or manager of {campaign.organisation_id} (or of a unit above it) "
                         "approves it")


def _may_archive(actor: Actor, campaign: Campaign, owned: bool) -> None:
    _owned(campaign, owned)
    _role(actor, EDITORS, "archive campaigns")
    if campaign.status not in (CampaignStatus.draft, CampaignStatus.ended):
        raise Conflict(f"a {campaign.status.value} campaign cannot be archived; only drafts and ended ones are",
                       "to stop it early, set its end date to today; it can be archived once it has ended")


def may_override(actor: Actor, campaign: Campaign, owned: bool) -> None:
    _role(actor, (Role.head,), "set frequency overrides")
    if campaign.status in (CampaignStatus.ended, CampaignStatus.archived):
        raise Conflict(f"the campaign is {campaign.status.value}", "overrides are for campaigns still to play")


_ACTIONS: dict[str, Callable[[Actor, Campaign, bool], None]] = {
    "edit": _may_edit, "media": _may_change_media, "submit": _may_submit, "approve": _may_review,
    "reject": _may_review, "archive": _may_archive, "override": may_override,
}


def allowed_actions(actor: Actor, campaign: Campaign, owned: bool) -> list[str]:
    """The actions this user may take on the campaign now (for showing only the buttons that work)."""
    allowed = []
    for name, check in _ACTIONS.items():
        try:
            check(actor, campaign, owned)
        except (NotAllowed, Conflict):
            continue
        allowed.append(name)
    return allowed


def may_create(actor: Actor) -> bool:
    return actor.has_role(*EDITORS)


# -- targets and the screens they hit -----------------------------------------------------------------------


@dataclass(frozen=True)
class TargetCount:
    organisation_id: str
    screens: int
    sites: int
    speakers: int


def _owner_path(session: Session, actor: Actor, organisation_id: str | None) -> tuple[str, str]:
    owner = organisation_id or actor.user.organisation_id
    if not is_slug(owner) or not actor.sees_organisation(session, owner):
        raise NotFound("organisation", owner)
    return owner, session.scalar(select(Organisation.path).where(Organisation.id == owner))


def checked_targets(session: Session, owner_id: str, targets: dict[str, Any]) -> TargetsIn:
    """The targets by the file's rules, each within the owner's subtree; all the strays named at once."""
    spec = checked(TargetsIn, targets)
    paths = organisation_paths(session)
    owner_path = paths[owner_id]
    strays = []
    for plural in ("organisations", "sites", "screens", "groups"):
        for ref in getattr(spec, plural):
            owner = owning_organisation(session, _SINGULAR[plural], ref)
            if owner is None or not is_within(paths[owner], owner_path):
                strays.append(f"there is no {_SINGULAR[plural]} {ref!r} within {owner_id}")
    if strays:
        raise Invalid("; ".join(strays), f"target only screens of {owner_id} and the units below it (their "
                                         "organisations, sites, groups and screens); a unit above may target more")
    return spec


def screens_hit(session: Session, owner_path: str, rows: list[tuple[str, str]]) -> list[PlanScreen]:
    """The enabled screens that targets (stored (kind, ref) rows) hit, by the planner's own rule."""
    probe = PlanCampaign(id="targets", organisation_path=owner_path, start_date=date.min, end_date=date.min,
                         creatives=(), **resolve_targets(rows, organisation_paths(session)))
    return [screen for screen in _plan_screens(session) if probe.targets(screen)]


def _counted(organisation_id: str, screens: list[PlanScreen]) -> TargetCount:
    return TargetCount(organisation_id, len(screens), len({s.site_id for s in screens}),
                       sum(1 for s in screens if s.kind is ScreenKind.speaker))


def count_targets(session: Session, actor: Actor, organisation_id: str | None,
                  targets: dict[str, list[str]]) -> TargetCount:
    """How many screens a targeting of a campaign owned by `organisation_id` (default: the user's) hits now."""
    owner, path = _owner_path(session, actor, organisation_id)
    if not any(targets.get(kind) for kind in TARGET_KINDS):
        return TargetCount(owner, 0, 0, 0)
    spec = checked_targets(session, owner, targets)
    return _counted(owner, screens_hit(session, path, spec.rows()))


def campaign_screens(session: Session, campaign: Campaign) -> list[PlanScreen]:
    path = session.scalar(select(Organisation.path).where(Organisation.id == campaign.organisation_id))
    return screens_hit(session, path, [(t.kind, t.ref) for t in campaign.targets])


@dataclass(frozen=True)
class TargetChoices:
    organisations: list[Organisation]
    site_kinds: list[str]
    sites: list[Site]
    groups: list[ScreenGroup]
    screens: list[Screen]


def target_choices(session: Session, owner_id: str) -> TargetChoices:
    """What a campaign of `owner_id` may target: its subtree's organisations, sites, groups and screens."""
    path = session.scalar(select(Organisation.path).where(Organisation.id == owner_id))
    orgs = select(Organisation.id).where(Organisation.path.startswith(path, autoescape=True))
    sites = list(session.scalars(select(Site).where(Site.organisation_id.in_(orgs)).order_by(Site.name)))
    return TargetChoices(
        organisations=list(session.scalars(select(Organisation).where(Organisation.id.in_(orgs))
                                           .order_by(Organisation.path))),
        site_kinds=sorted({site.kind.value for site in sites}),
        sites=sites,
        groups=list(session.scalars(select(ScreenGroup).where(ScreenGroup.organisation_id.in_(orgs))
                                    .order_by(ScreenGroup.name))),
        screens=list(session.scalars(select(Screen).join(Site).where(Site.organisation_id.in_(orgs))
                                     .options(selectinload(Screen.site)).order_by(Screen.id))),
    )


def owner_choices(session: Session, actor: Actor) -> list[Organisation]:
    return list(session.scalars(select(Organisation).where(Organisation.id.in_(actor.org_ids()))
                                .order_by(Organisation.path)))


def media_choices(session: Session, actor: Actor) -> list[MediaAsset]:
    """The actor's media, newest first, each file once: the row its sha256 reaches (`held_by`), so a unit above
    two that hold the same bytes is offered them once."""
    first: dict[str, MediaAsset] = {}
    for asset in session.scalars(held_by_any(actor.org_ids())):
        first.setdefault(asset.sha256, asset)
    by_sha = sorted(first.values(), key=lambda asset: asset.sha256)
    return sorted(by_sha, key=lambda asset: asset.created_at, reverse=True)


# -- warnings about media and screens -----------------------------------------------------------------------


@dataclass(frozen=True)
class MediaWarning:
    code: str  # campaign.warn.<code> in the UI's words
    message: str
    count: int = 0


def media_warnings(kinds: set[MediaKind], screens: list[PlanScreen]) -> list[MediaWarning]:
    """Speakers play audio only, displays pictures only: say when media and targeted screens do not meet."""
    speakers = sum(1 for s in screens if s.kind is ScreenKind.speaker)
    displays = len(screens) - speakers
    warnings = []
    if MediaKind.audio in kinds and not speakers:
        warnings.append(MediaWarning("audio_without_speakers", "the audio plays only on speakers (loudspeakers), and "
                                "the campaign targets none: add speakers to the targets or remove the audio"))
    if speakers and MediaKind.audio not in kinds:
        warnings.append(MediaWarning("speakers_without_audio", f"{speakers} targeted speakers play only audio, and the "
                                "campaign has none: they will play nothing of it", speakers))
    if displays and kinds and not kinds & {MediaKind.video, MediaKind.image}:
        warnings.append(MediaWarning("displays_without_picture", f"{displays} targeted screens play only video and "
                                "images, and the campaign has neither: they will play nothing of it", displays))
    return warnings


def campaign_warnings(campaign: Campaign, screens: list[PlanScreen]) -> list[MediaWarning]:
    return media_warnings({c.media.kind for c in campaign.creatives}, screens)


# -- the steps ----------------------------------------------------------------------------------------------


def slug_from_name(name: str) -> str:
    text = unicodedata.normalize("NFKD", name.replace("đ", "d").replace("Đ", "D"))
    text = "".join(ch for ch in text if not unicodedata.combining(ch)).lower()
    slug = re.sub(r"[^a-z0-9]+", "-", text).strip("-")[:56].strip("-")
    return slug if len(slug) >= 2 else "campaign"


def _free_id(session: Session, name: str) -> str:
    base = slug_from_name(name)
    candidate, n = base, 1
    while session.get(Campaign, candidate) is not None:
        n += 1
        candidate = f"{base}-{n}"
    return candidate


def create_draft(session: Session, actor: Actor, clock: Clock, timezone: str, *, name: str,
                 campaign_id: str | None = None, organisation_id: str | None = None, description: str | None = None,
                 start_date: date | None = None, end_date: date | None = None, plays_per_day: int = 10,
                 window: WindowPolicy | str = WindowPolicy.peak, windows: dict[str, Any] | None = None,
                 priority: int = 0) -> Campaign:
    """A new draft owned by `organisation_id` (default: the user's unit); its id is made from the name unless
    given. Without dates it runs from today for DEFAULT_DAYS days."""
    _role(actor, EDITORS, "create campaigns")
    owner, _ = _owner_path(session, actor, organisation_id)
    start = start_date or local_today(clock, timezone)
    data = {"id": campaign_id if campaign_id is not None else _free_id(session, str(name)), "name": name,
            "organisation": owner, "description": description or None, "start_date": start,
            "end_date": end_date or _days_after(start, DEFAULT_DAYS - 1), "plays_per_day": plays_per_day,
            "window": window, "windows": windows, "priority": priority}
    draft = _within_reach(checked(CampaignDraft, data), local_today(clock, timezone))
    if session.get(Campaign, draft.id) is not None:
        raise Conflict(f"the campaign id {draft.id!r} is taken",
                       "choose another id, or leave it out to have one made from the name")
    now = clock.now()
    campaign = Campaign(id=draft.id, organisation_id=owner, name=draft.name, description=draft.description,
                        start_date=draft.start_date, end_date=draft.end_date, plays_per_day=draft.plays_per_day,
                        window_policy=draft.window, explicit_windows=draft.windows, priority=draft.priority,
                        status=CampaignStatus.draft, created_at=now, updated_at=now, created_by=actor.username)
    session.add(campaign)
    session.flush()
    _audit(session, actor, clock, campaign, "campaign.create", None, describe(campaign))
    return campaign


def _today_where_it_plays(session: Session, campaign: Campaign, clock: Clock, timezone: str) -> date:
    """Today in the zone of its screens that is furthest behind: a campaign may start on the day it is still
    today somewhere it plays (calendar.is_active_on reads dates in each site's zone)."""
    zones = {screen.timezone for screen in campaign_screens(session, campaign)} or {timezone}
    now = clock.now()
    return min(local_date(now, zone) for zone in zones)


def update_campaign(session: Session, actor: Actor, clock: Clock, timezone: str, campaign_id: str,
                    changes: dict[str, Any]) -> Campaign:
    """Change name, description, dates, frequency, window or priority. An approved campaign stays planned:
    its status follows its new dates and the planner re-plans it (the change moves the planning revision)."""
    unknown = set(changes) - set(EDITABLE_FIELDS)
    if unknown:
        raise ValueError(f"not editable here: {', '.join(sorted(unknown))}")
    campaign, owned = find_campaign(session, actor, campaign_id)
    _may_edit(actor, campaign, owned)
    changes = dict(changes)
    if "window" in changes and changes["window"] != WindowPolicy.explicit and "windows" not in changes:
        changes["windows"] = None
    rate = changes.get("plays_per_day")
    if isinstance(rate, int):
        lower = sorted(o.plays_per_day for o in campaign.overrides if o.plays_per_day < rate)
        if lower:
            raise Invalid(f"a head of unit's override of {lower[0]} plays a day would fall below the new rate "
                          f"of {rate}", f"keep plays_per_day at most {lower[0]}, or have the override raised or "
                          "removed first")
    today = local_today(clock, timezone)
    draft = _within_reach(checked(CampaignDraft, {**file_form(campaign), **changes}), today)
    if campaign.status in APPROVED and (draft.start_date, draft.end_date) != (campaign.start_date,
                                                                              campaign.end_date):
        earliest = _today_where_it_plays(session, campaign, clock, timezone)
        if draft.end_date < earliest:
            raise Invalid(f"the approved campaign would end on {draft.end_date}, before today ({earliest})",
                          f"to stop it, set its end date to today ({earliest})")
    before = describe(campaign)
    campaign.name, campaign.description = draft.name, draft.description
    campaign.start_date, campaign.end_date = draft.start_date, draft.end_date
    campaign.plays_per_day, campaign.priority = draft.plays_per_day, draft.priority
    campaign.window_policy, campaign.explicit_windows = draft.window, draft.windows
    if campaign.status in APPROVED:
        campaign.status = status_on(campaign.start_date, campaign.end_date, today)
    return _saved(session, actor, clock, timezone, campaign, "campaign.update", before)


def _saved(session: Session, actor: Actor, clock: Clock, timezone: str, campaign: Campaign, action: str,
           before: dict[str, Any]) -> Campaign:
    """Audit what changed (nothing changed: nothing recorded) and, for an approved campaign, record anew
    what the planner cannot fit, as a campaign import does."""
    old, new = _changed(before, describe(campaign))
    if not new:
        return campaign
    campaign.updated_at = clock.now()
    session.flush()
    _audit(session, actor, clock, campaign, action, old, new)
    if campaign.status in APPROVED:
        check = capacity(session, campaign, clock, timezone)
        record_shortfalls(session, {campaign.id}, check.shortfalls, clock.now())
    return campaign


def set_creatives(session: Session, actor: Actor, clock: Clock, timezone: str, campaign_id: str,
                  creatives: list[tuple[str, float | None]],
                  languages: Mapping[str, str | None] | None = None) -> Campaign:
    """The campaign's media, in play order: (sha256 of a media library item, display seconds for an image). An
    item kept stays what it was, a version of its creative (its slot) in its language; `languages` sets the
    language of some items by sha256 (None: for any audience)."""
    campaign, owned = find_campaign(session, actor, campaign_id)
    _may_change_media(actor, campaign, owned)
    if not creatives:
        raise Invalid("no media is chosen", "pick at least one item of the media library (/media)")
    if len(creatives) > MAX_CREATIVES:
        raise Invalid(f"{len(creatives)} media items are chosen", f"choose at most {MAX_CREATIVES}")
    wanted: list[tuple[str, str, int]] = []
    for index, (sha, seconds) in enumerate(creatives):
        wanted.append(_creative_row(session, actor, f"creatives[{index}]", sha, seconds, wanted))
    checked_languages = {sha: _language(sha, code) for sha, code in (languages or {}).items()}
    kept = {c.media_sha256: (c.slot, c.language) for c in campaign.creatives}
    # A slot is numbered by the position of its first version, as migration 0021 numbered the creatives before.
    first_positions: dict[tuple[str, int], int] = {}
    rows = []
    for i, (sha, holder, ms) in enumerate(wanted):
        slot, language = kept.get(sha, (None, None))
        rows.append((sha, holder, ms, first_positions.setdefault(("new", i) if slot is None else ("kept", slot), i),
                     checked_languages.get(sha, language)))
    before = describe(campaign)
    if [(c.media_sha256, c.media_organisation_id, c.duration_ms, c.slot, c.language)
            for c in campaign.creatives] != rows:
        _replace(session, campaign, "creatives", [
            CampaignCreative(position=i, media_sha256=sha, media_organisation_id=holder, duration_ms=ms, slot=slot,
                             language=language)
            for i, (sha, holder, ms, slot, language) in enumerate(rows)])
    return _saved(session, actor, clock, timezone, campaign, "campaign.media", before)


def _language(sha: str, code: str | None) -> str | None:
    """A version's language code by the campaign file's rule (lowercase ISO 639), or None."""
    return None if code is None else checked(VersionIn, {"file": sha, "language": code}).language


def add_language_version(session: Session, actor: Actor, clock: Clock, timezone: str, campaign_id: str,
                         position: int, sha: str, language: str, seconds: float | None = None) -> Campaign:
    """A version in `language` of the campaign's creative at `position`: a library item of the user's subtree
    (another unit's is NotFound), played in its turn with the creative's other versions where the site's audience
    is international (scheduler/planner.py); an image shows as long as the creative unless `seconds` says."""
    campaign, owned = find_campaign(session, actor, campaign_id)
    _may_change_media(actor, campaign, owned)
    of = next((c for c in campaign.creatives if c.position == position), None)
    if of is None:
        raise NotFound("creative", f"{campaign.id} #{position}")
    code = _language(sha, language)
    asset = session.scalar(held_by(sha, actor.org_ids())) if _SHA256.fullmatch(sha) else None
    if asset is None:
        raise NotFound("media", sha[:64])
    if any(c.media_sha256 == sha for c in campaign.creatives):
        raise Conflict(f"the media {sha[:12]} is in the campaign already",
                       "choose another item of the library, or remove it in the media step first")
    if len(campaign.creatives) >= MAX_CREATIVES:
        raise Invalid(f"the campaign has {len(campaign.creatives)} media items already",
                      f"keep at most {MAX_CREATIVES}: remove some in the wizard's media step first")
    if seconds is None and asset.kind is MediaKind.image and of.media.kind is MediaKind.image:
        seconds = of.duration_ms / 1000
    _, holder, duration_ms = _creative_row(session, actor, "version", sha, seconds, [])
    before = describe(campaign)
    campaign.creatives.append(CampaignCreative(
        position=max(c.position for c in campaign.creatives) + 1, slot=of.slot, language=code, media_sha256=sha,
        media_organisation_id=holder, duration_ms=duration_ms))
    return _saved(session, actor, clock, timezone, campaign, "campaign.media", before)


def _creative_row(session: Session, actor: Actor, where: str, sha: str, seconds: float | None,
                  chosen: list[tuple[str, str, int]]) -> tuple[str, str, int]:
    """A chosen library item as a creative: (sha256, the unit holding the row used, milliseconds a play lasts)."""
    spec = checked(CreativeIn, {"file": sha, "duration_s": seconds})
    asset = session.scalar(held_by(sha, actor.org_ids())) if _SHA256.fullmatch(sha) else None
    if asset is None:
        raise Invalid(f"{where}: there is no media {sha[:64]!r} within your organisation",
                      "pick media from the library (/media, GET /api/v1/media), or upload it there first")
    if any(sha == have for have, _, _ in chosen):
        raise Invalid(f"{where}: the media {sha[:12]} is chosen twice", "choose each item once")
    if asset.kind is MediaKind.image:
        duration_ms = round((spec.duration_s or DEFAULT_IMAGE_SECONDS) * 1000)
    elif spec.duration_s is not None:
        raise Invalid(f"{where}: duration_s is for still images only",
                      "remove it: a clip or audio spot plays for its own length")
    elif not asset.duration_ms:
        raise Invalid(f"{where}: the media {sha[:12]} has no known length", "upload it again to probe it")
    else:
        duration_ms = asset.duration_ms
    return sha, asset.organisation_id, duration_ms


def may_change_media(actor: Actor, campaign: Campaign, owned: bool) -> None:
    """Raises NotAllowed or Conflict unless the user may change the campaign's media now."""
    _may_change_media(actor, campaign, owned)


def add_versions(session: Session, actor: Actor, clock: Clock, timezone: str, campaign_id: str,
                 versions: list[tuple[str, float | None]]) -> Campaign:
    """One more creative after the campaign's media, in versions (e.g. a poster for each screen format): rows of
    one new slot, of which the planner plays, where the creative is due, the version that suits the screen."""
    campaign, owned = find_campaign(session, actor, campaign_id)
    _may_change_media(actor, campaign, owned)
    if not versions:
        raise Invalid("no version of the creative is given", "give at least one item of the media library")
    if len(campaign.creatives) + len(versions) > MAX_CREATIVES:
        raise Invalid(f"the campaign would have {len(campaign.creatives) + len(versions)} media items",
                      f"keep at most {MAX_CREATIVES}: remove some in the wizard's media step first")
    have = [(c.media_sha256, c.media_organisation_id, c.duration_ms) for c in campaign.creatives]
    rows: list[tuple[str, str, int]] = []
    for index, (sha, seconds) in enumerate(versions):
        if any(sha == used for used, _, _ in have):
            raise Conflict(f"versions[{index}]: the media {sha[:12]} is in the campaign already",
                           "nothing to add: the campaign plays it; remove it in the media step to add it again")
        rows.append(_creative_row(session, actor, f"versions[{index}]", sha, seconds, rows))
    before = describe(campaign)
    # Past every position and slot in use: the new rows share a slot no other creative has.
    first = max((n for c in campaign.creatives for n in (c.position, c.slot)), default=-1) + 1
    campaign.creatives.extend(CampaignCreative(position=first + i, slot=first, media_sha256=sha,
                                               media_organisation_id=holder, duration_ms=ms)
                              for i, (sha, holder, ms) in enumerate(rows))
    return _saved(session, actor, clock, timezone, campaign, "campaign.media", before)


def set_targets(session: Session, actor: Actor, clock: Clock, timezone: str, campaign_id: str,
                targets: dict[str, list[str]]) -> Campaign:
    """Which screens the campaign plays on: organisation subtrees, site kinds, sites, groups and screens, all
    within the owning organisation's subtree (see TargetsIn for how they combine)."""
    campaign, owned = find_campaign(session, actor, campaign_id)
    _may_edit(actor, campaign, owned)
    rows = checked_targets(session, campaign.organisation_id, targets).rows()
    before = describe(campaign)
    if sorted((t.kind, t.ref) for t in campaign.targets) != rows:
        _replace(session, campaign, "targets", [CampaignTarget(kind=kind, ref=ref) for kind, ref in rows])
    return _saved(session, actor, clock, timezone, campaign, "campaign.targets", before)


def _replace(session: Session, campaign: Campaign, collection: str, items: list[Any]) -> None:
    # The old rows must be gone before the new ones go in: they may share keys (position, target).
    getattr(campaign, collection).clear()
    session.flush()
    setattr(campaign, collection, items)


# -- the capacity preview -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ShortfallLine:
    site_id: str
    site_name: str
    date: date
    screens: int
    missing: int
    reason: str


@dataclass(frozen=True)
class Preview:
    campaign_id: str
    screens: int  # enabled screens the targets hit
    sites: int
    speakers: int
    plays_per_day: int  # the campaign's own rate
    highest_plays_per_day: int  # with the heads of units' overrides
    spots_per_day: int  # required spots a day over all the screens that can play the campaign's media
    first_day: date | None  # the days checked; None when the campaign has no day left
    last_day: date | None
    runs_beyond: bool  # the campaign runs past last_day, which was not checked
    shortfalls: list[ShortfallLine]
    warnings: list[MediaWarning]


def capacity(session: Session, campaign: Campaign, clock: Clock, timezone: str) -> CapacityCheck:
    return check_capacity_within(session, {campaign.id}, local_today(clock, timezone), clock.now(), PREVIEW_DAYS)


def preview(session: Session, actor: Actor, clock: Clock, timezone: str, campaign_id: str) -> Preview:
    """Screens hit, plays per day and what cannot fit, by site and day, beside every campaign already planned:
    the planner's own capacity check (scheduler.capacity) on the campaign as it stands."""
    campaign, _ = find_campaign(session, actor, campaign_id)
    if not campaign.creatives:
        raise Invalid("the campaign has no media yet", "add media first: the preview needs each spot's length")
    if not campaign.targets:
        raise Invalid("the campaign targets no screens yet", "choose its targets first")
    inputs = load_planning_inputs(session, campaign_ids={campaign.id})
    (plan,) = inputs.campaigns
    screens = [s for s in inputs.screens if plan.targets(s)]
    playable = [s for s in screens if any(s.can_play(c.kind) for c in plan.creatives)]
    rates = [plan.required_plays(s) for s in playable]
    check = capacity(session, campaign, clock, timezone)
    site_names = dict(session.execute(select(Site.id, Site.name).where(
        Site.id.in_({s.site_id for s in check.shortfalls}))).all())
    return Preview(
        campaign_id=campaign.id, screens=len(screens), sites=len({s.site_id for s in screens}),
        speakers=sum(1 for s in screens if s.kind is ScreenKind.speaker), plays_per_day=campaign.plays_per_day,
        highest_plays_per_day=max(rates, default=campaign.plays_per_day), spots_per_day=sum(rates),
        first_day=check.first_day, last_day=check.last_day, runs_beyond=check.runs_beyond,
        shortfalls=[_line(s, site_names) for s in check.shortfalls],
        warnings=campaign_warnings(campaign, screens),
    )


def _line(shortfall: SiteShortfall, names: dict[str, str]) -> ShortfallLine:
    return ShortfallLine(shortfall.site_id, names.get(shortfall.site_id, shortfall.site_id), shortfall.date,
                         shortfall.screens, shortfall.missing, shortfall.reason)


# -- submission, review, archive ----------------------------------------------------------------------------


def submit(session: Session, actor: Actor, clock: Clock, timezone: str, campaign_id: str) -> Campaign:
    """Send a complete draft for approval: media, targets that hit screens, and dates from today on."""
    campaign, owned = find_campaign(session, actor, campaign_id)
    _may_submit(actor, campaign, owned)
    if not campaign.creatives:
        raise Invalid("the campaign has no media", "add at least one media item (the media step)")
    if not campaign.targets:
        raise Invalid("the campaign targets no screens",
                      "choose organisations, site kinds, sites, groups or screens (the targets step)")
    checked(CampaignIn, file_form(campaign) | {"status": "draft"})  # the file's rules, the whole campaign
    if not campaign_screens(session, campaign):
        raise Invalid("the campaign's targets hit no screen (none are there, or all are disabled)",
                      "choose targets with screens; the targets step counts them")
    today = _today_where_it_plays(session, campaign, clock, timezone)
    if campaign.start_date < today:
        raise Invalid(f"the campaign starts on {campaign.start_date}, before today ({today})",
                      "move its start date to today or later (the dates step)")
    before = {"status": campaign.status.value}
    campaign.status = CampaignStatus.submitted
    campaign.submitted_by, campaign.submitted_at = actor.username, clock.now()
    campaign.approved_by = campaign.approved_at = campaign.review_note = None
    campaign.updated_at = clock.now()
    _audit(session, actor, clock, campaign, "campaign.submit", before,
           {"status": campaign.status.value, "submitted_by": actor.username})
    session.flush()
    return campaign


def approve(session: Session, actor: Actor, clock: Clock, timezone: str, campaign_id: str,
            note: str | None = None) -> Campaign:
    """A head of unit or manager of the owning organisation (or above) approves someone else's submission: it is
    scheduled, or active when today is within its dates, and the planner plans it."""
    campaign, owned = find_campaign(session, actor, campaign_id)
    _may_review(actor, campaign, owned)
    note = plain_text(note, "note", required=False)
    status = status_on(campaign.start_date, campaign.end_date, local_today(clock, timezone))
    if status is CampaignStatus.ended:
        raise Conflict(f"the campaign's last day ({campaign.end_date}) has passed",
                       "reject it with a note, so that its staff move the dates and submit it again")
    before = {"status": campaign.status.value}
    campaign.status = status
    campaign.approved_by, campaign.approved_at, campaign.review_note = actor.username, clock.now(), note
    campaign.updated_at = clock.now()
    session.flush()
    _audit(session, actor, clock, campaign, "campaign.approve", before,
           {"status": status.value, "approved_by": actor.username, "note": note})
    record_shortfalls(session, {campaign.id}, capacity(session, campaign, clock, timezone).shortfalls, clock.now())
    return campaign


def reject(session: Session, actor: Actor, clock: Clock, campaign_id: str, note: str | None) -> Campaign:
    """Back to draft with a note saying what to change."""
    campaign, owned = find_campaign(session, actor, campaign_id)
    _may_review(actor, campaign, owned)
    note = plain_text(note, "note", required=True)
    before = {"status": campaign.status.value}
    campaign.status = CampaignStatus.draft
    campaign.review_note = note
    campaign.approved_by = campaign.approved_at = None
    campaign.updated_at = clock.now()
    _audit(session, actor, clock, campaign, "campaign.reject", before,
           {"status": campaign.status.value, "rejected_by": actor.username, "note": note})
    session.flush()
    return campaign


def archive(session: Session, actor: Actor, clock: Clock, campaign_id: str) -> Campaign:
    """Put a draft or an ended campaign away: it keeps its history (plays, audit) and leaves planning."""
    campaign, owned = find_campaign(session, actor, campaign_id)
    _may_archive(actor, campaign, owned)
    before = {"status": campaign.status.value}
    campaign.status = CampaignStatus.archived
    campaign.updated_at = clock.now()
    _audit(session, actor, clock, campaign, "campaign.archive", before, {"status": campaign.status.value})
    session.flush()
    return campaign


__all__ = [
    "CampaignDraft", "MediaWarning", "Preview", "TargetCount",
    "allowed_actions", "approve", "archive", "audit_query", "campaigns_query", "count_targets", "create_draft",
    "find_campaign", "preview", "reject", "set_creatives", "set_targets", "submit", "update_campaign",
    "with_contents",
]
