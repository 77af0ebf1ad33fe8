"""Order use cases over in-memory fakes: placement, snapshots, idempotency, ownership."""

from __future__ import annotations

from decimal import Decimal

import pytest

from backend.domain.errors import InvalidInput, PermissionDenied, StaleVersion
from backend.domain.events import ORDER_CREATED, ORDER_STATUS_CHANGED
from backend.domain.orders import (
    IdempotencyKeyReused,
    InsufficientStock,
    LineRequest,
    Order,
    OrderNotEditable,
    OrderNotFound,
    OrderQuery,
    OrderStatus,
    PlaceOrderCommand,
    ProductUnavailable,
    StoredResponse,
)
from backend.domain.workflow import Actor
from backend.services.orders import Idempotency, fingerprint
from tests.fakes import FakeUnitOfWorkFactory
from tests.fakes.orders import FakeStockProducts, SteppingClock, make_product, make_user
from tests.fakes.services import services

P1 = "10000000-0000-4000-8000-000000000001"
P2 = "20000000-0000-4000-8000-000000000002"
P3 = "30000000-0000-4000-8000-000000000003"
ALICE = make_user("a0000000-0000-4000-8000-00000000000a")
BOB = make_user("b0000000-0000-4000-8000-00000000000b")
ADMIN = make_user("ad000000-0000-4000-8000-0000000000ad", admin=True)


@pytest.fixture
def db() -> FakeUnitOfWorkFactory:
    store = FakeUnitOfWorkFactory()
    store.products = FakeStockProducts(  # type: ignore[attr-defined]
        make_product(P1, price="19.90", stock=5),
        make_product(P2, price="0.10", stock=3),
        make_product(P3, price="7.35", stock=0),
    )
    return store


@pytest.fixture
def clock() -> SteppingClock:
    return SteppingClock()


def command(*items: tuple[str, int], user=ALICE, **extra) -> PlaceOrderCommand:  # type: ignore[no-untyped-def]
    return PlaceOrderCommand(
        user_id=user.id, items=tuple(LineRequest(p, q) for p, q in items), **extra
    )


def stock(db: FakeUnitOfWorkFactory, product_id: str) -> int:
    return db.products.rows[product_id].stock  # type: ignore[attr-defined,no-any-return]


async def place(db, clock, *items, **kw) -> Order:  # type: ignore[no-untyped-def]
    placement = await services(db, clock).orders.place(command(*items, **kw))
    assert placement.order is not None
    return placement.order


# --------------------------------------------------------------------------- placement
async def test_placing_snapshots_lines_reserves_stock_and_writes_history_and_event(
    db: FakeUnitOfWorkFactory, clock: SteppingClock
) -> None:
    order = await place(db, clock, (P1, 3), (P2, 1), shipping_address="1 Main St", note="hi")

    assert order.status is OrderStatus.PENDING
    assert order.total == Decimal("59.80")  # 3 x 19.90 + 0.10, exactly
    assert [(ln.product_id, ln.unit_price, ln.quantity) for ln in order.lines] == [
        (P1, Decimal("19.90"), 3),
        (P2, Decimal("0.10"), 1),
    ]
    assert order.lines[0].line_total == Decimal("59.70")
    assert order.lines[0].sku == db.products.rows[P1].sku  # type: ignore[attr-defined]
    assert (stock(db, P1), stock(db, P2)) == (2, 2)
    assert db.orders.rows[order.id] == order

    [entry] = await db.orders.history(order.id)
    assert (entry.from_status, entry.to_status, entry.actor) == (None, OrderStatus.PENDING, "owner")
    [event] = db.outbox.events
    assert event.type == ORDER_CREATED
    assert event.aggregate_id == order.id
    assert event.payload["user_id"] == ALICE.id
    assert event.payload["total"] == "59.80"
    assert event.payload["currency"] == "EUR"
    assert event.payload["status"] == "pending"


async def test_a_later_price_change_leaves_the_order_alone(
    db: FakeUnitOfWorkFactory, clock: SteppingClock
) -> None:
    order = await place(db, clock, (P1, 2))
    db.products.put(make_product(P1, price="99.99", stock=3))  # type: ignore[attr-defined]
    stored = await services(db).orders.get(order.id, ALICE)
    assert stored.lines[0].unit_price == Decimal("19.90")
    assert stored.total == Decimal("39.80")


async def test_a_short_second_line_reserves_nothing(
    db: FakeUnitOfWorkFactory, clock: SteppingClock
) -> None:
    with pytest.raises(InsufficientStock) as info:
        await services(db, clock).orders.place(command((P1, 2), (P2, 4)))
    assert info.value.product_ids == [P2]
    assert info.value.extra["product_ids"] == [P2]
    assert (stock(db, P1), stock(db, P2)) == (5, 3)
    assert db.orders.rows == {}
    assert db.outbox.events == []


async def test_every_short_product_is_named(
    db: FakeUnitOfWorkFactory, clock: SteppingClock
) -> None:
    with pytest.raises(InsufficientStock) as info:
        await services(db, clock).orders.place(command((P3, 1), (P1, 6), (P2, 1)))
    assert info.value.product_ids == [P1, P3]
    assert P1 in info.value.detail and P3 in info.value.detail
    assert (stock(db, P1), stock(db, P2), stock(db, P3)) == (5, 3, 0)


async def test_stock_is_reserved_in_product_id_order(
    db: FakeUnitOfWorkFactory, clock: SteppingClock
) -> None:
    await place(db, clock, (P2, 1), (P1, 1))
    assert [pid for pid, _ in db.products.adjust_calls] == [P1, P2]  # type: ignore[attr-defined]


async def test_unknown_and_inactive_products_are_named(
    db: FakeUnitOfWorkFactory, clock: SteppingClock
) -> None:
    unknown = "99999999-0000-4000-8000-000000000009"
    db.products.put(make_product(P2, active=False))  # type: ignore[attr-defined]
    with pytest.raises(ProductUnavailable) as info:
        await services(db, clock).orders.place(command((P1, 1), (P2, 1), (unknown, 1)))
    assert info.value.product_ids == sorted([P2, unknown])
    locs = {tuple(e["loc"]) for e in info.value.extra["errors"]}
    assert locs == {("body", "items", 1, "product_id"), ("body", "items", 2, "product_id")}
    # Reserved in the same statement as the check, then rolled back with the unit of work.
    assert (stock(db, P1), stock(db, P2)) == (5, 10)
    assert db.orders.rows == {}
    assert db.outbox.events == []


@pytest.mark.parametrize(
    "items",
    [
        (),
        tuple((f"{i:08d}-0000-4000-8000-000000000000", 1) for i in range(51)),
        ((P1, 0),),
        ((P1, 1001),),
        ((P1, 1), (P1, 2)),
    ],
    ids=["empty", "51-items", "zero", "1001", "duplicate"],
)
async def test_commands_outside_the_limits_are_invalid(
    db: FakeUnitOfWorkFactory, clock: SteppingClock, items: tuple[tuple[str, int], ...]
) -> None:
    with pytest.raises(InvalidInput):
        await services(db, clock).orders.place(command(*items))
    assert db.orders.rows == {}


# --------------------------------------------------------------------------- idempotency
def renderer(order: Order) -> StoredResponse:
    return StoredResponse(201, {"id": order.id, "total": str(order.total)}, f"/o/{order.id}")


async def test_a_replay_returns_the_first_response_and_creates_nothing(
    db: FakeUnitOfWorkFactory, clock: SteppingClock
) -> None:
    idem = Idempotency(key="k-1", render=renderer)
    first = await services(db, clock).orders.place(command((P1, 1)), idem)
    again = await services(db, clock).orders.place(command((P1, 1)), idem)
    assert first.order is not None and not first.replayed
    assert again.replayed and again.order is None
    assert again.response == first.response == renderer(first.order)
    assert len(db.orders.rows) == 1
    assert stock(db, P1) == 4


async def test_the_same_key_with_another_body_is_refused(
    db: FakeUnitOfWorkFactory, clock: SteppingClock
) -> None:
    idem = Idempotency(key="k-1", render=renderer)
    await services(db, clock).orders.place(command((P1, 1)), idem)
    with pytest.raises(IdempotencyKeyReused):
        await services(db, clock).orders.place(command((P1, 2)), idem)
    assert stock(db, P1) == 4


async def test_keys_are_per_user_and_expire_after_a_day(
    db: FakeUnitOfWorkFactory, clock: SteppingClock
) -> None:
    idem = Idempotency(key="k-1", render=renderer)
    await services(db, clock).orders.place(command((P1, 1)), idem)
    other = await services(db, clock).orders.place(command((P1, 1), user=BOB), idem)
    assert not other.replayed
    clock.advance(hours=24, seconds=1)
    later = await services(db, clock).orders.place(command((P1, 1)), idem)
    assert not later.replayed
    assert len(db.orders.rows) == 3


async def test_a_failed_request_leaves_no_key(
    db: FakeUnitOfWorkFactory, clock: SteppingClock
) -> None:
    idem = Idempotency(key="k-2", render=renderer)
    with pytest.raises(InsufficientStock):
        await services(db, clock).orders.place(command((P1, 6)), idem)
    assert db.idempotency.rows == {}
    db.products.put(make_product(P1, stock=6))  # type: ignore[attr-defined]
    retried = await services(db, clock).orders.place(command((P1, 6)), idem)
    assert retried.order is not None and not retried.replayed


def test_the_fingerprint_is_of_the_meaning() -> None:
    base = fingerprint(command((P1, 1), (P2, 2), note="n"))
    assert base == fingerprint(command((P1, 1), (P2, 2), note="n"))
    assert base != fingerprint(command((P1, 1), (P2, 3), note="n"))
    assert base != fingerprint(command((P1, 1), (P2, 2), note="m"))


# --------------------------------------------------------------------------- reads, ownership
async def test_other_customers_orders_are_not_found_admins_see_all(
    db: FakeUnitOfWorkFactory, clock: SteppingClock
) -> None:
    order = await place(db, clock, (P1, 1))
    with pytest.raises(OrderNotFound):
        await services(db).orders.get(order.id, BOB)
    with pytest.raises(OrderNotFound):
        await services(db).orders.history(order.id, BOB)
    with pytest.raises(OrderNotFound):
        await services(db, clock).workflow.cancel(order.id, BOB)
    assert (await services(db).orders.get(order.id, ADMIN)).id == order.id


async def test_listing_is_scoped_to_the_customer(
    db: FakeUnitOfWorkFactory, clock: SteppingClock
) -> None:
    mine = await place(db, clock, (P1, 1))
    await place(db, clock, (P2, 1), user=BOB)
    page = await services(db).orders.list(ALICE, OrderQuery())
    assert [o.id for o in page.items] == [mine.id] and page.total == 1
    with pytest.raises(PermissionDenied):
        await services(db).orders.list(ALICE, OrderQuery(user_id=BOB.id))
    assert (await services(db).orders.list(ADMIN, OrderQuery())).total == 2
    assert (await services(db).orders.list(ADMIN, OrderQuery(user_id=BOB.id))).total == 1


# --------------------------------------------------------------------------- details
async def test_details_change_while_editable_with_optimistic_version(
    db: FakeUnitOfWorkFactory, clock: SteppingClock
) -> None:
    order = await place(db, clock, (P1, 1))
    changed = await services(db, clock).orders.update_details(
        order.id, ALICE, {"note": "leave at door"}, expected_version=1
    )
    assert (changed.note, changed.version) == ("leave at door", 2)
    assert db.orders.rows[order.id].note == "leave at door"
    with pytest.raises(StaleVersion):
        await services(db, clock).orders.update_details(
            order.id, ALICE, {"note": "x"}, expected_version=1
        )
    with pytest.raises(InvalidInput):
        await services(db, clock).orders.update_details(
            order.id, ALICE, {"status": "approved"}, expected_version=None
        )
    await services(db, clock).workflow.cancel(order.id, ALICE)
    with pytest.raises(OrderNotEditable):
        await services(db, clock).orders.update_details(
            order.id, ALICE, {"note": "y"}, expected_version=None
        )


async def test_history_is_oldest_first(db: FakeUnitOfWorkFactory, clock: SteppingClock) -> None:
    order = await place(db, clock, (P1, 1))
    await services(db, clock).workflow.cancel(order.id, ALICE, reason="changed my mind")
    history = await services(db).orders.history(order.id, ALICE)
    assert [(h.from_status, h.to_status) for h in history] == [
        (None, OrderStatus.PENDING),
        (OrderStatus.PENDING, OrderStatus.CANCELLED),
    ]
    assert history[1].reason == "changed my mind"
    assert history[0].at < history[1].at


async def test_cancel_releases_stock_and_emits_one_event(
    db: FakeUnitOfWorkFactory, clock: SteppingClock
) -> None:
    order = await place(db, clock, (P1, 2), (P2, 3))
    cancelled = await services(db, clock).workflow.cancel(order.id, ALICE)
    assert cancelled.status is OrderStatus.CANCELLED and cancelled.version == 2
    assert (stock(db, P1), stock(db, P2)) == (5, 3)
    changed = [e for e in db.outbox.events if e.type == ORDER_STATUS_CHANGED]
    assert len(changed) == 1
    payload = changed[0].payload
    assert (payload["from_status"], payload["to_status"], payload["actor"]) == (
        "pending",
        "cancelled",
        "owner",
    )
    assert payload["user_id"] == ALICE.id and payload["total"] == "40.10"


async def test_cached_stock_is_dropped_after_commits_that_reserve_or_release_it(
    db: FakeUnitOfWorkFactory, clock: SteppingClock
) -> None:
    """Reservations and releases, and only those, drop the products' cached reads, after the
    commit (registered with `on_commit`); a placement that rolls back drops nothing."""
    svc = services(db, clock)

    def dropped() -> list[str]:
        keys = sorted(key for _, key in svc.cache.invalidated)
        svc.cache.invalidated.clear()
        return keys

    placed = await svc.orders.place(command((P2, 1), (P1, 1)))
    assert placed.order is not None
    assert dropped() == sorted([P1, P2])
    with pytest.raises(InsufficientStock):
        await svc.orders.place(command((P1, 99)))
    assert dropped() == []  # nothing committed, nothing to drop
    other = await svc.orders.place(command((P1, 1)))
    assert other.order is not None
    assert dropped() == [P1]
    await svc.workflow.cancel(placed.order.id, ALICE)
    assert dropped() == sorted([P1, P2])  # released
    await svc.workflow.transition(other.order.id, OrderStatus.VALIDATED, actor=Actor.SYSTEM)
    assert dropped() == []  # a move that keeps the reservation
    assert db.callback_errors == []


async def test_every_commit_that_wrote_events_kicks_the_relay_once(
    db: FakeUnitOfWorkFactory, clock: SteppingClock
) -> None:
    svc = services(db, clock)
    placed = await svc.orders.place(command((P1, 1)))
    assert placed.order is not None
    assert svc.relay_kicks == 1
    with pytest.raises(InsufficientStock):
        await svc.orders.place(command((P1, 99)))
    assert svc.relay_kicks == 1  # rolled back: its callbacks were dropped
    await svc.orders.get(placed.order.id, ALICE)
    assert svc.relay_kicks == 1  # nothing written, nothing to relay
