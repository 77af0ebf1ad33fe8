"""The workflow services over fakes: every illegal move, roles, races, validation."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pytest

from backend.domain import workflow
from backend.domain.errors import PermissionDenied
from backend.domain.events import ORDER_STATUS_CHANGED
from backend.domain.orders import IllegalTransition, Order, OrderStatus
from backend.domain.workflow import Actor, ActorNotAllowed
from backend.services.order_workflow import WorkflowPolicy
from tests.fakes import FakeUnitOfWorkFactory
from tests.fakes.orders import FakeOrderRepository, FakeStockProducts, SteppingClock, make_product
from tests.fakes.services import services, validate
from tests.unit.test_orders_service import ADMIN, ALICE, P1, P2, place, stock

POLICY = WorkflowPolicy(max_total=Decimal("100000.00"))


@pytest.fixture
def db() -> FakeUnitOfWorkFactory:
    store = FakeUnitOfWorkFactory()
    store.products = FakeStockProducts(  # type: ignore[attr-defined]
        make_product(P1, price="19.90", stock=50), make_product(P2, price="0.10", stock=50)
    )
    return store


@pytest.fixture
def clock() -> SteppingClock:
    return SteppingClock()


def force_status(db: FakeUnitOfWorkFactory, order: Order, status: OrderStatus) -> None:
    db.orders.rows[order.id] = replace(db.orders.rows[order.id], status=status)


def status_events(db: FakeUnitOfWorkFactory) -> list[dict]:  # type: ignore[type-arg]
    return [e.payload for e in db.outbox.events if e.type == ORDER_STATUS_CHANGED]


# --------------------------------------------------------------------------- illegal moves
ILLEGAL = [
    (source, target)
    for source in OrderStatus
    for target in OrderStatus
    if workflow.transition_for(source, target) is None
]


@pytest.mark.parametrize(("source", "target"), ILLEGAL, ids=lambda s: str(s))
async def test_every_illegal_transition_is_refused_and_changes_nothing(
    db: FakeUnitOfWorkFactory, clock: SteppingClock, source: OrderStatus, target: OrderStatus
) -> None:
    order = await place(db, clock, (P1, 2))
    force_status(db, order, source)
    for actor in Actor:
        with pytest.raises(IllegalTransition) as info:
            await services(db, clock).workflow.transition(order.id, target, actor=actor)
        assert (info.value.from_status, info.value.to_status) == (source, target)
    assert db.orders.rows[order.id].status is source
    assert db.orders.rows[order.id].version == 1
    assert len(await db.orders.history(order.id)) == 1
    assert status_events(db) == []
    assert stock(db, P1) == 48


@pytest.mark.parametrize("edge", workflow.TRANSITIONS, ids=lambda t: f"{t.source}-{t.target}")
async def test_each_allowed_edge_for_allowed_actors_only(
    db: FakeUnitOfWorkFactory, clock: SteppingClock, edge: workflow.Transition
) -> None:
    order = await place(db, clock, (P1, 2))
    force_status(db, order, edge.source)
    for actor in set(Actor) - edge.actors:
        with pytest.raises(ActorNotAllowed):
            await services(db, clock).workflow.transition(order.id, edge.target, actor=actor)
    actor = sorted(edge.actors)[0]
    after = await services(db, clock).workflow.transition(order.id, edge.target, actor=actor)
    assert after.status is edge.target and after.version == 2
    assert stock(db, P1) == (50 if edge.releases_stock else 48)
    [event] = status_events(db)
    assert (event["from_status"], event["to_status"], event["actor"]) == (
        edge.source,
        edge.target,
        actor,
    )


async def test_customers_cannot_approve_or_reject(
    db: FakeUnitOfWorkFactory, clock: SteppingClock
) -> None:
    order = await place(db, clock, (P1, 1))
    force_status(db, order, OrderStatus.VALIDATED)
    with pytest.raises(PermissionDenied):
        await services(db, clock).workflow.approve(order.id, ALICE)
    with pytest.raises(PermissionDenied):
        await services(db, clock).workflow.reject(order.id, ALICE, reason="no")
    with pytest.raises(PermissionDenied):
        await services(db).workflow.request_validation(order.id, ALICE)
    approved = await services(db, clock).workflow.approve(order.id, ADMIN)
    assert approved.status is OrderStatus.APPROVED


async def test_admin_reject_records_the_reason_and_releases_stock(
    db: FakeUnitOfWorkFactory, clock: SteppingClock
) -> None:
    order = await place(db, clock, (P1, 3))
    rejected = await services(db, clock).workflow.reject(order.id, ADMIN, reason="fraud check")
    assert (rejected.status, rejected.status_reason) == (OrderStatus.REJECTED, "fraud check")
    assert stock(db, P1) == 50
    [event] = status_events(db)
    assert (event["actor"], event["actor_id"]) == ("admin", ADMIN.id)
    assert event["reason"] == "fraud check"


async def test_request_validation_only_from_pending(
    db: FakeUnitOfWorkFactory, clock: SteppingClock
) -> None:
    order = await place(db, clock, (P1, 1))
    assert (await services(db).workflow.request_validation(order.id, ADMIN)).id == order.id
    force_status(db, order, OrderStatus.VALIDATED)
    with pytest.raises(IllegalTransition):
        await services(db).workflow.request_validation(order.id, ADMIN)


# --------------------------------------------------------------------------- races
class RacingOrders(FakeOrderRepository):
    """Another transaction moves the order between our read and our compare-and-set."""

    def __init__(self, moves: list[OrderStatus]) -> None:
        super().__init__()
        self.moves = moves

    async def compare_and_set_status(self, order_id: str, **kw) -> bool:  # type: ignore[no-untyped-def, override]
        if self.moves:  # committed by the other transaction: it survives our rollback
            moved = self.rows[order_id].moved_to(self.moves.pop(0), reason=None, at=kw["at"])
            self.rows[order_id] = moved
            if self._snapshot is not None:
                self._snapshot["rows"][order_id] = moved
        return await super().compare_and_set_status(order_id, **kw)


async def test_losing_the_race_to_a_final_state_is_a_conflict_not_a_double_move(
    db: FakeUnitOfWorkFactory, clock: SteppingClock
) -> None:
    order = await place(db, clock, (P1, 1))
    force_status(db, order, OrderStatus.VALIDATED)
    racing = RacingOrders([OrderStatus.APPROVED])
    racing.rows, racing.changes = db.orders.rows, db.orders.changes
    db.orders = racing
    with pytest.raises(IllegalTransition) as info:
        await services(db, clock).workflow.cancel(order.id, ALICE)
    assert info.value.from_status is OrderStatus.APPROVED
    assert db.orders.rows[order.id].status is OrderStatus.APPROVED
    assert stock(db, P1) == 49  # not released
    assert status_events(db) == []


async def test_a_race_that_leaves_the_move_legal_is_retried_from_the_new_state(
    db: FakeUnitOfWorkFactory, clock: SteppingClock
) -> None:
    order = await place(db, clock, (P1, 1))
    racing = RacingOrders([OrderStatus.VALIDATED])
    racing.rows, racing.changes = db.orders.rows, db.orders.changes
    db.orders = racing
    cancelled = await services(db, clock).workflow.cancel(order.id, ALICE)
    assert cancelled.status is OrderStatus.CANCELLED
    [event] = status_events(db)
    assert event["from_status"] == "validated"
    assert stock(db, P1) == 50


# --------------------------------------------------------------------------- validation
async def test_validation_passes_and_a_second_run_is_a_no_op(
    db: FakeUnitOfWorkFactory, clock: SteppingClock
) -> None:
    order = await place(db, clock, (P1, 1))
    validated = await validate(db, clock, order.id, POLICY)
    assert validated is not None and validated.status is OrderStatus.VALIDATED
    again = await validate(db, clock, order.id, POLICY)
    assert again is not None and again.status is OrderStatus.VALIDATED and again.version == 2
    assert len(await db.orders.history(order.id)) == 2
    assert len(status_events(db)) == 1


async def test_validation_rejects_an_inactive_product_and_releases_stock(
    db: FakeUnitOfWorkFactory, clock: SteppingClock
) -> None:
    order = await place(db, clock, (P1, 2), (P2, 1))
    db.products.rows[P2] = replace(db.products.rows[P2], is_active=False)  # type: ignore[attr-defined]
    rejected = await validate(db, clock, order.id, POLICY)
    assert rejected is not None and rejected.status is OrderStatus.REJECTED
    assert P2 in (rejected.status_reason or "")
    assert (stock(db, P1), stock(db, P2)) == (50, 50)
    [event] = status_events(db)
    assert event["actor"] == "system" and event["reason"] == rejected.status_reason


async def test_validation_rejects_a_total_above_the_maximum(
    db: FakeUnitOfWorkFactory, clock: SteppingClock
) -> None:
    order = await place(db, clock, (P1, 10))  # 199.00
    rejected = await validate(db, clock, order.id, WorkflowPolicy(max_total=Decimal("100.00")))
    assert rejected is not None and rejected.status is OrderStatus.REJECTED
    assert "199.00" in (rejected.status_reason or "") and "100.00" in (rejected.status_reason or "")


async def test_validation_rejects_a_total_that_does_not_match_the_lines(
    db: FakeUnitOfWorkFactory, clock: SteppingClock
) -> None:
    order = await place(db, clock, (P1, 1))
    db.orders.rows[order.id] = replace(db.orders.rows[order.id], total=Decimal("1.00"))
    rejected = await validate(db, clock, order.id, POLICY)
    assert rejected is not None and rejected.status is OrderStatus.REJECTED
    assert "does not match" in (rejected.status_reason or "")


async def test_validation_of_an_absent_or_cancelled_order_does_nothing(
    db: FakeUnitOfWorkFactory, clock: SteppingClock
) -> None:
    missing = "00000000-0000-4000-8000-0000000000ff"
    assert await validate(db, clock, missing, POLICY) is None
    order = await place(db, clock, (P1, 1))
    await services(db, clock).workflow.cancel(order.id, ALICE)
    after = await validate(db, clock, order.id, POLICY)
    assert after is not None and after.status is OrderStatus.CANCELLED
    assert len(status_events(db)) == 1


async def test_validation_cancelled_in_the_race_is_a_no_op(
    db: FakeUnitOfWorkFactory, clock: SteppingClock
) -> None:
    order = await place(db, clock, (P1, 1))
    racing = RacingOrders([OrderStatus.CANCELLED])
    racing.rows, racing.changes = db.orders.rows, db.orders.changes
    db.orders = racing
    after = await validate(db, clock, order.id, POLICY)
    assert after is not None and after.status is OrderStatus.CANCELLED
    assert status_events(db) == []


# --------------------------------------------------------------------------- the system's path
async def test_the_system_drives_an_order_to_completion(
    db: FakeUnitOfWorkFactory, clock: SteppingClock
) -> None:
    order = await place(db, clock, (P1, 1))
    await validate(db, clock, order.id, POLICY)
    for target in (OrderStatus.APPROVED, OrderStatus.PROCESSING, OrderStatus.COMPLETED):
        await services(db, clock).workflow.transition(order.id, target)
    history = await services(db).orders.history(order.id, ALICE)
    assert [h.to_status for h in history] == [
        OrderStatus.PENDING,
        OrderStatus.VALIDATED,
        OrderStatus.APPROVED,
        OrderStatus.PROCESSING,
        OrderStatus.COMPLETED,
    ]
    assert all(h.actor == "system" for h in history[1:])
    assert stock(db, P1) == 49
