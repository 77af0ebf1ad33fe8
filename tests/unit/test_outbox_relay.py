"""The outbox relay over fakes: batches, broker failures, crashes, the redelivery net."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

import pytest

from backend.domain.events import DomainEvent, OutboxRecord
from backend.services.outbox import RelayPolicy, outbox_backlog, relay_outbox
from tests.fakes import FakeUnitOfWorkFactory
from tests.fakes.orders import SteppingClock


class RecordingPublisher:
    """A broker that accepts `capacity` messages, then refuses (None: unlimited)."""

    def __init__(self, capacity: int | None = None, crash_after_publish: bool = False) -> None:
        self.capacity = capacity
        self.crash_after_publish = crash_after_publish
        self.sent: list[str] = []

    async def publish(self, records: Sequence[OutboxRecord]) -> list[str]:
        handed = []
        for record in records:
            if self.capacity is not None and len(self.sent) >= self.capacity:
                break
            self.sent.append(record.event.id)
            handed.append(record.event.id)
        if self.crash_after_publish:
            raise RuntimeError("process died before the commit")
        return handed


async def add_events(db: FakeUnitOfWorkFactory, clock: SteppingClock, n: int) -> list[str]:
    ids = []
    async with db() as uow:
        for i in range(n):
            event = DomainEvent(
                type="order.created",
                aggregate_type="order",
                aggregate_id=f"order-{i}",
                payload={"i": i},
                occurred_at=clock.now(),
            )
            await uow.outbox.add(event)
            ids.append(event.id)
        await uow.commit()
    return ids


@pytest.fixture
def db() -> FakeUnitOfWorkFactory:
    return FakeUnitOfWorkFactory()


@pytest.fixture
def clock() -> SteppingClock:
    return SteppingClock()


def policy(**overrides: object) -> RelayPolicy:
    values: dict[str, object] = {"batch_size": 2, "max_batches": 10}
    values.update(overrides)
    return RelayPolicy(**values)  # type: ignore[arg-type]


async def test_relay_publishes_every_event_oldest_first_in_batches_and_marks_them(
    db: FakeUnitOfWorkFactory, clock: SteppingClock
) -> None:
    ids = await add_events(db, clock, 5)
    commits_before = db.commits
    broker = RecordingPublisher()

    report = await relay_outbox(db, broker, clock, policy())

    assert broker.sent == ids
    assert (report.published, report.redelivered, report.batches) == (5, 0, 3)
    assert db.commits - commits_before == 3  # one commit per batch of 2, 2, 1
    assert all(r.published_at is not None and r.attempts == 1 for r in db.outbox.rows.values())
    assert await outbox_backlog(db, clock) == (0, 0.0)


async def test_a_run_is_bounded_by_max_batches_and_the_next_run_continues(
    db: FakeUnitOfWorkFactory, clock: SteppingClock
) -> None:
    ids = await add_events(db, clock, 5)
    broker = RecordingPublisher()

    first = await relay_outbox(db, broker, clock, policy(max_batches=2))
    assert (first.published, first.batches) == (4, 2)
    assert (await outbox_backlog(db, clock))[0] == 1

    second = await relay_outbox(db, broker, clock, policy(max_batches=2))
    assert second.published == 1
    assert broker.sent == ids  # nothing twice


async def test_a_broker_refusing_mid_batch_keeps_the_rest_for_the_next_poll(
    db: FakeUnitOfWorkFactory, clock: SteppingClock
) -> None:
    ids = await add_events(db, clock, 5)

    report = await relay_outbox(db, RecordingPublisher(capacity=3), clock, policy())

    assert report.broker_failed and report.published == 3
    unpublished = [r.event.id for r in db.outbox.rows.values() if r.published_at is None]
    assert unpublished == ids[3:]
    clock.advance(seconds=1)
    count, age = await outbox_backlog(db, clock)
    assert count == 2 and age >= 1

    retry = await relay_outbox(db, RecordingPublisher(), clock, policy())
    assert retry.published == 2 and not retry.broker_failed


async def test_a_crash_between_publish_and_commit_republishes_the_batch(
    db: FakeUnitOfWorkFactory, clock: SteppingClock
) -> None:
    ids = await add_events(db, clock, 2)
    crashing = RecordingPublisher(crash_after_publish=True)

    with pytest.raises(RuntimeError):
        await relay_outbox(db, crashing, clock, policy())
    assert all(r.published_at is None for r in db.outbox.rows.values())  # rolled back

    again = RecordingPublisher()
    await relay_outbox(db, again, clock, policy())
    assert crashing.sent == ids and again.sent == ids  # at least once: consumers dedup


async def test_published_but_unhandled_events_are_redelivered_after_the_delay(
    db: FakeUnitOfWorkFactory, clock: SteppingClock
) -> None:
    handled, lost, fresh = await add_events(db, clock, 3)
    rules = policy(redeliver_after=timedelta(seconds=60), max_deliveries=2)
    await relay_outbox(db, RecordingPublisher(), clock, rules)
    db.outbox.handled[handled] = clock.now()  # its consumers finished; `lost` never ran

    clock.advance(seconds=30)
    early = RecordingPublisher()
    assert (await relay_outbox(db, early, clock, rules)).redelivered == 0

    clock.advance(seconds=31)
    async with db() as uow:  # `fresh` was just re-published by someone else: not stale yet
        await uow.outbox.mark_published([fresh], clock.now())
        await uow.commit()
    broker = RecordingPublisher()
    report = await relay_outbox(db, broker, clock, rules)
    assert broker.sent == [lost] and report.redelivered == 1
    assert db.outbox.rows[lost].attempts == 2

    clock.advance(seconds=61)  # max_deliveries=2 reached: the net stops for `lost`
    last = RecordingPublisher()
    await relay_outbox(db, last, clock, rules)
    assert last.sent == [fresh]
