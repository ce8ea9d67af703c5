"""Servers for tests: an ASGI app on uvicorn on a free localhost port, in a thread."""

from __future__ import annotations

import threading
import time
from typing import Any

import uvicorn

from tests.pg_server import free_port


def serve_in_thread(app: Any) -> tuple[uvicorn.Server, threading.Thread, int]:
    """Start the app and return once uvicorn says it started (or raise after 10 s); stop it with
    `server.should_exit = True` and `thread.join()`."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    tick, deadline = threading.Event(), time.monotonic() + 10
    while not server.started and thread.is_alive() and time.monotonic() < deadline:
        tick.wait(0.05)
    if not server.started:
        server.should_exit = True
        raise RuntimeError("uvicorn did not start within 10 s")
    return server, thread, port
