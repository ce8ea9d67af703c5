"""Remote actions on screens end to end with real parts: Mosquitto, the server (web + MQTT bridge), player agents with
real libVLC (dummy outputs). Staff ask through the API and the screen page's buttons; the player carries the command
out (or refuses it, saying why), its status reports the outcome, and the screenshot comes back over HTTP."""

import json
from datetime import datetime, timedelta

import httpx
import pytest
from sqlalchemy import select

from campaigns.accounts import create_user
from campaigns.models import AuditEntry
from player.commands import NO_PICTURE
from scheduler.models import PlayerPresence, ScreenCommand
from scheduler.screen_action_dispatch import ScreenActionSender
from scheduler.screen_actions import ACTION_TTL
from signage.clock import SystemClock
from signage.db import transaction
from tests import test_alert_e2e
from tests import test_player_e2e as e2e
from tests.conftest import PASSWORD, sign_in
from tests.test_cli import run
from tests.test_player_e2e import PLAYERS, media_table, publish_plan, wait_for_records

stack = e2e.stack
database_url = e2e.database_url
ward_staff = test_alert_e2e.ward_staff

WARD_A_PLAYER, WARD_B_PLAYER = PLAYERS


@pytest.fixture
def staff(stack, ward_staff, clock, password_hash):
    """Bearer-token clients of the API: ward A's and ward B's staff (test_alert_e2e's), and the city's manager,
    who takes reports only."""
    with transaction(stack.database.sessions) as session:
        create_user(session, username="city-manager", full_name="Quản lý", role="manager", organisation_id="hn",
                    password_hash=password_hash, clock=clock)
    with httpx.Client(base_url=stack.url, timeout=30) as manager:
        answer = manager.post("/api/v1/auth/token", json={"username": "city-manager", "password": PASSWORD})
        manager.headers["Authorization"] = f"Bearer {answer.json()['access_token']}"
        yield {**ward_staff, "manager": manager}


def showing_filler(stack, player_id: str) -> None:
    """Start the player with the filler loop as its plan, and wait until it has played the loop once: from then on
    there is a picture on its screen."""
    publish_plan(stack.database, stack.bridge, player_id, [], media_table(stack.database)["loop.png"])
    stack.start_agent(player_id)
    wait_for_records(stack.bridge, stack.database, lambda rows: any(
        r.player_id == player_id and r.kind == "filler" and r.status == "completed" for r in rows), timeout=90)


def heard_from(stack, player_id: str, timeout: float = 60) -> None:
    def present() -> bool:
        with stack.database.sessions() as session:
            return session.get(PlayerPresence, player_id) is not None

    with stack.bridge.committed:
        assert stack.bridge.committed.wait_for(present, timeout=timeout), f"no status from {player_id}"


def answered(stack, client: httpx.Client, screen_id: str, action: dict, timeout: float = 90) -> dict:
    """The action's result once the player answered it (done or refused), read through the API after each ingest
    round: the answer comes in a status."""
    url = f"/api/v1/screens/{screen_id}/actions/{action['id']}"
    seen = {}

    def settled() -> bool:
        seen.update(client.get(url).json())
        return seen["state"] in ("done", "refused")

    with stack.bridge.committed:
        assert stack.bridge.committed.wait_for(settled, timeout=timeout), seen
    return seen


def test_a_screenshot_asked_on_the_screen_page_arrives_and_a_refused_one_shows_why(stack, staff):
    database = stack.database
    showing_filler(stack, WARD_A_PLAYER)

    with httpx.Client(base_url=stack.url, timeout=30) as browser:
        csrf = sign_in(browser, "ward-a-staff")
        page = browser.get(f"/screens/{WARD_A_PLAYER}").text
        assert 'id="action-screenshot"' in page and 'id="screenshot-none"' in page
        asked = browser.post(f"/screens/{WARD_A_PLAYER}/actions/screenshot", data={"csrf_token": csrf},
                             follow_redirects=False)
        assert asked.status_code == 303, asked.text
        command_id = asked.headers["location"].split("action=")[1].split("#")[0]
        result = answered(stack, staff["a"], WARD_A_PLAYER, {"id": command_id})
        assert (result["state"], result["action"], result["requested_by"]) == ("done", "screenshot", "ward-a-staff")

        shot = staff["a"].get(f"/api/v1/screens/{WARD_A_PLAYER}/screenshot")
        assert shot.status_code == 200 and shot.content.startswith(b"\x89PNG\r\n\x1a\n")
        page = browser.get(f"/screens/{WARD_A_PLAYER}?action={command_id}").text
        assert 'id="screenshot"' in page and 'id="screenshot-at"' in page and "Chụp lúc" in page
        assert 'id="action-asked"' in page and 'data-state="done"' in page and "Đã thực hiện" in page
        image = browser.get(f"/screens/{WARD_A_PLAYER}/screenshot.png")
        assert image.status_code == 200 and image.content == shot.content

    # Ward B's player holds no plan: nothing is on its screen, and it says so.
    stack.start_agent(WARD_B_PLAYER)
    heard_from(stack, WARD_B_PLAYER)
    asked = staff["b"].post(f"/api/v1/screens/{WARD_B_PLAYER}/actions/screenshot")
    assert asked.status_code == 202, asked.text
    result = answered(stack, staff["b"], WARD_B_PLAYER, asked.json())
    assert result["state"] == "refused" and NO_PICTURE in result["reason"]
    with httpx.Client(base_url=stack.url, timeout=30) as browser:
        sign_in(browser, "ward-b-staff")
        page = browser.get(f"/screens/{WARD_B_PLAYER}").text
        assert 'data-state="refused"' in page and NO_PICTURE in page and 'id="screenshot-none"' in page

    with database.sessions() as session:
        audited = session.scalars(select(AuditEntry.action).where(AuditEntry.entity_kind == "screen")).all()
    assert sorted(audited) == ["screen.screenshot", "screen.screenshot"]


def test_reload_sync_and_restart_are_carried_out_by_the_player(stack, staff):
    showing_filler(stack, WARD_A_PLAYER)
    for action in ("reload", "sync", "restart"):
        asked = staff["a"].post(f"/api/v1/screens/{WARD_A_PLAYER}/actions/{action}")
        assert asked.status_code == 202, asked.text
        assert answered(stack, staff["a"], WARD_A_PLAYER, asked.json())["state"] == "done", action
    # The filler on the screen was cut by the restart, and the loop plays on, whole, on the new media player.
    rows = wait_for_records(stack.bridge, stack.database, lambda rows: any(
        r.kind == "filler" and r.reason == "playback restarted by staff" for r in rows) and any(
        r.kind == "filler" and r.status == "completed" and r.started_at > cut.ended_at
        for cut in rows if cut.reason == "playback restarted by staff" for r in rows), timeout=90)
    assert [r.status for r in rows if r.reason == "playback restarted by staff"] == ["interrupted"]


def test_an_offline_players_action_waits_with_its_expiry_and_scope_and_role_are_kept(stack, staff):
    asked = staff["b"].post(f"/api/v1/screens/{WARD_B_PLAYER}/actions/sync")
    assert asked.status_code == 202, asked.text
    action = asked.json()
    requested, expires = datetime.fromisoformat(action["requested_at"]), datetime.fromisoformat(action["expires_at"])
    assert action["state"] == "waiting" and expires - requested == ACTION_TTL
    listed = staff["b"].get(f"/api/v1/screens/{WARD_B_PLAYER}/actions").json()
    assert [item["id"] for item in listed["items"]] == [action["id"]] and listed["items"][0]["state"] == "waiting"

    with httpx.Client(base_url=stack.url, timeout=30) as browser:
        sign_in(browser, "ward-b-staff")
        page = browser.get(f"/screens/{WARD_B_PLAYER}").text
        assert 'data-state="waiting"' in page and "Đang chờ: màn hình ngoại tuyến" in page
        assert expires.astimezone(e2e.HANOI).strftime("%d/%m/%Y %H:%M:%S") in page

    # Another ward's screen is not there to act on, nor its actions to read: 404, as for what does not exist.
    for path in (f"/api/v1/screens/{WARD_B_PLAYER}/actions/screenshot",):
        answer = staff["a"].post(path)
        assert answer.status_code == 404 and answer.headers["content-type"] == "application/problem+json"
    assert staff["a"].get(f"/api/v1/screens/{WARD_B_PLAYER}/actions").status_code == 404
    assert staff["a"].get(f"/api/v1/screens/{WARD_B_PLAYER}/actions/{action['id']}").status_code == 404
    assert staff["a"].get(f"/api/v1/screens/{WARD_B_PLAYER}/screenshot").status_code == 404
    assert staff["a"].get(f"/api/v1/screens/{WARD_A_PLAYER}/actions/{action['id']}").status_code == 404
    with httpx.Client(base_url=stack.url, timeout=30) as browser:
        csrf = sign_in(browser, "ward-a-staff")
        assert browser.post(f"/screens/{WARD_B_PLAYER}/actions/reload", data={"csrf_token": csrf},
                            follow_redirects=False).status_code == 404

    # A manager reads reports; acting on screens is for staff and heads (and admins).
    refused = staff["manager"].post(f"/api/v1/screens/{WARD_A_PLAYER}/actions/restart")
    assert refused.status_code == 403 and "staff or head" in refused.json()["detail"]
    with httpx.Client(base_url=stack.url, timeout=30) as browser:
        sign_in(browser, "city-manager")
        assert 'id="action-buttons"' not in browser.get(f"/screens/{WARD_A_PLAYER}").text

    with stack.database.sessions() as session:
        stored = session.scalars(select(ScreenCommand)).all()
    assert [(c.screen_id, c.action, c.requested_by) for c in stored] == [(WARD_B_PLAYER, "sync", "ward-b-staff")]
    assert stored[0].sent_at is not None and stored[0].expires_at > stored[0].requested_at + timedelta(minutes=9)


def test_the_command_line_acts_as_a_named_user_and_the_servers_job_sends_what_it_stored(stack, staff, cli_env):
    showing_filler(stack, WARD_A_PLAYER)
    env = {**cli_env, "SIGNAGE_DATABASE_URL": stack.settings.resolved_database_url}
    other_ward = run(env, "screen", "reload", WARD_A_PLAYER, "--as", "ward-b-staff", "--wait", "0")
    assert other_ward.returncode != 0 and f"no screen '{WARD_A_PLAYER}'" in other_ward.stderr.replace("\n", " ")

    stored = run(env, "screen", "reload", WARD_A_PLAYER, "--as", "ward-a-staff", "--wait", "0", "--json")
    assert stored.returncode == 0, stored.stderr
    action = json.loads(stored.stdout)
    assert (action["action"], action["state"]) == ("reload", "queued")
    assert ScreenActionSender(stack.database, stack.bridge, SystemClock()).send_due() == 1  # the server's job
    assert answered(stack, staff["a"], WARD_A_PLAYER, action)["state"] == "done"
    with stack.database.sessions() as session:
        [entry] = session.scalars(select(AuditEntry).where(AuditEntry.entity_kind == "screen")).all()
    assert (entry.action, entry.username, entry.entity_id) == ("screen.reload", "ward-a-staff", WARD_A_PLAYER)
