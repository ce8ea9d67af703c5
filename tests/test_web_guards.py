"""The server keeps answering at its limits: pool exhaustion and too many requests are 503 with Retry-After, bodies
over their limit are 413 before they are parsed, health and readiness answer throughout. Decided on answers and
events, never on how long anything took."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
from collections.abc import Iterator

import httpx
import pytest
from fastapi.testclient import TestClient

from campaigns.campaign_file import import_campaigns
from campaigns.fleet_file import import_fleet
from media.store import MediaStore
from scheduler.app import create_app
from scheduler.broker import BrokerSupervisor
from scheduler.database import open_database
from scheduler.web.guards import AdmissionMiddleware
from signage.db import transaction
from tests.conftest import CAMPAIGN_FILE, FLEET_FILE, PASSWORD
from tests.pg_server import PostgresServer, free_port
from tests.servers import serve_in_thread

MiB = 1024**2


@contextlib.contextmanager
def running(app) -> Iterator[str]:
    """The app on real uvicorn (its lifespan, its event loop, its threadpool) at the returned base URL."""
    server, thread, port = serve_in_thread(app)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def bearer(base: str, username: str = "phula-staff") -> dict[str, str]:
    answer = httpx.post(f"{base}/api/v1/auth/token", json={"username": username, "password": PASSWORD}, timeout=30)
    assert answer.status_code == 201, answer.text
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


@contextlib.contextmanager
def every_connection_held(app) -> Iterator[None]:
    """Checks out the whole web pool, as requests that never finish would."""
    engine = app.state.database.engine
    held = [engine.connect() for _ in range(app.state.settings.db_pool_size)]
    try:
        yield
    finally:
        for connection in held:
            connection.close()


def assert_busy(answer: httpx.Response) -> None:
    assert answer.status_code == 503, answer.text
    assert int(answer.headers["retry-after"]) >= 1
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert answer.json()["status"] == 503 and "try again" in answer.json()["detail"]


async def many(base: str, requests: list[tuple[str, dict[str, str]]]) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=len(requests), max_keepalive_connections=0)
    async with httpx.AsyncClient(base_url=base, timeout=120, limits=limits) as client:
        return await asyncio.gather(*(client.get(path, headers=headers) for path, headers in requests))


def test_sixty_four_requests_are_all_answered_while_every_connection_is_held(settings, clock, staff):
    app = create_app(settings.model_copy(update={"jobs": False, "db_pool_size": 4, "db_pool_timeout": 0.5}), clock)
    with running(app) as base:
        auth = bearer(base)
        assert httpx.get(f"{base}/api/v1/campaigns", headers=auth).status_code == 200
        with every_connection_held(app):
            answers = asyncio.run(many(base, [("/api/v1/campaigns", auth)] * 64 + [("/healthz", {})] * 8))
            readiness = httpx.get(f"{base}/readyz", timeout=30)
        for answer in answers[:64]:
            assert_busy(answer)
        assert [a.status_code for a in answers[64:]] == [200] * 8
        assert readiness.status_code == 503 and readiness.json()["checks"]["database"]["ok"] is False
        # The held connections back: served again at once.
        assert httpx.get(f"{base}/api/v1/campaigns", headers=auth).status_code == 200
        assert httpx.get(f"{base}/readyz", timeout=30).json()["checks"]["database"]["ok"] is True


def test_many_more_requests_than_connections_are_all_served_without_waiting_out_the_pool(settings, clock, staff):
    # Each request takes its connection in one threadpool call (the actor) and goes on in another (the route):
    # let in freely, new requests would take every thread waiting for a connection while those holding one wait
    # for a thread, until the pool's timeout made them all 503. A minute of pool timeout: any 503 here is that.
    app = create_app(settings.model_copy(update={"jobs": False, "db_pool_size": 2, "db_pool_timeout": 60}), clock)
    with running(app) as base:
        auth = bearer(base)
        answers = asyncio.run(many(base, [("/api/v1/campaigns", auth), ("/api/v1/screens", auth)] * 24))
    assert [answer.status_code for answer in answers] == [200] * 48


def test_a_browser_waiting_on_a_busy_server_gets_a_page_in_vietnamese(settings, clock, staff):
    app = create_app(settings.model_copy(update={"jobs": False, "db_pool_size": 1, "db_pool_timeout": 0.2}), clock)
    with running(app) as base, every_connection_held(app):
        page = httpx.get(f"{base}/campaigns", cookies={"signage_session": "x"}, timeout=30)
    assert page.status_code == 503 and page.headers["retry-after"]
    assert page.headers["content-type"].startswith("text/html") and "Máy chủ đang bận" in page.text


def admission_of(app) -> AdmissionMiddleware:
    """The app's admission guard, found in its built middleware stack (built at the first request)."""
    layer = app.middleware_stack
    while not isinstance(layer, AdmissionMiddleware):
        layer = layer.app
    return layer


def test_requests_beyond_the_pending_limit_are_turned_away_at_once_and_health_still_answers(settings, clock, staff):
    app = create_app(settings.model_copy(update={"jobs": False, "db_pool_size": 1, "db_pool_timeout": 60,
                                                 "http_max_pending": 2}), clock)
    with running(app) as base:
        auth = bearer(base)
        admission = admission_of(app)
        waiting: list[httpx.Response] = []
        with every_connection_held(app):
            # Two requests wait (one for the held connection, one for the working place) and fill both places...
            threads = [threading.Thread(target=lambda: waiting.append(
                httpx.get(f"{base}/api/v1/campaigns", headers=auth, timeout=120))) for _ in range(2)]
            for thread in threads:
                thread.start()
            for _ in range(1200):
                if admission.pending == 2:
                    break
                threading.Event().wait(0.05)
            assert admission.pending == 2, "the two requests never came in"
            # ...so a third is refused without waiting.
            turned_away = httpx.get(f"{base}/api/v1/campaigns", headers=auth, timeout=120)
            health = httpx.get(f"{base}/healthz", timeout=30)
            readiness = httpx.get(f"{base}/readyz", timeout=30)
        for thread in threads:
            thread.join(timeout=120)
    assert_busy(turned_away)
    assert "requests" in turned_away.json()["detail"]
    assert health.status_code == 200
    assert readiness.status_code == 503 and readiness.headers["retry-after"]
    # The two that waited are served once the connection comes back.
    assert [answer.status_code for answer in waiting] == [200, 200]


def readiness_until(base: str, ready: bool) -> httpx.Response:
    """/readyz, asked again (a tick at a time, up to a minute) until it says `ready`; the last answer."""
    for _ in range(600):
        answer = httpx.get(f"{base}/readyz", timeout=30)
        if (answer.status_code == 200) == ready:
            return answer
        threading.Event().wait(0.1)
    return answer


def test_readiness_reports_a_stopped_broker_and_recovers_when_it_is_back(settings, clock, database, staff):
    wired = settings.model_copy(update={"jobs": False, "mqtt": True, "broker_port": free_port()})
    with BrokerSupervisor(wired, database) as broker, running(create_app(wired, clock)) as base:
        assert readiness_until(base, ready=True).json()["checks"]["broker"] == {
            "ok": True, "detail": "connected", "required": True}
        broker.stop()
        stopped = readiness_until(base, ready=False)
        assert stopped.status_code == 503 and stopped.headers["retry-after"]
        assert stopped.json()["checks"]["broker"]["ok"] is False
        assert f"127.0.0.1:{wired.broker_port}" in stopped.json()["checks"]["broker"]["detail"]
        assert stopped.json()["checks"]["database"]["ok"] is True
        assert httpx.get(f"{base}/healthz").status_code == 200  # the process itself is alive
        broker.start()
        assert readiness_until(base, ready=True).json()["checks"]["broker"]["ok"] is True


def test_readiness_reports_a_stopped_database_and_health_still_answers(settings, clock):
    server = PostgresServer()
    server.start()
    stopped = False
    try:
        own = settings.model_copy(update={"jobs": False, "mqtt": False, "database_url": server.create_database()})
        database = open_database(own)
        with transaction(database.sessions) as session:
            import_fleet(session, FLEET_FILE, own.timezone)
            import_campaigns(session, CAMPAIGN_FILE, MediaStore(own.media_dir), clock, own.timezone)
        database.dispose()
        with running(create_app(own, clock)) as base:
            ready = readiness_until(base, ready=True).json()
            assert ready["checks"]["database"]["ok"] is True
            # No planner in this process nor elsewhere: said, but a web node stays ready to serve staff.
            assert ready["checks"]["planning"]["ok"] is False and ready["checks"]["planning"]["required"] is False
            server.stop()
            stopped = True
            answer = readiness_until(base, ready=False)
            assert answer.status_code == 503 and answer.headers["retry-after"]
            assert answer.json()["checks"]["database"]["ok"] is False
            assert "password" not in answer.text
            assert httpx.get(f"{base}/healthz").status_code == 200
    finally:
        if not stopped:
            server.stop()


def chunks(total: int, size: int = 64 * 1024) -> Iterator[bytes]:
    sent = 0
    while sent < total:
        piece = min(size, total - sent)
        sent += piece
        yield b" " * piece


@pytest.fixture
def limited(settings, clock, staff) -> Iterator[TestClient]:
    app = create_app(settings.model_copy(update={"jobs": False, "max_body_bytes": 64 * 1024,
                                                 "max_upload_bytes": 256 * 1024}), clock)
    with TestClient(app, base_url="http://127.0.0.1") as client:
        yield client


@pytest.mark.security
@pytest.mark.parametrize("shape", ["declared", "chunked"])
@pytest.mark.parametrize("path, content_type", [
    ("/api/v1/auth/token", "application/json"),  # JSON, no sign-in needed
    ("/api/v1/auth/token", "application/x-www-form-urlencoded"),  # the same route's OAuth2 password form
    ("/login", "application/x-www-form-urlencoded"),  # a form
])
def test_a_body_over_the_limit_gets_413_before_it_is_parsed(limited, shape, path, content_type):
    size = 200 * 1024
    body = b" " * size if shape == "declared" else chunks(size)
    answer = limited.post(path, content=body, headers={"content-type": content_type})
    assert answer.status_code == 413, answer.text
    assert answer.headers["content-type"].startswith("application/problem+json")
    assert "65,536 bytes" in answer.json()["detail"]


@pytest.mark.security
@pytest.mark.parametrize("shape", ["declared", "chunked"])
def test_an_upload_over_its_limit_gets_413_and_leaves_nothing(limited, settings, shape):
    answer = limited.post("/api/v1/auth/token", json={"username": "phula-staff", "password": PASSWORD})
    auth = {"Authorization": f"Bearer {answer.json()['access_token']}"}
    size = 3 * MiB  # over the upload limit and its multipart slack
    body = b"x" * size if shape == "declared" else chunks(size)
    answer = limited.post("/api/v1/media", content=body, headers={
        **auth, "content-type": "multipart/form-data; boundary=b0undary"})
    assert answer.status_code == 413, answer.text
    media = settings.data_dir / "media"
    assert not media.exists() or not any(p.is_file() for p in media.rglob("*"))


def test_bodies_within_their_limits_are_served(limited):
    assert limited.post("/api/v1/auth/token", json={"username": "phula-staff", "password": PASSWORD}
                        ).status_code == 201
    assert limited.post("/api/v1/auth/token", data={"grant_type": "password", "username": "phula-staff",
                                                    "password": PASSWORD}).status_code == 201


@pytest.mark.security
def test_a_declared_300_mb_body_is_refused_before_a_byte_of_it_is_read(settings, clock, staff):
    app = create_app(settings.model_copy(update={"jobs": False}), clock)
    with running(app) as base, socket.create_connection(("127.0.0.1", int(base.rsplit(":", 1)[1])), 30) as sock:
        sock.sendall(b"POST /api/v1/auth/token HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 314572800\r\n\r\n{\"username\": ")
        sock.settimeout(30)
        head = sock.recv(65536)
    assert head.startswith(b"HTTP/1.1 413"), head[:200]
