"""The SQL unit of work against real databases: atomicity, the outbox, outages."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest

from backend.domain.errors import DependencyUnavailable, TransactionAborted
from backend.domain.events import DomainEvent
from backend.infrastructure.db.engine import create_engine
from backend.infrastructure.db.uow import SqlUnitOfWork
from tests.helpers.orders import seed_product


def event(n: int = 0) -> DomainEvent:
    return DomainEvent(
        type="order.created", aggregate_type="order", aggregate_id=f"o{n}", payload={"n": n}
    )


async def test_nothing_is_stored_without_commit(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        async with SqlUnitOfWork(engine) as uow:
            await uow.outbox.add(event())
        async with SqlUnitOfWork(engine) as uow:
            assert await uow.outbox.backlog(datetime.now(UTC)) == (0, 0.0)
    finally:
        await engine.dispose()


async def test_a_failure_after_the_outbox_write_rolls_it_back(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        with pytest.raises(RuntimeError):
            async with SqlUnitOfWork(engine) as uow:
                await uow.outbox.add(event())
                raise RuntimeError("boom")
        async with SqlUnitOfWork(engine) as uow:
            count, _ = await uow.outbox.backlog(datetime.now(UTC))
        assert count == 0
    finally:
        await engine.dispose()


async def test_commit_stores_events_then_runs_on_commit_callbacks_once_in_order(
    database_url: str,
) -> None:
    engine = create_engine(database_url)
    seen: list[str] = []

    async def kick() -> None:
        seen.append("kick")

    async def backlog_after_commit() -> None:  # runs after the commit: the rows are visible
        async with SqlUnitOfWork(engine) as other:
            seen.append(f"backlog={(await other.outbox.backlog(datetime.now(UTC)))[0]}")

    try:
        first, second = event(1), event(2)
        async with SqlUnitOfWork(engine) as uow:
            await uow.outbox.add(first)
            uow.on_commit(backlog_after_commit)
            uow.on_commit(kick)
            await uow.outbox.add(second)
            uow.on_commit(kick)  # the same callable again: still once
            assert seen == []
            await uow.commit()
        assert seen == ["backlog=2", "kick"]
        async with SqlUnitOfWork(engine) as uow:
            claimed = await uow.outbox.claim_unpublished(10)
            assert [r.event.id for r in claimed] == [first.id, second.id]
            assert claimed[0].event.payload == {"n": 1}
            assert claimed[0].event.occurred_at.tzinfo is not None
            await uow.outbox.record_attempt([first.id])
            await uow.outbox.mark_published([first.id], datetime.now(UTC))
            await uow.commit()
        async with SqlUnitOfWork(engine) as uow:
            count, age = await uow.outbox.backlog(datetime.now(UTC))
            assert count == 1
            assert age >= 0
    finally:
        await engine.dispose()


async def test_callbacks_of_a_rolled_back_or_abandoned_unit_never_run(database_url: str) -> None:
    engine = create_engine(database_url)
    ran: list[str] = []

    def callback(name: str):  # type: ignore[no-untyped-def]
        async def run() -> None:
            ran.append(name)

        return run

    try:
        async with SqlUnitOfWork(engine) as uow:
            uow.on_commit(callback("rolled back"))
            await uow.rollback()
        async with SqlUnitOfWork(engine) as uow:
            uow.on_commit(callback("abandoned"))  # left without commit
        with pytest.raises(RuntimeError):
            async with SqlUnitOfWork(engine) as uow:
                uow.on_commit(callback("failed"))
                raise RuntimeError("the use case failed")
        async with SqlUnitOfWork(engine) as uow:
            uow.on_commit(callback("committed"))
            await uow.commit()
        assert ran == ["committed"]
    finally:
        await engine.dispose()


async def test_a_failing_callback_never_undoes_the_commit_nor_stops_the_next(
    database_url: str,
) -> None:
    engine = create_engine(database_url)
    ran: list[str] = []

    async def broken() -> None:
        raise ConnectionError("broker down")

    async def next_one() -> None:
        ran.append("next")

    try:
        async with SqlUnitOfWork(engine) as uow:
            await uow.outbox.add(event())
            uow.on_commit(broken)
            uow.on_commit(next_one)
            await uow.commit()
        assert ran == ["next"]
        async with SqlUnitOfWork(engine) as uow:
            assert (await uow.outbox.backlog(datetime.now(UTC)))[0] == 1
    finally:
        await engine.dispose()


async def test_processed_events_are_recorded_once_per_consumer(database_url: str) -> None:
    engine = create_engine(database_url)
    e = event()
    try:
        async with SqlUnitOfWork(engine) as uow:
            assert await uow.processed_events.mark_processed(e.id, "email") is True
            assert await uow.processed_events.mark_processed(e.id, "email") is False
            assert await uow.processed_events.mark_processed(e.id, "webhook") is True
            others = [event().id for _ in range(3)]
            many = await uow.processed_events.mark_processed_many([e.id, *others], "email")
            assert many == set(others)  # e was already processed by "email"
            assert await uow.processed_events.mark_processed_many(others, "email") == set()
            assert await uow.processed_events.mark_processed_many([], "email") == set()
            await uow.commit()
    finally:
        await engine.dispose()


async def test_unreachable_database_is_dependency_unavailable() -> None:
    engine = create_engine("postgresql+asyncpg://postgres@127.0.0.1:1/x", connect_timeout=1)
    try:
        with pytest.raises(DependencyUnavailable) as info:
            async with SqlUnitOfWork(engine):
                pass
        assert info.value.dependency == "database"
    finally:
        await engine.dispose()


async def test_the_victim_of_a_deadlock_is_a_retryable_transaction_aborted(pg_url: str) -> None:
    """Two units of work take two products' rows in opposite orders: PostgreSQL aborts one
    (deadlock_detected, after its 1 s deadlock_timeout). That one is TransactionAborted, not
    an unexplained 500; the other commits."""
    engine = create_engine(pg_url)
    try:
        async with SqlUnitOfWork(engine) as uow:
            first = await seed_product(uow, stock=10)
            second = await seed_product(uow, stock=10)
            await uow.commit()
        both_hold_one = asyncio.Barrier(2)

        async def take(a: str, b: str) -> None:
            async with SqlUnitOfWork(engine) as uow:
                assert await uow.products.adjust_stock(a, -1) == 9
                await both_hold_one.wait()
                await uow.products.adjust_stock(b, -1)
                await uow.commit()

        outcomes = await asyncio.gather(
            take(first.id, second.id), take(second.id, first.id), return_exceptions=True
        )

        aborted = [o for o in outcomes if isinstance(o, TransactionAborted)]
        assert len(aborted) == 1 and outcomes.count(None) == 1, outcomes
        assert "send it again" in aborted[0].detail
        async with SqlUnitOfWork(engine) as uow:  # only the survivor's two changes are there
            stocks = {
                p.id: p.stock for p in (await uow.products.get_many([first.id, second.id])).values()
            }
        assert stocks == {first.id: 9, second.id: 9}
    finally:
        await engine.dispose()
