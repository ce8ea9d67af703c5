"""Security suite: secrets never leak. User passwords, bearer tokens and session cookies, player secrets, the
server's broker secret and its signing key go through the flows that handle them — the `signage` command as a
process, the web app, the broker's supervisor, the player agent — with every logger at DEBUG, and none of their
values appears in the logs, the command's output, a problem+json answer, a player's status or the broker's files.
(Account changes are not in the audit log at all: nothing there to leak.)
"""

from __future__ import annotations

import base64
import logging
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

import pytest
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from player.agent import PlayerAgent
from player.playback import TimedPlayback
from scheduler.broker import BrokerSupervisor, broker_dir, server_broker_secret
from scheduler.players import register_player
from signage.db import transaction
from signage.player_config import PlayerConfig
from signage.signing import Signer
from tests.conftest import PASSWORD
from tests.pg_server import free_port

pytestmark = pytest.mark.security

SIGNAGE = str(Path(sys.executable).parent / "signage")
NEW_PASSWORD = "Bí-mật-của-người-dùng-mới-2024!"
SCREEN = "hn-hadong-phula-001"


@pytest.fixture
def database_url(tmp_path) -> str:
    # What is logged does not depend on the database's kind.
    return f"sqlite:///{tmp_path / 'signage.db'}"


@pytest.fixture
def everything_logged(caplog) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG)
    return caplog


def leaks(texts: dict[str, str], secrets: dict[str, str]) -> dict[str, list[str]]:
    """Where each secret (or a telling part of it) appears."""
    found = {}
    for where, text in texts.items():
        named = [name for name, secret in secrets.items() if secret and (secret in text or secret[8:40] in text)]
        if named:
            found[where] = named
    return found


def test_the_web_app_logs_echoes_and_audits_no_password_token_or_cookie(app, web, api, database, everything_logged):
    answers = []
    answers.append(web.post("/login", data={"username": "phula-staff", "password": NEW_PASSWORD, "next": "/"}))
    answers.append(web.post("/api/v1/auth/token", json={"username": "phula-staff", "password": NEW_PASSWORD}))
    answers.append(web.post("/api/v1/auth/token", json={"username": "phula-staff", "password": NEW_PASSWORD,
                                                        "days": "forever"}))
    answers.append(web.post("/api/v1/auth/token", json={"username": ["x"], "password": NEW_PASSWORD}))
    admin = api("city-admin")
    token = admin.headers["Authorization"].removeprefix("Bearer ")
    answers.append(admin.post("/api/v1/users", json={"username": "new-staff", "full_name": "Nhân viên mới",
                                                     "role": "staff", "organisation_id": "hn", "password": "short"}))
    created = admin.post("/api/v1/users", json={"username": "new-staff", "full_name": "Nhân viên mới",
                                                "role": "staff", "organisation_id": "hn", "password": NEW_PASSWORD})
    assert created.status_code == 201, created.text
    answers.append(created)
    answers.append(admin.post("/api/v1/users", json={"username": "new-staff", "full_name": "Nhân viên mới",
                                                     "role": "staff", "organisation_id": "hn",
                                                     "password": NEW_PASSWORD}))  # a duplicate: refused
    login = web.post("/login", data={"username": "new-staff", "password": NEW_PASSWORD, "next": "/fleet"},
                     follow_redirects=False)
    assert login.status_code == 303
    cookie = next(iter(web.cookies.values()))
    answers.append(web.get("/api/v1/me", headers={"Authorization": "Bearer " + token[::-1]}))
    texts = {"logs": everything_logged.text, **{f"answer {n} ({a.status_code})": a.text for n, a in enumerate(answers)}}
    secrets = {"new user's password": NEW_PASSWORD, "staff password": PASSWORD, "bearer token": token,
               "session cookie": cookie}
    assert leaks(texts, secrets) == {}


def test_the_command_line_prints_no_player_secret_or_user_password(fleet, cli_env, settings, database):
    register = subprocess.run([SIGNAGE, "player", "register", SCREEN, "--headless"], env=cli_env,
                              capture_output=True, text=True, timeout=120)
    assert register.returncode == 0, register.stderr
    config = PlayerConfig.load(settings.data_dir / "players" / f"{SCREEN}.json")
    create = subprocess.run([SIGNAGE, "user", "create", "cli-admin", "-o", "hn", "--password-stdin"], env=cli_env,
                            input=NEW_PASSWORD + "\n", capture_output=True, text=True, timeout=120)
    assert create.returncode == 0, create.stderr
    texts = {"register output": register.stdout + register.stderr, "create output": create.stdout + create.stderr}
    assert leaks(texts, {"player secret": config.password, "user password": NEW_PASSWORD}) == {}


def test_the_broker_supervisor_and_the_player_agent_log_no_secret(fleet, settings, database, clock,
                                                                   everything_logged, tmp_path):
    settings = settings.model_copy(update={"broker_port": free_port()})
    signer = Signer.load_or_create(settings.data_dir)
    with transaction(database.sessions) as session:
        config = register_player(session, SCREEN, settings, signer, "http://127.0.0.1:9", clock.now())
    config = config.model_copy(update={"data_dir": str(tmp_path / "player"), "headless": True})
    with BrokerSupervisor(settings, database) as supervisor:
        supervisor.reload()
        agent = PlayerAgent(config, clock, lambda post: TimedPlayback(post, clock=clock))
        agent.step("start")
        status = agent.status().model_dump_json()
        agent.close()
    private = signer.private_key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
    secrets = {"player secret": config.password, "server broker secret": server_broker_secret(settings),
               "signing key": base64.b64encode(private).decode()}
    broker_files = {path.name: path.read_text(errors="replace") for path in broker_dir(settings).iterdir()
                    if path.is_file() and path.name != "server.secret"}
    texts = {"logs": everything_logged.text, "player status": status, **broker_files}
    assert leaks(texts, secrets) == {}


def test_db_upgrade_prints_and_logs_no_database_password(postgres, tmp_path):
    password = "Mật-khẩu-CSDL-7f3a9c2e"
    url = postgres.create_database().replace("://postgres@", f"://postgres:{quote(password, safe='')}@")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SIGNAGE_")}
    env.update(SIGNAGE_DATA_DIR=str(tmp_path / "var"), SIGNAGE_DATABASE_URL=url)
    upgrade = subprocess.run([SIGNAGE, "db", "upgrade"], env=env, capture_output=True, text=True, timeout=120)
    assert upgrade.returncode == 0, upgrade.stderr
    assert "database at the newest schema: postgresql+psycopg://postgres:***@127.0.0.1" in upgrade.stdout
    texts = {"output and logs": "".join((upgrade.stdout + upgrade.stderr).split())}  # rich wraps long lines
    assert leaks(texts, {"database password": password, "quoted": quote(password, safe="")}) == {}


def test_the_load_tests_report_names_its_database_without_the_password():
    from loadtest.options import LoadtestOptions

    options = LoadtestOptions(database_url="postgresql+psycopg://signage:S3cret-pw@db.example/signage")
    assert options.model_dump(mode="json")["database_url"] == "postgresql+psycopg://signage:***@db.example/signage"
    assert options.database_url.endswith(":S3cret-pw@db.example/signage")  # the run itself still connects with it
