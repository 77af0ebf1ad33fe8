"""The PostgreSQL pool: a connection used a moment ago goes back to work without a ping; one
that sat idle is pinged first, and one the server closed meanwhile is replaced unseen. Overflow
connections survive recurring bursts, are closed once not needed for the grace period, and the
pool never holds more than pool_size + max_overflow."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Collection
from dataclasses import dataclass, field
from typing import Any

import asyncpg
import pytest
from sqlalchemy import event, text
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncEngine

from backend.domain.errors import DependencyUnavailable
from backend.infrastructure.db.engine import STATEMENT_TIMEOUT, FairCheckout, create_engine
from backend.infrastructure.db.errors import is_connectivity_error
from backend.infrastructure.db.uow import SqlUnitOfWork
from tests.support import pg_admin_dsn

IDLE = 0.2
POOL, OVERFLOW = 3, 2
LIMIT = POOL + OVERFLOW
GRACE = 0.5  # overflow_idle where a test waits it out (a wave's returns take far less)
WAIT = 0.3  # pool_timeout where a test runs into it


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


@dataclass
class Backends:
    """The server pids of the connections an engine opened and closed (pool events)."""

    opened: list[int] = field(default_factory=list)
    closed: list[int] = field(default_factory=list)
    most: int = 0  # the most open at once

    @property
    def open(self) -> set[int]:
        return set(self.opened) - set(self.closed)


BurstEngine = Callable[..., tuple[AsyncEngine, Backends]]


@pytest.fixture
async def burst_engine(pg_url: str) -> AsyncIterator[BurstEngine]:
    """A pool of POOL + OVERFLOW, with the backends it opens and closes."""
    engines: list[AsyncEngine] = []

    def make(**options: Any) -> tuple[AsyncEngine, Backends]:
        engine = create_engine(pg_url, pool_size=POOL, max_overflow=OVERFLOW, **options)
        backends = Backends()

        @event.listens_for(engine.sync_engine, "connect")
        def _opened(_dbapi_connection: Any, record: Any) -> None:
            backends.opened.append(record.driver_connection.get_server_pid())
            backends.most = max(backends.most, len(backends.open))

        @event.listens_for(engine.sync_engine, "close")
        def _closed(_dbapi_connection: Any, record: Any) -> None:
            backends.closed.append(record.driver_connection.get_server_pid())

        engines.append(engine)
        return engine, backends

    yield make
    for engine in engines:
        await engine.dispose()


async def wave(engine: AsyncEngine, size: int) -> None:
    """`size` connections out at once, each used, then all handed back."""
    conns = [await engine.connect() for _ in range(size)]
    try:
        for conn in conns:
            await conn.execute(text("SELECT 1"))
    finally:
        for conn in conns:
            await conn.close()


async def running(pg_url: str, pids: Collection[int], *, expected: set[int]) -> set[int]:
    """Which of `pids` PostgreSQL still runs, asked until that is `expected` or 5 s passed (a
    closed connection's backend exits a moment after the close)."""
    admin = await asyncpg.connect(pg_admin_dsn(pg_url))
    try:
        deadline = time.monotonic() + 5.0
        while True:
            rows = await admin.fetch(
                "SELECT pid FROM pg_stat_activity WHERE pid = ANY($1::int[])", list(pids)
            )
            found = {row["pid"] for row in rows}
            if found == expected or time.monotonic() > deadline:
                return found
            await asyncio.sleep(0.05)
    finally:
        await admin.close()


async def test_overflow_connections_survive_recurring_bursts(
    burst_engine: BurstEngine, pg_url: str
) -> None:
    engine, backends = burst_engine()  # the default grace period
    for _ in range(5):
        await wave(engine, LIMIT)
        assert len(backends.opened) == LIMIT  # all opened by the first wave, none since
        assert backends.closed == []
        await wave(engine, 1)  # light use between the bursts closes nothing either
    assert backends.closed == []
    assert await running(pg_url, backends.opened, expected=backends.open) == backends.open


async def test_overflow_connections_are_closed_once_not_needed_for_the_grace_period(
    burst_engine: BurstEngine, pg_url: str
) -> None:
    engine, backends = burst_engine(overflow_idle=GRACE)
    for _ in range(3):
        await wave(engine, LIMIT)
    assert len(backends.open) == LIMIT
    await asyncio.sleep(GRACE * 2)
    for _ in range(3):
        await wave(engine, POOL)  # light use: never more than pool_size at once
    assert len(backends.open) == POOL
    assert len(backends.closed) == OVERFLOW
    assert await running(pg_url, backends.opened, expected=backends.open) == backends.open

    # A new burst opens the overflow again, and it stays while that burst lasts.
    opened_before = len(backends.opened)
    await wave(engine, LIMIT)
    assert len(backends.opened) == opened_before + OVERFLOW
    assert len(backends.open) == LIMIT
    assert await running(pg_url, backends.opened, expected=backends.open) == backends.open


async def test_the_pool_never_holds_more_than_pool_size_plus_overflow(
    burst_engine: BurstEngine,
) -> None:
    engine, backends = burst_engine(overflow_idle=GRACE, pool_timeout=WAIT)
    for _ in range(2):  # before and after the overflow was closed (its slots are freed once)
        held = [await engine.connect() for _ in range(LIMIT)]
        try:
            started = time.monotonic()
            with pytest.raises(sa_exc.TimeoutError) as refused:
                await engine.connect()
            assert time.monotonic() - started >= WAIT - 0.01  # (the loop's timer resolution)
            assert is_connectivity_error(refused.value)  # a 503, as before
        finally:
            for conn in held:
                await conn.close()
        await asyncio.sleep(GRACE * 2)
        await wave(engine, POOL)
        assert len(backends.open) == POOL
    assert backends.most == LIMIT


async def test_units_of_work_get_connections_in_arrival_order(pg_url: str) -> None:
    """Behind the gate the pool never makes anyone wait: with the pool full, the units that
    queue get their connection in the order they came, a newcomer included, and a unit that
    waits too long is told the database is unavailable (a 503)."""
    engine = create_engine(pg_url, pool_size=2, max_overflow=0, pool_timeout=30)
    gate = FairCheckout(capacity=2, timeout=5)
    order: list[str] = []
    try:
        holders = [SqlUnitOfWork(engine, gate=gate) for _ in range(2)]
        for unit in holders:
            await unit.__aenter__()

        async def read(name: str) -> None:
            async with SqlUnitOfWork(engine, gate=gate).read_only() as unit:
                order.append(name)
                await unit.connection.execute(text("SELECT 1"))

        waiters = [asyncio.create_task(read(f"w{i}")) for i in range(6)]
        await asyncio.sleep(0.05)
        assert order == []  # both connections are held
        for unit in holders:
            await unit.__aexit__(None, None, None)
        newcomer = asyncio.create_task(read("newcomer"))
        await asyncio.gather(*waiters, newcomer)
        assert order == [*(f"w{i}" for i in range(6)), "newcomer"]
        assert engine.sync_engine.pool.checkedout() == 0  # every turn ended with its connection

        impatient = FairCheckout(capacity=1, timeout=WAIT)
        async with SqlUnitOfWork(engine, gate=impatient):
            with pytest.raises(DependencyUnavailable):
                async with SqlUnitOfWork(engine, gate=impatient):
                    pass
    finally:
        await engine.dispose()
