"""The outbox relay: hand committed events to their consumers, at least once.

Each batch (ADR 0020): claim rows (`FOR UPDATE SKIP LOCKED` on PostgreSQL, the single
SQLite writer otherwise) and mark them published with one more delivery attempt, commit
(the claim is now a lease other relays skip), then run the batch through the dispatcher in
this process, which marks handled every event whose consumers all succeeded. No broker
message per event: a batch of events costs a few statements per consumer.

A crash after the claim's commit leaves the batch published but unhandled: the second pass
hands such events over again (`handled_at` unset) after `redeliver_after`, at most
`max_deliveries` times, and so retries the events whose consumers failed. Consumers dedup
on (event id, consumer), so a second delivery costs work, never a duplicate effect.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from backend.domain.events import OutboxRecord
from backend.domain.ports import Clock, OutboxRepository, UnitOfWorkFactory
from backend.services.batches import BatchBudget, run_batches
from backend.services.events import BatchReport


class EventHandOver(Protocol):
    async def dispatch_many(self, records: Sequence[OutboxRecord]) -> BatchReport:
        """Run the events through their consumers; mark handled those that succeeded."""
        ...


@dataclass(frozen=True, slots=True)
class RelayPolicy:
    batch_size: int = 200
    max_batches: int = 50
    redeliver_after: timedelta = timedelta(seconds=60)
    max_deliveries: int = 10


@dataclass(slots=True)
class RelayReport:
    published: int = 0  # events handed over for the first time
    redelivered: int = 0  # events handed over again (crashed or failed before)
    failed: int = 0  # events a consumer failed (left for the redelivery pass)
    batches: int = 0
    handled: Counter[str] = field(default_factory=Counter)  # by consumer
    duplicates: Counter[str] = field(default_factory=Counter)
    failures: Counter[str] = field(default_factory=Counter)  # by consumer


Claim = Callable[[OutboxRepository, datetime, int], Awaitable[Sequence[OutboxRecord]]]


class OutboxRelay:
    """Built by the Container with the unit-of-work factory, the dispatcher, the clock and
    its policy; `relay()` is the Beat job and the after-commit kick's task."""

    def __init__(
        self,
        uow: UnitOfWorkFactory,
        dispatcher: EventHandOver,
        clock: Clock,
        policy: RelayPolicy,
    ) -> None:
        self._uow = uow
        self._dispatcher = dispatcher
        self._clock = clock
        self._policy = policy

    async def relay(self) -> RelayReport:
        """Drain unpublished events, then hand over unhandled ones again, in bounded
        batches."""
        policy = self._policy
        report = RelayReport()

        async def fresh(
            outbox: OutboxRepository, _now: datetime, limit: int
        ) -> Sequence[OutboxRecord]:
            return await outbox.claim_unpublished(limit)

        async def stale(
            outbox: OutboxRepository, now: datetime, limit: int
        ) -> Sequence[OutboxRecord]:
            cutoff = now - policy.redeliver_after
            return await outbox.claim_unhandled(cutoff, policy.max_deliveries, limit)

        report.published = await self._drain(fresh, report)
        report.redelivered = await self._drain(stale, report)
        return report

    async def backlog(self) -> tuple[int, float]:
        """(unpublished events, age in seconds of the oldest): the API's backlog gauges."""
        async with self._uow() as uow:
            return await uow.outbox.backlog(self._clock.now())

    async def _drain(self, claim: Claim, report: RelayReport) -> int:
        async def batch(limit: int) -> int:
            records = await self._claim(claim, limit)
            if not records:
                return 0
            report.batches += 1
            dispatched = await self._dispatcher.dispatch_many(records)
            report.failed += len(dispatched.failed)
            report.handled.update(dispatched.handled)
            report.duplicates.update(dispatched.duplicates)
            for consumers in dispatched.failed.values():
                report.failures.update(consumers.keys())
            return len(records)

        budget = BatchBudget(self._policy.batch_size, self._policy.max_batches - report.batches)
        return (await run_batches(batch, budget)).taken

    async def _claim(self, claim: Claim, limit: int) -> Sequence[OutboxRecord]:
        """Lease a batch: published (so no other relay claims it) with one more attempt,
        committed before any consumer runs (their units must not wait on these locks)."""
        async with self._uow() as uow:
            records = await claim(uow.outbox, self._clock.now(), limit)
            if records:
                ids = [r.event.id for r in records]
                await uow.outbox.mark_published(ids, self._clock.now())
                await uow.outbox.record_attempt(ids)  # attempts = deliveries to consumers
                await uow.commit()
        return records
