"""`signage demo`'s seeding: a user of each role for the city and a ward, their password printed, and the iHanoi
campaign already on the air."""

import re
import sys
from pathlib import Path

import httpx
import pytest
from sqlalchemy import func, select

from campaigns.accounts import MIN_PASSWORD_LENGTH, LoginRefused, authenticate
from campaigns.kinds import CampaignStatus, Role
from campaigns.models import Campaign, User
from scheduler.demo import FILE_APPROVER, demo_password, prepare_demo, seed_demo_users
from signage.clock import local_today
from tests.conftest import CAMPAIGN_FILE, FLEET_FILE
from tests.pg_server import free_port

RUN_PASSWORD = "bcde-fghj-kmnp"


@pytest.fixture
def demo_users(session, fleet, clock):
    users = seed_demo_users(session, RUN_PASSWORD, clock)
    session.commit()
    return users


def test_the_demo_seeds_every_role_for_the_city_and_for_the_ward(demo_users):
    assert {(u.organisation_id, u.role) for u in demo_users} == {
        (org, role) for org in ("hn", "hn-hadong-phula") for role in Role}


def test_every_demo_user_signs_in_with_the_runs_password(demo_users, session, clock):
    for user in demo_users:
        assert authenticate(session, user.username, RUN_PASSWORD, clock).role is user.role


def test_seeding_again_gives_the_new_password_and_adds_no_users(demo_users, session, clock):
    seed_demo_users(session, "next-runs-password", clock)
    session.commit()
    assert session.scalar(select(func.count()).select_from(User)) == len(demo_users)
    assert authenticate(session, "phula-staff", "next-runs-password", clock).username == "phula-staff"
    with pytest.raises(LoginRefused):
        authenticate(session, "phula-staff", RUN_PASSWORD, clock)


def test_every_run_makes_a_password_of_its_own_long_enough_for_the_rules():
    passwords = {demo_password() for _ in range(20)}
    assert len(passwords) == 20
    assert all(len(p) >= MIN_PASSWORD_LENGTH for p in passwords)


def test_the_demo_puts_the_ihanoi_campaign_on_the_air_today_approved_by_its_file(settings, clock, session):
    setup = prepare_demo(settings, clock, FLEET_FILE, CAMPAIGN_FILE)
    campaign = session.get(Campaign, "ihanoi-2024")
    assert setup.campaign_statuses == {"ihanoi-2024": CampaignStatus.active}
    assert (campaign.status, campaign.start_date) == (CampaignStatus.active, local_today(clock, settings.timezone))
    assert (campaign.approved_by, campaign.review_note) == (FILE_APPROVER, "ihanoi-campaign.yaml")


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_signage_demo_prints_credentials_that_sign_in(cli_env, spawn):
    # The whole `make demo`: broker, headless players and the web app; the printed password must work.
    port = free_port()
    env = {**cli_env, "SIGNAGE_BROKER_PORT": str(free_port())}
    demo = spawn([str(Path(sys.executable).parent / "signage"), "demo", "--host", "127.0.0.1", "--port", str(port)],
                 env)
    announced = demo.wait_for("demo users (password for this run:", timeout=120)
    password = re.search(r"password for this run: (\S+)\)", announced).group(1)
    demo.wait_for("Uvicorn running on", timeout=120)
    printed = "".join(demo.lines)
    assert "ihanoi-2024 (active)" in printed
    assert re.search(r"^\s+city-admin\s+admin\s+UBND Thành phố Hà Nội$", printed, re.MULTILINE)
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as browser:
        signed_in = browser.post("/login", data={"username": "phula-head", "password": password, "next": "/fleet"})
        assert signed_in.status_code == 303
        assert "Phú La (demo)" in browser.get("/fleet").text
