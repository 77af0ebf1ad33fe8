"""Beat's progression jobs move a claimed batch in a few statements (one compare-and-set
UPDATE, one history insert, one outbox insert) with the same rows and events as one by one;
on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncEngine

from backend.domain.clock import SystemClock
from backend.domain.events import ORDER_STATUS_CHANGED
from backend.domain.orders import OrderStatus
from backend.infrastructure.db.engine import create_engine
from backend.infrastructure.db.tables import order_status_history, orders, outbox_events
from backend.infrastructure.db.uow import SqlUnitOfWork
from backend.services.order_workflow import WorkflowPolicy
from tests.fakes.services import services
from tests.helpers.orders import order_of, seed_product, seed_user

S = OrderStatus
POLICY = WorkflowPolicy(batch_size=3, grace_period=timedelta(0))


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url)
    yield engine
    await engine.dispose()


async def approved_orders(engine: AsyncEngine, n: int) -> list[Any]:
    async with SqlUnitOfWork(engine) as uow:
        user = await seed_user(uow)
        product = await seed_product(uow, stock=100)
        await uow.commit()
    svc = services(lambda: SqlUnitOfWork(engine), SystemClock(), POLICY)
    placed = [(await svc.orders.place(order_of(user.id, (product.id, 1)))).order for _ in range(n)]
    async with engine.begin() as conn:  # straight to approved: the jobs under test start here
        await conn.execute(text("UPDATE orders SET status = 'approved', version = 3"))
        await conn.execute(text("DELETE FROM outbox_events"))
    return placed


async def count(engine: AsyncEngine, table: Any, *where: Any) -> int:
    async with engine.connect() as conn:
        statement = select(func.count()).select_from(table).where(*where)
        return int((await conn.execute(statement)).scalar_one())


async def test_a_batch_moves_every_claimed_order_once_with_history_and_events(
    engine: AsyncEngine,
) -> None:
    placed = await approved_orders(engine, 7)
    svc = services(lambda: SqlUnitOfWork(engine), SystemClock(), POLICY)
    statements: list[str] = []

    def executed(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        statements.append(" ".join(statement.split()[:3]).upper())

    event.listen(engine.sync_engine, "before_cursor_execute", executed)
    try:
        report = await svc.jobs.run("start_processing")
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", executed)
    assert (report.moved, report.batches) == (7, 3)  # batches of 3, 3 and 1
    # Per batch one UPDATE of orders, one history INSERT, one outbox INSERT (executemany),
    # whatever its size: not three statements per order.
    assert statements.count("UPDATE ORDERS SET") == 3
    assert statements.count("INSERT INTO ORDER_STATUS_HISTORY") == 3
    assert statements.count("INSERT INTO OUTBOX_EVENTS") == 3
    async with SqlUnitOfWork(engine) as uow:
        for order in placed:
            stored = await uow.orders.get(order.id)
            assert stored is not None
            assert (stored.status, stored.version) == (S.PROCESSING, 4)
            assert [(c.from_status, c.to_status) for c in await uow.orders.history(order.id)][
                -1
            ] == (S.APPROVED, S.PROCESSING)
    moved_to_processing = order_status_history.c.to_status == "processing"
    assert await count(engine, order_status_history, moved_to_processing) == 7
    assert await count(engine, outbox_events, outbox_events.c.type == ORDER_STATUS_CHANGED) == 7
    async with engine.connect() as conn:
        payloads = (await conn.execute(select(outbox_events.c.payload))).scalars().all()
    assert {p["order_id"] for p in payloads} == {o.id for o in placed}
    assert {(p["from_status"], p["to_status"], p["version"]) for p in payloads} == {
        ("approved", "processing", 4)
    }
    assert svc.relay_kicks == 3  # one per committed batch
    assert (await svc.jobs.run("start_processing")).moved == 0  # nothing moves twice


async def test_the_compare_and_set_moves_only_the_orders_still_in_the_expected_status(
    engine: AsyncEngine,
) -> None:
    first, second, third = await approved_orders(engine, 3)
    async with SqlUnitOfWork(engine) as uow:
        await uow.connection.execute(  # typed: SQLite keeps ids as 32 hex digits
            update(orders).where(orders.c.id == second.id).values(status="cancelled")
        )
        moved = await uow.orders.compare_and_set_statuses(
            [first.id, second.id, third.id],
            expected=S.APPROVED,
            target=S.PROCESSING,
            reason=None,
            at=SystemClock().now(),
        )
        await uow.commit()
    assert moved == {first.id, third.id}
