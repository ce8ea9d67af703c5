"""Screenshots from players: uploaded by the player's own code to the real server, stored per screen."""

import httpx
import pytest

from campaigns.fleet_file import import_fleet
from player.uploads import upload_screenshot
from scheduler.app import create_app
from scheduler.players import register_player
from signage.db import transaction
from signage.signing import Signer
from tests.conftest import FLEET_FILE
from tests.servers import serve_in_thread

PLAYER, OTHER = "hn-nb-t2-001", "hn-nb-t2-002"


@pytest.fixture
def server(settings, database, clock):
    settings = settings.model_copy(update={"jobs": False, "mqtt": False})
    with transaction(database.sessions) as session:
        import_fleet(session, FLEET_FILE, settings.timezone)
        signer = Signer.load_or_create(settings.data_dir)
        config = register_player(session, PLAYER, settings, signer, "", clock.now())
    server, thread, port = serve_in_thread(create_app(settings, clock))
    yield settings, config, f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=30)


def test_a_players_screenshot_is_stored_as_the_newest_for_its_screen(server, make_media):
    settings, config, url = server
    png = make_media("shot.png")
    assert upload_screenshot(url, PLAYER, config.password, png)
    assert (settings.data_dir / "screenshots" / PLAYER / "latest.png").read_bytes() == png.read_bytes()


def test_a_wrong_secret_sends_nothing(server, make_media):
    settings, config, url = server
    assert not upload_screenshot(url, PLAYER, "not-the-secret", make_media("shot.png"))
    assert not (settings.data_dir / "screenshots").exists()


def test_a_player_cannot_send_another_screens_screenshot_nor_something_that_is_not_a_png(server, make_media):
    settings, config, url = server
    auth = (PLAYER, config.password)
    other = httpx.post(f"{url}/players/{OTHER}/screenshot", content=make_media("shot.png").read_bytes(), auth=auth)
    assert other.status_code == 403 and other.headers["content-type"] == "application/problem+json"
    text = httpx.post(f"{url}/players/{PLAYER}/screenshot", content=b"hello", auth=auth)
    assert text.status_code == 422 and "PNG" in text.json()["detail"]
    assert not (settings.data_dir / "screenshots").exists()
