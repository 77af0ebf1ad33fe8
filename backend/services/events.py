"""Event dispatch: each relayed event goes to every consumer subscribed to its type, once.

Delivery is at least once (the relay may hand an event over twice, a worker may die after a
consumer ran). Exactly-once *effects* come from the unique (event id, consumer) row in
`processed_events`: a consumer runs inside the unit of work that writes that row, so its
database work and the dedup record commit or roll back together.

The relay hands over a batch of events at a time (ADR 0020). A consumer that can take a
batch (`BatchEventConsumer.handle_many`) gets all of its events of the batch in one unit
of work, dedup rows written in one statement; if that unit fails, each of those events is
tried again in a unit of its own, so one bad event fails alone. Other consumers get one
unit per event. An event whose consumers all succeeded is marked handled; the others stay
unhandled and the relay's safety net hands them over again later.

Adding a consumer (in-app notifications, email, SSE push, webhooks) is one class with a
`name`, the `event_types` it wants and `handle(event, tx)` (and `handle_many` when batches
pay), registered in the composition root (`Container.event_consumers`). `tx` is a
`Transaction`: the consumer writes its rows there and never commits (the dispatcher does,
with the dedup rows). Work that leaves the database (SMTP, HTTP, a Redis publish, a task
kick) never runs while the transaction is open: the consumer registers it with
`tx.on_commit(...)` (dropped if the transaction rolls back), and a task with its own
retries does the I/O (ADR 0014).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import structlog

from backend.core.logging import get_logger
from backend.domain.events import DomainEvent, OutboxRecord
from backend.domain.ports import Clock, Transaction, UnitOfWorkFactory

log = get_logger(__name__)


class EventConsumer(Protocol):
    @property
    def name(self) -> str:
        """Stable identifier, part of the dedup key: never rename a deployed consumer."""
        ...

    @property
    def event_types(self) -> frozenset[str]: ...

    async def handle(self, event: DomainEvent, tx: Transaction) -> None:
        """Do this consumer's work in `tx` (the dispatcher commits it with the dedup row)."""
        ...


@runtime_checkable
class BatchEventConsumer(EventConsumer, Protocol):
    async def handle_many(self, events: Sequence[DomainEvent], tx: Transaction) -> None:
        """`handle` for each event (in order) in one transaction, in a few statements."""
        ...


@dataclass(slots=True)
class DispatchReport:
    """What one event's dispatch did, by consumer name."""

    handled: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    failed: dict[str, BaseException] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        return not self.failed


@dataclass(slots=True)
class BatchReport:
    """What a batch's dispatch did: events per consumer, and the failures by event."""

    handled: Counter[str] = field(default_factory=Counter)
    duplicates: Counter[str] = field(default_factory=Counter)
    failed: dict[str, dict[str, BaseException]] = field(default_factory=dict)  # event: name
    completed: list[str] = field(default_factory=list)  # ids now marked handled

    def fail(self, event_id: str, consumer: str, error: BaseException) -> None:
        self.failed.setdefault(event_id, {})[consumer] = error


class ConsumersFailed(Exception):
    """Some consumers failed; the others' work is committed and will not be repeated."""

    def __init__(self, event: DomainEvent, failed: dict[str, BaseException]) -> None:
        names = ", ".join(sorted(failed))
        super().__init__(f"event {event.id} ({event.type}): consumer(s) {names} failed")
        self.failed = failed


def subscribers(event: DomainEvent, consumers: Sequence[EventConsumer]) -> list[EventConsumer]:
    return [consumer for consumer in consumers if event.type in consumer.event_types]


@contextmanager
def _about(record: OutboxRecord) -> Iterator[None]:
    """The event (and the request that caused it) on every log line of its consumer."""
    bound = {"event_id": record.event.id, "event_type": record.event.type}
    if record.request_id:
        bound["request_id"] = record.request_id
    with structlog.contextvars.bound_contextvars(**bound):
        yield


class EventDispatcher:
    """Built by the Container with the unit-of-work factory, the clock and the consumers."""

    def __init__(
        self, uow: UnitOfWorkFactory, clock: Clock, consumers: Sequence[EventConsumer]
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._consumers = tuple(consumers)

    async def dispatch(self, event: DomainEvent) -> DispatchReport:
        """One event to every subscribed consumer (see `dispatch_many`)."""
        record = OutboxRecord(event=event, attempts=0, published_at=None)
        batch = await self.dispatch_many([record])
        return DispatchReport(
            handled=[name for name, n in batch.handled.items() if n],
            duplicates=[name for name, n in batch.duplicates.items() if n],
            failed=batch.failed.get(event.id, {}),
        )

    async def dispatch_many(self, records: Sequence[OutboxRecord]) -> BatchReport:
        """Run every subscribed consumer of each event at most once; a failing one does not
        stop the others. The events none of whose consumers failed are marked handled (the
        relay's safety net stops for them) in one statement."""
        report = BatchReport()
        for consumer in self._consumers:
            mine = [r for r in records if r.event.type in consumer.event_types]
            if not mine:
                continue
            if (
                len(mine) > 1
                and isinstance(consumer, BatchEventConsumer)
                and await self._consume_batch(mine, consumer, report)
            ):
                continue
            for record in mine:
                with _about(record):
                    try:
                        first_time = await self.consume_once(record.event, consumer)
                    except Exception as error:  # isolated per event and consumer
                        report.fail(record.event.id, consumer.name, error)
                        log.warning(
                            "event_consumer_failed", consumer=consumer.name, error=repr(error)
                        )
                        continue
                    if first_time:  # under the event's id and its request's id
                        log.info("event_consumed", consumer=consumer.name)
                counts = report.handled if first_time else report.duplicates
                counts[consumer.name] += 1
        report.completed = [r.event.id for r in records if r.event.id not in report.failed]
        if report.completed:
            async with self._uow() as uow:
                await uow.outbox.mark_handled(report.completed, self._clock.now())
                await uow.commit()
        return report

    async def _consume_batch(
        self, records: Sequence[OutboxRecord], consumer: BatchEventConsumer, report: BatchReport
    ) -> bool:
        """All of `records` in one unit; False (nothing kept) when it failed."""
        try:
            async with self._uow() as uow:
                ids = [r.event.id for r in records]
                fresh = await uow.processed_events.mark_processed_many(ids, consumer.name)
                todo = [r.event for r in records if r.event.id in fresh]
                if todo:
                    await consumer.handle_many(todo, uow)
                await uow.commit()
        except Exception as error:  # one bad event must not fail its batch: one by one
            log.warning(
                "event_batch_failed",
                consumer=consumer.name,
                events=len(records),
                error=repr(error),
            )
            return False
        report.handled[consumer.name] += len(todo)
        report.duplicates[consumer.name] += len(records) - len(todo)
        log.info(
            "events_consumed",
            consumer=consumer.name,
            handled=len(todo),
            duplicates=len(records) - len(todo),
        )
        return True

    async def consume_once(self, event: DomainEvent, consumer: EventConsumer) -> bool:
        """False when this consumer already processed this event (nothing is done again)."""
        async with self._uow() as uow:
            if not await uow.processed_events.mark_processed(event.id, consumer.name):
                return False
            await consumer.handle(event, uow)
            await uow.commit()
        return True
