"""The asyncpg connection under a unit of work's SQLAlchemy connection, for the few hot
statements that are sent as they are (docs/adr/0019).

A statement through SQLAlchemy costs about 140 µs of CPU even when it is plain SQL
(`exec_driver_sql`: execution context, cursor, result wrapper, a greenlet switch); asyncpg
alone takes about 35 µs. A placement sends its three statements this way.

They run in the unit's transaction: SQLAlchemy's asyncpg adapter sends BEGIN lazily, with
the first statement it executes, so `driver` sends it first when it is still
pending. That reads the adapter's `_transaction` and calls its `_start_transaction`: the
one place this code relies on SQLAlchemy internals; `tests/integration/test_placement_
statements.py` proves that what is sent here commits and rolls back with the unit, and that
a connection lost here is replaced. Errors arrive as asyncpg's own exceptions (with
`sqlstate`), which the unit of work's classification reads as it reads SQLAlchemy's
wrappers.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from asyncpg.exceptions import PostgresError
from sqlalchemy.ext.asyncio import AsyncConnection

from backend.infrastructure.db.errors import is_connectivity_error


@asynccontextmanager
async def driver(conn: AsyncConnection) -> AsyncIterator[Any]:
    """`async with driver(conn) as raw:` the asyncpg `Connection` under `conn`, inside
    `conn`'s transaction. A failure that lost the connection invalidates it, as SQLAlchemy
    does for its own statements: the pool then replaces it instead of handing the dead one
    to the next request (whose statements would fail at once, without ever waiting)."""
    pooled = await conn.get_raw_connection()
    adapted: Any = pooled.dbapi_connection
    raw = adapted.driver_connection
    try:
        if adapted._transaction is None and not adapted.autocommit:
            await adapted._start_transaction()
        yield raw
    except BaseException as error:
        if not _leaves_connection_usable(raw, error):
            await conn.invalidate(error if isinstance(error, Exception) else None)
        raise


def _leaves_connection_usable(raw: Any, error: BaseException) -> bool:
    """Only an error the server reported about the statement (a PostgreSQL error with its
    SQLSTATE: a constraint, a lock timeout) leaves the connection fit for the pool; a lost or
    confused connection (asyncpg's client-side errors, a cancelled or timed-out wait) does not."""
    if raw.is_closed() or is_connectivity_error(error):
        return False
    return isinstance(error, PostgresError)
