"""Which campaigns of higher units a user sees because they play on the user's screens: the list asks it in SQL
(campaigns/workflow.py `_reaching`), and the answer must be the planner's own targeting rule (`PlanCampaign.targets`)
for every unit of the example fleet and every kind of targeting."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import select, update

from campaigns.access import Actor
from campaigns.kinds import CampaignStatus, WindowPolicy
from campaigns.models import Campaign, CampaignTarget, Organisation, Screen, User
from campaigns.scope import is_within
from campaigns.workflow import _reaching_ids, campaigns_query
from scheduler.plan_inputs import PLANNED_STATUSES, load_planning_inputs

# (owner, status, targets as (kind, ref) rows): one campaign each.
CAMPAIGNS = {
    "city-everywhere": ("hn", "active", [("organisation", "hn")]),
    "city-hadong": ("hn", "scheduled", [("organisation", "hn-hadong")]),
    "city-phula": ("hn", "active", [("organisation", "hn-hadong-phula")]),
    "city-offices": ("hn", "active", [("site_kind", "ward_office")]),
    "city-offices-of-hadong": ("hn", "active", [("site_kind", "ward_office"), ("organisation", "hn-hadong")]),
    "city-hospitals-of-the-health-department": ("hn", "ended", [("site_kind", "hospital"),
                                                                ("organisation", "hn-soyt")]),
    "city-one-site": ("hn", "active", [("site", "hadong-vanquan")]),
    "city-one-screen": ("hn", "active", [("screen", "hn-hadong-phula-002")]),
    "city-one-group": ("hn", "active", [("group", "one-stop")]),
    "city-a-switched-off-screen": ("hn", "active", [("screen", "hn-hadong-phula-003")]),
    "city-a-mix": ("hn", "active", [("site_kind", "hospital"), ("site", "hadong-phula")]),
    "city-elsewhere": ("hn", "active", [("organisation", "hn-bavi")]),
    "city-no-targets": ("hn", "active", []),
    "city-draft": ("hn", "draft", [("organisation", "hn")]),
    "city-submitted": ("hn", "submitted", [("organisation", "hn")]),
    "city-archived": ("hn", "archived", [("organisation", "hn")]),
    "hadong-offices": ("hn-hadong", "active", [("site_kind", "ward_office")]),
    "hadong-everywhere": ("hn-hadong", "scheduled", [("organisation", "hn-hadong")]),
    "phula-own": ("hn-hadong-phula", "active", [("organisation", "hn-hadong-phula")]),
}


@pytest.fixture
def campaigns(session, fleet, clock) -> None:
    for campaign_id, (owner, status, targets) in CAMPAIGNS.items():
        session.add(Campaign(id=campaign_id, organisation_id=owner, name=campaign_id, start_date=date(2024, 8, 1),
                             end_date=date(2024, 9, 30), plays_per_day=10, window_policy=WindowPolicy.peak,
                             priority=0, status=CampaignStatus(status), created_at=clock.now(),
                             updated_at=clock.now()))
        session.add_all(CampaignTarget(campaign_id=campaign_id, kind=kind, ref=ref) for kind, ref in targets)
    session.execute(update(Screen).where(Screen.id == "hn-hadong-phula-003").values(enabled=False))
    session.flush()


def actor_of(session, organisation: Organisation) -> Actor:
    user = User(username=f"u-{organisation.id}", full_name="", role="staff", organisation_id=organisation.id,
                password_hash=None, active=True)
    return Actor(user, organisation.path, "token")


def by_the_planners_rule(session, org_path: str) -> set[str]:
    """The planned campaigns of units above `org_path` that the planner puts on an enabled screen within it."""
    above = {c.id for c in session.scalars(select(Campaign).join(Organisation).where(
        Campaign.status.in_(PLANNED_STATUSES))) if org_path.startswith(c.organisation.path)
        and c.organisation.path != org_path}
    inputs = load_planning_inputs(session, campaign_ids=above)
    mine = [s for s in inputs.screens if is_within(s.organisation_path, org_path)]
    return {c.id for c in inputs.campaigns if any(c.targets(s) for s in mine)}


def test_the_campaigns_reaching_a_unit_are_those_the_planner_puts_on_its_screens(session, campaigns):
    organisations = list(session.scalars(select(Organisation).order_by(Organisation.path)))
    reached = {}
    for organisation in organisations:
        expected = by_the_planners_rule(session, organisation.path)
        assert _reaching_ids(session, actor_of(session, organisation)) == expected, organisation.id
        reached[organisation.id] = expected
    # The cases are not all empty: each kind of targeting reaches some ward.
    assert reached["hn"] == set()
    assert reached["hn-hadong-phula"] == {
        "city-everywhere", "city-hadong", "city-phula", "city-offices", "city-offices-of-hadong", "city-one-screen",
        "city-one-group", "city-a-mix", "hadong-offices", "hadong-everywhere"}
    assert reached["hn-hadong-vanquan"] == {
        "city-everywhere", "city-hadong", "city-offices", "city-offices-of-hadong", "city-one-site", "city-one-group",
        "hadong-offices", "hadong-everywhere"}
    assert reached["hn-soyt"] == {"city-everywhere", "city-hospitals-of-the-health-department", "city-a-mix"}


def test_the_list_is_the_units_own_campaigns_and_those_reaching_it(session, campaigns):
    for organisation in session.scalars(select(Organisation).order_by(Organisation.path)):
        actor = actor_of(session, organisation)
        listed = set(session.scalars(campaigns_query(session, actor)))
        own = {c.id for c in listed if is_within(c.organisation.path, organisation.path)}
        assert own == {campaign_id for campaign_id, (owner, _, _) in CAMPAIGNS.items()
                       if is_within(session.get(Organisation, owner).path, organisation.path)}
        assert {c.id for c in listed} - own == by_the_planners_rule(session, organisation.path), organisation.id
