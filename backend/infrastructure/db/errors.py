"""Which low-level failures are the database's, not the request's (both answered as 503):
"the database is unreachable", and "the database aborted this transaction for another"."""

from __future__ import annotations

import asyncio

from sqlalchemy import exc as sa_exc

# SQLSTATE class 40, transaction rollback: serialization_failure, deadlock_detected.
RETRYABLE_SQLSTATES = frozenset({"40001", "40P01"})


def is_transaction_conflict(error: BaseException) -> bool:
    """PostgreSQL chose this transaction as the victim of a deadlock or a serialization
    failure (SQLAlchemy's asyncpg adapter keeps the code as `sqlstate` on `orig`)."""
    orig = getattr(error, "orig", error)
    return getattr(orig, "sqlstate", None) in RETRYABLE_SQLSTATES


def is_connectivity_error(error: BaseException) -> bool:
    if isinstance(error, sa_exc.DBAPIError) and error.connection_invalidated:
        return True
    if isinstance(
        error,
        sa_exc.OperationalError
        | sa_exc.InterfaceError
        | sa_exc.TimeoutError
        | sa_exc.DisconnectionError,
    ):
        return True
    if isinstance(error, OSError | asyncio.TimeoutError | TimeoutError | ConnectionError):
        return True
    name = type(error).__name__
    return name in {
        "CannotConnectNowError",
        "ConnectionDoesNotExistError",
        "TooManyConnectionsError",
        "InterfaceError",
    }
