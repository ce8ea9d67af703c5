"""What keeps a server process answering under load and abuse: every bound is answered at once, nothing hangs.

- **Request bodies** are bounded while they stream in, before anything parses them: a declared `Content-Length`
  over the limit gets 413 without a byte read; a chunked body is cut off at the limit and answered 413. Media
  uploads and players' screenshots have their own, larger limits (`BodyLimits.larger`).
- **Requests in progress** are bounded (`SIGNAGE_HTTP_MAX_PENDING`): one more is answered 503 with `Retry-After`
  at once instead of queueing for a thread. A request stops counting when its answer starts, so a long download
  or export streaming out takes no place. Health checks and static files are never turned away.
- **Requests at work** are bounded by the web pool (`SIGNAGE_DB_POOL_SIZE`): a request waits, on the event loop
  and holding nothing, for one of that many working places before its first dependency runs, and gives it back
  when its answer starts. A request that waits longer than `SIGNAGE_DB_POOL_TIMEOUT` is answered 503.
- **A database connection** is waited for a bounded time (`SIGNAGE_DB_POOL_TIMEOUT`): then SQLAlchemy's pool
  raises `TimeoutError`, answered 503 with `Retry-After`.

Why working places: FastAPI runs each `def` dependency and the route as separate threadpool calls, and a request's
session keeps its connection between them. Were requests let in freely, the threads could all be taken by new
requests waiting for a connection while the requests that hold the connections wait for a thread to go on: no one
moves until the pool's timeout (seen as p50 10 s at 64 clients in bench/http_load.py). With at most pool-size
requests at work, each holding at most one connection and using one thread at a time, and as many threads again
for the requests whose answers have started but whose sessions still close (`size_threadpool`: twice the pool),
a request in its working place always finds a thread, and a connection soon.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

import anyio
import anyio.to_thread
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.exc import TimeoutError as PoolTimeout

from scheduler.web.i18n import translate
from signage.config import Settings

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

RETRY_AFTER_SECONDS = 2
# Never turned away by the admission bound: an operator's probe must answer while the server is busiest.
ALWAYS_ADMITTED = ("/healthz", "/readyz", "/static/")
# Machine clients get problem+json; a person's browser gets a page.
MACHINE_PREFIXES = ("/api/", "/media/", "/players/", "/healthz", "/readyz", "/openapi.json")
# Above the media limit itself: a multipart upload carries its boundary and headers besides the file.
MULTIPART_SLACK = 1024**2
SCREENSHOT_MAX_BYTES = 10 * 1024**2


def problem_bytes(status: int, detail: str) -> bytes:
    body = {"type": "about:blank", "title": HTTPStatus(status).phrase, "status": status, "detail": detail}
    return json.dumps(body, ensure_ascii=False).encode()


def busy_answer(path: str, language: str, detail: str) -> Response:
    """503 with Retry-After: problem+json for API clients and players, a short page in the user's language for
    a browser."""
    headers = {"Retry-After": str(RETRY_AFTER_SECONDS)}
    if path.startswith(MACHINE_PREFIXES):
        return Response(problem_bytes(503, detail), 503, headers, media_type="application/problem+json")
    title, text = translate("busy.title", language), translate("busy.text", language)
    page = (f'<!doctype html><html lang="{language}"><meta charset="utf-8"><title>{title}</title>'
            f"<h1>{title}</h1><p>{text}</p></html>")
    return HTMLResponse(page, 503, headers)


def cookie_language(scope: Scope) -> str:
    for name, value in scope.get("headers", ()):
        if name == b"cookie" and b"lang=en" in value:
            return "en"
    return "vi"


async def send_whole(send: Send, response: Response) -> None:
    await send({"type": "http.response.start", "status": response.status_code,
                "headers": response.raw_headers})
    await send({"type": "http.response.body", "body": response.body})


@dataclass(frozen=True)
class BodyLimits:
    """The largest body a request may send: `default`, or the first of `larger` whose method and path match."""

    default: int
    larger: Sequence[tuple[str, re.Pattern[str], int]] = field(default_factory=tuple)

    @classmethod
    def from_settings(cls, settings: Settings) -> BodyLimits:
        upload = settings.max_upload_bytes + MULTIPART_SLACK
        return cls(settings.max_body_bytes, (
            ("POST", re.compile(r"/(api/v1/)?media/?"), upload),
            ("POST", re.compile(r"/players/[^/]+/screenshot"), SCREENSHOT_MAX_BYTES),
        ))

    def for_request(self, method: str, path: str) -> int:
        for allowed_method, pattern, limit in self.larger:
            if method == allowed_method and pattern.fullmatch(path):
                return limit
        return self.default


def too_large(limit: int) -> Response:
    detail = (f"the request body is larger than this route takes ({limit:,} bytes); send less, or for media use "
              "the upload (POST /api/v1/media), which takes files up to SIGNAGE_MAX_UPLOAD_BYTES")
    return Response(problem_bytes(413, detail), 413, {"Connection": "close"}, media_type="application/problem+json")


def declared_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


class BodyLimitMiddleware:
    """Bounds each request's body as it streams in (pure ASGI: nothing is buffered here)."""

    def __init__(self, app: ASGIApp, limits: BodyLimits) -> None:
        self.app = app
        self.limits = limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limits.for_request(scope["method"], scope["path"])
        declared = declared_length(scope)
        if declared is not None and declared > limit:
            await send_whole(send, too_large(limit))
            return
        received = 0
        cut_off = False
        started = False

        async def limited_receive() -> Message:
            nonlocal received, cut_off
            if cut_off:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    # The app sees the client gone and stops reading; its answer is replaced by the 413 below.
                    cut_off = True
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if cut_off:
                if not started:
                    started = True
                    await send_whole(send, too_large(limit))
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except Exception:
            if not cut_off:
                raise
        if cut_off and not started:
            await send_whole(send, too_large(limit))


class AdmissionMiddleware:
    """At most `limit` requests in progress in this process, one more answered 503 at once; of those, at most
    `working` at work (before their answers start), the others waiting up to `wait` seconds for a place."""

    def __init__(self, app: ASGIApp, limit: int, working: int, wait: float) -> None:
        self.app = app
        self.limit = limit
        self.working = working
        self.wait = wait
        self.pending = 0  # touched only on the event loop's thread
        self._places: anyio.Semaphore | None = None  # made on the event loop, at the first request

    @property
    def places(self) -> anyio.Semaphore:
        if self._places is None:
            self._places = anyio.Semaphore(self.working)
        return self._places

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(ALWAYS_ADMITTED):
            await self.app(scope, receive, send)
            return
        if self.pending >= self.limit:
            await send_whole(send, busy_answer(
                scope["path"], cookie_language(scope),
                f"the server is working on {self.pending} requests, as many as it takes at once; "
                f"try again after {RETRY_AFTER_SECONDS} s (Retry-After)"))
            return
        self.pending += 1
        counted, working = True, False

        def leave() -> None:
            nonlocal counted, working
            if working:
                working = False
                self.places.release()
            if counted:
                counted = False
                self.pending -= 1

        async def send_and_leave(message: Message) -> None:
            if message["type"] == "http.response.start":
                leave()
            await send(message)

        try:
            with anyio.move_on_after(self.wait):
                await self.places.acquire()
                working = True
            if not working:
                await send_whole(send, busy_answer(
                    scope["path"], cookie_language(scope),
                    f"the server's {self.working} working places stayed taken for {self.wait:g} s; "
                    f"try again after {RETRY_AFTER_SECONDS} s (Retry-After)"))
                return
            await self.app(scope, receive, send_and_leave)
        finally:
            leave()


def size_threadpool(settings: Settings) -> None:
    """The threadpool of plain `def` routes and dependencies: two threads per web-pool connection (one for each
    request at work, one for each whose answer has started and whose session still closes; see the module's
    docstring). Called on the server's event loop (the lifespan): the limiter is the loop's own."""
    anyio.to_thread.current_default_thread_limiter().total_tokens = 2 * settings.db_pool_size


def install_guards(app: FastAPI, settings: Settings) -> None:
    # add_middleware puts the last one added outermost: admission first, so a refused request costs nothing.
    app.add_middleware(BodyLimitMiddleware, limits=BodyLimits.from_settings(settings))
    app.add_middleware(AdmissionMiddleware, limit=settings.http_max_pending, working=settings.db_pool_size,
                       wait=settings.db_pool_timeout)

    @app.exception_handler(PoolTimeout)
    async def no_connection_free(request: Request, exc: PoolTimeout) -> Response:
        return busy_answer(request.url.path, request.cookies.get("lang", "vi"),
                           f"no database connection was free within {settings.db_pool_timeout:g} s: the server is "
                           f"at its limit; try again after {RETRY_AFTER_SECONDS} s (Retry-After)")

