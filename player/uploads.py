"""Sending files to the server over HTTP (the stdlib's client: the player installs without httpx)."""

from __future__ import annotations

import base64
import urllib.error
import urllib.request
from pathlib import Path


def upload_screenshot(server_url: str, player_id: str, secret: str, path: Path, timeout_s: float = 30) -> bool:
    """POST the PNG at `path` as this player's screenshot; False (never an exception) when it did not go."""
    token = base64.b64encode(f"{player_id}:{secret}".encode()).decode()
    request = urllib.request.Request(f"{server_url}/players/{player_id}/screenshot", data=path.read_bytes(),
                                     method="POST", headers={"Authorization": f"Basic {token}",
                                                             "Content-Type": "image/png"})
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            return response.status == 201
    except (urllib.error.URLError, OSError):
        return False
