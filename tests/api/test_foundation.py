"""The cross-cutting behaviour every route inherits: problems, request ids, headers, probes."""

from __future__ import annotations

import gc
from pathlib import Path

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import APIRouter
from pydantic import BaseModel, Field

from backend.api.deps import ContainerDep
from backend.core.config import Settings
from backend.domain.errors import TransactionAborted
from tests.support import make_settings

PROBLEM = "application/problem+json"


def assert_problem(response: httpx.Response, status: int, slug: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body = response.json()
    assert body["status"] == status
    assert body["type"].endswith(f"/{slug}")
    assert body["title"] and body["detail"]
    assert body["instance"] == response.request.url.path
    assert body["request_id"] == response.headers["x-request-id"]
    return body


async def test_health_is_ok(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readiness_reports_each_check(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/readiness")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "ready"
    assert body["checks"]["database"]["status"] == "ok"
    assert body["checks"]["database"]["latency_ms"] >= 0
    assert body["checks"]["redis"] == {"status": "skipped"}
    assert body["checks"]["broker"]["status"] == "ok"


async def test_unknown_route_is_a_404_problem(client: httpx.AsyncClient) -> None:
    body = assert_problem(await client.get("/api/v1/nothing-here"), 404, "not-found")
    assert "/api/v1/nothing-here" in body["detail"]


async def test_wrong_method_is_a_405_problem_with_allow(client: httpx.AsyncClient) -> None:
    response = await client.delete("/api/v1/health")
    assert_problem(response, 405, "method-not-allowed")
    assert "GET" in response.headers["allow"]


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("PUT", "/api/v1/products", {"GET", "POST"}),
        (
            "PUT",
            "/api/v1/products/00000000-0000-0000-0000-000000000000",
            {"GET", "PATCH", "DELETE"},
        ),
        ("DELETE", "/api/v1/users/me", {"GET", "PATCH"}),
    ],
)
async def test_a_405_allows_every_method_the_path_serves(
    client: httpx.AsyncClient, method: str, path: str, allowed: set[str]
) -> None:
    """A path served by one route per method: Allow names them all, not the first route's."""
    response = await client.request(method, path)
    body = assert_problem(response, 405, "method-not-allowed")
    assert set(response.headers["allow"].split(", ")) == allowed
    assert body["detail"] == f"{method} is not allowed on {path}."


async def test_request_id_is_kept_when_valid_and_replaced_when_not(
    client: httpx.AsyncClient,
) -> None:
    kept = await client.get("/api/v1/health", headers={"X-Request-ID": "abc-123.X_y"})
    assert kept.headers["x-request-id"] == "abc-123.X_y"
    replaced = await client.get("/api/v1/health", headers={"X-Request-ID": "bad id!" * 20})
    assert replaced.headers["x-request-id"] != "bad id!" * 20
    assert len(replaced.headers["x-request-id"]) == 32


async def test_security_headers_on_every_response(client: httpx.AsyncClient) -> None:
    for response in (await client.get("/api/v1/health"), await client.get("/nope")):
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["referrer-policy"] == "no-referrer"
        assert "default-src 'none'" in response.headers["content-security-policy"]
        assert response.headers["cache-control"] == "no-store"


async def test_docs_and_openapi_are_served(client: httpx.AsyncClient) -> None:
    assert (await client.get("/docs")).status_code == 200
    assert (await client.get("/redoc")).status_code == 200
    schema = (await client.get("/openapi.json")).json()
    assert "/api/v1/health" in schema["paths"]
    assert "Problem" in schema["components"]["schemas"]
    assert "HTTPValidationError" not in schema["components"]["schemas"]


async def test_every_operation_with_a_body_documents_the_body_errors(
    client: httpx.AsyncClient,
) -> None:
    """Not JSON (400), too large (413), invalid (422): any body can get these, so every
    operation that takes one documents them as problems (the OpenAPI fuzzer checks it)."""
    schema = (await client.get("/openapi.json")).json()
    with_body = [
        op for item in schema["paths"].values() for op in item.values() if "requestBody" in op
    ]
    assert with_body
    for operation in with_body:
        for status in ("400", "413", "422"):
            content = operation["responses"][status]["content"]
            assert content == {PROBLEM: {"schema": {"$ref": "#/components/schemas/Problem"}}}


async def test_metrics_are_exposed(client: httpx.AsyncClient) -> None:
    await client.get("/api/v1/health")
    text = (await client.get("/metrics")).text
    assert 'http_requests_total{handler="/api/v1/health"' in text


# --------------------------------------------------------------------------- error machinery
class Echo(BaseModel):
    name: str = Field(min_length=1)
    quantity: int = Field(ge=1)


def probe_router() -> APIRouter:
    router = APIRouter()

    @router.post("/_test/echo")
    async def echo(body: Echo) -> Echo:
        return body

    @router.get("/_test/crash")
    async def crash() -> None:
        raise RuntimeError("secret internals")

    @router.get("/_test/aborted")
    async def aborted() -> None:  # what the unit of work raises for a deadlock victim
        raise TransactionAborted("The database aborted this one; send it again.")

    @router.get("/_test/data")
    async def data(container: ContainerDep) -> dict[str, int]:
        async with container.uow() as uow:
            count, _ = await uow.outbox.backlog(
                __import__("datetime").datetime.now(__import__("datetime").UTC)
            )
        return {"backlog": count}

    return router


@pytest.fixture
async def probed(settings, client_for):  # type: ignore[no-untyped-def]
    from backend.api import app as app_module

    original = app_module.create_app

    def create_with_probes(s):  # type: ignore[no-untyped-def]
        app = original(s)
        app.include_router(probe_router())
        return app

    app_module.create_app = create_with_probes
    try:
        async with client_for(settings) as c:
            yield c
    finally:
        app_module.create_app = original


async def test_invalid_body_is_a_422_problem_with_errors(probed: httpx.AsyncClient) -> None:
    body = assert_problem(
        await probed.post("/_test/echo", json={"name": "", "quantity": 0}), 422, "validation-error"
    )
    locs = {tuple(err["loc"]) for err in body["errors"]}
    assert locs == {("body", "name"), ("body", "quantity")}
    assert all(set(err) == {"loc", "msg", "type"} for err in body["errors"])


async def test_a_transaction_the_database_aborted_is_a_retryable_503(
    probed: httpx.AsyncClient,
) -> None:
    response = await probed.get("/_test/aborted")
    body = assert_problem(response, 503, "transaction-aborted")
    assert body["title"] == "Transaction aborted by a concurrent one"
    assert body["detail"] == "The database aborted this one; send it again."
    assert response.headers["retry-after"] == "1"


async def test_malformed_json_is_a_400_problem(probed: httpx.AsyncClient) -> None:
    response = await probed.post(
        "/_test/echo", content=b'{"name": ', headers={"content-type": "application/json"}
    )
    assert_problem(response, 400, "malformed-request")


async def test_body_over_the_limit_is_a_413_problem(
    tmp_path: Path, sqlite_url: str, client_for
) -> None:  # type: ignore[no-untyped-def]
    from backend.api import app as app_module

    original = app_module.create_app
    app_module.create_app = lambda s: (lambda a: (a.include_router(probe_router()), a)[1])(
        original(s)
    )
    try:
        async with client_for(make_settings(tmp_path, sqlite_url, max_body_bytes=64)) as c:
            big = {"name": "x" * 200, "quantity": 1}
            assert_problem(await c.post("/_test/echo", json=big), 413, "content-too-large")
            ok = await c.post("/_test/echo", json={"name": "x", "quantity": 1})
            assert ok.status_code == 200
    finally:
        app_module.create_app = original


async def test_a_crash_is_a_generic_500_problem_without_internals(
    probed: httpx.AsyncClient,
) -> None:
    response = await probed.get("/_test/crash")
    body = assert_problem(response, 500, "internal-error")
    assert "secret internals" not in response.text
    assert "Traceback" not in response.text
    assert body["request_id"]


async def test_database_down_is_503_for_data_and_readiness(tmp_path: Path, client_for) -> None:  # type: ignore[no-untyped-def]
    from backend.api import app as app_module

    unreachable = "postgresql+asyncpg://postgres@127.0.0.1:1/orderflow"
    original = app_module.create_app
    app_module.create_app = lambda s: (lambda a: (a.include_router(probe_router()), a)[1])(
        original(s)
    )
    try:
        async with client_for(make_settings(tmp_path, unreachable, db_connect_timeout=1)) as c:
            ready = await c.get("/api/v1/readiness")
            assert ready.status_code == 503
            assert ready.json()["status"] == "unavailable"
            assert ready.json()["checks"]["database"]["status"] == "error"
            data = await c.get("/_test/data")
            body = assert_problem(data, 503, "dependency-unavailable")
            assert "database" in body["detail"]
            assert data.headers["retry-after"]
    finally:
        app_module.create_app = original


async def test_streamed_body_over_the_limit_is_a_413_problem(
    tmp_path: Path, sqlite_url: str, client_for
) -> None:  # type: ignore[no-untyped-def]
    from backend.api import app as app_module

    original = app_module.create_app
    app_module.create_app = lambda s: (lambda a: (a.include_router(probe_router()), a)[1])(
        original(s)
    )

    async def chunks():  # type: ignore[no-untyped-def]
        yield b'{"name": "'
        yield b"x" * 200
        yield b'", "quantity": 1}'

    try:
        async with client_for(make_settings(tmp_path, sqlite_url, max_body_bytes=64)) as c:
            response = await c.post(
                "/_test/echo", content=chunks(), headers={"content-type": "application/json"}
            )
            assert_problem(response, 413, "content-too-large")
    finally:
        app_module.create_app = original


async def test_the_start_up_heap_is_frozen_while_serving_and_released_after(
    settings: Settings,
) -> None:
    # Frozen: full garbage collections under load skip what start-up built (ADR 0019).
    # Released at shutdown: a process that builds app after app can still collect them.
    from backend.api.app import create_app

    app = create_app(settings)
    async with LifespanManager(app):
        assert gc.get_freeze_count() > 10_000
    assert gc.get_freeze_count() == 0
