"""The player's side of pairing (player/pairing.py) against the real server in a thread: the code is shown full
screen (the marquee over a held black picture, as an urgent alert's text) and printed; an expired code is
replaced by a new one; once staff claim it, the config comes back and the screen's text is taken away. And
`signage player run` with neither a config nor a server says how to get one."""

from __future__ import annotations

import queue
import subprocess
import sys
import threading
from datetime import timedelta
from pathlib import Path

from player.pairing import as_this_pc_reaches_it, pair, screen_text
from player.playback import TimedPlayback
from scheduler.pairing import CODE_TTL
from signage.player_config import PlayerConfig
from tests.servers import serve_in_thread

SCREEN = "hn-hadong-phula-001"


def test_the_code_is_shown_on_the_screen_renewed_when_it_expires_and_the_claim_brings_the_config(app, api, clock):
    server, thread, port = serve_in_thread(app)
    playback = TimedPlayback(lambda _event: None, clock=clock)
    lines: queue.Queue[str] = queue.Queue()
    stopping = threading.Event()
    result: list = []
    pairing = threading.Thread(target=lambda: result.append(pair(f"http://127.0.0.1:{port}/", playback, stopping,
                                                                 say=lines.put, poll_every_s=0.05)))
    pairing.start()
    try:
        first = lines.get(timeout=30).removeprefix("pairing code: ").split()[0]
        assert playback.blanked and playback.ticker == screen_text(first) and playback.ticker_prominent
        clock.advance(CODE_TTL + timedelta(seconds=1))
        second = lines.get(timeout=30).removeprefix("pairing code: ").split()[0]
        assert second != first and playback.ticker == screen_text(second)
        assert api("phula-staff").post(f"/api/v1/screens/{SCREEN}/pairing", json={"code": second}).status_code == 200
        assert lines.get(timeout=30) == f"paired as {SCREEN}"
        pairing.join(timeout=30)
        [config] = result
        assert config.player_id == SCREEN and playback.ticker is None
    finally:
        stopping.set()
        pairing.join(timeout=30)
        server.should_exit = True
        thread.join(timeout=30)


def test_run_without_a_config_or_a_server_says_how_to_get_one(tmp_path):
    signage = str(Path(sys.executable).parent / "signage")
    answer = subprocess.run([signage, "player", "run", "--config", str(tmp_path / "none.json")],
                            capture_output=True, text=True, timeout=60)
    assert answer.returncode == 2
    assert "signage player register" in answer.stderr and "--server-url" in answer.stderr


def test_the_paired_config_reaches_the_broker_as_this_pc_does():
    config = PlayerConfig(player_id=SCREEN, broker_host="127.0.0.1", username=SCREEN, password="x" * 43,
                          server_url="http://127.0.0.1:8000", public_keys=["key"])
    remote = as_this_pc_reaches_it(config, "https://signage.hanoi.example/", {})
    assert (remote.server_url, remote.broker_host, remote.broker_port) == (
        "https://signage.hanoi.example", "signage.hanoi.example", 1883)
    told = as_this_pc_reaches_it(config, "https://signage.hanoi.example", {
        "broker_host": "mqtt.hanoi.example", "broker_port": 8883, "broker_tls_ca": "/etc/signage/ca.pem"})
    assert (told.broker_host, told.broker_port, told.broker_tls_ca) == ("mqtt.hanoi.example", 8883,
                                                                        "/etc/signage/ca.pem")
    assert as_this_pc_reaches_it(config, "http://127.0.0.1:8000", {}).broker_host == "127.0.0.1"
