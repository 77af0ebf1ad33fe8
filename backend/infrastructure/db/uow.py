"""The SQL unit of work: one connection, one transaction, every repository on it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from types import TracebackType
from typing import Self

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from backend.core.logging import get_logger
from backend.domain.errors import DependencyUnavailable, TransactionAborted
from backend.domain.events import DomainEvent
from backend.infrastructure.db.errors import is_connectivity_error, is_transaction_conflict
from backend.infrastructure.db.repositories.catalog import SqlProductRepository
from backend.infrastructure.db.repositories.email import SqlEmailSendRepository
from backend.infrastructure.db.repositories.events import SqlOutboxRepository, SqlProcessedEvents
from backend.infrastructure.db.repositories.notifications import (
    SqlNotificationRepository,
    SqlStreamTicketRepository,
)
from backend.infrastructure.db.repositories.orders import (
    SqlIdempotencyRepository,
    SqlOrderRepository,
)
from backend.infrastructure.db.repositories.users import (
    SqlRefreshTokenRepository,
    SqlUserRepository,
)

log = get_logger(__name__)

AfterCommit = Callable[[Sequence[DomainEvent]], Awaitable[None]]


class SqlUnitOfWork:
    def __init__(self, engine: AsyncEngine, after_commit: AfterCommit | None = None) -> None:
        self._engine = engine
        self._after_commit = after_commit
        self._conn: AsyncConnection | None = None

    async def __aenter__(self) -> Self:
        try:
            self._conn = await self._engine.connect()
            await self._conn.begin()
        except Exception as error:
            if self._conn is not None:
                await self._conn.close()
            if is_connectivity_error(error):
                raise DependencyUnavailable("database") from error
            raise
        conn = self._conn
        self.users = SqlUserRepository(conn)
        self.refresh_tokens = SqlRefreshTokenRepository(conn)
        self.products = SqlProductRepository(conn)
        self.orders = SqlOrderRepository(conn)
        self.idempotency = SqlIdempotencyRepository(conn)
        self.outbox = SqlOutboxRepository(conn)
        self.processed_events = SqlProcessedEvents(conn)
        self.notifications = SqlNotificationRepository(conn)
        self.email_sends = SqlEmailSendRepository(conn)
        self.stream_tickets = SqlStreamTicketRepository(conn)
        return self

    @property
    def connection(self) -> AsyncConnection:
        assert self._conn is not None, "use the unit of work inside `async with`"
        return self._conn

    async def commit(self) -> None:
        await self.connection.commit()
        events = list(self.outbox.added)
        self.outbox.added.clear()
        if events and self._after_commit is not None:
            try:
                await self._after_commit(events)
            except Exception:  # the outbox poll is the safety net; never fail a committed change
                log.warning("after_commit_hook_failed", exc_info=True, events=len(events))

    async def rollback(self) -> None:
        await self.connection.rollback()
        self.outbox.added.clear()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                if conn.in_transaction():
                    await conn.rollback()
            except Exception:
                log.debug("rollback_failed", exc_info=True)
            finally:
                try:
                    await conn.close()
                except Exception:
                    log.debug("close_failed", exc_info=True)
        if exc is None or isinstance(exc, DependencyUnavailable | TransactionAborted):
            return
        if is_transaction_conflict(exc):
            raise TransactionAborted(
                "A concurrent request held what this one needed and the database aborted this "
                "one; nothing was changed: send it again."
            ) from exc
        if is_connectivity_error(exc):
            raise DependencyUnavailable("database") from exc
