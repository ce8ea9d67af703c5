"""The scheduler service's web app: assembled here, with the database opened and migrated on start."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio.to_thread
from fastapi import FastAPI
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from scheduler import web
from scheduler.alert_dispatch import AlertDispatcher
from scheduler.database import BACKGROUND_POOL, Database, open_database, web_pool
from scheduler.jobs import PlanningService, start_jobs
from scheduler.mqtt_bridge import MqttBridge
from scheduler.notices import NoticeJob
from scheduler.outage_notices import outage_noter
from scheduler.retention import RetentionJob
from scheduler.rhythm_notices import rhythm_noter
from scheduler.round_notices import round_noter
from scheduler.screen_action_dispatch import ScreenActionSender
from scheduler.web import health
from scheduler.web.formats import install_formats
from scheduler.web.guards import install_guards, size_threadpool
from scheduler.web.i18n import install_translations
from scheduler.web.problems import install_problem_handlers
from scheduler.web.routes import (
    accounts,
    alerts,
    campaigns,
    fleet,
    fleet_changes,
    media_files,
    media_library,
    messages,
    mobile_rounds,
    notices,
    pairing,
    players,
    posters,
    reports,
    rounds,
    screen_actions,
)
from signage import __version__
from signage.clock import Clock, SystemClock
from signage.config import Settings
from signage.signing import Signer

WEB_DIR = Path(web.__file__).parent
TEMPLATE_DIRS = [WEB_DIR / "templates"]
STATIC_DIR = WEB_DIR / "static"
# The route modules, one per resource; each has an `api` and a `pages` router.
ROUTES = (accounts, fleet, fleet_changes, screen_actions, pairing, campaigns, messages, alerts, media_library,
          media_files, players, reports, notices, mobile_rounds, posters, rounds)


def start_bridge(settings: Settings, database: Database, clock: Clock) -> MqttBridge:
    from scheduler.broker import SERVER_ACCOUNT, server_broker_secret

    bridge = MqttBridge(settings, database, Signer.load_or_create(settings.data_dir), clock,
                        username=SERVER_ACCOUNT, password=server_broker_secret(settings))
    bridge.start()
    return bridge


def start_services(app: FastAPI, settings: Settings) -> None:
    """The databases (web pool and background pool), the broker link and the jobs; run on a thread at start."""
    state = app.state
    state.database = open_database(settings, web_pool(settings))
    state.background_database = open_database(settings, BACKGROUND_POOL, migrate_schema=False)
    bridge = start_bridge(settings, state.background_database, state.clock) if settings.mqtt else None
    state.bridge = bridge
    state.alerts = AlertDispatcher(state.background_database, bridge, state.clock) if bridge else None
    state.screen_actions = ScreenActionSender(state.background_database, bridge, state.clock) if bridge else None
    state.jobs = None
    if settings.jobs:
        publish = (lambda planned: bridge.publish_plans(planned.changed)) if bridge else None
        state.planning = PlanningService(state.background_database, state.clock, settings.timezone,
                                         on_plans_changed=publish)
        notices = NoticeJob(state.background_database, state.clock, settings, state.planning.holds_lease,
                            noters={"outages": outage_noter(settings), "rhythm": rhythm_noter(settings),
                                    "rounds": round_noter(settings)})
        retention = RetentionJob(state.background_database, state.clock, settings, state.planning.holds_lease)
        state.jobs = start_jobs(state.planning, settings.timezone, state.alerts, state.screen_actions, notices,
                                retention)


def stop_services(app: FastAPI) -> None:
    state = app.state
    if state.jobs is not None:
        state.jobs.shutdown(wait=True)
        state.planning.stop()
    if state.bridge is not None:
        state.bridge.stop()
    state.background_database.dispose()
    state.database.dispose()


def create_app(settings: Settings, clock: Clock | None = None) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        size_threadpool(settings)
        await anyio.to_thread.run_sync(start_services, app, settings)
        try:
            yield
        finally:
            await anyio.to_thread.run_sync(stop_services, app)

    app = FastAPI(title="Hà Nội signage scheduler", version=__version__, lifespan=lifespan)
    app.state.settings = settings
    app.state.clock = clock or SystemClock()
    app.state.templates = Jinja2Templates(directory=TEMPLATE_DIRS)
    install_formats(install_translations(app.state.templates.env))
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    install_problem_handlers(app)
    install_guards(app, settings)
    app.include_router(health.router)
    for module in ROUTES:
        app.include_router(module.pages)
        app.include_router(module.api)

    @app.get("/", include_in_schema=False)
    def home() -> RedirectResponse:
        return RedirectResponse("/campaigns")

    return app
