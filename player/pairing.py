"""Pairing a screen PC that has no config yet: ask the server for a short code, show it on the screen and print it,
and wait until staff type it on the screen's page; then fetch the player's config (once) and keep it, mode 0600.

The PC proves it is the one that asked with a random secret of its own (the server keeps only its hash), sent
with each poll. An expired code is replaced by a new one, shown in its place.

On the screen the code is libVLC's marquee over a held black picture (`Playback.blank` and a prominent
`show_ticker`), the very output an urgent alert's text uses: nothing to render here, no image library or font
file on the PC, and the same fullscreen window the agent then plays in.
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from player.playback import Playback
from signage.player_config import PlayerConfig

log = logging.getLogger("signage.player")

POLL_EVERY_S = 2.0


class PairingFailed(Exception):
    """The server refused the pairing for good (a config fetched already) or could not be understood."""


@dataclass(frozen=True)
class Code:
    code: str
    expires_at: str


def screen_text(code: str) -> str:
    return f"Mã ghép nối màn hình: {code}"


def _post(url: str, body: dict[str, Any], timeout_s: float = 30) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json", "Accept": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        try:
            return exc.code, json.loads(exc.read() or b"{}")
        except ValueError:
            return exc.code, {}


def ask_for_code(server_url: str, secret: str) -> Code:
    status, body = _post(f"{server_url}/players/pairing", {"secret": secret})
    if status == 429 or status >= 500:
        raise ConnectionError(f"the server at {server_url} gave no code now ({status}: {body.get('detail', body)})")
    if status != 201:
        raise PairingFailed(f"the server at {server_url} gave no pairing code ({status}: {body.get('detail', body)})")
    return Code(body["code"], body["expires_at"])


def poll_config(server_url: str, secret: str) -> PlayerConfig | None:
    """The config once the code is claimed; None while it waits. LookupError when the code expired (ask for
    another), PairingFailed when refused for good."""
    status, body = _post(f"{server_url}/players/pairing/config", {"secret": secret})
    if status == 202:
        return None
    if status == 200:
        return PlayerConfig.model_validate(body)
    if status == 410 and "expired" in str(body.get("detail", "")):
        raise LookupError("the pairing code expired")
    raise PairingFailed(f"the server refused the pairing ({status}: {body.get('detail', body)})")


def pair(server_url: str, playback: Playback, stopping: threading.Event, *,
         say: Callable[[str], None] = print, poll_every_s: float = POLL_EVERY_S) -> PlayerConfig | None:
    """Shows codes until one is claimed; the config fetched (None if `stopping` was set first). Network failures
    are retried; a config refused for good raises PairingFailed."""
    server_url = server_url.rstrip("/")
    if server_url.startswith("http://") and not server_url.startswith(("http://127.0.0.1", "http://localhost")):
        log.warning("pairing over plain HTTP: the player's secret crosses the network readable; use https://")
    secret, code = "", None
    while not stopping.is_set():
        try:
            if code is None:
                secret = secrets.token_urlsafe(32)
                code = ask_for_code(server_url, secret)
                playback.blank()
                playback.show_ticker(screen_text(code.code), prominent=True)
                say(f"pairing code: {code.code} (type it on the screen's page of the web UI; it expires at "
                    f"{code.expires_at})")
            config = poll_config(server_url, secret)
        except LookupError:
            code = None
            continue
        except (urllib.error.URLError, OSError, ValueError) as exc:
            log.warning("the server at %s did not answer (%s); trying again", server_url, exc)
            config = None
        if config is not None:
            playback.show_ticker(None)
            say(f"paired as {config.player_id}")
            return config
        stopping.wait(poll_every_s)
    return None


LOOPBACK = {"127.0.0.1", "localhost", "::1", "0.0.0.0"}


def as_this_pc_reaches_it(config: PlayerConfig, server_url: str, broker: dict[str, Any]) -> PlayerConfig:
    """The config with this PC's way to the server (its own `server_url`) and to the broker: `broker`'s values
    (broker_host, broker_port, broker_tls_ca) where given; a broker the server names by a loopback address is
    reached at the server's host (the broker runs beside the server unless said otherwise)."""
    changes: dict[str, Any] = {"server_url": server_url.rstrip("/")}
    server_host = urllib.parse.urlsplit(server_url).hostname
    if config.broker_host in LOOPBACK and server_host and server_host not in LOOPBACK:
        changes["broker_host"] = server_host
    changes.update({key: value for key, value in broker.items() if value is not None})
    return config.model_copy(update=changes)


def pair_and_keep(server_url: str, target: Path, playback: Playback, stopping: threading.Event, *,
                  headless: bool, data_dir: str | None, broker: dict[str, Any] | None = None,
                  say: Callable[[str], None] = print) -> PlayerConfig | None:
    """`pair`, then the config as this PC reaches the server and the broker (`as_this_pc_reaches_it`), with its
    own outputs and data directory, written 0600 to `target`."""
    config = pair(server_url, playback, stopping, say=say)
    if config is None:
        return None
    config = as_this_pc_reaches_it(config, server_url, broker or {})
    config = config.model_copy(update={"headless": headless} | ({"data_dir": data_dir} if data_dir else {}))
    config.write(target)
    say(f"wrote {target}")
    return config
