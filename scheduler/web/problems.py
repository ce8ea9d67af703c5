"""RFC 9457 problem+json: how every API error is answered, with what is wrong and how to fix it.

The one mapping of the domain's errors (signage/errors.py) to HTTP: `NotFound` 404, `NotAllowed` 403, `Conflict`
409, `Invalid` 422, answered as problem+json wherever they are not caught (a page that shows its form again with
the message catches them itself, and takes its status from `status_of`). `Problem` is for what only HTTP knows:
401 with its WWW-Authenticate, 413, 415, 416, a CSRF refusal.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException

from signage.errors import Conflict, Invalid, NotAllowed, NotFound, Refused

API_PREFIX = "/api/"
# The domain's four errors and their status; a subclass takes its parent's.
STATUS_OF_ERROR: tuple[tuple[type[Refused], int], ...] = ((NotFound, 404), (NotAllowed, 403), (Conflict, 409),
                                                          (Invalid, 422))


class Problem(HTTPException):
    """An HTTP error answered as problem+json; `detail` says what is wrong and how to fix it."""

    def __init__(self, status: int, detail: str, headers: dict[str, str] | None = None, **extra: Any) -> None:
        super().__init__(status, detail, headers)
        self.extra = extra


def problem_response(status: int, detail: str, headers: dict[str, str] | None = None, **extra: Any) -> JSONResponse:
    body = {"type": "about:blank", "title": HTTPStatus(status).phrase, "status": status, "detail": detail, **extra}
    return JSONResponse(body, status_code=status, headers=headers, media_type="application/problem+json")


def status_of(exc: Refused) -> int:
    """The HTTP status of a domain error."""
    return next((status for kind, status in STATUS_OF_ERROR if isinstance(exc, kind)), 422)


def refusal_response(exc: Refused) -> JSONResponse:
    """A domain error as problem+json: its message (what is wrong; how to fix it) and its details."""
    return problem_response(status_of(exc), str(exc), **exc.details)


def page_not_found(exc: NotFound) -> HTTPException:
    """A page's answer to what is not within the user's organisation: its 404 page (not problem+json)."""
    return HTTPException(404, f"{exc.problem}; check the id")


class ProblemRoute(APIRoute):
    """Answers the Problems and domain errors raised by a route or its dependencies as problem+json, for routes
    outside /api/ (the player-facing ones), so that they need no handler registered on the app."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def answer_problems(request: Request) -> Response:
            try:
                return await handler(request)
            except Problem as exc:
                return problem_response(exc.status_code, str(exc.detail), exc.headers, **exc.extra)
            except Refused as exc:
                return refusal_response(exc)

        return answer_problems


def describe_validation_errors(errors: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Pydantic's errors as `{"field": "body.targets.0.ref", "problem": "..."}`, without echoing input."""
    return [{"field": ".".join(str(part) for part in error.get("loc", ())), "problem": error.get("msg", "invalid")}
            for error in errors]


def install_problem_handlers(app: FastAPI) -> None:
    """API errors (under /api/) as problem+json, the domain's errors with them; the web pages keep their own
    error pages."""

    async def refused(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, Refused)
        return refusal_response(exc)

    for kind, _ in STATUS_OF_ERROR:
        app.add_exception_handler(kind, refused)

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
