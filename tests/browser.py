"""Browser tests: the real app served by uvicorn on 127.0.0.1, and Debian's Chromium driven by Playwright.

Registered in tests/conftest.py (`pytest_plugins`), so any test may ask for `live_server` and `browser_page`:

    def test_staff_sign_in(live_server, browser_page):
        sign_in_as(browser_page, live_server, "phula-staff")
        shot(browser_page, "signed in")   # tests/artifacts/<test>/01-signed-in.png

`live_server` runs without the planning jobs; a test that needs them (plans made after a change) asks with
`@WITH_JOBS`. The browser is the `chromium` of Debian's package (scripts/setup.sh installs it), never one that
Playwright downloads.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from signage.clock import VirtualClock
from signage.config import Settings
from tests.servers import serve_in_thread

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
# Generous for a 2-core CI machine shared with a PostgreSQL server, short enough that a missing element fails
# the test in seconds rather than minutes.
TIMEOUT_MS = 15_000

WITH_JOBS = pytest.mark.parametrize("live_server", [{"jobs": True}], indirect=True, ids=["jobs"])
# A phone held upright (an iPhone 12's CSS pixels), for pages staff use at the roadside.
PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True, "device_scale_factor": 2}


@dataclass
class LiveServer:
    base_url: str
    app: Any  # the FastAPI app, for its state (database, clock, planning service)
    clock: VirtualClock

    def url(self, path: str = "/") -> str:
        return self.base_url + path


@pytest.fixture
def live_server(request: pytest.FixtureRequest, settings: Settings, clock: VirtualClock,
                staff: dict[str, int]) -> Iterator[LiveServer]:
    """The server's app on the test's database (fleet and staff loaded) at http://127.0.0.1:<free port>, with no
    broker; the planning jobs only when the test asks (`@WITH_JOBS`)."""
    from scheduler.app import create_app

    options = getattr(request, "param", None) or {}
    app = create_app(settings.model_copy(update={"jobs": bool(options.get("jobs", False)), "mqtt": False}), clock)
    server, thread, port = serve_in_thread(app)
    try:
        yield LiveServer(f"http://127.0.0.1:{port}", app, clock)
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def chromium_path() -> str:
    path = shutil.which("chromium")
    if path is None:
        raise RuntimeError("Chromium is not installed, and the browser tests need it: run `make test` "
                           "(scripts/setup.sh installs Debian's chromium package)")
    return path


def chromium_args() -> list[str]:
    # Chromium's sandbox refuses to start as root (CI containers); /dev/shm is tiny in many containers.
    args = ["--disable-dev-shm-usage", "--disable-gpu"]
    if os.geteuid() == 0:
        args.append("--no-sandbox")
    return args


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    """A headless Chromium (no display needed) for the module's tests; each test gets its own context."""
    from playwright.sync_api import sync_playwright

    executable = chromium_path()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, headless=True, args=chromium_args())
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def browser_page(chromium, request: pytest.FixtureRequest) -> Iterator[Any]:
    """A page in a fresh browser context (no cookies, no storage) for this test only. When the test fails, the
    page as it was is kept as the test's last screenshot. A test may ask for other context options, e.g. a phone's:
    `@pytest.mark.parametrize("browser_page", [PHONE], indirect=True)`."""
    options = {"viewport": {"width": 1280, "height": 800}, "locale": "vi-VN", **(getattr(request, "param", None) or {})}
    context = chromium.new_context(**options)
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    try:
        yield page
        report = getattr(request.node, "rep_call", None)
        if report is not None and report.failed and not page.is_closed():
            shot(page, "failure")
    finally:
        context.close()


def sign_in_as(page, server: LiveServer, username: str, password: str | None = None) -> None:
    """Signs in through the login form, as a person would (with the staff fixture's password unless given)."""
    from tests.conftest import PASSWORD

    page.goto(server.url("/login"))
    page.locator("input[name=username]").fill(username)
    page.locator("input[name=password]").fill(PASSWORD if password is None else password)
    page.locator("form[action='/login'] button[type=submit]").click()


_shot_folders_started: set[Path] = set()


def artifact_folder() -> Path:
    """tests/artifacts/<the current test's name, with its parameters>/"""
    current = os.environ.get("PYTEST_CURRENT_TEST", "outside-a-test")
    name = current.rsplit(" (", 1)[0].split("::")[-1]
    return ARTIFACTS / (re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-") or "test")


def shot(page, name: str) -> Path:
    """A full-page screenshot as tests/artifacts/<test>/NN-<name>.png, numbered in the order taken. The folder
    is emptied at the test's first shot, so it shows only the latest run."""
    folder = artifact_folder()
    if folder not in _shot_folders_started:
        shutil.rmtree(folder, ignore_errors=True)
        _shot_folders_started.add(folder)
    folder.mkdir(parents=True, exist_ok=True)
    number = len(list(folder.glob("*.png"))) + 1
    path = folder / f"{number:02d}-{re.sub(r'[^A-Za-z0-9_.-]+', '-', name).strip('-')}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    # Lets `browser_page` see whether the test itself failed when it is torn down.
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


__all__ = ["PHONE", "WITH_JOBS", "LiveServer", "browser_page", "chromium", "live_server", "shot", "sign_in_as"]
