"""Event dispatch over fakes: subscriptions, dedup per consumer, batches, failure isolation."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pytest

from backend.domain.events import ORDER_CREATED, ORDER_STATUS_CHANGED, DomainEvent, OutboxRecord
from backend.domain.ports import Transaction
from backend.services.events import EventDispatcher
from tests.fakes import FakeUnitOfWorkFactory
from tests.fakes.orders import SteppingClock


@dataclass
class WritingConsumer:
    """Writes a follow-up event in the consumer's transaction (a stand-in for e.g. an in-app
    notification row), so a rollback is visible."""

    name: str
    event_types: frozenset[str]
    fail_times: int = 0
    runs: list[str] = field(default_factory=list)

    async def handle(self, event: DomainEvent, uow: Transaction) -> None:
        self.runs.append(event.id)
        await uow.outbox.add(
            DomainEvent(
                type=f"{self.name}.done",
                aggregate_type="order",
                aggregate_id=event.aggregate_id,
                payload={"source": event.id},
            )
        )
        if self.fail_times > 0:
            self.fail_times -= 1
            raise ConnectionError("transient")


def order_event(event_type: str = ORDER_CREATED) -> DomainEvent:
    return DomainEvent(type=event_type, aggregate_type="order", aggregate_id="o1", payload={})


def follow_ups(db: FakeUnitOfWorkFactory, name: str) -> int:
    return sum(1 for e in db.outbox.events if e.type == f"{name}.done")


@pytest.fixture
def db() -> FakeUnitOfWorkFactory:
    return FakeUnitOfWorkFactory()


async def test_only_subscribed_consumers_run_and_the_event_is_marked_handled(
    db: FakeUnitOfWorkFactory,
) -> None:
    created = WritingConsumer("mail", frozenset({ORDER_CREATED}))
    changed = WritingConsumer("push", frozenset({ORDER_STATUS_CHANGED}))
    event = order_event()

    report = await EventDispatcher(db, SteppingClock(), [created, changed]).dispatch(event)

    assert report.handled == ["mail"] and not report.duplicates and report.complete
    assert created.runs == [event.id] and changed.runs == []
    assert (event.id, "mail") in db.processed_events.seen
    assert event.id in db.outbox.handled


async def test_an_event_without_subscribers_is_simply_handled(db: FakeUnitOfWorkFactory) -> None:
    event = order_event("catalog.something")
    report = await EventDispatcher(db, SteppingClock(), []).dispatch(event)
    assert report.complete and report.handled == []
    assert event.id in db.outbox.handled


async def test_a_redelivered_event_never_runs_a_consumer_twice(db: FakeUnitOfWorkFactory) -> None:
    consumer = WritingConsumer("mail", frozenset({ORDER_CREATED}))
    event = order_event()

    await EventDispatcher(db, SteppingClock(), [consumer]).dispatch(event)
    again = await EventDispatcher(db, SteppingClock(), [consumer]).dispatch(event)

    assert again.duplicates == ["mail"] and again.handled == []
    assert consumer.runs == [event.id]
    assert follow_ups(db, "mail") == 1


async def test_a_failing_consumer_rolls_back_alone_and_only_it_runs_on_retry(
    db: FakeUnitOfWorkFactory,
) -> None:
    flaky = WritingConsumer("webhook", frozenset({ORDER_CREATED}), fail_times=1)
    steady = WritingConsumer("mail", frozenset({ORDER_CREATED}))
    event = order_event()

    first = await EventDispatcher(db, SteppingClock(), [flaky, steady]).dispatch(event)
    assert not first.complete and set(first.failed) == {"webhook"}
    assert isinstance(first.failed["webhook"], ConnectionError)
    assert first.handled == ["mail"]
    assert follow_ups(db, "webhook") == 0  # its write rolled back with its dedup row
    assert (event.id, "webhook") not in db.processed_events.seen
    assert event.id not in db.outbox.handled  # the relay's net will redeliver it

    second = await EventDispatcher(db, SteppingClock(), [flaky, steady]).dispatch(event)
    assert second.complete and second.handled == ["webhook"] and second.duplicates == ["mail"]
    assert (follow_ups(db, "webhook"), follow_ups(db, "mail")) == (1, 1)
    assert event.id in db.outbox.handled


async def test_consume_once_answers_whether_it_ran(db: FakeUnitOfWorkFactory) -> None:
    consumer = WritingConsumer("mail", frozenset({ORDER_CREATED}))
    event = order_event()
    assert await EventDispatcher(db, SteppingClock(), []).consume_once(event, consumer) is True
    assert await EventDispatcher(db, SteppingClock(), []).consume_once(event, consumer) is False


@dataclass
class BatchConsumer(WritingConsumer):
    """Takes a batch in one transaction; an event whose payload says `poison` fails it."""

    batches: list[list[str]] = field(default_factory=list)

    async def handle_many(self, events: Sequence[DomainEvent], uow: Transaction) -> None:
        self.batches.append([e.id for e in events])
        for event in events:
            await self.handle(event, uow)

    async def handle(self, event: DomainEvent, uow: Transaction) -> None:
        await super().handle(event, uow)
        if event.payload.get("poison"):
            raise ValueError("cannot handle this one")


def records(*events: DomainEvent) -> list[OutboxRecord]:
    return [OutboxRecord(event=e, attempts=1, published_at=None) for e in events]


async def test_a_batch_consumer_takes_the_batch_in_one_unit_and_skips_what_it_saw(
    db: FakeUnitOfWorkFactory,
) -> None:
    batch = BatchConsumer("push", frozenset({ORDER_CREATED}))
    single = WritingConsumer("mail", frozenset({ORDER_CREATED}))
    events = [order_event() for _ in range(4)]
    other = order_event(ORDER_STATUS_CHANGED)  # nobody here wants it
    dispatcher = EventDispatcher(db, SteppingClock(), [batch, single])
    await dispatcher.consume_once(events[1], batch)  # seen before (a redelivery)
    commits = db.commits

    report = await dispatcher.dispatch_many(records(*events, other))

    assert batch.batches == [[events[0].id, events[2].id, events[3].id]]
    assert (report.handled["push"], report.duplicates["push"]) == (3, 1)
    assert report.handled["mail"] == 4 and single.runs == [e.id for e in events]
    assert not report.failed and set(report.completed) == {e.id for e in [*events, other]}
    assert set(db.outbox.handled) == set(report.completed)
    # one unit for the batch consumer, one per event for the other, one to mark handled
    assert db.commits - commits == 1 + 4 + 1


async def test_a_failing_batch_is_retried_event_by_event_and_the_bad_one_fails_alone(
    db: FakeUnitOfWorkFactory,
) -> None:
    batch = BatchConsumer("push", frozenset({ORDER_CREATED}))
    good = [order_event() for _ in range(3)]
    bad = DomainEvent(
        type=ORDER_CREATED, aggregate_type="order", aggregate_id="o2", payload={"poison": 1}
    )

    report = await EventDispatcher(db, SteppingClock(), [batch]).dispatch_many(
        records(good[0], bad, good[1], good[2])
    )

    assert set(report.failed) == {bad.id} and isinstance(report.failed[bad.id]["push"], ValueError)
    assert report.handled["push"] == 3
    assert follow_ups(db, "push") == 3  # the failed batch's writes rolled back, then one each
    assert {e.id for e in good} == set(db.outbox.handled)  # the bad one waits for the net
    assert (bad.id, "push") not in db.processed_events.seen
