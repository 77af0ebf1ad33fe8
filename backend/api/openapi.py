"""Make the OpenAPI document say what the API does: errors are `application/problem+json`."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from backend.api.problems import PROBLEM_MEDIA_TYPE, Problem

_DESCRIPTIONS = {
    400: "Malformed request",
    401: "Not authenticated (`WWW-Authenticate: Bearer`)",
    403: "Authenticated but not allowed",
    404: "Absent, or not yours",
    409: "Conflicts with the current state",
    412: "Stale `If-Match`",
    413: "Body too large",
    422: "Invalid input (see `errors`)",
    429: "Rate limited or locked out (`Retry-After`)",
    503: "A dependency is unavailable",
}
_PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` entries for a route: each status documented as a Problem."""
    return {
        status: {"model": Problem, "description": _DESCRIPTIONS.get(status, "Error")}
        for status in statuses
    }


def _move_errors_to_problem_media_type(schema: dict[str, Any]) -> None:
    for path_item in schema.get("paths", {}).values():
        for operation in path_item.values():
            if not isinstance(operation, dict):
                continue
            responses = operation.setdefault("responses", {})
            # Every operation can be refused for a rate limit or an outage; one with a body also
            # for a body that is not JSON (400), too large (413) or invalid (422).
            for status in ("400", "413", "422") if "requestBody" in operation else ():
                responses.setdefault(status, {"description": _DESCRIPTIONS[422]})
            for status in ("429", "503"):
                responses.setdefault(status, {"description": _DESCRIPTIONS[int(status)]})
            for code, response in responses.items():
                if not code.isdigit() or int(code) < 400:
                    continue
                documented = response.get("content", {}).get("application/json", {}).get("schema")
                if documented and documented != _PROBLEM_REF:
                    continue  # a route-specific error body (e.g. readiness)
                response["content"] = {PROBLEM_MEDIA_TYPE: {"schema": _PROBLEM_REF}}


def install_openapi(app: FastAPI) -> None:
    def custom_openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(
            title=app.title,
            version=app.version,
            description=app.description,
            routes=app.routes,
            tags=app.openapi_tags,
        )
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components.setdefault(
            "Problem", Problem.model_json_schema(ref_template="#/components/schemas/{model}")
        )
        for name, sub in (
            Problem.model_json_schema(ref_template="#/components/schemas/{model}")
            .get("$defs", {})
            .items()
        ):
            components.setdefault(name, sub)
        components["Problem"].pop("$defs", None)
        components.pop("HTTPValidationError", None)
        components.pop("ValidationError", None)
        _move_errors_to_problem_media_type(schema)
        app.openapi_schema = schema
        return schema

    app.openapi = custom_openapi  # type: ignore[method-assign]
