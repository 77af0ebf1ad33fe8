"""A PostgreSQL that answers but refuses sessions (shutting down, starting up, out of slots,
...) is "unavailable": the unit of work raises DependencyUnavailable at once and the API
answers 503 with Retry-After well within DB_CONNECT_TIMEOUT, never a 500 after a hang.

The server is a wire-protocol fake (tests/helpers/fake_postgres.py) answering the
StartupMessage with the SQLSTATE under test, exactly as PostgreSQL does."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from backend.domain.errors import DependencyUnavailable
from backend.infrastructure.db.engine import create_engine
from backend.infrastructure.db.uow import SqlUnitOfWork
from tests.helpers.fake_postgres import refusing_postgres
from tests.support import make_settings

CONNECT_TIMEOUT = 5.0

REFUSALS = [
    ("57P03", "the database system is shutting down"),
    ("57P03", "the database system is starting up"),
    ("57P03", "the database system is not yet accepting connections"),
    ("57P01", "terminating connection due to administrator command"),
    ("53300", "sorry, too many clients already"),
    ("08004", "the server rejected the connection"),
    ("08006", "connection failure"),
]


@pytest.mark.parametrize(("sqlstate", "message"), REFUSALS)
async def test_the_unit_of_work_reports_a_refusing_server_as_unavailable(
    sqlstate: str, message: str
) -> None:
    async with refusing_postgres(sqlstate, message) as (url, server):
        engine = create_engine(url, connect_timeout=CONNECT_TIMEOUT)
        try:
            with pytest.raises(DependencyUnavailable) as raised:
                async with SqlUnitOfWork(engine):
                    pass
        finally:
            await engine.dispose()
    assert raised.value.dependency == "database"
    assert getattr(raised.value.__cause__, "orig", None) is not None
    assert raised.value.__cause__.orig.sqlstate == sqlstate  # type: ignore[union-attr]
    assert server.sessions_refused >= 1


@pytest.mark.parametrize(("sqlstate", "message"), REFUSALS)
async def test_the_api_answers_503_with_retry_after_within_the_connect_timeout(
    tmp_path: Path, client_for: Any, sqlstate: str, message: str
) -> None:
    async with refusing_postgres(sqlstate, message) as (url, server):
        settings = make_settings(tmp_path, url, db_connect_timeout=CONNECT_TIMEOUT)
        async with client_for(settings) as client:
            started = time.monotonic()
            response = await client.get("/api/v1/products")
            elapsed = time.monotonic() - started
    assert response.status_code == 503, response.text
    assert response.headers["retry-after"].isdigit()
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["type"].endswith("/dependency-unavailable")
    assert body["detail"] == "The database is unavailable; retry shortly."
    assert elapsed < CONNECT_TIMEOUT
    assert server.sessions_refused >= 1
