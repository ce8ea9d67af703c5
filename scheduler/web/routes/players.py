"""What players send the server over HTTP besides MQTT: screenshots of what their screen shows."""

from __future__ import annotations

import os
import tempfile
from datetime import datetime

import anyio
from fastapi import APIRouter, Request

from scheduler.web.auth import PlayerDep
from scheduler.web.deps import ClockDep, SettingsDep
from scheduler.web.problems import Problem, ProblemRoute

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MAX_SCREENSHOT_BYTES = 10 * 1024 * 1024

api = APIRouter(tags=["players"], route_class=ProblemRoute)
pages = APIRouter(include_in_schema=False)


@api.post("/players/{player_id}/screenshot", status_code=201)
async def upload_screenshot(player_id: str, request: Request, player: PlayerDep, settings: SettingsDep,
                            clock: ClockDep) -> dict[str, str]:
    """A player's screenshot (PNG): kept as the newest for its screen. Async to stream the body; the player's
    credentials are checked on the threadpool (PlayerDep), the file is written on a worker thread, and nothing
    here touches the database."""
    if player != player_id:
        raise Problem(403, f"player {player!r} may only send its own screenshots, not {player_id!r}'s")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_SCREENSHOT_BYTES:
            raise Problem(413, f"a screenshot may be at most {MAX_SCREENSHOT_BYTES // 2**20} MiB; send a PNG of "
                               "the screen's own size")
    if not body.startswith(PNG_SIGNATURE):
        raise Problem(422, "the body is not a PNG image; send the PNG that libVLC's snapshot wrote")
    stored = await anyio.to_thread.run_sync(store_screenshot, settings.data_dir, player_id, bytes(body), clock.now())
    return {"stored": stored}


def store_screenshot(data_dir, player_id: str, png: bytes, now: datetime) -> str:
    folder = data_dir / "screenshots" / player_id
    folder.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=folder, suffix=".part")
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(png)
    target = folder / "latest.png"
    os.replace(temporary, target)
    return now.isoformat()
