"""Async engine construction. Called from the composition root, never at import time."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

# The longest a statement may run (asyncpg's command_timeout). A request waits for a pooled
# connection at most as long by default: a queue for the pool is a queue for the database.
STATEMENT_TIMEOUT = 30.0
# A connection that sat in the pool longer than this is pinged before use (see below).
PING_AFTER_IDLE = 1.0


def create_engine(
    url: str,
    *,
    pool_size: int = 20,
    max_overflow: int = 10,
    pool_timeout: float = STATEMENT_TIMEOUT,
    connect_timeout: float = 5.0,
    ping_after_idle: float = PING_AFTER_IDLE,
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
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_timeout=pool_timeout,
        # Most recently used first: under light load the same few connections stay warm
        # (no ping) and the rest go idle, instead of every connection going just stale enough.
        pool_use_lifo=True,
        pool_recycle=1800,
        connect_args=connect_args,
        echo=echo,
    )
    _ping_only_after_idle(engine, ping_after_idle)
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
