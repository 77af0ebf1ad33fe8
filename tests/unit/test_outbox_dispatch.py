"""Event dispatch over fakes: subscriptions, dedup per consumer, failure isolation."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest

from backend.domain.events import (
    ORDER_CREATED,
    ORDER_STATUS_CHANGED,
    DomainEvent,
    event_from_message,
    event_to_message,
)
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


def test_the_task_message_round_trips_an_event() -> None:
    event = DomainEvent(
        type=ORDER_STATUS_CHANGED,
        aggregate_type="order",
        aggregate_id="o1",
        payload={"from_status": "pending", "to_status": "validated", "total": "10.00"},
        occurred_at=datetime(2026, 11, 23, 12, 0, 0, 123456, tzinfo=UTC),
    )
    message = event_to_message(event)
    assert message["occurred_at"] == "2026-11-23T12:00:00.123456+00:00"
    assert event_from_message(message) == event
    naive = {**message, "occurred_at": "2026-11-23T12:00:00"}
    assert event_from_message(naive).occurred_at.tzinfo is UTC
