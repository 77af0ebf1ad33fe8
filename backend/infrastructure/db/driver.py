"""The asyncpg connection under a unit of work's SQLAlchemy connection, for the few hot
statements that are sent as they are (docs/adr/0019).

A statement through SQLAlchemy costs about 140 µs of CPU even when it is plain SQL
(`exec_driver_sql`: execution context, cursor, result wrapper, a greenlet switch); asyncpg
alone takes about 35 µs. A placement sends its three statements this way.

They run in the unit's transaction: SQLAlchemy's asyncpg adapter sends BEGIN lazily, with
the first statement it executes, so `driver_connection` sends it first when it is still
pending. That reads the adapter's `_transaction` and calls its `_start_transaction`: the
one place this code relies on SQLAlchemy internals; `tests/integration/test_placement_
statements.py` proves that what is sent here commits and rolls back with the unit.
Errors arrive as asyncpg's own exceptions (with `sqlstate`), which the unit of work's
classification reads as it reads SQLAlchemy's wrappers; a connection lost here fails the
unit's rollback, which makes SQLAlchemy discard it from the pool.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection


async def driver_connection(conn: AsyncConnection) -> Any:
    """The asyncpg `Connection` under `conn`, inside `conn`'s transaction."""
    pooled = await conn.get_raw_connection()
    adapted: Any = pooled.dbapi_connection
    if adapted._transaction is None and not adapted.autocommit:
        await adapted._start_transaction()
    return adapted.driver_connection
