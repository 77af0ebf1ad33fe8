"""The outbox relay over fakes: batches, broker failures, crashes, the redelivery net."""

from __future__ import annotations

from datetime import timedelta

import pytest

from backend.domain.events import DomainEvent
from backend.services.outbox import OutboxRelay, RelayPolicy
from tests.fakes import FakeUnitOfWorkFactory
from tests.fakes.events import FakeEventPublisher as RecordingPublisher
from tests.fakes.orders import SteppingClock


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

    report = await OutboxRelay(db, broker, clock, policy()).relay()

    assert broker.sent == ids
    assert (report.published, report.redelivered, report.batches) == (5, 0, 3)
    assert db.commits - commits_before == 3  # one commit per batch of 2, 2, 1
    assert all(r.published_at is not None and r.attempts == 1 for r in db.outbox.rows.values())
    assert await OutboxRelay(db, RecordingPublisher(), clock, policy()).backlog() == (0, 0.0)


async def test_a_run_is_bounded_by_max_batches_and_the_next_run_continues(
    db: FakeUnitOfWorkFactory, clock: SteppingClock
) -> None:
    ids = await add_events(db, clock, 5)
    broker = RecordingPublisher()

    first = await OutboxRelay(db, broker, clock, policy(max_batches=2)).relay()
    assert (first.published, first.batches) == (4, 2)
    assert (await OutboxRelay(db, RecordingPublisher(), clock, policy()).backlog())[0] == 1

    second = await OutboxRelay(db, broker, clock, policy(max_batches=2)).relay()
    assert second.published == 1
    assert broker.sent == ids  # nothing twice


async def test_a_broker_refusing_mid_batch_keeps_the_rest_for_the_next_poll(
    db: FakeUnitOfWorkFactory, clock: SteppingClock
) -> None:
    ids = await add_events(db, clock, 5)

    report = await OutboxRelay(db, RecordingPublisher(capacity=3), clock, policy()).relay()

    assert report.broker_failed and report.published == 3
    unpublished = [r.event.id for r in db.outbox.rows.values() if r.published_at is None]
    assert unpublished == ids[3:]
    clock.advance(seconds=1)
    count, age = await OutboxRelay(db, RecordingPublisher(), clock, policy()).backlog()
    assert count == 2 and age >= 1

    retry = await OutboxRelay(db, RecordingPublisher(), clock, policy()).relay()
    assert retry.published == 2 and not retry.broker_failed


async def test_a_crash_between_publish_and_commit_republishes_the_batch(
    db: FakeUnitOfWorkFactory, clock: SteppingClock
) -> None:
    ids = await add_events(db, clock, 2)
    crashing = RecordingPublisher(crash_after_publish=True)

    with pytest.raises(RuntimeError):
        await OutboxRelay(db, crashing, clock, policy()).relay()
    assert all(r.published_at is None for r in db.outbox.rows.values())  # rolled back

    again = RecordingPublisher()
    await OutboxRelay(db, again, clock, policy()).relay()
    assert crashing.sent == ids and again.sent == ids  # at least once: consumers dedup


async def test_published_but_unhandled_events_are_redelivered_after_the_delay(
    db: FakeUnitOfWorkFactory, clock: SteppingClock
) -> None:
    handled, lost, fresh = await add_events(db, clock, 3)
    rules = policy(redeliver_after=timedelta(seconds=60), max_deliveries=2)
    await OutboxRelay(db, RecordingPublisher(), clock, rules).relay()
    db.outbox.handled[handled] = clock.now()  # its consumers finished; `lost` never ran

    clock.advance(seconds=30)
    early = RecordingPublisher()
    assert (await OutboxRelay(db, early, clock, rules).relay()).redelivered == 0

    clock.advance(seconds=31)
    async with db() as uow:  # `fresh` was just re-published by someone else: not stale yet
        await uow.outbox.mark_published([fresh], clock.now())
        await uow.commit()
    broker = RecordingPublisher()
    report = await OutboxRelay(db, broker, clock, rules).relay()
    assert broker.sent == [lost] and report.redelivered == 1
    assert db.outbox.rows[lost].attempts == 2

    clock.advance(seconds=61)  # max_deliveries=2 reached: the net stops for `lost`
    last = RecordingPublisher()
    await OutboxRelay(db, last, clock, rules).relay()
    assert last.sent == [fresh]
