"""Pairing end to end with real parts: Mosquitto, the server in a thread (web + MQTT bridge), and a headless
player started with no config. The test reads the code from the player's output, claims it through the API as a
ward's staff, and the player writes its config (0600), connects with the credentials it was given, takes its
plan and sends proof-of-play back."""

from __future__ import annotations

import re
import stat
import sys
from datetime import UTC, datetime
from pathlib import Path

import httpx

from campaigns.accounts import create_user
from scheduler.models import PlayRecord
from signage.db import transaction
from signage.player_config import PlayerConfig
from tests.conftest import PASSWORD
from tests.test_player_e2e import database_url, media_table, publish_plan, stack, wait_for_records  # noqa: F401

SCREEN = "e2e-a-001"


def test_a_player_with_no_config_shows_a_code_that_staff_claim_and_it_connects(stack, tmp_path, clock,  # noqa: F811
                                                                                password_hash):
    with transaction(stack.database.sessions) as session:
        create_user(session, username="ward-a-staff", full_name="Cán bộ phường A", role="staff",
                    organisation_id="e2e-ward-a", password_hash=password_hash, clock=clock)
    config_path = tmp_path / "paired" / "config.json"
    signage = str(Path(sys.executable).parent / "signage")
    player = stack.spawn([signage, "player", "run", "--config", str(config_path), "--server-url", stack.url,
                          "--headless", "--player-data-dir", str(tmp_path / "paired-data")], {})
    code = re.search(r"pairing code: (\w{3}-\w{3})", player.wait_for("pairing code:")).group(1)
    assert not config_path.exists()

    with httpx.Client(base_url=stack.url) as client:
        token = client.post("/api/v1/auth/token", json={"username": "ward-a-staff", "password": PASSWORD})
        assert token.status_code == 201, token.text
        headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
        other_ward = client.post("/api/v1/screens/e2e-b-001/pairing", json={"code": code}, headers=headers)
        assert other_ward.status_code == 404
        # The stack registers a player for every screen, so this pairing replaces it, and must say so.
        kept = client.post(f"/api/v1/screens/{SCREEN}/pairing", json={"code": code}, headers=headers)
        assert kept.status_code == 409 and kept.json()["errors"][0]["field"] == "replace"
        claimed = client.post(f"/api/v1/screens/{SCREEN}/pairing", json={"code": code, "replace": True},
                              headers=headers)
        assert claimed.status_code == 200, claimed.text

    player.wait_for(f"paired as {SCREEN}")
    player.wait_for("wrote ")
    assert stat.S_IMODE(config_path.stat().st_mode) == 0o600
    config = PlayerConfig.load(config_path)
    assert (config.player_id, config.server_url, config.headless) == (SCREEN, stack.url, True)
    assert config.data_dir == str(tmp_path / "paired-data")

    loop = media_table(stack.database)["loop.png"]
    publish_plan(stack.database, stack.bridge, SCREEN, [], loop)
    player.wait_for("plan ", timeout=60)

    def filler_came_back(rows: list[PlayRecord]) -> bool:
        return any(r.player_id == SCREEN and r.kind == "filler" for r in rows)

    rows = wait_for_records(stack.bridge, stack.database, filler_came_back, timeout=90)
    assert all(r.started_at <= datetime.now(UTC) for r in rows)
