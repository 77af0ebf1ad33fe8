"""The purge job: rows whose purpose has passed, deleted in bounded batches."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from backend.domain.ports import Clock, Transaction, UnitOfWorkFactory
from backend.services.batches import BatchBudget, run_batches
from backend.services.order_workflow import WorkflowPolicy

Purge = Callable[[Transaction, datetime, int], Awaitable[int]]


@dataclass(slots=True)
class PurgeReport:
    idempotency_keys: int = 0
    refresh_tokens: int = 0
    outbox_events: int = 0
    stream_tickets: int = 0


class Maintenance:
    """Built by the Container with the unit-of-work factory, the clock and its policy."""

    def __init__(self, uow: UnitOfWorkFactory, clock: Clock, policy: WorkflowPolicy) -> None:
        self._uow = uow
        self._clock = clock
        self._policy = policy

    async def purge_expired(self) -> PurgeReport:
        """Idempotency keys past their 24 h, expired refresh tokens (a spent one that has not
        expired stays: presenting it again is how token theft is detected), and outbox
        events every consumer handled more than `outbox_retention` ago, expired stream tickets."""
        policy = self._policy

        async def keys(tx: Transaction, now: datetime, limit: int) -> int:
            return await tx.idempotency.purge(now - policy.idempotency_ttl, limit)

        async def tokens(tx: Transaction, now: datetime, limit: int) -> int:
            return await tx.refresh_tokens.purge(now, limit)

        async def events(tx: Transaction, now: datetime, limit: int) -> int:
            return await tx.outbox.purge_handled(now - policy.outbox_retention, limit)

        async def tickets(tx: Transaction, now: datetime, limit: int) -> int:
            return await tx.stream_tickets.purge(now, limit)

        return PurgeReport(
            idempotency_keys=await self._purge(keys),
            refresh_tokens=await self._purge(tokens),
            outbox_events=await self._purge(events),
            stream_tickets=await self._purge(tickets),
        )

    async def _purge(self, purge: Purge) -> int:
        """Bounded batches, one commit each: never one long transaction holding the table."""

        async def batch(limit: int) -> int:
            async with self._uow() as tx:
                deleted = await purge(tx, self._clock.now(), limit)
                await tx.commit()
            return deleted

        budget = BatchBudget(self._policy.batch_size, self._policy.max_batches)
        return (await run_batches(batch, budget)).taken
