"""A unit of work over in-memory repositories, with a `committed` flag.

Repositories are shared across units of work of one factory (like one database);
the outbox rows become visible on commit only. Area fakes keep their own state and
are expected to be used inside one unit of work at a time.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from types import TracebackType
from typing import Any, Self

from backend.domain.ports import OnCommit
from tests.fakes.catalog import FakeProductRepository
from tests.fakes.events import FakeOutbox, FakeProcessedEvents
from tests.fakes.notifications import (
    FakeEmailSendRepository,
    FakeNotificationRepository,
    FakeStreamTicketRepository,
)
from tests.fakes.orders import FakeIdempotencyRepository, FakeOrderRepository
from tests.fakes.users import FakeRefreshTokenRepository, FakeUserRepository
from tests.fakes.webhooks import FakeWebhookDeliveries, FakeWebhookEndpoints


class FakeUnitOfWork:
    def __init__(self, store: FakeUnitOfWorkFactory) -> None:
        self._store = store
        self.committed = False
        self._on_commit: list[OnCommit] = []

    def on_commit(self, callback: OnCommit) -> None:
        if callback not in self._on_commit:
            self._on_commit.append(callback)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    @asynccontextmanager
    async def together(self) -> AsyncIterator[None]:
        self._store.together_blocks += 1
        yield  # in memory: each write happens where it is called

    def read_only(self) -> Self:
        self._store.read_only_units += 1
        return self

    async def __aenter__(self) -> Self:
        self.committed = False
        for repo in self._transactional():
            repo._begin()
        return self

    def _transactional(self) -> list[Any]:
        """Fakes that snapshot on begin and restore on rollback (`_begin/_commit/_rollback`)."""
        return [r for r in vars(self._store).values() if hasattr(r, "_rollback")]

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if not self.committed:
            await self.rollback()

    async def commit(self) -> None:
        self.outbox._commit()
        for repo in self._transactional():
            repo._commit()
        self.committed = True
        self._store.commits += 1
        callbacks, self._on_commit = self._on_commit, []
        for callback in callbacks:  # like the SQL unit: a failure never undoes the commit
            try:
                await callback()
            except Exception as error:
                self._store.callback_errors.append(error)

    async def rollback(self) -> None:
        self._on_commit.clear()
        self.outbox.pending.clear()
        for repo in self._transactional():
            repo._rollback()


class FakeUnitOfWorkFactory:
    """Holds the "database" of fakes; calling it opens a unit of work on it."""

    def __init__(self) -> None:
        self.outbox = FakeOutbox()
        self.processed_events = FakeProcessedEvents()
        self.orders = FakeOrderRepository(self.outbox)
        self.idempotency = FakeIdempotencyRepository()
        self.users = FakeUserRepository()
        self.refresh_tokens = FakeRefreshTokenRepository()
        self.products = FakeProductRepository()
        self.webhook_endpoints = FakeWebhookEndpoints()
        self.webhook_deliveries = FakeWebhookDeliveries()
        self.notifications = FakeNotificationRepository()
        self.email_sends = FakeEmailSendRepository()
        self.stream_tickets = FakeStreamTicketRepository()
        self.commits = 0
        self.callback_errors: list[Exception] = []
        self.read_only_units = 0
        self.together_blocks = 0

    def __call__(self) -> FakeUnitOfWork:
        return FakeUnitOfWork(self)
