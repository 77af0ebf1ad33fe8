"""The PostgreSQL pool: a connection used a moment ago goes back to work without a ping; one
that sat idle is pinged first, and one the server closed meanwhile is replaced unseen."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from backend.infrastructure.db.engine import STATEMENT_TIMEOUT, create_engine
from tests.support import pg_admin_dsn

IDLE = 0.2


@pytest.fixture
async def engine(pg_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(pg_url, pool_size=1, max_overflow=0, ping_after_idle=IDLE)
    yield engine
    await engine.dispose()


@pytest.fixture
def pings(engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Every ping the pool sends, with whether the connection answered."""
    dialect = engine.sync_engine.dialect
    real: Callable[[Any], bool] = dialect.do_ping
    sent: list[bool] = []

    def counted(dbapi_connection: Any) -> bool:
        try:
            answered = real(dbapi_connection)
        except Exception:
            sent.append(False)
            raise
        sent.append(answered)
        return answered

    monkeypatch.setattr(dialect, "do_ping", counted)
    return sent


async def backend_pid(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one())


async def test_a_connection_handed_back_a_moment_ago_is_not_pinged(
    engine: AsyncEngine, pings: list[bool]
) -> None:
    first = await backend_pid(engine)
    for _ in range(5):
        assert await backend_pid(engine) == first  # the same pooled connection
    assert pings == []


async def test_a_connection_idle_longer_than_the_threshold_is_pinged_first(
    engine: AsyncEngine, pings: list[bool]
) -> None:
    first = await backend_pid(engine)
    await asyncio.sleep(IDLE * 2)
    assert await backend_pid(engine) == first
    assert pings == [True]


async def test_an_idle_connection_the_server_closed_is_replaced_before_use(
    engine: AsyncEngine, pings: list[bool], pg_url: str
) -> None:
    first = await backend_pid(engine)
    admin = await asyncpg.connect(pg_admin_dsn(pg_url))
    try:
        assert await admin.fetchval("SELECT pg_terminate_backend($1)", first)
    finally:
        await admin.close()
    await asyncio.sleep(IDLE * 2)
    replacement = await backend_pid(engine)  # no error reaches the caller
    assert replacement != first
    assert pings == [False]


async def test_a_request_waits_for_the_pool_as_long_as_a_statement_may_run(
    engine: AsyncEngine,
) -> None:
    # pool_timeout is not below the statement timeout: the pool never refuses a request the
    # database would still have answered.
    assert create_engine.__kwdefaults__["pool_timeout"] == STATEMENT_TIMEOUT
    assert engine.pool.timeout() == STATEMENT_TIMEOUT  # type: ignore[attr-defined]
