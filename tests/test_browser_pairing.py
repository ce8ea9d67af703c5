"""Pairing in a real Chromium: a headless screen PC with no config (`signage player pair`) prints its code; a
ward's staff types a wrong code (refused, in Vietnamese), then the right one on the screen's page; the PC writes
its config, mode 0600. Screenshots of each step under tests/artifacts/<test>/."""

from __future__ import annotations

import re
import stat
import sys
from pathlib import Path

from playwright.sync_api import expect

from signage.player_config import PlayerConfig
from tests.browser import shot, sign_in_as

SCREEN = "hn-hadong-phula-001"


def test_ward_staff_pair_a_screen_pc_by_typing_its_code_on_the_screen_page(live_server, browser_page, spawn,
                                                                            tmp_path):
    config_path = tmp_path / "player.json"
    signage = str(Path(sys.executable).parent / "signage")
    player = spawn([signage, "player", "pair", "--server-url", live_server.base_url, "--config", str(config_path),
                    "--headless"], {})
    code = re.search(r"pairing code: (\w{3}-\w{3})", player.wait_for("pairing code:")).group(1)

    page = browser_page
    sign_in_as(page, live_server, "phula-staff")
    page.goto(live_server.url(f"/screens/{SCREEN}"))
    expect(page.locator("#pairing h2")).to_have_text("Ghép nối máy phát bằng mã")
    page.locator("#pairing-code").fill("AAA-AAA" if code != "AAA-AAA" else "BBB-BBB")
    page.locator("#pairing-submit").click()
    expect(page.locator("#pairing-result")).to_contain_text("Không có máy nào đang hiện mã này")
    shot(page, "a wrong code refused")

    page.locator("#pairing-code").fill(code.lower())
    shot(page, "the code typed")
    page.locator("#pairing-submit").click()
    expect(page.locator("#pairing-result")).to_contain_text("Đã ghép nối")
    shot(page, "paired")

    player.wait_for(f"paired as {SCREEN}")
    assert player.process.wait(timeout=60) == 0
    assert stat.S_IMODE(config_path.stat().st_mode) == 0o600
    assert PlayerConfig.load(config_path).player_id == SCREEN
