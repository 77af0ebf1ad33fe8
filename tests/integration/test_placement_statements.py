"""A placement on PostgreSQL is five round trips with an Idempotency-Key (BEGIN, the claim,
the reservation of every line, one write of everything else, COMMIT) and four without, with
the same rows and events as before; what goes to asyncpg directly commits and rolls back with
the unit of work; the claim's lock_timeout does not outlive it; a multi-line reservation takes
all or nothing."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import asyncpg
import pytest
from sqlalchemy import event, func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine

from backend.domain.clock import SystemClock
from backend.domain.errors import DependencyUnavailable
from backend.domain.events import ORDER_CREATED
from backend.domain.orders import InsufficientStock, OrderStatus, StoredResponse
from backend.infrastructure.db.engine import create_engine
from backend.infrastructure.db.tables import idempotency_keys, order_lines, orders, outbox_events
from backend.infrastructure.db.uow import SqlUnitOfWork
from backend.services.orders import Idempotency
from tests.fakes.services import services
from tests.helpers.orders import order_of, seed_product, seed_user
from tests.support import pg_admin_dsn

pytestmark = pytest.mark.postgres


@pytest.fixture
async def engine(pg_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(pg_url, pool_size=1, max_overflow=0)  # one connection to watch
    yield engine
    await engine.dispose()


def render(order: Any) -> StoredResponse:
    return StoredResponse(201, {"id": order.id, "total": str(order.total)}, f"/o/{order.id}")


async def statements_of(engine: AsyncEngine, body: Any) -> list[str]:
    """What reached the server while `body()` ran: through SQLAlchemy and straight through
    asyncpg (its query logger sees those and BEGIN/COMMIT), each by its first word."""
    sent: list[str] = []

    def executed(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        sent.append(statement.split()[0].upper())

    def logged(record: Any) -> None:
        sent.append(record.query.split()[0].upper().rstrip(";"))

    async with engine.connect() as conn:  # the pool's only connection
        raw = (await conn.get_raw_connection()).driver_connection
    event.listen(engine.sync_engine, "before_cursor_execute", executed)
    raw.add_query_logger(logged)
    try:
        await body()
    finally:
        raw.remove_query_logger(logged)
        event.remove(engine.sync_engine, "before_cursor_execute", executed)
    return sent


async def test_a_keyed_placement_is_five_round_trips_with_every_row(engine: AsyncEngine) -> None:
    async with SqlUnitOfWork(engine) as uow:
        user = await seed_user(uow)
        first = await seed_product(uow, stock=5, price="2.50")
        second = await seed_product(uow, stock=5, price="0.10")
        await uow.commit()
    svc = services(lambda: SqlUnitOfWork(engine), SystemClock())
    command = order_of(user.id, (second.id, 2), (first.id, 3), note="n")
    placed: list[Any] = []

    async def place() -> None:
        placed.append(await svc.orders.place(command, Idempotency("k", render)))

    # The connection's first use of these statements also reads their types: warm it up.
    await svc.orders.place(
        order_of(user.id, (first.id, 1), (second.id, 1)), Idempotency("warm", render)
    )
    sent = await statements_of(engine, place)
    assert sent == ["BEGIN", "WITH", "WITH", "WITH", "COMMIT"]
    order = placed[0].order
    async with SqlUnitOfWork(engine) as uow:
        stored = await uow.orders.get(order.id)
        assert stored == order
        assert [(ln.product_id, ln.unit_price, ln.quantity) for ln in stored.lines] == [
            (second.id, Decimal("0.10"), 2),
            (first.id, Decimal("2.50"), 3),
        ]
        assert (await uow.products.get(first.id)).stock == 1  # type: ignore[union-attr]
        assert (await uow.products.get(second.id)).stock == 2  # type: ignore[union-attr]
        [change] = await uow.orders.history(order.id)
        assert (change.from_status, change.to_status, change.actor) == (
            None,
            OrderStatus.PENDING,
            "owner",
        )
        record = await uow.idempotency.claim(
            user.id,
            "k",
            request_hash="other",
            now=datetime.now(UTC),
            expired_before=datetime.now(UTC) - timedelta(days=1),
            wait_seconds=1,
        )
        assert record is not None and record.response == render(order)
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                select(outbox_events).where(outbox_events.c.aggregate_id == order.id)
            )
        ).one()
        assert (row.type, row.aggregate_id) == (ORDER_CREATED, order.id)
        assert row.payload["total"] == "7.70"
        assert [i["quantity"] for i in row.payload["items"]] == [2, 3]
        assert row.attempts == 0 and row.published_at is None


async def test_an_unkeyed_placement_is_four_round_trips(engine: AsyncEngine) -> None:
    async with SqlUnitOfWork(engine) as uow:
        user = await seed_user(uow)
        product = await seed_product(uow, stock=5)
        await uow.commit()
    svc = services(lambda: SqlUnitOfWork(engine), SystemClock())

    async def place() -> None:
        await svc.orders.place(order_of(user.id, (product.id, 1)))

    await place()  # the connection's first use of the statements also reads their types
    assert await statements_of(engine, place) == ["BEGIN", "UPDATE", "WITH", "COMMIT"]


async def test_the_claim_leaves_lock_timeout_as_it_was(engine: AsyncEngine) -> None:
    async with SqlUnitOfWork(engine) as uow:
        user = await seed_user(uow)
        await uow.commit()
    now = datetime.now(UTC)
    async with SqlUnitOfWork(engine) as uow:
        await uow.connection.execute(text("SET LOCAL lock_timeout = '1234ms'"))
        claimed = await uow.idempotency.claim(
            user.id,
            "key",
            request_hash="h",
            now=now,
            expired_before=now - timedelta(days=1),
            wait_seconds=5,
        )
        assert claimed is None
        shown = (await uow.connection.execute(text("SHOW lock_timeout"))).scalar_one()
        assert shown == "1234ms"


async def test_a_short_line_of_several_reserves_nothing_and_writes_nothing(
    engine: AsyncEngine,
) -> None:
    async with SqlUnitOfWork(engine) as uow:
        user = await seed_user(uow)
        plenty = await seed_product(uow, stock=50)
        scarce = await seed_product(uow, stock=1)
        await uow.commit()
    svc = services(lambda: SqlUnitOfWork(engine), SystemClock())
    with pytest.raises(InsufficientStock) as refused:
        await svc.orders.place(
            order_of(user.id, (plenty.id, 5), (scarce.id, 2)), Idempotency("k", render)
        )
    assert refused.value.product_ids == [scarce.id]
    async with SqlUnitOfWork(engine) as uow:
        stock = {
            p.id: p.stock for p in (await uow.products.get_many([plenty.id, scarce.id])).values()
        }
    assert stock == {plenty.id: 50, scarce.id: 1}
    async with engine.connect() as conn:
        for table in (orders, order_lines, outbox_events, idempotency_keys):
            assert (await conn.execute(select(func.count()).select_from(table))).scalar_one() == 0


async def test_a_connection_lost_under_a_placement_is_replaced(
    engine: AsyncEngine, pg_url: str
) -> None:
    async with SqlUnitOfWork(engine) as uow:
        user = await seed_user(uow)
        product = await seed_product(uow, stock=5)
        await uow.commit()
    svc = services(lambda: SqlUnitOfWork(engine), SystemClock())
    await svc.orders.place(order_of(user.id, (product.id, 1)))
    async with engine.connect() as conn:  # the pool's only connection
        backend = (await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one()
    admin = await asyncpg.connect(pg_admin_dsn(pg_url))
    try:
        await admin.execute("SELECT pg_terminate_backend($1)", backend)
    finally:
        await admin.close()
    # The dead connection answers 503 at most once (or the idle ping replaced it first).
    with contextlib.suppress(DependencyUnavailable):
        await svc.orders.place(order_of(user.id, (product.id, 1)), Idempotency("k", render))
    placed = await svc.orders.place(order_of(user.id, (product.id, 1)), Idempotency("k2", render))
    assert placed.order is not None
