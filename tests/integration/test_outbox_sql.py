"""The outbox's relay bookkeeping and the relay service on real databases (SQLite and
PostgreSQL), including two relays racing over the same rows."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest
import structlog
from sqlalchemy import select

from backend.domain.events import DomainEvent
from backend.domain.ports import Transaction
from backend.infrastructure.db.engine import create_engine
from backend.infrastructure.db.tables import outbox_events
from backend.infrastructure.db.uow import SqlUnitOfWork
from backend.services.events import EventDispatcher
from backend.services.outbox import OutboxRelay, RelayPolicy
from tests.fakes.orders import SteppingClock


def event(n: int) -> DomainEvent:
    return DomainEvent(
        type="order.created",
        aggregate_type="order",
        aggregate_id=f"o{n}",
        payload={"n": n},
        occurred_at=datetime(2026, 11, 23, 12, 0, tzinfo=UTC) + timedelta(milliseconds=n),
    )


async def add_events(engine, n: int) -> list[str]:  # type: ignore[no-untyped-def]
    events = [event(i) for i in range(n)]
    async with SqlUnitOfWork(engine) as uow:
        for e in events:
            await uow.outbox.add(e)
        await uow.commit()
    return [e.id for e in events]


class SlowConsumer:
    """Records what it was handed; sleeps so two relays overlap while running batches."""

    name = "slow"
    event_types = frozenset({"order.created"})

    def __init__(self, seen: list[str]) -> None:
        self.seen = seen

    async def handle(self, event: DomainEvent, tx: Transaction) -> None:
        await self.handle_many([event], tx)

    async def handle_many(self, events: Sequence[DomainEvent], tx: Transaction) -> None:
        await asyncio.sleep(0.05)
        self.seen.extend(e.id for e in events)


async def test_request_id_is_stored_and_unhandled_rows_are_claimed_after_publishing(
    database_url: str,
) -> None:
    engine = create_engine(database_url)
    try:
        structlog.contextvars.bind_contextvars(request_id="req-42")
        try:
            first, second = await add_events(engine, 2)
        finally:
            structlog.contextvars.unbind_contextvars("request_id")
        published_at = datetime(2026, 11, 23, 12, 5, tzinfo=UTC)
        async with SqlUnitOfWork(engine) as uow:
            claimed = await uow.outbox.claim_unpublished(10)
            assert [r.request_id for r in claimed] == ["req-42", "req-42"]
            await uow.outbox.mark_published([first, second], published_at)
            await uow.outbox.record_attempt([first, second])
            await uow.outbox.mark_handled([first], published_at)
            await uow.commit()
        async with SqlUnitOfWork(engine) as uow:
            before = published_at + timedelta(seconds=1)
            stale = await uow.outbox.claim_unhandled(before, max_deliveries=5, limit=10)
            assert [r.event.id for r in stale] == [second]
            assert stale[0].attempts == 1 and stale[0].published_at == published_at
            assert await uow.outbox.claim_unhandled(published_at, 5, 10) == []  # not yet due
            assert await uow.outbox.claim_unhandled(before, 1, 10) == []  # delivered enough
    finally:
        await engine.dispose()


async def test_two_relays_racing_hand_every_event_over_exactly_once(database_url: str) -> None:
    """PostgreSQL: SKIP LOCKED gives the racers disjoint rows; SQLite: one writer at a time."""
    engine = create_engine(database_url)
    try:
        ids = await add_events(engine, 60)
        seen: list[str] = []
        policy = RelayPolicy(batch_size=7, max_batches=100)

        def factory() -> SqlUnitOfWork:
            return SqlUnitOfWork(engine)

        def relay() -> OutboxRelay:
            clock = SteppingClock()
            dispatcher = EventDispatcher(factory, clock, [SlowConsumer(seen)])
            return OutboxRelay(factory, dispatcher, clock, policy)

        reports = await asyncio.gather(relay().relay(), relay().relay())

        assert sorted(seen) == sorted(ids)  # every event, none twice
        assert sum(r.published for r in reports) == 60
        if database_url.startswith("postgresql"):  # SQLite's busy wait lets one writer hog it
            assert all(r.published > 0 for r in reports)  # both really ran at the same time
        async with engine.connect() as conn:
            rows = (
                await conn.execute(select(outbox_events.c.attempts, outbox_events.c.handled_at))
            ).all()
        assert sorted(row.attempts for row in rows) == [1] * 60
        assert all(row.handled_at is not None for row in rows)
    finally:
        await engine.dispose()


@pytest.mark.postgres
async def test_a_claimed_row_is_skipped_not_waited_for(pg_url: str) -> None:
    engine = create_engine(pg_url)
    try:
        ids = await add_events(engine, 4)
        async with SqlUnitOfWork(engine) as holder:
            held = await holder.outbox.claim_unpublished(2)
            async with SqlUnitOfWork(engine) as other:
                rest = await asyncio.wait_for(other.outbox.claim_unpublished(10), timeout=5)
            assert [r.event.id for r in held] == ids[:2]
            assert [r.event.id for r in rest] == ids[2:]
    finally:
        await engine.dispose()
