"""What players send the server over HTTP besides MQTT: screenshots of what their screen shows."""

from __future__ import annotations

import struct

import anyio
from fastapi import APIRouter, Request

from scheduler.screen_actions import store_screenshot
from scheduler.web.auth import PlayerDep
from scheduler.web.deps import ClockDep, SettingsDep
from scheduler.web.problems import Problem, ProblemRoute

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MAX_SCREENSHOT_BYTES = 10 * 1024 * 1024
MAX_SCREENSHOT_SIDE = 16384

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
    problem = png_problem(bytes(body[:24]))
    if problem is not None:
        raise Problem(422, f"the body is not a PNG image ({problem}); send the PNG that libVLC's snapshot wrote")
    stored = await anyio.to_thread.run_sync(store_screenshot, settings.data_dir, player_id, bytes(body), clock.now())
    return {"stored": stored.isoformat()}


def png_problem(head: bytes) -> str | None:
    """What is wrong with the start of a PNG file (its signature, then its IHDR chunk and size); None when right."""
    if not head.startswith(PNG_SIGNATURE):
        return "no PNG signature"
    if len(head) < 24 or head[12:16] != b"IHDR":
        return "no IHDR chunk first"
    width, height = struct.unpack(">II", head[16:24])
    if not (0 < width <= MAX_SCREENSHOT_SIDE and 0 < height <= MAX_SCREENSHOT_SIDE):
        return f"{width}x{height} pixels"
    return None
