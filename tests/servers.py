"""Servers for tests: an ASGI app on uvicorn on a free localhost port, in a thread (shared with the load test's
stand and the benches)."""

from __future__ import annotations

from loadtest.serving import serve_in_thread

__all__ = ["serve_in_thread"]
