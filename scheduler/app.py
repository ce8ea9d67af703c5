"""The scheduler service's web app: assembled here, with the database opened and migrated on start."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from scheduler import web
from scheduler.alert_delivery import AlertDispatcher
from scheduler.database import Database, open_database
from scheduler.jobs import PlanningService, start_jobs
from scheduler.mqtt_bridge import MqttBridge
from scheduler.web.problems import install_problem_handlers
from scheduler.web.routes import accounts, alerts, campaigns, fleet, media_files, media_library, players, reports
from signage import __version__
from signage.clock import Clock, SystemClock
from signage.config import Settings
from signage.signing import Signer

WEB_DIR = Path(web.__file__).parent
TEMPLATE_DIRS = [WEB_DIR / "templates"]
STATIC_DIR = WEB_DIR / "static"
# The route modules, one per resource; each has an `api` and a `pages` router.
ROUTES = (accounts, fleet, campaigns, alerts, media_library, media_files, players, reports)


def start_bridge(settings: Settings, database: Database, clock: Clock) -> MqttBridge:
    from scheduler.broker import SERVER_ACCOUNT, server_broker_secret

    bridge = MqttBridge(settings, database, Signer.load_or_create(settings.data_dir), clock,
                        username=SERVER_ACCOUNT, password=server_broker_secret(settings))
    bridge.start()
    return bridge


def create_app(settings: Settings, clock: Clock | None = None) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.database = open_database(settings)
        bridge = start_bridge(settings, app.state.database, app.state.clock) if settings.mqtt else None
        app.state.bridge = bridge
        app.state.alerts = AlertDispatcher(app.state.database, bridge, app.state.clock) if bridge else None
        jobs = None
        if settings.jobs:
            publish = (lambda planned: bridge.publish_plans(planned.changed)) if bridge else None
            app.state.planning = PlanningService(app.state.database, app.state.clock, settings.timezone,
                                                 on_plans_changed=publish)
            jobs = start_jobs(app.state.planning, settings.timezone, app.state.alerts)
        try:
            yield
        finally:
            if jobs is not None:
                jobs.shutdown(wait=True)
                app.state.planning.stop()
            if bridge is not None:
                bridge.stop()
            app.state.database.dispose()

    app = FastAPI(title="Hà Nội signage scheduler", version=__version__, lifespan=lifespan)
    app.state.settings = settings
    app.state.clock = clock or SystemClock()
    app.state.templates = Jinja2Templates(directory=TEMPLATE_DIRS)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    install_problem_handlers(app)
    for module in ROUTES:
        app.include_router(module.pages)
        app.include_router(module.api)

    @app.get("/", include_in_schema=False)
    def home() -> RedirectResponse:
        return RedirectResponse("/campaigns")

    @app.get("/healthz", tags=["ops"])
    def health() -> dict[str, str]:
        return {"status": "ok", "version": __version__}

    return app
