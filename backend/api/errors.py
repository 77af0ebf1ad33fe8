"""The one error map: domain errors, framework errors and crashes become RFC 9457 problems."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.routing import Match
from starlette.types import Scope

from backend.api.problems import problem_response
from backend.core.logging import get_logger
from backend.domain.errors import (
    DependencyUnavailable,
    DomainError,
    ErrorKind,
    TransactionAborted,
)

log = get_logger(__name__)

STATUS_BY_KIND: dict[ErrorKind, int] = {
    ErrorKind.BAD_REQUEST: 400,
    ErrorKind.UNAUTHENTICATED: 401,
    ErrorKind.FORBIDDEN: 403,
    ErrorKind.NOT_FOUND: 404,
    ErrorKind.CONFLICT: 409,
    ErrorKind.PRECONDITION_FAILED: 412,
    ErrorKind.INVALID: 422,
    ErrorKind.RATE_LIMITED: 429,
    ErrorKind.UNAVAILABLE: 503,
}
SERVICE_UNAVAILABLE_RETRY_AFTER = "5"


def status_for(error: DomainError) -> int:
    return STATUS_BY_KIND[error.kind]


def _headers_for(error: DomainError) -> dict[str, str]:
    if error.kind is ErrorKind.UNAUTHENTICATED:
        return {"WWW-Authenticate": "Bearer"}
    if error.retry_after is not None:  # rate limits, lockouts, an aborted transaction
        return {"Retry-After": str(error.retry_after)}
    if error.kind is ErrorKind.UNAVAILABLE:
        return {"Retry-After": SERVICE_UNAVAILABLE_RETRY_AFTER}
    return {}


async def handle_domain_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, DomainError)
    return domain_error_response(request.scope, error)


def domain_error_response(scope: Scope, error: DomainError) -> Response:
    """The problem response of a domain error (also for routes answered outside FastAPI)."""
    if isinstance(error, DependencyUnavailable):
        log.warning(
            "dependency_unavailable", dependency=error.dependency, cause=repr(error.__cause__)
        )
    elif isinstance(error, TransactionAborted):
        log.warning("transaction_aborted", cause=repr(error.__cause__))
    return problem_response(
        scope,
        status_for(error),
        slug=error.slug,
        title=error.title,
        detail=error.detail,
        headers=_headers_for(error),
        **error.extra,
    )


def _field_errors(raw: list[dict[str, Any]]) -> list[dict[str, Any]]:
    # Only loc/msg/type: never echo the input back (it may hold a password).
    return [
        {
            "loc": list(err.get("loc", ())),
            "msg": str(err.get("msg", "")),
            "type": str(err.get("type", "")),
        }
        for err in raw
    ]


async def handle_validation_error(request: Request, error: Exception) -> Response:
    assert isinstance(error, RequestValidationError)
    raw = list(error.errors())
    if any(err.get("type") == "json_invalid" for err in raw):
        return problem_response(
            request.scope,
            400,
            slug="malformed-request",
            title="Malformed request",
            detail="The request body is not valid JSON.",
        )
    return problem_response(
        request.scope,
        422,
        slug="validation-error",
        title="Invalid input",
        detail="The request did not pass validation; see `errors`.",
        errors=_field_errors(raw),
    )


async def handle_http_exception(request: Request, error: Exception) -> Response:
    assert isinstance(error, StarletteHTTPException)
    headers = dict(error.headers or {})
    detail = error.detail if isinstance(error.detail, str) else None
    if error.status_code == 404 and detail == "Not Found":
        detail = f"No resource at {request.url.path}."
    if error.status_code == 405:
        detail = f"{request.method} is not allowed on {request.url.path}."
        headers["Allow"] = ", ".join(_allowed_methods(request))
    return problem_response(request.scope, error.status_code, detail=detail, headers=headers)


HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def _allowed_methods(request: Request) -> list[str]:
    """Every method some route serves at this path. Starlette's 405 names the methods of the
    first route whose path matched, but a path is often served by one route per method; the
    router itself is asked, method by method, so included routers are searched as it does."""
    routes = request.app.router.routes
    return [
        method
        for method in HTTP_METHODS
        if any(
            route.matches({**request.scope, "method": method})[0] is Match.FULL for route in routes
        )
    ]


def internal_error_response(scope: Scope) -> Response:
    """The answer to a crash: a 500 problem that names no internals (the log has them)."""
    return problem_response(
        scope,
        500,
        slug="internal-error",
        detail="An unexpected error occurred; quote the request id when reporting it.",
    )


async def handle_unexpected_error(request: Request, error: Exception) -> Response:
    """FastAPI's outermost layer answers a crash with this, then re-raises the error to the
    HTTP edge, which logs it (docs/adr/0019)."""
    return internal_error_response(request.scope)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(Exception, handle_unexpected_error)
    app.add_exception_handler(DomainError, handle_domain_error)
    app.add_exception_handler(RequestValidationError, handle_validation_error)
    app.add_exception_handler(StarletteHTTPException, handle_http_exception)
