"""Event dispatch: each relayed event goes to every consumer subscribed to its type, once.

Delivery is at least once (the relay may publish an event twice, a worker may die after a
consumer ran). Exactly-once *effects* come from the unique (event id, consumer) row in
`processed_events`: a consumer runs inside the unit of work that writes that row, so its
database work and the dedup record commit or roll back together.

Adding a consumer (in-app notifications, email, SSE push, webhooks) is one class with a
`name`, the `event_types` it wants and `handle(event, tx)`, registered in the composition
root (`Container.event_consumers`). `tx` is a `Transaction`: the consumer writes its rows
there and never commits (the dispatcher does, with the dedup row). Work that leaves the
database (SMTP, HTTP, a Redis publish, a task kick) never runs while the transaction is
open: the consumer registers it with `tx.on_commit(...)` (dropped if the transaction rolls
back), and a task with its own retries does the I/O (ADR 0014).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from backend.domain.events import DomainEvent
from backend.domain.ports import Clock, Transaction, UnitOfWorkFactory


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


@dataclass(slots=True)
class DispatchReport:
    handled: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    failed: dict[str, BaseException] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        return not self.failed


class ConsumersFailed(Exception):
    """Some consumers failed; the others' work is committed and will not be repeated."""

    def __init__(self, event: DomainEvent, failed: dict[str, BaseException]) -> None:
        names = ", ".join(sorted(failed))
        super().__init__(f"event {event.id} ({event.type}): consumer(s) {names} failed")
        self.failed = failed


def subscribers(event: DomainEvent, consumers: Sequence[EventConsumer]) -> list[EventConsumer]:
    return [consumer for consumer in consumers if event.type in consumer.event_types]


class EventDispatcher:
    """Built by the Container with the unit-of-work factory, the clock and the consumers."""

    def __init__(
        self, uow: UnitOfWorkFactory, clock: Clock, consumers: Sequence[EventConsumer]
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._consumers = tuple(consumers)

    async def dispatch(self, event: DomainEvent) -> DispatchReport:
        """Run every subscribed consumer at most once; a failing one does not stop the
        others. When none failed, the outbox row is marked handled (the relay's safety net
        stops)."""
        report = DispatchReport()
        for consumer in subscribers(event, self._consumers):
            try:
                first_time = await self.consume_once(event, consumer)
            except Exception as error:  # isolated per consumer; the caller retries the event
                report.failed[consumer.name] = error
                continue
            (report.handled if first_time else report.duplicates).append(consumer.name)
        if report.complete:
            async with self._uow() as uow:
                await uow.outbox.mark_handled([event.id], self._clock.now())
                await uow.commit()
        return report

    async def consume_once(self, event: DomainEvent, consumer: EventConsumer) -> bool:
        """False when this consumer already processed this event (nothing is done again)."""
        async with self._uow() as uow:
            if not await uow.processed_events.mark_processed(event.id, consumer.name):
                return False
            await consumer.handle(event, uow)
            await uow.commit()
        return True
