"""The database error classifier reads the driver's error inside SQLAlchemy's wrapper: every
"cannot serve this connection now" SQLSTATE is unavailability (503), a conflict is a retryable
abort, and the request's own mistakes are neither."""

from __future__ import annotations

import asyncpg
import pytest
from asyncpg import exceptions as pg
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects.postgresql.asyncpg import AsyncAdapt_asyncpg_dbapi

from backend.infrastructure.db.errors import is_connectivity_error, is_transaction_conflict

DBAPI = AsyncAdapt_asyncpg_dbapi(asyncpg)


def as_sqlalchemy_raises(error: Exception) -> sa_exc.DBAPIError:
    """asyncpg's exception as SQLAlchemy hands it to us: translated to the adapter's DB-API
    class (carrying the SQLSTATE, caused by the original), wrapped in a StatementError."""
    for cls in type(error).__mro__:
        if cls in DBAPI._asyncpg_error_translate:
            translated = DBAPI._asyncpg_error_translate[cls](error.args[0], error)
            translated.__cause__ = error
            wrapped = sa_exc.DBAPIError.instance(None, None, translated, DBAPI.Error)
            assert isinstance(wrapped, sa_exc.DBAPIError)
            return wrapped
    raise AssertionError(f"SQLAlchemy does not translate {type(error).__name__}")


CANNOT_SERVE_NOW = [
    (pg.CannotConnectNowError, "57P03", "the database system is shutting down"),
    (pg.CannotConnectNowError, "57P03", "the database system is starting up"),
    (pg.AdminShutdownError, "57P01", "terminating connection: administrator command"),
    (pg.CrashShutdownError, "57P02", "terminating connection: crash of another process"),
    (pg.IdleSessionTimeoutError, "57P05", "terminating connection: idle-session timeout"),
    (pg.TooManyConnectionsError, "53300", "sorry, too many clients already"),
    (pg.PostgresConnectionError, "08000", "connection exception"),
    (pg.ClientCannotConnectError, "08001", "could not connect"),
    (pg.ConnectionDoesNotExistError, "08003", "connection does not exist"),
    (pg.ConnectionRejectionError, "08004", "the server rejected the connection"),
    (pg.ConnectionFailureError, "08006", "connection failure"),
    (pg.ProtocolViolationError, "08P01", "protocol violation"),
]  # fmt: skip


@pytest.mark.parametrize(("cls", "sqlstate", "message"), CANNOT_SERVE_NOW)
def test_every_cannot_serve_now_sqlstate_is_unavailability(
    cls: type[asyncpg.PostgresError], sqlstate: str, message: str
) -> None:
    error = cls(message)
    assert error.sqlstate == sqlstate
    wrapped = as_sqlalchemy_raises(error)
    assert is_connectivity_error(wrapped)
    assert not is_transaction_conflict(wrapped)


def test_the_wrapper_class_alone_says_nothing() -> None:
    """57P03 reaches us as a bare DBAPIError (not Operational-, not InterfaceError): only the
    SQLSTATE inside tells it apart from any other server error."""
    wrapped = as_sqlalchemy_raises(pg.CannotConnectNowError("shutting down"))
    assert type(wrapped) is sa_exc.DBAPIError
    assert is_connectivity_error(wrapped)


@pytest.mark.parametrize(
    "error",
    [
        pg.InterfaceError("connection is closed"),
        pg.ConnectionDoesNotExistError("connection was closed in the middle"),
        ConnectionRefusedError(111, "Connect call failed"),
        TimeoutError(),
    ],
)
def test_client_side_connection_failures_are_unavailability(error: Exception) -> None:
    if isinstance(error, pg.InterfaceError):
        assert is_connectivity_error(as_sqlalchemy_raises(error))
    assert is_connectivity_error(error)  # raised by the driver before SQLAlchemy wraps it


@pytest.mark.parametrize(
    "error",
    [
        pg.UniqueViolationError("duplicate key value"),
        pg.PostgresSyntaxError("syntax error at or near"),
        pg.DivisionByZeroError("division by zero"),
        pg.QueryCanceledError("canceling statement due to statement timeout"),
        pg.DiskFullError("could not extend file"),
    ],
)
def test_the_requests_own_failures_are_not_unavailability(error: Exception) -> None:
    wrapped = as_sqlalchemy_raises(error)
    assert not is_connectivity_error(wrapped)
    assert not is_transaction_conflict(wrapped)


@pytest.mark.parametrize("cls", [pg.SerializationError, pg.DeadlockDetectedError])
def test_a_conflict_victim_is_a_transaction_conflict(cls: type[asyncpg.PostgresError]) -> None:
    wrapped = as_sqlalchemy_raises(cls("could not serialize access"))
    assert is_transaction_conflict(wrapped)
    assert not is_connectivity_error(wrapped)
