"""RFC 9457 problem documents: the schema (for OpenAPI) and the response builder."""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from pydantic import BaseModel, Field
from starlette.responses import JSONResponse
from starlette.types import Scope

PROBLEM_MEDIA_TYPE = "application/problem+json"
DEFAULT_TYPE_BASE = "https://orderflow.dev/problems/"


class FieldError(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class Problem(BaseModel):
    """An error, as `application/problem+json` (RFC 9457)."""

    type: str = Field(examples=["https://orderflow.dev/problems/not-found"])
    title: str
    status: int
    detail: str
    instance: str
    request_id: str
    errors: list[FieldError] | None = None

    model_config = {"extra": "allow"}


# RFC 9110 names where Python 3.11's HTTPStatus still has the RFC 7231 ones.
_PHRASES = {413: "Content Too Large", 422: "Unprocessable Content"}


def problem_body(
    scope: Scope,
    status: int,
    *,
    slug: str | None = None,
    title: str | None = None,
    detail: str | None = None,
    type_base: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    phrase = _PHRASES.get(status) or HTTPStatus(status).phrase
    slug = slug or phrase.lower().replace(" ", "-").replace("'", "")
    base = type_base or scope.get("state", {}).get("problem_type_base") or DEFAULT_TYPE_BASE
    body: dict[str, Any] = {
        "type": f"{base}{slug}",
        "title": title or phrase,
        "status": status,
        "detail": detail or phrase,
        "instance": scope.get("path", ""),
        "request_id": scope.get("state", {}).get("request_id", ""),
    }
    body.update({key: value for key, value in extra.items() if value is not None})
    return body


def problem_response(
    scope: Scope, status: int, *, headers: dict[str, str] | None = None, **fields: Any
) -> JSONResponse:
    return JSONResponse(
        problem_body(scope, status, **fields),
        status_code=status,
        headers=headers,
        media_type=PROBLEM_MEDIA_TYPE,
    )
