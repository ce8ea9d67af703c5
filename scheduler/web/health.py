"""What operators and load balancers probe: `/healthz` (the process answers: it touches nothing that can block,
so it answers while every connection and thread is busy) and `/readyz` (the process can do its work: the database
answers through the web pool and the broker link is up where this process has one). `/readyz` also says whether
some server holds the planning lease, but a missing planner does not make this process unready: a load balancer
that took every web node out for it would lock staff out of the system they need to see and fix it. Both are
`async def` on purpose: they must not queue behind the threadpool they report on."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text

from scheduler.lease import lease_holder
from signage import __version__

READY_TIMEOUT_S = 3.0

router = APIRouter(tags=["ops"])


@dataclass(frozen=True)
class Check:
    ok: bool
    detail: str
    required: bool = True


def failure_text(exc: BaseException) -> str:
    """The driver's own first line (it names host and port, never the password), without SQLAlchemy's echo."""
    cause = getattr(exc, "orig", None) or exc
    first = (str(cause).strip().splitlines() or [""])[0]
    return f"{type(cause).__name__}: {first[:200]}"


def database_and_lease(request: Request) -> dict[str, Check]:
    state = request.app.state
    now = state.clock.now()
    try:
        with state.database.sessions() as session:
            session.execute(text("SELECT 1"))
            holder = lease_holder(session, now)
    except Exception as exc:  # noqa: BLE001 - whatever the driver raises is what the operator needs to see
        return {"database": Check(False, f"unreachable: {failure_text(exc)}"),
                "planning": Check(False, "unknown while the database is unreachable", required=False)}
    planning = getattr(state, "planning", None)
    if holder is None:
        lease = Check(False, "no server holds the planning lease: plans are not being kept current; start "
                             "`signage server` with SIGNAGE_JOBS=true on one machine", required=False)
    elif planning is not None and planning.lease.holder == holder:
        lease = Check(True, "this process plans")
    else:
        lease = Check(True, f"another server plans ({holder}); this process stands by")
    return {"database": Check(True, "answers"), "planning": lease}


def broker_link(request: Request) -> Check:
    bridge = getattr(request.app.state, "bridge", None)
    if bridge is None:
        return Check(True, "not used by this process (SIGNAGE_MQTT=false)")
    if bridge.connected.is_set():
        return Check(True, "connected")
    settings = request.app.state.settings
    return Check(False, f"not connected to the broker at {settings.broker_host}:{settings.broker_port}; plans and "
                        "commands wait, proof-of-play waits on the players")


@router.get("/healthz")
async def health() -> dict[str, str]:
    return {"status": "ok", "version": __version__}


@router.get("/readyz")
async def ready(request: Request) -> JSONResponse:
    checks: dict[str, Check] = {"broker": broker_link(request)}
    with anyio.move_on_after(READY_TIMEOUT_S) as waited:
        # A thread of its own, never queued behind the web threadpool it reports on; abandoned (it ends by the
        # pool's own timeout) when the database does not answer in time.
        checks |= await anyio.to_thread.run_sync(database_and_lease, request, limiter=anyio.CapacityLimiter(1),
                                                 abandon_on_cancel=True)
    if waited.cancelled_caught:
        checks |= {"database": Check(False, f"no answer within {READY_TIMEOUT_S:g} s: every connection is busy "
                                            "or the database hangs"),
                   "planning": Check(False, "unknown while the database does not answer", required=False)}
    ready_now = all(check.ok for check in checks.values() if check.required)
    body: dict[str, Any] = {"status": "ready" if ready_now else "not ready", "version": __version__,
                            "checks": {name: asdict(check) for name, check in checks.items()}}
    return JSONResponse(body, 200 if ready_now else 503, None if ready_now else {"Retry-After": "5"})
