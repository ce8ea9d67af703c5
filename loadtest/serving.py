"""Local network helpers for stands, benches and tests: a free port, the server's app on uvicorn in a thread."""

from __future__ import annotations

import socket
import threading
import time
from typing import Any


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def serve_in_thread(app: Any) -> tuple[Any, threading.Thread, int]:
    """Start the app on a free port of 127.0.0.1 and return once uvicorn says it started (or raise after 10 s);
    stop it with `server.should_exit = True` and `thread.join()`."""
    import uvicorn

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
