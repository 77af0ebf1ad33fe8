"""Concurrency through the real unit of work and engine, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from backend.domain.clock import SystemClock
from backend.domain.errors import Conflict
from backend.domain.orders import (
    IdempotencyInFlight,
    IllegalTransition,
    InsufficientStock,
    OrderStatus,
    StoredResponse,
)
from backend.domain.users import Role
from backend.infrastructure.db.engine import create_engine
from backend.infrastructure.db.tables import order_lines, order_status_history, orders
from backend.infrastructure.db.uow import SqlUnitOfWork
from backend.services.order_workflow import WorkflowPolicy
from backend.services.orders import Idempotency, OrderPolicy
from tests.fakes.services import FakeServices, services, validate
from tests.helpers.orders import order_of, seed_product, seed_user

CLOCK = SystemClock()


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url)
    yield engine
    await engine.dispose()


async def seed(engine: AsyncEngine, users: int, *stocks: int) -> tuple[list[Any], list[Any]]:
    async with SqlUnitOfWork(engine) as uow:
        people = [await seed_user(uow) for _ in range(users)]
        products = [await seed_product(uow, stock=s, price="2.50") for s in stocks]
        await uow.commit()
    return people, products


def sql_services(engine: AsyncEngine, policy: Any = None, **kw: Any) -> FakeServices:
    return services(lambda: SqlUnitOfWork(engine), CLOCK, policy, **kw)


async def stock_of(engine: AsyncEngine, product_id: str) -> int:
    async with SqlUnitOfWork(engine) as uow:
        product = await uow.products.get(product_id)
    assert product is not None
    return product.stock


async def count(engine: AsyncEngine, table: Any) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(select(func.count()).select_from(table))).scalar_one())


async def attempt(engine: AsyncEngine, command: Any) -> str:
    try:
        await sql_services(engine).orders.place(command)
    except InsufficientStock:
        return "409"
    return "201"


async def test_sixty_orders_for_the_last_ten_units(engine: AsyncEngine) -> None:
    users, (product,) = await seed(engine, 6, 10)
    commands = [order_of(users[i % 6].id, (product.id, 1)) for i in range(60)]
    outcomes = await asyncio.gather(*(attempt(engine, c) for c in commands))
    assert Counter(outcomes) == {"201": 10, "409": 50}
    assert await stock_of(engine, product.id) == 0
    assert await count(engine, orders) == 10


async def test_overlapping_multi_line_orders_never_deadlock(engine: AsyncEngine) -> None:
    users, products = await seed(engine, 4, 200, 200, 200, 200, 200)
    rng = random.Random(7)
    commands = []
    for i in range(40):
        chosen = rng.sample(products, 3)  # each in a random order: the service sorts
        commands.append(order_of(users[i % 4].id, *((p.id, rng.randint(1, 4)) for p in chosen)))
    outcomes = await asyncio.gather(*(attempt(engine, c) for c in commands))
    assert outcomes == ["201"] * 40
    for product in products:
        ordered = sum(i.quantity for c in commands for i in c.items if i.product_id == product.id)
        assert await stock_of(engine, product.id) == 200 - ordered


async def test_overlapping_orders_with_shortages_stay_consistent(engine: AsyncEngine) -> None:
    users, products = await seed(engine, 4, 12, 12, 12)
    rng = random.Random(11)
    commands = [
        order_of(users[i % 4].id, *((p.id, 2) for p in rng.sample(products, 2))) for i in range(30)
    ]
    outcomes = await asyncio.gather(*(attempt(engine, c) for c in commands))
    placed = [c for c, outcome in zip(commands, outcomes, strict=True) if outcome == "201"]
    refused = [c for c, outcome in zip(commands, outcomes, strict=True) if outcome == "409"]
    assert 6 <= len(placed) <= 9  # 36 units, 4 per order, 2 of 3 products each
    final = {p.id: await stock_of(engine, p.id) for p in products}
    for product in products:
        taken = sum(i.quantity for c in placed for i in c.items if i.product_id == product.id)
        assert final[product.id] == 12 - taken >= 0
    # Stock only falls here, so a refused order must still lack one of its products.
    assert all(any(final[i.product_id] < i.quantity for i in c.items) for c in refused)
    assert await count(engine, orders) == len(placed)


async def test_concurrent_cancel_and_approve_exactly_one_wins(engine: AsyncEngine) -> None:
    (owner, admin_row), (product,) = await seed(engine, 2, 100)
    admin = replace(admin_row, role=Role.ADMIN)
    winners: Counter[str] = Counter()
    for _ in range(8):
        svc = sql_services(engine)
        placed = await svc.orders.place(order_of(owner.id, (product.id, 3)))
        assert placed.order is not None
        order_id = placed.order.id
        await validate(
            lambda: SqlUnitOfWork(engine), CLOCK, order_id, WorkflowPolicy(max_total=Decimal(1000))
        )
        results = await asyncio.gather(
            svc.workflow.cancel(order_id, owner),
            svc.workflow.approve(order_id, admin),
            return_exceptions=True,
        )
        won = [r for r in results if not isinstance(r, BaseException)]
        lost = [r for r in results if isinstance(r, BaseException)]
        assert len(won) == 1 and len(lost) == 1, results
        assert isinstance(lost[0], IllegalTransition)
        winners[won[0].status] += 1
        async with SqlUnitOfWork(engine) as uow:
            stored = await uow.orders.get(order_id)
            history = await uow.orders.history(order_id)
        assert stored is not None and stored.status is won[0].status and stored.version == 3
        assert [h.to_status for h in history][-1] is won[0].status and len(history) == 3
    cancelled = winners[OrderStatus.CANCELLED]
    assert await stock_of(engine, product.id) == 100 - 3 * (8 - cancelled)
    assert await count(engine, order_status_history) == 8 * 3


def render(order: Any) -> StoredResponse:
    return StoredResponse(201, {"id": order.id}, f"/api/v1/orders/{order.id}")


async def test_ten_concurrent_requests_with_one_key_create_one_order(engine: AsyncEngine) -> None:
    (user,), (product,) = await seed(engine, 1, 50)
    command = order_of(user.id, (product.id, 2))
    idem = Idempotency(key="same-key", render=render)
    patient = OrderPolicy(idempotency_wait_seconds=10)

    async def one() -> Any:
        try:
            return await sql_services(engine, order_policy=patient).orders.place(command, idem)
        except IdempotencyInFlight as error:
            return error

    results = await asyncio.gather(*(one() for _ in range(10)))
    created = [r for r in results if not isinstance(r, Conflict) and not r.replayed]
    replayed = [r for r in results if not isinstance(r, Conflict) and r.replayed]
    assert len(created) == 1
    assert all(r.response == created[0].response for r in replayed)
    assert len(replayed) + sum(isinstance(r, IdempotencyInFlight) for r in results) == 9
    assert await count(engine, orders) == 1
    assert await stock_of(engine, product.id) == 48


async def test_a_rejecting_batch_and_overlapping_placements_never_deadlock(
    engine: AsyncEngine,
) -> None:
    """validate_pending rejects a whole batch in one transaction, releasing the stock of many
    orders; placements take the same products meanwhile. Both must take product locks in one
    global order, or PostgreSQL aborts one side with a deadlock."""
    users, products = await seed(engine, 4, 1000, 1000, 1000, 1000, 1000, 1000)
    rng = random.Random(5)

    def overlapping(i: int) -> Any:
        chosen = rng.sample(products, 3)
        return order_of(users[i % 4].id, *((p.id, 1) for p in chosen))

    stale = [overlapping(i) for i in range(60)]
    for command in stale:  # pending orders whose validation never ran
        await sql_services(engine).orders.place(command)
    fresh = [overlapping(i) for i in range(60)]
    # Every stale order fails validation (total above the maximum) and releases its stock.
    policy = WorkflowPolicy(max_total=Decimal("0.01"), validation_retry_after=timedelta(0))

    async def rejecting_batches() -> Any:
        return await sql_services(engine, policy).jobs.run("validate_pending")

    async def placements() -> list[str]:
        return list(await asyncio.gather(*(attempt(engine, c) for c in fresh)))

    report, outcomes = await asyncio.gather(rejecting_batches(), placements())

    assert outcomes == ["201"] * 60
    assert report.moved_to.get("rejected", 0) >= 60  # the stale ones, perhaps fresh ones too
    # Stock = what it was, less what every order that still holds its stock reserved.
    held_by = select(order_lines.c.product_id, func.sum(order_lines.c.quantity)).join(
        orders, orders.c.id == order_lines.c.order_id
    )
    releasing = [OrderStatus.REJECTED.value, OrderStatus.CANCELLED.value]
    query = held_by.where(orders.c.status.not_in(releasing)).group_by(order_lines.c.product_id)
    async with engine.connect() as conn:
        reserved = {pid: int(qty) for pid, qty in await conn.execute(query)}
    for product in products:
        assert await stock_of(engine, product.id) == 1000 - reserved.get(product.id, 0)
