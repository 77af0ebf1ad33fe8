"""The outbox relay over fakes: leased batches run through the dispatcher in process,
bounded runs, crashes and failing consumers left to the redelivery net."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta

import pytest

from backend.domain.events import DomainEvent, OutboxRecord
from backend.domain.ports import Transaction
from backend.services.events import BatchReport, EventDispatcher
from backend.services.outbox import OutboxRelay, RelayPolicy
from tests.fakes import FakeUnitOfWorkFactory
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


@dataclass
class Recorder:
    """A batch consumer that records each batch; it fails on the events named in `fail`."""

    name: str = "recorder"
    event_types: frozenset[str] = frozenset({"order.created"})
    batches: list[list[str]] = field(default_factory=list)
    fail: set[str] = field(default_factory=set)

    @property
    def seen(self) -> list[str]:
        return [i for batch in self.batches for i in batch]

    async def handle(self, event: DomainEvent, tx: Transaction) -> None:
        await self.handle_many([event], tx)

    async def handle_many(self, events: Sequence[DomainEvent], tx: Transaction) -> None:
        self.batches.append([e.id for e in events])
        if self.fail & {e.id for e in events}:
            raise ConnectionError("transient")


class Crashing:
    """A dispatcher whose process dies while it runs the batch."""

    async def dispatch_many(self, records: Sequence[OutboxRecord]) -> BatchReport:
        raise RuntimeError("process died")


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


def relay(db: FakeUnitOfWorkFactory, clock: SteppingClock, consumer: Recorder, **rules: object):  # type: ignore[no-untyped-def]
    return OutboxRelay(db, EventDispatcher(db, clock, [consumer]), clock, policy(**rules))


async def test_the_relay_hands_batches_oldest_first_to_the_consumers_and_marks_them(
    db: FakeUnitOfWorkFactory, clock: SteppingClock
) -> None:
    ids = await add_events(db, clock, 5)
    consumer = Recorder()

    report = await relay(db, clock, consumer).relay()

    assert consumer.batches == [ids[0:2], ids[2:4], [ids[4]]]
    assert (report.published, report.redelivered, report.batches) == (5, 0, 3)
    assert report.handled == {"recorder": 5} and report.failed == 0
    assert all(r.published_at is not None and r.attempts == 1 for r in db.outbox.rows.values())
    assert set(db.outbox.handled) == set(ids)
    assert await relay(db, clock, Recorder()).backlog() == (0, 0.0)


async def test_a_run_is_bounded_by_max_batches_and_the_next_run_continues(
    db: FakeUnitOfWorkFactory, clock: SteppingClock
) -> None:
    ids = await add_events(db, clock, 5)
    consumer = Recorder()

    first = await relay(db, clock, consumer, max_batches=2).relay()
    assert (first.published, first.batches) == (4, 2)
    assert (await relay(db, clock, consumer).backlog())[0] == 1

    second = await relay(db, clock, consumer, max_batches=2).relay()
    assert second.published == 1
    assert consumer.seen == ids  # nothing twice


async def test_a_crash_after_the_claim_leaves_the_batch_to_the_redelivery_net(
    db: FakeUnitOfWorkFactory, clock: SteppingClock
) -> None:
    ids = await add_events(db, clock, 2)
    rules = policy(redeliver_after=timedelta(seconds=60))

    with pytest.raises(RuntimeError):
        await OutboxRelay(db, Crashing(), clock, rules).relay()
    assert all(r.published_at is not None for r in db.outbox.rows.values())  # leased
    assert not db.outbox.handled

    consumer = Recorder()
    early = await OutboxRelay(db, EventDispatcher(db, clock, [consumer]), clock, rules).relay()
    assert early.redelivered == 0 and consumer.seen == []  # another relay may still hold it

    clock.advance(seconds=61)
    late = await OutboxRelay(db, EventDispatcher(db, clock, [consumer]), clock, rules).relay()
    assert late.redelivered == 2 and consumer.seen == ids
    assert set(db.outbox.handled) == set(ids)
    assert all(r.attempts == 2 for r in db.outbox.rows.values())


async def test_a_failing_consumer_leaves_only_its_event_unhandled_until_the_net_retries_it(
    db: FakeUnitOfWorkFactory, clock: SteppingClock
) -> None:
    ok, bad, also_ok = await add_events(db, clock, 3)
    consumer = Recorder(fail={bad})
    rules = {"batch_size": 3, "redeliver_after": timedelta(seconds=60), "max_deliveries": 2}

    report = await relay(db, clock, consumer, **rules).relay()
    assert report.failed == 1 and report.failures == {"recorder": 1}
    assert report.handled == {"recorder": 2}
    assert set(db.outbox.handled) == {ok, also_ok}

    consumer.fail.clear()
    clock.advance(seconds=61)
    consumer.batches.clear()
    retry = await relay(db, clock, consumer, **rules).relay()
    assert retry.redelivered == 1 and consumer.seen == [bad]  # the others are not run again
    assert set(db.outbox.handled) == {ok, bad, also_ok}


async def test_published_but_unhandled_events_are_redelivered_up_to_max_deliveries(
    db: FakeUnitOfWorkFactory, clock: SteppingClock
) -> None:
    [lost] = await add_events(db, clock, 1)
    rules = policy(redeliver_after=timedelta(seconds=60), max_deliveries=2)
    with pytest.raises(RuntimeError):
        await OutboxRelay(db, Crashing(), clock, rules).relay()

    clock.advance(seconds=61)
    with pytest.raises(RuntimeError):
        await OutboxRelay(db, Crashing(), clock, rules).relay()
    assert db.outbox.rows[lost].attempts == 2

    clock.advance(seconds=61)  # max_deliveries=2 reached: the net stops for `lost`
    consumer = Recorder()
    report = await OutboxRelay(db, EventDispatcher(db, clock, [consumer]), clock, rules).relay()
    assert report.redelivered == 0 and consumer.seen == []
