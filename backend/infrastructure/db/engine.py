"""Async engine construction. Called from the composition root, never at import time."""

from __future__ import annotations

import asyncio
import math
import time
import weakref
from pathlib import Path
from typing import Any, cast

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import AsyncAdaptedQueuePool, ConnectionPoolEntry

# The longest a statement may run (asyncpg's command_timeout). A request waits for a pooled
# connection at most as long by default: a queue for the pool is a queue for the database.
STATEMENT_TIMEOUT = 30.0
# A connection that sat in the pool longer than this is pinged before use (see below).
PING_AFTER_IDLE = 1.0
# Connections above pool_size (the overflow) are closed once the pool has not had more than
# pool_size out at once for this long; until then they are kept (see below).
OVERFLOW_IDLE = 30.0
# record.info key: the checkin listener's word to the pool that this connection goes.
_SHED = "orderflow.shed"


def create_engine(
    url: str,
    *,
    pool_size: int = 20,
    max_overflow: int = 10,
    pool_timeout: float = STATEMENT_TIMEOUT,
    connect_timeout: float = 5.0,
    ping_after_idle: float = PING_AFTER_IDLE,
    overflow_idle: float = OVERFLOW_IDLE,
    echo: bool = False,
) -> AsyncEngine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(url, echo=echo)
    connect_args: dict[str, Any] = {}
    if parsed.get_driver_name() == "asyncpg":
        connect_args = {
            "timeout": connect_timeout,
            "command_timeout": STATEMENT_TIMEOUT,
            "server_settings": {"application_name": "orderflow"},
        }
    engine = create_async_engine(
        url,
        # Room for every connection the pool may open, so none is closed on return; those
        # above pool_size are shed once not needed for a while (_shed_overflow_after_idle).
        poolclass=_SheddingPool,
        pool_size=pool_size + max_overflow,
        max_overflow=0,
        pool_timeout=pool_timeout,
        # Most recently used first: under light load the same few connections stay warm
        # (no ping) and the rest go idle, instead of every connection going just stale enough.
        pool_use_lifo=True,
        pool_recycle=1800,
        connect_args=connect_args,
        echo=echo,
    )
    _ping_only_after_idle(engine, ping_after_idle)
    _shed_overflow_after_idle(engine, pool_size, overflow_idle)
    return engine


def _ping_only_after_idle(engine: AsyncEngine, idle_seconds: float) -> None:
    """Pessimistic disconnect handling for connections that were idle, not for every checkout.

    SQLAlchemy's `pool_pre_ping` costs three round trips per checkout on asyncpg (BEGIN, `;`,
    ROLLBACK): more than the query of a typical request. A connection handed back a moment ago
    is as alive as a ping would show, so only one idle longer than `idle_seconds` (where a
    server restart or an idle-killing proxy could have closed it) is pinged; a dead one is
    replaced before the request sees it (DisconnectionError: the pool retries with a fresh
    connection). A connection that dies while busy fails its statement as before, and
    SQLAlchemy then invalidates every connection older than the failure (docs/adr/0019).
    """
    dialect = engine.sync_engine.dialect

    @event.listens_for(engine.sync_engine, "checkin")
    def _idle_from(_dbapi_connection: Any, record: Any) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine.sync_engine, "checkout")
    def _ping_if_idle(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        idle_since = record.info.get("idle_since")
        if idle_since is None or time.monotonic() - idle_since < idle_seconds:
            return  # a new connection, or one in use a moment ago
        try:
            dialect.do_ping(dbapi_connection)
        except Exception as error:
            raise DisconnectionError("an idle pooled connection did not answer") from error


class _SheddingPool(AsyncAdaptedQueuePool):
    """SQLAlchemy's asyncio queue pool, but a returned connection the checkin listener marked
    is closed and its slot freed instead of going back to the queue.

    This overrides a private method of QueuePool (`_do_return_conn`, SQLAlchemy 2.1) and does
    what QueuePool itself does there with an overflow connection that finds the queue full
    (`record.close()`, `_dec_overflow()`). No public hook can drop a returned connection: a
    `checkin` listener may invalidate it, but the record still goes back on top of the LIFO
    queue and the next checkout reconnects it; closing an idle connection in the queue
    instead races with a checkout while the close awaits. `test_engine_pool.py` covers it.
    """

    def _do_return_conn(self, record: ConnectionPoolEntry) -> None:
        if not record.info.pop(_SHED, False):
            super()._do_return_conn(record)
            return
        try:
            record.close()
        finally:
            self._dec_overflow()


def _shed_overflow_after_idle(engine: AsyncEngine, pool_size: int, grace: float) -> None:
    """Keep overflow connections while bursts recur; give them back once the load has dropped.

    Requests come in waves: under 32 concurrent clients of `GET /orders/{id}` more than
    `pool_size` connections were busy, then more than `pool_size` idle at once when a wave
    ended. A plain QueuePool closes every overflow connection the moment it comes back to a
    full pool, so each wave reconnected `max_overflow` of them (TLS included) and closed them
    again: about 10 % of the API's CPU in asyncpg's `connect` and `Connection.close`, and as
    many backends forked by PostgreSQL (docs/adr/0019-round-trips-per-request.md).

    So the pool has room for `pool_size + max_overflow` (the limit and `pool_timeout` are
    QueuePool's, as before) and keeps every returned connection, except that once the pool
    has not had more than `pool_size` out at once for `grace` seconds, each connection
    returned while more than `pool_size` exist is closed. The period of need ends at a
    return (a checkout can only start one), so the returns alone tell when it ended. Nothing
    is closed without traffic: the first returns after a quiet period shed the extras.
    """

    needed_at = -math.inf  # when the pool last had more than pool_size out at once

    @event.listens_for(engine.sync_engine, "checkin")
    def _shed_if_not_needed(_dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        nonlocal needed_at
        pool = cast(_SheddingPool, engine.sync_engine.pool)  # dispose() replaces the pool
        # The connection being returned is not back in the queue yet: checkedout() counts it.
        out, kept = pool.checkedout(), pool.checkedin()
        now = time.monotonic()
        if out > pool_size:
            needed_at = now
        elif out + kept > pool_size and now - needed_at >= grace:
            record.info[_SHED] = True


class FairCheckout:
    """First come, first served for the pool's connections (docs/adr/0019).

    SQLAlchemy's asyncio pool queue lets a request that just arrived take a connection handed
    back while others wait for one (it tries `get_nowait` first, and a woken waiter that finds
    the queue empty again queues at the back): under overload a few requests wait many times
    longer than the rest. A unit of work takes this gate, an asyncio.Semaphore of the pool's
    size (FIFO: a release goes to the longest waiter), before it checks a connection out and
    gives it back after the connection has returned to the pool; the pool then never makes
    anyone wait, and the wait, bounded by `timeout` as the pool's was, is in arrival order.
    One semaphore per event loop (a worker process may run more than one)."""

    def __init__(self, capacity: int, timeout: float) -> None:
        self.capacity = capacity
        self.timeout = timeout
        self._semaphores: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Semaphore]
        self._semaphores = weakref.WeakKeyDictionary()

    async def enter(self) -> asyncio.Semaphore:
        """Wait for a turn; the semaphore to `release()` when done. PoolTimeout (the pool's
        own error: a 503) when none came within `timeout`."""
        loop = asyncio.get_running_loop()
        semaphore = self._semaphores.get(loop)
        if semaphore is None:
            semaphore = self._semaphores[loop] = asyncio.Semaphore(self.capacity)
        if not semaphore.locked():  # a turn is free and nobody waits: no timer needed
            await semaphore.acquire()
            return semaphore
        try:
            async with asyncio.timeout(self.timeout):
                await semaphore.acquire()
        except TimeoutError:
            raise PoolTimeout(
                f"no database connection free within {self.timeout:g} s ({self.capacity} in use)"
            ) from None
        return semaphore


def _sqlite_engine(url: str, *, echo: bool) -> AsyncEngine:
    database = make_url(url).database
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_async_engine(url, connect_args={"timeout": 30}, echo=echo)

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, emit BEGIN (see the "begin" hook below).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        # One writer at a time, taken at BEGIN: no "database is locked" upgrade
        # deadlocks between two transactions that both read, then write.
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    return engine
