"""The fleet page, in process (content) and as a real `signage server` on 127.0.0.1."""

import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from tests.conftest import FLEET_FILE, PASSWORD, sign_in
from tests.pg_server import free_port


@pytest.fixture
def client(web):
    sign_in(web, "city-manager")
    return web


def test_the_fleet_page_lists_organisations_sites_and_screens_in_vietnamese(client):
    page = client.get("/fleet")
    assert page.status_code == 200
    assert '<html lang="vi">' in page.text
    assert "Tổ chức, điểm đặt và màn hình" in page.text
    assert "UBND Thành phố Hà Nội" in page.text
    assert 'id="site-ga-hn"' in page.text
    assert 'id="screen-hn-hadong-phula-001"' in page.text


def test_the_fleet_page_shows_todays_windows_in_the_sites_zone(client):
    # The clock stands on Tuesday 20 August 2024: a ward office's weekday peaks.
    page = client.get("/fleet").text
    row = page[page.index('id="site-hadong-phula"'):]
    row = row[:row.index("</tr>")]
    assert "08:00-11:00, 14:00-16:30" in row


def test_the_fleet_page_speaks_english_on_request_and_remembers_it(client):
    page = client.get("/fleet?lang=en")
    assert "Organisations, sites and screens" in page.text
    assert page.cookies.get("lang") == "en"
    assert "Organisations, sites and screens" in client.get("/fleet").text


def test_choosing_an_organisation_shows_only_its_subtree(client):
    page = client.get("/fleet?org=hn-hadong").text
    assert 'id="site-hadong-phula"' in page
    assert 'id="site-ga-hn"' not in page


def test_a_ward_user_sees_only_the_wards_screens_whatever_organisation_is_asked_for(web):
    sign_in(web, "phula-staff")
    page = web.get("/fleet?org=hn").text
    assert 'id="site-hadong-phula"' in page
    assert 'id="site-ga-hn"' not in page and 'id="site-hadong-vanquan"' not in page


def test_the_root_sends_people_to_the_campaigns(client):
    assert client.get("/", follow_redirects=False).headers["location"] == "/campaigns"


def test_signage_server_serves_the_fleet_page_on_localhost(cli_env, spawn):
    signage = str(Path(sys.executable).parent / "signage")
    imported = spawn([signage, "fleet", "import", str(FLEET_FILE)], cli_env)
    assert imported.process.wait(timeout=60) == 0
    created = subprocess.run([signage, "user", "create", "manager", "-o", "hn", "--role", "manager",
                              "--password-stdin"], input=PASSWORD + "\n", text=True, env=cli_env, timeout=60)
    assert created.returncode == 0
    port = free_port()
    server = spawn([signage, "server", "--host", "127.0.0.1", "--port", str(port)], cli_env)
    server.wait_for("Uvicorn running on", timeout=60)
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as browser:
        signed_in = browser.post("/login", data={"username": "manager", "password": PASSWORD, "next": "/fleet"})
        assert signed_in.status_code == 303
        page = browser.get("/fleet")
    assert page.status_code == 200
    assert "Nhà ga hành khách T2" in page.text
