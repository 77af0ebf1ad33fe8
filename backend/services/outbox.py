"""The outbox relay: hand committed events to the broker, at least once.

Each batch is one unit of work: claim rows (`FOR UPDATE SKIP LOCKED` on PostgreSQL, the
single SQLite writer otherwise), publish each as a task whose id is the event id, mark the
handed-over rows published, commit. A crash between publish and commit re-publishes the
batch; consumers dedup on (event id, consumer), so that costs work, never a duplicate effect.

A second pass re-publishes events that were published but never handled by their consumers
(`handled_at` unset) after `redeliver_after`: the embedded broker loses a message whose
worker was SIGKILLed, and Redis only restores it after its visibility timeout (an hour).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from backend.domain.events import OutboxRecord
from backend.domain.ports import Clock, OutboxRepository, UnitOfWorkFactory
from backend.services.batches import BatchBudget, run_batches


class EventPublisher(Protocol):
    async def publish(self, records: Sequence[OutboxRecord]) -> list[str]:
        """Hand each event to the broker as a task whose id is the event id, in order,
        stopping at the first failure; the ids of the events handed over."""
        ...


@dataclass(frozen=True, slots=True)
class RelayPolicy:
    batch_size: int = 200
    max_batches: int = 50
    redeliver_after: timedelta = timedelta(seconds=60)
    max_deliveries: int = 10


@dataclass(slots=True)
class RelayReport:
    published: int = 0
    redelivered: int = 0
    batches: int = 0
    broker_failed: bool = False


Claim = Callable[[OutboxRepository, datetime, int], Awaitable[Sequence[OutboxRecord]]]


class OutboxRelay:
    """Built by the Container with the unit-of-work factory, the broker, the clock and its
    policy; `relay()` is the Beat job and the after-commit kick's task."""

    def __init__(
        self,
        uow: UnitOfWorkFactory,
        publisher: EventPublisher,
        clock: Clock,
        policy: RelayPolicy,
    ) -> None:
        self._uow = uow
        self._publisher = publisher
        self._clock = clock
        self._policy = policy

    async def relay(self) -> RelayReport:
        """Drain unpublished events, then re-publish unhandled ones, in bounded batches."""
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
        if not report.broker_failed:
            report.redelivered = await self._drain(stale, report)
        return report

    async def backlog(self) -> tuple[int, float]:
        """(unpublished events, age in seconds of the oldest): the API's backlog gauges."""
        async with self._uow() as uow:
            return await uow.outbox.backlog(self._clock.now())

    async def _drain(self, claim: Claim, report: RelayReport) -> int:
        async def batch(limit: int) -> int:
            claimed, handed = await self._relay_batch(claim, limit)
            if claimed:
                report.batches += 1
            if handed < claimed:  # the broker refused: stop, the next poll retries
                report.broker_failed = True
            return handed

        budget = BatchBudget(self._policy.batch_size, self._policy.max_batches - report.batches)
        return (await run_batches(batch, budget)).taken

    async def _relay_batch(self, claim: Claim, limit: int) -> tuple[int, int]:
        async with self._uow() as uow:
            records = await claim(uow.outbox, self._clock.now(), limit)
            if not records:
                return 0, 0
            handed = await self._publisher.publish(records)
            if handed:
                await uow.outbox.mark_published(handed, self._clock.now())
                await uow.outbox.record_attempt(handed)  # attempts = deliveries to the broker
                await uow.commit()
        return len(records), len(handed)
