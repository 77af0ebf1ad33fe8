"""Beat's progression jobs move a batch set-based (`OrderRepository.move_batch`): on
PostgreSQL one statement per batch claims, moves, writes history and the outbox events; on
SQLite a few statements per batch, whatever its size. The rows and events are exactly what
the one-by-one path writes; two workers never move an order twice. SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import event, func, select, text, update
from sqlalchemy.ext.asyncio import AsyncEngine

from backend.bootstrap import build_container
from backend.domain.clock import SystemClock
from backend.domain.events import ORDER_STATUS_CHANGED
from backend.domain.orders import ClaimFilter, Order, OrderStatus, status_changed_payload
from backend.domain.workflow import batch_move
from backend.infrastructure.db.engine import create_engine
from backend.infrastructure.db.tables import order_status_history, orders, outbox_events
from backend.infrastructure.db.uow import SqlUnitOfWork
from backend.services.order_workflow import WorkflowPolicy
from tests.fakes.services import services
from tests.helpers.orders import order_of, seed_product, seed_user

S = OrderStatus
POLICY = WorkflowPolicy(batch_size=3, move_batch_size=3, grace_period=timedelta(0))


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url)
    yield engine
    await engine.dispose()


async def approved_orders(engine: AsyncEngine, n: int, *lines: tuple[str, int]) -> list[Order]:
    """N orders placed (one line of 1 x 10.00 unless `lines` of (price, quantity) are
    given, one product each), then put straight to approved: the jobs start there."""
    async with SqlUnitOfWork(engine) as uow:
        user = await seed_user(uow)
        products = [
            (await seed_product(uow, stock=1000, price=price), quantity)
            for price, quantity in (lines or (("10.00", 1),))
        ]
        await uow.commit()
    svc = services(lambda: SqlUnitOfWork(engine), SystemClock(), POLICY)
    command = order_of(user.id, *((product.id, quantity) for product, quantity in products))
    placed = [(await svc.orders.place(command)).order for _ in range(n)]
    async with engine.begin() as conn:
        await conn.execute(text("UPDATE orders SET status = 'approved', version = 3"))
        await conn.execute(text("DELETE FROM outbox_events"))
    return await load(engine, placed)


async def load(engine: AsyncEngine, placed: list[Order]) -> list[Order]:
    async with SqlUnitOfWork(engine) as uow:
        found = await uow.orders.get_many([o.id for o in placed])
    return [found[o.id] for o in placed]


async def count(engine: AsyncEngine, table: Any, *where: Any) -> int:
    async with engine.connect() as conn:
        statement = select(func.count()).select_from(table).where(*where)
        return int((await conn.execute(statement)).scalar_one())


async def outbox_rows(engine: AsyncEngine) -> dict[str, Any]:
    async with engine.connect() as conn:
        rows = (await conn.execute(select(outbox_events))).all()
    return {row.aggregate_id: row for row in rows}


async def test_a_batch_moves_every_claimed_order_once_in_one_statement_on_postgresql(
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
    assert (report.moved, report.batches, report.moved_to) == (7, 3, {"processing": 7})
    if engine.dialect.name == "postgresql":
        # Claim, move, history and events of a batch in one statement, whatever its size.
        assert statements.count("WITH CLAIMED AS") == 3
        assert not [s for s in statements if s.startswith(("UPDATE", "INSERT", "SELECT"))]
    else:  # per batch: the batch and its lines, one UPDATE, two INSERTs
        assert statements.count("UPDATE ORDERS SET") == 3
        assert statements.count("INSERT INTO ORDER_STATUS_HISTORY") == 3
        assert statements.count("INSERT INTO OUTBOX_EVENTS") == 3
    async with SqlUnitOfWork(engine) as uow:
        for order in placed:
            stored = await uow.orders.get(order.id)
            assert stored is not None
            assert (stored.status, stored.version) == (S.PROCESSING, 4)
            history = await uow.orders.history(order.id)
            assert [(c.from_status, c.to_status, c.actor) for c in history][-1] == (
                S.APPROVED,
                S.PROCESSING,
                "system",
            )
    moved_to_processing = order_status_history.c.to_status == "processing"
    assert await count(engine, order_status_history, moved_to_processing) == 7
    assert await count(engine, outbox_events, outbox_events.c.type == ORDER_STATUS_CHANGED) == 7
    assert svc.relay_kicks == 3  # one per committed batch
    assert (await svc.jobs.run("start_processing")).moved == 0  # nothing moves twice


async def test_the_rows_and_events_are_the_ones_the_one_by_one_path_writes(
    engine: AsyncEngine,
) -> None:
    """Field for field: the payload consumers and webhooks read (`status_changed_payload`,
    which the one-by-one path uses), a fresh v4 event id, the history entry."""
    before = await approved_orders(engine, 4, ("12.34", 3), ("0.05", 7), ("1000.00", 1))
    svc = services(lambda: SqlUnitOfWork(engine), SystemClock(), POLICY)
    assert (await svc.jobs.run("start_processing")).moved == 4
    after = await load(engine, before)
    events = await outbox_rows(engine)
    ids = set()
    for old, new in zip(before, after, strict=True):
        assert (new.status, new.version, new.status_reason) == (S.PROCESSING, 4, None)
        row = events[old.id]
        assert row.payload == status_changed_payload(old, new, "system", None)
        assert row.payload["total"] == "1037.37" and len(row.payload["items"]) == 3
        assert (row.type, row.aggregate_type, row.attempts) == (ORDER_STATUS_CHANGED, "order", 0)
        assert (row.created_at, row.published_at) == (new.updated_at, None)
        assert uuid.UUID(row.id).version == 4 and str(uuid.UUID(row.id)) == row.id
        ids.add(row.id)
        async with SqlUnitOfWork(engine) as uow:
            change = (await uow.orders.history(old.id))[-1]
        assert (change.actor_id, change.reason, change.at) == (None, None, new.updated_at)
    assert len(ids) == 4


async def test_a_batch_moves_only_the_orders_the_rule_and_the_filter_admit(
    engine: AsyncEngine,
) -> None:
    first, second, third, fourth = await approved_orders(engine, 4)
    async with engine.begin() as conn:  # typed: SQLite keeps ids as 32 hex digits
        await conn.execute(
            update(orders).where(orders.c.id == second.id).values(status="cancelled")
        )
        await conn.execute(update(orders).where(orders.c.id == third.id).values(total=Decimal(50)))
    async with SqlUnitOfWork(engine) as uow:
        moved = await uow.orders.move_batch(
            batch_move(S.PROCESSING),
            limit=10,
            at=SystemClock().now(),
            where=ClaimFilter(max_total=Decimal("10.00")),
        )
        await uow.commit()
    assert moved == {S.APPROVED: 2}
    statuses = {o.id: o.status for o in await load(engine, [first, second, third, fourth])}
    assert statuses == {
        first.id: S.PROCESSING,
        second.id: S.CANCELLED,
        third.id: S.APPROVED,  # above the bound
        fourth.id: S.PROCESSING,
    }
    assert set(await outbox_rows(engine)) == {first.id, fourth.id}


@pytest.mark.postgres
async def test_two_workers_take_disjoint_batches_and_skip_what_the_other_holds(
    pg_url: str,
) -> None:
    """Worker A holds its batch uncommitted while B runs: B takes the rest (SKIP LOCKED),
    never A's; after both commit every order moved exactly once."""
    engine = create_engine(pg_url)
    try:
        placed = await approved_orders(engine, 10)
        move = batch_move(S.PROCESSING)
        now = SystemClock().now()
        async with SqlUnitOfWork(engine) as a:
            first = await a.orders.move_batch(move, limit=6, at=now, where=ClaimFilter())
            async with SqlUnitOfWork(engine) as b:
                second = await b.orders.move_batch(move, limit=6, at=now, where=ClaimFilter())
                third = await b.orders.move_batch(move, limit=6, at=now, where=ClaimFilter())
                await b.commit()
            await a.commit()
        assert (first, second, third) == ({S.APPROVED: 6}, {S.APPROVED: 4}, {})
        after = await load(engine, placed)
        assert {(o.status, o.version) for o in after} == {(S.PROCESSING, 4)}
        assert (
            await count(
                engine, order_status_history, order_status_history.c.to_status == "processing"
            )
            == 10
        )
        assert len(await outbox_rows(engine)) == 10

        # Two whole job runs at once on the same orders: each order moves once.
        svc = services(lambda: SqlUnitOfWork(engine), SystemClock(), POLICY)
        reports = await asyncio.gather(
            svc.jobs.run("complete_processing"), svc.jobs.run("complete_processing")
        )
        assert sum(r.moved for r in reports) == 0  # processing_time not over: nothing due
        # Each run with two lanes: four batches in flight at once.
        fast = WorkflowPolicy(move_batch_size=3, move_lanes=2, processing_time=timedelta(0))
        fast_svc = services(lambda: SqlUnitOfWork(engine), SystemClock(), fast)
        reports = await asyncio.gather(
            fast_svc.jobs.run("complete_processing"), fast_svc.jobs.run("complete_processing")
        )
        assert sum(r.moved for r in reports) == 10
        after = await load(engine, placed)
        assert {(o.status, o.version) for o in after} == {(S.COMPLETED, 5)}
        assert (
            await count(
                engine, order_status_history, order_status_history.c.to_status == "completed"
            )
            == 10
        )
    finally:
        await engine.dispose()


async def test_the_container_runs_two_lanes_on_postgresql_and_one_on_sqlite(
    database_url: str, settings_for: Any
) -> None:
    container = await build_container(settings_for(database_url))
    try:
        policy = container.workflow_policy()
    finally:
        await container.aclose()
    expected = 2 if database_url.startswith("postgresql") else 1
    assert (policy.move_batch_size, policy.move_lanes) == (1000, expected)
