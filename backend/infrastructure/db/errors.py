"""Which low-level failures are the database's, not the request's (both answered as 503):
"the database cannot serve this connection now", and "the database aborted this transaction
for another".

SQLAlchemy wraps the driver's exception (`error.orig`, whose `sqlstate` the asyncpg adapter
copies from asyncpg's own exception), and the wrapper's class says little: asyncpg's
CannotConnectNowError (57P03) arrives as a bare `DBAPIError`. The classification therefore
reads the SQLSTATE and the driver's exception, never the wrapper's type name.
"""

from __future__ import annotations

import asyncio

from asyncpg.exceptions import InterfaceError as AsyncpgInterfaceError
from asyncpg.exceptions import InternalClientError as AsyncpgInternalClientError
from sqlalchemy import exc as sa_exc

# SQLSTATE class 40, transaction rollback: serialization_failure, deadlock_detected.
RETRYABLE_SQLSTATES = frozenset({"40001", "40P01"})

# Class 08, connection_exception: 08000, 08001 (cannot establish), 08003 (does not exist),
# 08004 (server rejected), 08006 (connection failure), 08P01 (protocol violation), ...
CONNECTION_EXCEPTION_CLASS = "08"
# The server is up but will not serve this connection now.
CANNOT_SERVE_NOW_SQLSTATES = frozenset(
    {
        "53300",  # too_many_connections
        "57P01",  # admin_shutdown: fast/immediate shutdown, pg_terminate_backend
        "57P02",  # crash_shutdown: another backend crashed, the server restarts
        "57P03",  # cannot_connect_now: shutting down, starting up, in recovery
        "57P05",  # idle_session_timeout
    }
)


def _sqlstate(error: BaseException) -> str | None:
    orig = getattr(error, "orig", None) or error
    code = getattr(orig, "sqlstate", None)
    return code if isinstance(code, str) else None


def is_transaction_conflict(error: BaseException) -> bool:
    """PostgreSQL chose this transaction as the victim of a deadlock or a serialization
    failure."""
    return _sqlstate(error) in RETRYABLE_SQLSTATES


def is_connectivity_sqlstate(code: str | None) -> bool:
    if code is None:
        return False
    return code.startswith(CONNECTION_EXCEPTION_CLASS) or code in CANNOT_SERVE_NOW_SQLSTATES


def _is_transport_failure(error: BaseException | None) -> bool:
    """No answer at all: refused, reset, timed out (the socket, not the server, failed)."""
    return isinstance(error, OSError | asyncio.TimeoutError | TimeoutError | ConnectionError)


def is_connectivity_error(error: BaseException) -> bool:
    """The database cannot serve us now; the same request may succeed shortly."""
    if isinstance(error, sa_exc.DBAPIError) and error.connection_invalidated:
        return True
    if isinstance(error, sa_exc.TimeoutError | sa_exc.DisconnectionError):  # pool exhausted
        return True
    if is_connectivity_sqlstate(_sqlstate(error)):
        return True
    orig = error.orig if isinstance(error, sa_exc.DBAPIError) else error
    driver_error = getattr(orig, "__cause__", None) or orig
    if _is_transport_failure(orig) or _is_transport_failure(driver_error):
        return True
    # asyncpg's client-side errors ("connection is closed", "connection was closed in the
    # middle of operation") are its InterfaceError, without SQLSTATE; SQLAlchemy wraps them as
    # InterfaceError. SQLite's "unable to open database file" is an OperationalError.
    if isinstance(driver_error, AsyncpgInterfaceError):
        return True
    # Its protocol state confused by what happened to the connection ("cannot switch to state
    # ...; another operation is in progress"), as after the server ended it mid-transaction:
    # the connection is invalidated and a new one serves the retry.
    if isinstance(driver_error, AsyncpgInternalClientError):
        return True
    return isinstance(error, sa_exc.InterfaceError | sa_exc.OperationalError)
