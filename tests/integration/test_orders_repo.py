"""Order and idempotency repositories, and the order services, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import event, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from backend.domain.clock import SystemClock
from backend.domain.events import ORDER_CREATED, ORDER_STATUS_CHANGED
from backend.domain.orders import (
    InsufficientStock,
    OrderQuery,
    OrderStatus,
    StoredResponse,
)
from backend.domain.users import Role
from backend.infrastructure.db.engine import create_engine
from backend.infrastructure.db.tables import (
    idempotency_keys,
    order_lines,
    order_status_history,
    orders,
    outbox_events,
)
from backend.infrastructure.db.uow import SqlUnitOfWork
from backend.services.order_workflow import WorkflowPolicy
from tests.fakes.orders import SteppingClock
from tests.fakes.services import services, validate
from tests.helpers.orders import order_of, seed_product, seed_user, set_price

CLOCK = SystemClock()


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url)
    yield engine
    await engine.dispose()


def uow_of(engine: AsyncEngine) -> SqlUnitOfWork:
    return SqlUnitOfWork(engine)


async def seed(engine: AsyncEngine, *stocks: int, price: str = "10.00") -> tuple[Any, list[Any]]:
    async with uow_of(engine) as uow:
        user = await seed_user(uow)
        products = [await seed_product(uow, stock=s, price=price) for s in stocks]
        await uow.commit()
    return user, products


async def count(engine: AsyncEngine, table: Any, *where: Any) -> int:
    async with engine.connect() as conn:
        return int(
            (await conn.execute(select(func.count()).select_from(table).where(*where))).scalar_one()
        )


async def stock_of(engine: AsyncEngine, product_id: str) -> int:
    async with uow_of(engine) as uow:
        product = await uow.products.get(product_id)
    assert product is not None
    return product.stock


async def place(engine: AsyncEngine, user_id: str, *items: tuple[str, int], **kw: Any) -> Any:
    svc = services(lambda: uow_of(engine), kw.pop("clock", CLOCK))
    placement = await svc.orders.place(order_of(user_id, *items), **kw)
    return placement.order


# --------------------------------------------------------------------------- placement
async def test_an_order_round_trips_with_exact_decimals_and_utc_times(engine: AsyncEngine) -> None:
    user, (p1, p2) = await seed(engine, 10, 10, price="19.99")
    async with uow_of(engine) as uow:
        await set_price(uow, p2.id, "0.01")
        await uow.commit()
    command = order_of(user.id, (p2.id, 7), (p1.id, 3), shipping_address="1 Main St", note="ring")
    placed = (await services(lambda: uow_of(engine), CLOCK).orders.place(command)).order
    async with uow_of(engine) as uow:
        stored = await uow.orders.get(placed.id)
    assert stored == placed
    assert stored.total == Decimal("60.04")  # 3 x 19.99 + 7 x 0.01
    assert [ln.product_id for ln in stored.lines] == [p2.id, p1.id]  # the client's order
    assert stored.created_at.tzinfo is not None
    assert (await stock_of(engine, p1.id), await stock_of(engine, p2.id)) == (7, 3)


async def test_the_one_order_read_matches_the_general_one(engine: AsyncEngine) -> None:
    # On PostgreSQL `get` is sent past SQLAlchemy (its own SQL and conversions); `get_many`
    # goes through the tables' types: both must give the same order, field for field.
    user, (p1, p2) = await seed(engine, 10, 10, price="0.10")
    command = order_of(user.id, (p1.id, 2), (p2.id, 1), shipping_address="1 Main St", note="ring")
    with_everything = (await services(lambda: uow_of(engine), CLOCK).orders.place(command)).order
    bare = await place(engine, user.id, (p2.id, 3))
    admin = replace(user, role=Role.ADMIN)
    rejected = await services(lambda: uow_of(engine), CLOCK).workflow.reject(
        bare.id, admin, reason="out of stock"
    )
    async with uow_of(engine).read_only() as uow:
        one = [await uow.orders.get(o.id) for o in (with_everything, rejected)]
        general = await uow.orders.get_many([with_everything.id, rejected.id])
        missing = await uow.orders.get("00000000-0000-4000-8000-000000000000")
    assert one == [general[with_everything.id], general[rejected.id]]
    assert one == [with_everything, rejected]
    assert missing is None


async def test_a_price_change_after_ordering_leaves_the_order_alone(engine: AsyncEngine) -> None:
    user, (product,) = await seed(engine, 5, price="12.34")
    placed = await place(engine, user.id, (product.id, 3))
    async with uow_of(engine) as uow:
        await set_price(uow, product.id, "99.99")
        await uow.commit()
    async with uow_of(engine) as uow:
        stored = await uow.orders.get(placed.id)
        current = await uow.products.get(product.id)
    assert current is not None and current.price == Decimal("99.99")
    assert stored is not None
    assert stored.lines[0].unit_price == Decimal("12.34")
    assert stored.lines[0].line_total == Decimal("37.02")
    assert stored.total == Decimal("37.02")


async def test_a_short_second_line_reserves_nothing(engine: AsyncEngine) -> None:
    user, (plenty, scarce) = await seed(engine, 10, 1)
    with pytest.raises(InsufficientStock) as info:
        await place(engine, user.id, (plenty.id, 2), (scarce.id, 2))
    assert info.value.product_ids == [scarce.id]
    assert (await stock_of(engine, plenty.id), await stock_of(engine, scarce.id)) == (10, 1)
    for table in (orders, order_lines, order_status_history, outbox_events):
        assert await count(engine, table) == 0


async def test_one_outbox_row_per_event(engine: AsyncEngine) -> None:
    user, (product,) = await seed(engine, 5)
    placed = await place(engine, user.id, (product.id, 1))
    await services(lambda: uow_of(engine), CLOCK).workflow.cancel(placed.id, user, reason="oops")
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                select(outbox_events.c.type, outbox_events.c.payload)
                .where(outbox_events.c.aggregate_id == placed.id)
                .order_by(outbox_events.c.created_at)
            )
        ).all()
    assert [r.type for r in rows] == [ORDER_CREATED, ORDER_STATUS_CHANGED]
    assert rows[1].payload["from_status"] == "pending"
    assert rows[1].payload["to_status"] == "cancelled"
    assert rows[1].payload["reason"] == "oops"
    assert (
        await count(engine, order_status_history, order_status_history.c.order_id == placed.id) == 2
    )


class FailingCommit(SqlUnitOfWork):
    """Every write has happened (outbox row included); then the transaction fails."""

    async def commit(self) -> None:
        raise RuntimeError("crash before commit")


async def test_a_placement_failing_after_the_outbox_write_leaves_nothing(
    engine: AsyncEngine,
) -> None:
    user, (product,) = await seed(engine, 5)
    with pytest.raises(RuntimeError):
        await services(lambda: FailingCommit(engine), CLOCK).orders.place(
            order_of(user.id, (product.id, 2))
        )
    assert await stock_of(engine, product.id) == 5
    for table in (orders, order_lines, order_status_history, outbox_events, idempotency_keys):
        assert await count(engine, table) == 0


async def test_a_transition_failing_after_the_outbox_write_leaves_nothing(
    engine: AsyncEngine,
) -> None:
    user, (product,) = await seed(engine, 5)
    placed = await place(engine, user.id, (product.id, 2))
    with pytest.raises(RuntimeError):
        await services(lambda: FailingCommit(engine), CLOCK).workflow.cancel(placed.id, user)
    async with uow_of(engine) as uow:
        stored = await uow.orders.get(placed.id)
    assert stored is not None and stored.status is OrderStatus.PENDING and stored.version == 1
    assert await stock_of(engine, product.id) == 3
    assert await count(engine, outbox_events) == 1  # order.created only
    assert await count(engine, order_status_history) == 1


# --------------------------------------------------------------------------- repository
async def test_compare_and_set_moves_once(engine: AsyncEngine) -> None:
    user, (product,) = await seed(engine, 5)
    placed = await place(engine, user.id, (product.id, 1))
    at = datetime.now(UTC)
    async with uow_of(engine) as uow:
        kw = {
            "expected": OrderStatus.PENDING,
            "target": OrderStatus.VALIDATED,
            "reason": None,
            "at": at,
        }
        assert await uow.orders.compare_and_set_status(placed.id, **kw) is True
        assert await uow.orders.compare_and_set_status(placed.id, **kw) is False
        await uow.commit()
    async with uow_of(engine) as uow:
        stored = await uow.orders.get(placed.id)
    assert stored is not None
    assert (stored.status, stored.version, stored.updated_at) == (OrderStatus.VALIDATED, 2, at)


async def test_details_update_checks_status_and_version(engine: AsyncEngine) -> None:
    user, (product,) = await seed(engine, 5)
    placed = await place(engine, user.id, (product.id, 1))
    editable = (OrderStatus.PENDING, OrderStatus.VALIDATED)
    now = datetime.now(UTC)
    async with uow_of(engine) as uow:
        change = {"changes": {"note": "n1"}, "editable": editable, "at": now}
        assert await uow.orders.update_details(placed.id, expected_version=2, **change) is False
        assert await uow.orders.update_details(placed.id, expected_version=1, **change) is True
        only_done = {"changes": {"note": "n2"}, "editable": (OrderStatus.COMPLETED,), "at": now}
        assert (
            await uow.orders.update_details(placed.id, expected_version=None, **only_done) is False
        )
        await uow.commit()
    async with uow_of(engine) as uow:
        stored = await uow.orders.get(placed.id)
    assert stored is not None and (stored.note, stored.version) == ("n1", 2)


async def test_search_filters_sorts_and_pages(engine: AsyncEngine) -> None:
    clock = SteppingClock(datetime(2026, 3, 1, tzinfo=UTC))
    user, products = await seed(engine, 100, 100, price="1.00")
    async with uow_of(engine) as uow:
        other = await seed_user(uow)
        await uow.commit()
    quantities = [5, 1, 3, 3, 2]
    placed = []
    for q in quantities:
        clock.advance(hours=1)
        placed.append(await place(engine, user.id, (products[0].id, q), clock=clock))
    clock.advance(hours=1)
    foreign = await place(engine, other.id, (products[1].id, 9), clock=clock)
    await services(lambda: uow_of(engine), clock).workflow.cancel(placed[1].id, user)

    async def ids(**kw: Any) -> tuple[list[str], int]:
        async with uow_of(engine) as uow:
            page = await uow.orders.search(OrderQuery(**kw))
        return [o.id for o in page.items], page.total

    mine = [o.id for o in placed]
    assert await ids(user_id=user.id) == (mine[::-1], 5)
    assert await ids(user_id=user.id, descending=False, limit=2, offset=1) == (mine[1:3], 5)
    by_total, _ = await ids(user_id=user.id, sort="total", descending=False)
    assert by_total == [mine[1], mine[4], *sorted([mine[2], mine[3]]), mine[0]]
    assert (await ids(sort="total"))[0][0] == foreign.id
    assert await ids(user_id=user.id, status=OrderStatus.CANCELLED) == ([mine[1]], 1)
    window = {"created_from": placed[1].created_at, "created_to": placed[3].created_at}
    assert await ids(user_id=user.id, descending=False, **window) == (mine[1:4], 3)
    assert (await ids())[1] == 6
    first = (await ids(limit=1))[0][0]
    async with uow_of(engine) as uow:
        page = await uow.orders.search(OrderQuery(limit=1))
    assert page.items[0].id == first == foreign.id and len(page.items[0].lines) == 1


async def test_history_is_oldest_first_with_a_null_first_source(engine: AsyncEngine) -> None:
    user, (product,) = await seed(engine, 5)
    placed = await place(engine, user.id, (product.id, 1))
    await validate(
        lambda: uow_of(engine), CLOCK, placed.id, WorkflowPolicy(max_total=Decimal(1000))
    )
    await services(lambda: uow_of(engine), CLOCK).workflow.cancel(placed.id, user, reason="late")
    async with uow_of(engine) as uow:
        history = await uow.orders.history(placed.id)
    assert [(h.from_status, h.to_status, h.actor) for h in history] == [
        (None, OrderStatus.PENDING, "owner"),
        (OrderStatus.PENDING, OrderStatus.VALIDATED, "system"),
        (OrderStatus.VALIDATED, OrderStatus.CANCELLED, "owner"),
    ]
    assert history[2].reason == "late" and history[2].actor_id == user.id
    assert await stock_of(engine, product.id) == 5


async def test_claim_ids_picks_due_orders_oldest_first(engine: AsyncEngine) -> None:
    clock = SteppingClock(datetime(2026, 3, 1, tzinfo=UTC))
    user, (cheap, dear) = await seed(engine, 10, 10, price="1.00")
    async with uow_of(engine) as uow:
        await set_price(uow, dear.id, "500.00")
        await uow.commit()
    first = await place(engine, user.id, (cheap.id, 1), clock=clock)
    big = await place(engine, user.id, (dear.id, 1), clock=clock)
    clock.advance(minutes=5)
    late = await place(engine, user.id, (cheap.id, 1), clock=clock)
    async with uow_of(engine) as uow:
        assert await uow.orders.claim_ids(OrderStatus.PENDING, limit=10) == [
            first.id,
            big.id,
            late.id,
        ]
        assert await uow.orders.claim_ids(OrderStatus.PENDING, limit=1) == [first.id]
        cutoff = late.created_at - timedelta(minutes=1)
        assert await uow.orders.claim_ids(
            OrderStatus.PENDING, limit=10, created_before=cutoff, max_total=Decimal("100")
        ) == [first.id]
        assert await uow.orders.claim_ids(OrderStatus.PENDING, limit=10, updated_before=cutoff) == [
            first.id,
            big.id,
        ]
        assert await uow.orders.claim_ids(OrderStatus.VALIDATED, limit=10) == []


async def test_a_claim_names_its_status_in_the_sql(engine: AsyncEngine) -> None:
    # A status sent as a parameter of the cached prepared statement lets PostgreSQL settle on
    # a generic plan that walks the created_at index past every order already moved.
    sent: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        sent.append((statement, parameters))

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        async with uow_of(engine) as uow:
            await uow.orders.claim_ids(OrderStatus.APPROVED, limit=5)
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", record)
    (statement, parameters), *_ = [(st, p) for st, p in sent if "FROM orders" in st]
    assert "orders.status = 'approved'" in statement
    assert "approved" not in repr(parameters)


@pytest.mark.postgres
async def test_claim_ids_skips_rows_another_transaction_holds(pg_url: str) -> None:
    engine = create_engine(pg_url)
    try:
        user, (product,) = await seed(engine, 10)
        ids = [(await place(engine, user.id, (product.id, 1))).id for _ in range(4)]
        async with uow_of(engine) as holder:
            held = await holder.orders.claim_ids(OrderStatus.PENDING, limit=2)
            async with uow_of(engine) as other:
                rest = await other.orders.claim_ids(OrderStatus.PENDING, limit=10)
        assert held == ids[:2] and rest == ids[2:]
    finally:
        await engine.dispose()


# --------------------------------------------------------------------------- idempotency keys
async def test_idempotency_key_claim_complete_replay_and_expiry(engine: AsyncEngine) -> None:
    user, _ = await seed(engine)
    now = datetime.now(UTC)
    old = now - timedelta(hours=24)
    kw = {"request_hash": "h1", "now": now, "expired_before": old, "wait_seconds": 1.0}
    response = StoredResponse(201, {"id": "x", "total": "1.00"}, "/api/v1/orders/x")
    async with uow_of(engine) as uow:
        assert await uow.idempotency.claim(user.id, "k", **kw) is None
        await uow.idempotency.complete(user.id, "k", response)
        await uow.commit()
    async with uow_of(engine) as uow:
        record = await uow.idempotency.claim(user.id, "k", **{**kw, "request_hash": "h2"})
    assert record is not None
    assert (record.request_hash, record.response) == ("h1", response)
    later = now + timedelta(hours=25)
    async with uow_of(engine) as uow:
        retaken = {**kw, "now": later, "expired_before": later - timedelta(hours=24)}
        assert await uow.idempotency.claim(user.id, "k", **retaken) is None
        await uow.commit()
    async with uow_of(engine) as uow:
        assert await uow.idempotency.purge(later, limit=10) == 0
        assert await uow.idempotency.purge(later + timedelta(seconds=1), limit=10) == 1
        await uow.commit()
    assert await count(engine, idempotency_keys) == 0


@pytest.mark.postgres
async def test_a_key_held_by_an_open_transaction_is_in_flight(pg_url: str) -> None:
    from backend.domain.orders import IdempotencyInFlight

    engine = create_engine(pg_url)
    try:
        user, _ = await seed(engine)
        now = datetime.now(UTC)
        kw: dict[str, Any] = {"now": now, "expired_before": now - timedelta(days=1)}
        async with uow_of(engine) as first:
            assert (
                await first.idempotency.claim(user.id, "k", request_hash="h", wait_seconds=1, **kw)
                is None
            )
            with pytest.raises(IdempotencyInFlight):
                async with uow_of(engine) as second:
                    await second.idempotency.claim(
                        user.id, "k", request_hash="h", wait_seconds=0.2, **kw
                    )
            await first.idempotency.complete(user.id, "k", StoredResponse(201, {}, None))
            await first.commit()
        async with uow_of(engine) as third:
            record = await third.idempotency.claim(
                user.id, "k", request_hash="h", wait_seconds=0.2, **kw
            )
        assert record is not None and record.response == StoredResponse(201, {}, None)
    finally:
        await engine.dispose()


async def test_a_rejection_reason_is_stored_whole(engine: AsyncEngine) -> None:
    user, (product,) = await seed(engine, 5)
    placed = await place(engine, user.id, (product.id, 1))
    admin = replace(user, role=Role.ADMIN)
    workflow = services(lambda: uow_of(engine), CLOCK).workflow
    rejected = await workflow.reject(placed.id, admin, reason="r" * 500)
    async with uow_of(engine) as uow:
        stored = await uow.orders.get(placed.id)
    assert stored == rejected and stored.status_reason == "r" * 500
