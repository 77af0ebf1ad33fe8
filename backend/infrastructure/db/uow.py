"""The SQL unit of work: one connection, one transaction, every repository on it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import cached_property
from types import TracebackType
from typing import Self

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from backend.core.logging import get_logger
from backend.domain.errors import DependencyUnavailable, TransactionAborted
from backend.domain.ports import OnCommit
from backend.domain.webhooks import SecretCipher
from backend.infrastructure.db.engine import FairCheckout
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
from backend.infrastructure.db.repositories.webhooks import (
    SqlWebhookDeliveryRepository,
    SqlWebhookEndpointRepository,
)
from backend.infrastructure.db.writes import PendingWrites

log = get_logger(__name__)


async def run_after_commit(callbacks: list[OnCommit]) -> None:
    """Each callback in turn; a failure is logged and the next one still runs (the commit
    stands: every callback has a safety net, see `Transaction.on_commit`)."""
    for callback in callbacks:
        try:
            await callback()
        except Exception:
            log.warning("after_commit_callback_failed", exc_info=True, callback=repr(callback))


class _NoCipher:
    """For units of work built without the webhook key (tests of other areas, tools)."""

    def encrypt(self, plaintext: str) -> str:
        raise RuntimeError("this unit of work was built without a webhook secret cipher")

    decrypt = encrypt


NO_CIPHER = _NoCipher()


class SqlUnitOfWork:
    def __init__(
        self,
        engine: AsyncEngine,
        cipher: SecretCipher | None = None,
        gate: FairCheckout | None = None,
    ) -> None:
        self._engine = engine
        self._gate = gate
        self._turn: asyncio.Semaphore | None = None  # the gate's, held while connected
        self._cipher = cipher or NO_CIPHER
        self._conn: AsyncConnection | None = None
        self._on_commit: list[OnCommit] = []
        self._reads_only = False
        self._writes = PendingWrites()

    def on_commit(self, callback: OnCommit) -> None:
        if callback not in self._on_commit:
            self._on_commit.append(callback)

    def read_only(self) -> Self:
        """This unit only reads: on PostgreSQL its statements run without a transaction (no
        BEGIN and ROLLBACK round trips), each seeing what was committed when it ran. For a
        read whose rows do not change under it in a way the caller cares about (one row,
        or rows written once). SQLite units stay transactions (the engine's BEGIN IMMEDIATE
        needs the driver's settings untouched). docs/adr/0019."""
        self._reads_only = True
        return self

    async def __aenter__(self) -> Self:
        try:
            if self._gate is not None:
                self._turn = await self._gate.enter()
            self._conn = await self._engine.connect()
            if self._reads_only and self._engine.dialect.name == "postgresql":
                await self._conn.execution_options(isolation_level="AUTOCOMMIT")
            else:
                await self._conn.begin()
        except Exception as error:
            if self._conn is not None:
                await self._conn.close()
            self._leave_gate()
            if is_connectivity_error(error):
                raise DependencyUnavailable("database") from error
            raise
        except BaseException:  # cancelled while waiting for the database: give the turn back
            self._leave_gate()
            raise
        return self

    # The repositories on this unit's connection, each built when first used (a request
    # uses one or two of them) and forgotten when the unit ends.
    @cached_property
    def users(self) -> SqlUserRepository:
        return SqlUserRepository(self.connection)

    @cached_property
    def refresh_tokens(self) -> SqlRefreshTokenRepository:
        return SqlRefreshTokenRepository(self.connection)

    @cached_property
    def products(self) -> SqlProductRepository:
        return SqlProductRepository(self.connection)

    @cached_property
    def orders(self) -> SqlOrderRepository:
        return SqlOrderRepository(self.connection, self._writes)

    @cached_property
    def idempotency(self) -> SqlIdempotencyRepository:
        return SqlIdempotencyRepository(self.connection, self._writes)

    @cached_property
    def outbox(self) -> SqlOutboxRepository:
        return SqlOutboxRepository(self.connection, self._writes)

    @cached_property
    def processed_events(self) -> SqlProcessedEvents:
        return SqlProcessedEvents(self.connection)

    @cached_property
    def notifications(self) -> SqlNotificationRepository:
        return SqlNotificationRepository(self.connection)

    @cached_property
    def email_sends(self) -> SqlEmailSendRepository:
        return SqlEmailSendRepository(self.connection)

    @cached_property
    def stream_tickets(self) -> SqlStreamTicketRepository:
        return SqlStreamTicketRepository(self.connection)

    @cached_property
    def webhook_endpoints(self) -> SqlWebhookEndpointRepository:
        return SqlWebhookEndpointRepository(self.connection, self._cipher)

    @cached_property
    def webhook_deliveries(self) -> SqlWebhookDeliveryRepository:
        return SqlWebhookDeliveryRepository(self.connection)

    def _leave_gate(self) -> None:
        turn, self._turn = self._turn, None
        if turn is not None:
            turn.release()

    @asynccontextmanager
    async def together(self) -> AsyncIterator[None]:
        """On PostgreSQL the plain writes inside reach the server as one statement when the
        block ends (`writes.py`); elsewhere, and nested, each runs where it is called."""
        writes = self._writes
        if writes.collecting or self.connection.dialect.name != "postgresql":
            yield
            return
        writes.collecting = True
        try:
            yield
        except BaseException:
            writes.clear()
            raise
        finally:
            writes.collecting = False
        await writes.flush(self.connection)

    @property
    def connection(self) -> AsyncConnection:
        assert self._conn is not None, "use the unit of work inside `async with`"
        return self._conn

    async def commit(self) -> None:
        if self._reads_only:
            raise RuntimeError("a read-only unit of work has nothing to commit")
        await self.connection.commit()
        callbacks, self._on_commit = self._on_commit, []
        if callbacks:
            # Shielded: a request cancelled right after its commit still runs what follows it.
            await asyncio.shield(run_after_commit(callbacks))

    async def rollback(self) -> None:
        await self.connection.rollback()
        self._on_commit.clear()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        conn, self._conn = self._conn, None
        self._on_commit.clear()  # not committed: dropped with the transaction
        for name in REPOSITORIES.intersection(self.__dict__):
            del self.__dict__[name]  # bound to the connection that is going back now
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
                finally:
                    self._leave_gate()
        if exc is None or isinstance(exc, DependencyUnavailable | TransactionAborted):
            return
        if is_transaction_conflict(exc):
            raise TransactionAborted(
                "A concurrent request held what this one needed and the database aborted this "
                "one; nothing was changed: send it again."
            ) from exc
        if is_connectivity_error(exc):
            raise DependencyUnavailable("database") from exc


REPOSITORIES = frozenset(
    name for name, value in vars(SqlUnitOfWork).items() if isinstance(value, cached_property)
)
