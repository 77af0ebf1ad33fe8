"""Which low-level failures mean "the database is unreachable" (answered as 503)."""

from __future__ import annotations

import asyncio

from sqlalchemy import exc as sa_exc


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
