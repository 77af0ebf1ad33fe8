"""Ports the services depend on. Adapters in `backend/infrastructure` implement them.

Repository protocols of each area live beside its entities (`users.py`,
`catalog.py`, `orders.py`); this module holds the cross-cutting ports and the
unit of work that bundles the repositories of one transaction.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from types import TracebackType
from typing import TYPE_CHECKING, Protocol, Self

from backend.domain.events import DomainEvent, OutboxRecord

if TYPE_CHECKING:
    from backend.domain.catalog import ProductRepository
    from backend.domain.email import EmailSendRepository
    from backend.domain.notifications import NotificationRepository, StreamTicketRepository
    from backend.domain.orders import IdempotencyRepository, OrderRepository
    from backend.domain.users import RefreshTokenRepository, UserRepository
    from backend.domain.webhooks import WebhookDeliveryRepository, WebhookEndpointRepository


class Clock(Protocol):
    def now(self) -> datetime: ...


class OutboxRepository(Protocol):
    async def add(self, event: DomainEvent) -> None: ...

    async def add_many(self, events: Sequence[DomainEvent]) -> None: ...

    async def claim_unpublished(self, limit: int) -> Sequence[OutboxRecord]:
        """Lock up to `limit` unpublished rows, oldest first, skipping rows others hold."""
        ...

    async def mark_published(self, event_ids: Sequence[str], at: datetime) -> None: ...

    async def record_attempt(self, event_ids: Sequence[str]) -> None: ...

    async def backlog(self, now: datetime) -> tuple[int, float]:
        """(number of unpublished events, age in seconds of the oldest one)."""
        ...

    async def claim_unhandled(
        self, published_before: datetime, max_deliveries: int, limit: int
    ) -> Sequence[OutboxRecord]:
        """Lock up to `limit` rows published before `published_before` that no consumer run
        finished (`handled_at` unset) and were delivered fewer than `max_deliveries` times,
        skipping rows others hold: the relay's safety net for lost dispatch messages."""
        ...

    async def mark_handled(self, event_ids: Sequence[str], at: datetime) -> None: ...

    async def purge_handled(self, handled_before: datetime, limit: int) -> int:
        """Delete up to `limit` events every consumer had handled before `handled_before`,
        with their consumers' dedup records; how many events. Unpublished and unhandled
        events are never deleted, however old."""
        ...


class ProcessedEvents(Protocol):
    """Consumer-side dedup: (event id, consumer) is recorded once."""

    async def mark_processed(self, event_id: str, consumer: str) -> bool:
        """True the first time for this pair, False if it was already processed."""
        ...

    async def mark_processed_many(self, event_ids: Sequence[str], consumer: str) -> set[str]:
        """Record (event, consumer) for each event; the ids recorded now (the others were
        already processed)."""
        ...


OnCommit = Callable[[], Awaitable[None]]


class Transaction(Protocol):
    """The repositories of one open transaction, and nothing to end it with.

    Code that runs inside a transaction someone else opened (a consumer's `handle`, one
    step of a batch, a transition) takes a `Transaction`: it cannot commit, so the owner of
    the unit decides when the work becomes visible (ADR 0014)."""

    @property
    def users(self) -> UserRepository: ...

    @property
    def refresh_tokens(self) -> RefreshTokenRepository: ...

    @property
    def products(self) -> ProductRepository: ...

    @property
    def orders(self) -> OrderRepository: ...

    @property
    def idempotency(self) -> IdempotencyRepository: ...

    @property
    def outbox(self) -> OutboxRepository: ...

    @property
    def processed_events(self) -> ProcessedEvents: ...

    @property
    def notifications(self) -> NotificationRepository: ...

    @property
    def email_sends(self) -> EmailSendRepository: ...

    @property
    def stream_tickets(self) -> StreamTicketRepository: ...

    @property
    def webhook_endpoints(self) -> WebhookEndpointRepository: ...

    @property
    def webhook_deliveries(self) -> WebhookDeliveryRepository: ...

    def together(self) -> AbstractAsyncContextManager[None]:
        """`async with tx.together():` the repositories' plain inserts and updates inside
        (those that return nothing) may reach the database together when the block ends, as
        one statement: fewer round trips. Nothing inside may read what they write, and
        their errors may surface at the block's end."""
        ...

    def on_commit(self, callback: OnCommit) -> None:
        """Run `callback` after this transaction commits (cache invalidation, a task kick, a
        wake-up): never if it rolls back. Callbacks run in registration order, each once: a
        callback equal to one already registered (the same bound method) is not added again.
        A failing callback is logged and never undoes the commit, so each must be best effort
        with a safety net behind it (the outbox poll, a cache TTL)."""
        ...


class UnitOfWork(Transaction, Protocol):
    """One transaction that its opener owns: nothing is stored unless `commit()` is awaited
    inside the `async with` block; leaving the block without it rolls back."""

    def read_only(self) -> Self:
        """Declare, before entering, that this unit only reads (it may then skip the
        transaction; `commit()` is an error)."""
        ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    async def commit(self) -> None: ...

    async def rollback(self) -> None: ...


class UnitOfWorkFactory(Protocol):
    def __call__(self) -> UnitOfWork: ...
