"""Security suite: what the server and `signage player register` keep on disk is readable by its owner only — the
data directory 0700; the database, the signing key and a player's config 0600 — whatever the umask, and a file
found wider (an older version's, a copy) is narrowed on start with a warning (issue 16, item 7)."""

from __future__ import annotations

import logging
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from scheduler.database import open_database
from signage.config import Settings
from signage.private_files import private_directory
from signage.signing import PRIVATE_KEY_FILE, Signer

pytestmark = pytest.mark.security

SIGNAGE = str(Path(sys.executable).parent / "signage")
SCREEN = "hn-hadong-phula-001"


def mode(path: Path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def database_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'var' / 'signage.db'}"


@pytest.fixture
def lax_umask() -> Iterator[None]:
    """The umask of a careless shell: what is made without an explicit mode is readable by everyone."""
    old = os.umask(0o022)
    yield
    os.umask(old)


@pytest.fixture
def sqlite_settings(tmp_path: Path) -> Settings:
    # The default: SQLite at DATA_DIR/signage.db.
    return Settings(_env_file=None, data_dir=tmp_path / "var", mqtt=False)


def test_a_new_data_directory_database_and_key_are_the_owners_only(sqlite_settings, lax_umask):
    data_dir = sqlite_settings.data_dir
    open_database(sqlite_settings).dispose()
    Signer.load_or_create(data_dir)
    assert mode(data_dir) == 0o700
    assert mode(data_dir / "signage.db") == 0o600
    assert mode(data_dir / PRIVATE_KEY_FILE) == 0o600
    for extra in data_dir.glob("signage.db-*"):  # SQLite's WAL and shared memory, if left
        assert mode(extra) == 0o600, extra


def test_wider_modes_found_on_start_are_narrowed_with_a_warning(sqlite_settings, lax_umask, caplog):
    data_dir = sqlite_settings.data_dir
    open_database(sqlite_settings).dispose()
    Signer.load_or_create(data_dir)
    data_dir.chmod(0o755)
    (data_dir / "signage.db").chmod(0o644)
    (data_dir / PRIVATE_KEY_FILE).chmod(0o644)
    caplog.set_level(logging.WARNING)

    open_database(sqlite_settings).dispose()
    Signer.load_or_create(data_dir)

    # 0755 loses every read and write bit of group and other; search stays (nginx and Mosquitto's account pass
    # through to their own files, docs/deploy.md), listing and the database and key do not
    assert (mode(data_dir), mode(data_dir / "signage.db"), mode(data_dir / PRIVATE_KEY_FILE)) == (0o711, 0o600,
                                                                                                  0o600)
    warned = caplog.text
    assert str(data_dir / "signage.db") in warned and str(data_dir / PRIVATE_KEY_FILE) in warned
    assert "0755" in warned and "0644" in warned


def test_player_register_over_an_existing_config_writes_it_0600(fleet, cli_env, settings, database, lax_umask):
    target = settings.data_dir / "players" / f"{SCREEN}.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text("{}\n")
    target.chmod(0o644)  # an old config, copied around with a wide mode

    register = subprocess.run([SIGNAGE, "player", "register", SCREEN, "--headless"], env=cli_env,
                              capture_output=True, text=True, timeout=120)

    assert register.returncode == 0, register.stderr
    assert mode(target) == 0o600
    assert '"password"' in target.read_text()  # the new secret is inside
    assert not [p for p in target.parent.iterdir() if p.name.startswith(f".{target.name}")]  # no temporary left


def test_a_shared_directory_named_as_the_data_directory_is_never_narrowed(tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o1777)  # as /tmp is: narrowing it would lock every other user and service out
    private_directory(shared)
    assert stat.S_IMODE(shared.stat().st_mode) == 0o1777


def test_group_search_on_the_data_directory_stays_for_nginx_but_group_read_goes(tmp_path):
    data = tmp_path / "var"
    data.mkdir()
    os.chmod(data, 0o750)  # what systemd's StateDirectoryMode gave an older install
    private_directory(data)
    assert stat.S_IMODE(data.stat().st_mode) == 0o710
