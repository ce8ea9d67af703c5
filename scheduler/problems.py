"""RFC 9457 problem+json: how every API error is answered, with what is wrong and how to fix it."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException

API_PREFIX = "/api/"


class Problem(HTTPException):
    """An HTTP error answered as problem+json; `detail` says what is wrong and how to fix it."""

    def __init__(self, status: int, detail: str, headers: dict[str, str] | None = None, **extra: Any) -> None:
        super().__init__(status, detail, headers)
        self.extra = extra


def problem_response(status: int, detail: str, headers: dict[str, str] | None = None, **extra: Any) -> JSONResponse:
    body = {"type": "about:blank", "title": HTTPStatus(status).phrase, "status": status, "detail": detail, **extra}
    return JSONResponse(body, status_code=status, headers=headers, media_type="application/problem+json")


class ProblemRoute(APIRoute):
    """Answers the Problems raised by a route or its dependencies as problem+json, for routes outside /api/
    (the player-facing ones), so that they need no handler registered on the app."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def answer_problems(request: Request) -> Response:
            try:
                return await handler(request)
            except Problem as exc:
                return problem_response(exc.status_code, str(exc.detail), exc.headers, **exc.extra)

        return answer_problems


def describe_validation_errors(errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Pydantic's errors as `{"field": "body.targets.0.ref", "problem": "..."}`, without echoing input."""
    return [{"field": ".".join(str(part) for part in error.get("loc", ())), "problem": error.get("msg", "invalid")}
            for error in errors]


def install_problem_handlers(app: FastAPI) -> None:
    """API errors (under /api/) as problem+json; the web pages keep their own error pages."""

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request: Request, exc: RequestValidationError) -> Response:
        errors = describe_validation_errors(list(exc.errors()))
        summary = "; ".join(f"{e['field']}: {e['problem']}" for e in errors[:5])
        return problem_response(422, f"the request is not valid: {summary}. Correct these fields and send it again",
                                errors=errors)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        extra = getattr(exc, "extra", {})
        if request.url.path.startswith(API_PREFIX) or isinstance(exc, Problem):
            return problem_response(exc.status_code, str(exc.detail), getattr(exc, "headers", None), **extra)
        from fastapi.exception_handlers import http_exception_handler

        return await http_exception_handler(request, exc)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        import logging

        logging.getLogger("scheduler").exception("unhandled error on %s %s", request.method, request.url.path)
        return problem_response(500, "the server failed on this request; the error is in the server's log. "
                                     "Try again; if it persists, tell the administrator the time it happened")
