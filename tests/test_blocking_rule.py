"""The rule for blocking work (docs/architecture.md, "Blocking work"): a route or dependency that touches the
database is a plain `def`, run on FastAPI's threadpool; an `async def` one never takes a session nor calls the
database, since one blocking call on the event loop stops every request, the health check with them.

Checked twice: on the assembled app (every route's dependency tree, as FastAPI resolves it) and on the source
(every `async def` of the server's packages), so that neither a new route nor a helper it awaits escapes."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from scheduler.app import create_app
from tests.conftest import REPO

SERVER_PACKAGES = ("campaigns", "media", "scheduler", "signage")
# Calls that reach the database (an ORM session, a connection, or opening either).
DATABASE_CALLS = {"execute", "scalar", "scalars", "scalar_one", "commit", "flush", "rollback", "refresh", "merge",
                  "add", "add_all", "delete", "get", "begin", "connect", "sessions", "transaction"}
DATABASE_NAMES = {"session", "db", "connection", "database", "engine", "sessions"}


def session_providers() -> set:
    from scheduler.web.deps import get_db

    return {get_db}


def coroutine_dependants_taking_a_session(dependant: Dependant, providers: set, path: str) -> list[str]:
    found = []
    for sub in dependant.dependencies:
        if sub.call in providers and inspect.iscoroutinefunction(dependant.call):
            found.append(f"{path}: async {dependant.call.__qualname__} takes a database session")
        found += coroutine_dependants_taking_a_session(sub, providers, path)
    return found


def test_no_async_route_or_dependency_of_the_app_takes_a_database_session(settings):
    app = create_app(settings)
    providers = session_providers()
    offenders = []
    for route in app.routes:
        if isinstance(route, APIRoute):
            offenders += coroutine_dependants_taking_a_session(route.dependant, providers, route.path)
    assert offenders == []


def blocking_calls_in_async_functions(source: str, filename: str) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(source, filename=filename)):
        if not isinstance(node, ast.AsyncFunctionDef):
            continue
        arguments = node.args.posonlyargs + node.args.args + node.args.kwonlyargs
        for argument in arguments:
            annotation = ast.unparse(argument.annotation) if argument.annotation else ""
            if "Session" in annotation or argument.arg in {"session", "db"}:
                found.append(f"{filename}:{node.lineno}: async {node.name} takes {argument.arg}: {annotation}")
        for call in ast.walk(node):
            if not isinstance(call, ast.Call):
                continue
            function = call.func
            if isinstance(function, ast.Name) and function.id in {"transaction", "open_database"}:
                found.append(f"{filename}:{call.lineno}: async {node.name} calls {function.id}()")
            elif (isinstance(function, ast.Attribute) and function.attr in DATABASE_CALLS
                  and receiver_name(function.value) in DATABASE_NAMES):
                found.append(f"{filename}:{call.lineno}: async {node.name} calls {ast.unparse(function)}()")
    return found


def receiver_name(node: ast.expr) -> str | None:
    """`session` for `session.execute`, `database` for `request.app.state.database.sessions`."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Call):
        return receiver_name(node.func)
    return None


def test_no_async_function_of_the_server_calls_the_database():
    offenders = []
    for package in SERVER_PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            relative = str(path.relative_to(REPO))
            offenders += blocking_calls_in_async_functions(path.read_text(encoding="utf-8"), relative)
    assert offenders == []


def test_the_rule_sees_a_blocking_async_route(tmp_path: Path):
    sample = '''
async def route(request, session: SessionDep):
    return session.scalar(select(User))

async def helper(request):
    with request.app.state.database.sessions() as s:
        return s

async def fine(request):
    return await run_in_threadpool(work, request)
'''
    found = blocking_calls_in_async_functions(sample, "sample.py")
    assert any("async route takes session" in line for line in found)
    assert any("session.scalar()" in line for line in found)
    assert any("request.app.state.database.sessions()" in line for line in found)
    assert not any("fine" in line for line in found)
