"""Alerts end to end with real parts: Mosquitto, the server (web API + MQTT bridge), two player agents with real
libVLC (dummy outputs) in wards A and B, proof-of-play back in the database."""

import threading
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import select

from campaigns.accounts import create_user
from scheduler.models import AlertDelivery
from signage.db import transaction
from tests import test_player_e2e as e2e
from tests.conftest import PASSWORD
from tests.test_player_e2e import PLAYERS, media_table, publish_plan, wait_for_records

# The end-to-end stack of the player tests (Mosquitto, the server, agents spawned on demand), on SQLite.
stack = e2e.stack
database_url = e2e.database_url

WARD_A_PLAYER, WARD_B_PLAYER = PLAYERS


@pytest.fixture
def ward_staff(stack, clock, password_hash):
    """Ward A's and ward B's communications staff, with bearer tokens for the server's API."""
    with transaction(stack.database.sessions) as session:
        for ward in ("a", "b"):
            create_user(session, username=f"ward-{ward}-staff", full_name=f"Ward {ward}", role="staff",
                        organisation_id=f"e2e-ward-{ward}", password_hash=password_hash, clock=clock)
    clients = {}
    for ward in ("a", "b"):
        client = httpx.Client(base_url=stack.url, timeout=30)
        answer = client.post("/api/v1/auth/token", json={"username": f"ward-{ward}-staff", "password": PASSWORD})
        assert answer.status_code == 201, answer.text
        client.headers["Authorization"] = f"Bearer {answer.json()['access_token']}"
        clients[ward] = client
    yield clients
    for client in clients.values():
        client.close()


def urgent_alert(client: httpx.Client, ward: str, seconds: int) -> dict:
    now = datetime.now(UTC)
    answer = client.post("/api/v1/alerts", json={
        "title": "Ngập úng", "text": "Đường trước trụ sở ngập sâu: xin đi đường khác", "severity": "urgent",
        "kind": "text", "expires_at": (now + timedelta(seconds=seconds)).isoformat(),
        "targets": {"organisations": [f"e2e-ward-{ward}"]}})
    assert answer.status_code == 201, answer.text
    return answer.json()


def of(rows, player_id: str, kind: str, status: str | None = None, spot_id: str | None = None) -> list:
    return [r for r in rows if r.player_id == player_id and r.kind == kind and (status is None or r.status == status)
            and (spot_id is None or r.spot_id == spot_id)]


def test_an_urgent_alert_interrupts_its_wards_screen_only_and_the_cut_spot_is_made_good_after_it(stack, ward_staff):
    database, bridge = stack.database, stack.bridge
    assets = media_table(database)
    long, two, loop = assets["long.mp4"], assets["two.mp4"], assets["loop.png"]
    first = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=15)
    # The 8-second spot plays on both screens; ward A's next spot leaves room for the make-good after the alert.
    publish_plan(database, bridge, WARD_A_PLAYER, [(first, long), (first + timedelta(seconds=45), two)], loop)
    publish_plan(database, bridge, WARD_B_PLAYER, [(first, long)], loop)
    agent_a = stack.start_agent(WARD_A_PLAYER)
    stack.start_agent(WARD_B_PLAYER)
    agent_a.wait_for(f"playing spot {WARD_A_PLAYER}-s0", timeout=60)

    alert = urgent_alert(ward_staff["a"], "a", seconds=12)
    assert (alert["phase"], alert["screens"]) == ("active", 1)
    spot_a, spot_b = f"{WARD_A_PLAYER}-s0", f"{WARD_B_PLAYER}-s0"

    def settled(rows) -> bool:
        return bool(of(rows, WARD_A_PLAYER, "alert", "completed") and of(rows, WARD_A_PLAYER, "makegood", "completed")
                    and of(rows, WARD_B_PLAYER, "spot", "completed", spot_b))

    rows = wait_for_records(bridge, database, settled, timeout=120)
    [cut] = of(rows, WARD_A_PLAYER, "spot", spot_id=spot_a)
    assert (cut.status, cut.reason) == ("interrupted", f"urgent alert {alert['id']}")
    [started] = of(rows, WARD_A_PLAYER, "alert", "started")
    [ended] = of(rows, WARD_A_PLAYER, "alert", "completed")
    assert started.spot_id == ended.spot_id == alert["id"]
    # In the order the agent's own clock gave them: the spot cut at the moment the alert took the screen, the alert
    # over at its expiry (not before), the make-good after it.
    assert started.started_at == cut.ended_at
    assert ended.ended_at >= datetime.fromisoformat(alert["expires_at"])
    [made_good] = of(rows, WARD_A_PLAYER, "makegood", "completed")
    assert made_good.spot_id == spot_a and made_good.started_at >= ended.ended_at
    assert not of(rows, WARD_B_PLAYER, "alert")  # ward B's screen played its spot through
    with database.sessions() as session:
        [delivery] = session.scalars(select(AlertDelivery)).all()
    assert (delivery.screen_id, delivery.outcome) == (WARD_A_PLAYER, "completed")
    assert delivery.started_at == started.started_at


def test_an_alert_that_expired_while_its_player_was_offline_is_never_shown(stack, ward_staff):
    database, bridge = stack.database, stack.bridge
    loop = media_table(database)["loop.png"]
    publish_plan(database, bridge, WARD_B_PLAYER, [], loop)
    agent = stack.start_agent(WARD_B_PLAYER)
    agent.wait_for(" taken: ", timeout=60)
    agent.process.terminate()  # the player goes offline; its broker session keeps what is sent to it
    agent.process.wait(timeout=30)

    alert = urgent_alert(ward_staff["b"], "b", seconds=12)
    expiry = datetime.fromisoformat(alert["expires_at"])
    # The behaviour under test is the expiry passing while the player is away: wait it out.
    threading.Event().wait(max(0.0, (expiry - datetime.now(UTC)).total_seconds() + 1))
    stack.start_agent(WARD_B_PLAYER)

    # The queued command would have come first on reconnection; a filler play after it proves the player is back.
    rows = wait_for_records(bridge, database, lambda rows: any(
        r.kind == "filler" and r.started_at > expiry for r in of(rows, WARD_B_PLAYER, "filler")), timeout=90)
    assert not of(rows, WARD_B_PLAYER, "alert")
    with database.sessions() as session:
        [delivery] = session.scalars(select(AlertDelivery)).all()
    assert (delivery.screen_id, delivery.sends, delivery.started_at) == (WARD_B_PLAYER, 1, None)


def test_ward_a_staff_cannot_alert_ward_bs_screens(stack, ward_staff):
    answer = ward_staff["a"].post("/api/v1/alerts", json={
        "title": "Thử", "text": "Không được phép", "severity": "urgent",
        "targets": {"organisations": ["e2e-ward-b"], "screens": [WARD_B_PLAYER]}})
    assert answer.status_code == 422, answer.text
    assert "e2e-ward-b" in answer.text and WARD_B_PLAYER in answer.text
    with stack.database.sessions() as session:
        assert session.scalars(select(AlertDelivery)).all() == []
