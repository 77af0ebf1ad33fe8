"""The Beat jobs and the validation consumer over fakes: which orders move, once, in bounds."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from decimal import Decimal

import pytest

from backend.domain.events import ORDER_CREATED, ORDER_STATUS_CHANGED
from backend.domain.orders import Order, OrderStatus
from backend.domain.ports import Transaction
from backend.services import progression
from backend.services.events import EventDispatcher
from backend.services.order_workflow import WorkflowPolicy
from backend.services.progression import Job
from tests.fakes import FakeUnitOfWorkFactory
from tests.fakes.orders import FakeStockProducts, SteppingClock, make_product
from tests.fakes.services import services, validate
from tests.unit.test_orders_service import P1, P2, place, stock

S = OrderStatus
POLICY = WorkflowPolicy(
    batch_size=2,
    move_batch_size=2,
    max_batches=10,
    grace_period=timedelta(seconds=120),
    processing_time=timedelta(seconds=120),
    auto_approve_max_total=Decimal("100.00"),
    max_total=Decimal("1000.00"),
    validation_retry_after=timedelta(seconds=60),
)


@pytest.fixture
def db() -> FakeUnitOfWorkFactory:
    store = FakeUnitOfWorkFactory()
    store.products = FakeStockProducts(  # type: ignore[attr-defined]
        make_product(P1, price="10.00", stock=500), make_product(P2, price="600.00", stock=50)
    )
    return store


@pytest.fixture
def clock() -> SteppingClock:
    return SteppingClock()


async def run(
    name: str, db: FakeUnitOfWorkFactory, clock: SteppingClock, **kw: object
) -> progression.JobReport:
    return await services(db, clock, POLICY).jobs.run(name, **kw)  # type: ignore[arg-type]


def status_of(db: FakeUnitOfWorkFactory, order: Order) -> OrderStatus:
    return db.orders.rows[order.id].status


def moves(db: FakeUnitOfWorkFactory, order: Order) -> list[tuple[str | None, str]]:
    return [
        (str(c.from_status) if c.from_status else None, str(c.to_status))
        for c in db.orders.changes
        if c.order_id == order.id
    ]


async def test_the_whole_workflow_of_a_small_order_each_step_once(
    db: FakeUnitOfWorkFactory, clock: SteppingClock
) -> None:
    order = await place(db, clock, (P1, 3))  # 30.00: under the auto-approve threshold
    clock.advance(seconds=61)
    assert (await run("validate_pending", db, clock)).moved == 1
    assert (await run("auto_approve", db, clock)).moved == 0  # grace period not over
    clock.advance(seconds=60)
    assert (await run("auto_approve", db, clock)).moved == 1
    assert (await run("start_processing", db, clock)).moved == 1
    assert (await run("complete_processing", db, clock)).moved == 0  # still processing
    clock.advance(seconds=121)
    assert (await run("complete_processing", db, clock)).moved == 1
    for job in progression.WorkflowJobs.NAMES:  # a second pass moves nothing
        assert (await run(job, db, clock)).moved == 0

    assert moves(db, order) == [
        (None, "pending"),
        ("pending", "validated"),
        ("validated", "approved"),
        ("approved", "processing"),
        ("processing", "completed"),
    ]
    changes = [e.payload for e in db.outbox.events if e.type == ORDER_STATUS_CHANGED]
    assert [(p["to_status"], p["actor"]) for p in changes] == [
        ("validated", "system"),
        ("approved", "system"),
        ("processing", "system"),
        ("completed", "system"),
    ]


async def test_orders_above_the_auto_approve_threshold_wait_for_an_admin(
    db: FakeUnitOfWorkFactory, clock: SteppingClock
) -> None:
    small = await place(db, clock, (P1, 10))  # 100.00: at the threshold, approved
    large = await place(db, clock, (P1, 11))  # 110.00: above it
    clock.advance(seconds=200)
    await run("validate_pending", db, clock)
    report = await run("auto_approve", db, clock)
    assert report.moved == 1 and report.moved_to == {"approved": 1}
    assert (status_of(db, small), status_of(db, large)) == (S.APPROVED, S.VALIDATED)


async def test_validation_rejects_above_the_maximum_with_a_reason_and_releases_stock(
    db: FakeUnitOfWorkFactory, clock: SteppingClock
) -> None:
    order = await place(db, clock, (P2, 2))  # 1200.00 > 1000.00
    assert stock(db, P2) == 48
    clock.advance(seconds=61)
    report = await run("validate_pending", db, clock)
    assert report.moved_to == {"rejected": 1}
    rejected = db.orders.rows[order.id]
    assert rejected.status is S.REJECTED
    assert rejected.status_reason is not None and "above the maximum" in rejected.status_reason
    assert stock(db, P2) == 50


async def test_validate_pending_leaves_young_orders_to_their_event(
    db: FakeUnitOfWorkFactory, clock: SteppingClock
) -> None:
    order = await place(db, clock, (P1, 1))
    clock.advance(seconds=30)
    assert (await run("validate_pending", db, clock)).claimed == 0
    assert status_of(db, order) is S.PENDING


async def test_a_run_moves_at_most_batch_size_times_max_batches(
    db: FakeUnitOfWorkFactory, clock: SteppingClock
) -> None:
    orders = [await place(db, clock, (P1, 1)) for _ in range(5)]
    clock.advance(seconds=61)
    commits = db.commits
    first = await run("validate_pending", db, clock, max_batches=2)
    assert (first.moved, first.batches, db.commits - commits) == (4, 2, 2)
    oldest_first = [status_of(db, o) for o in orders]
    assert oldest_first == [S.VALIDATED] * 4 + [S.PENDING]
    assert (await run("validate_pending", db, clock)).moved == 1


async def test_an_order_moved_by_someone_else_after_the_claim_is_skipped(
    db: FakeUnitOfWorkFactory, clock: SteppingClock
) -> None:
    first = await place(db, clock, (P1, 1))
    second = await place(db, clock, (P1, 1))
    clock.advance(seconds=200)
    await run("validate_pending", db, clock)

    async def claim_then_lose_the_race(uow: Transaction, now, limit):  # type: ignore[no-untyped-def]
        ids = await uow.orders.claim_ids(S.VALIDATED, limit=limit)
        # The owner cancels the first order between the claim and the move.
        db.orders.rows[first.id] = replace(db.orders.rows[first.id], status=S.CANCELLED)
        return ids

    svc = services(db, clock, POLICY)

    async def approve(tx: Transaction, order: Order, now):  # type: ignore[no-untyped-def]
        return await svc.workflow.system_transition(tx, order, S.APPROVED, now)

    report = await svc.jobs.run_job(Job("approve_one_by_one", claim_then_lose_the_race, approve))
    assert (report.claimed, report.moved) == (2, 1)
    assert (status_of(db, first), status_of(db, second)) == (S.CANCELLED, S.APPROVED)


async def test_the_validation_consumer_validates_once_per_event(
    db: FakeUnitOfWorkFactory, clock: SteppingClock
) -> None:
    order = await place(db, clock, (P1, 1))
    created = next(e for e in db.outbox.events if e.type == ORDER_CREATED)
    dispatcher = EventDispatcher(db, clock, [services(db, clock, POLICY).validation])

    await dispatcher.dispatch(created)
    await dispatcher.dispatch(created)  # redelivered

    assert status_of(db, order) is S.VALIDATED
    assert moves(db, order) == [(None, "pending"), ("pending", "validated")]


async def test_the_validation_consumer_ignores_an_order_no_longer_pending(
    db: FakeUnitOfWorkFactory, clock: SteppingClock
) -> None:
    order = await place(db, clock, (P1, 1))
    await validate(db, clock, order.id, POLICY)
    created = next(e for e in db.outbox.events if e.type == ORDER_CREATED)

    dispatcher = EventDispatcher(db, clock, [services(db, clock, POLICY).validation])
    report = await dispatcher.dispatch(created)

    assert report.handled == ["workflow.validate_order"]
    assert moves(db, order) == [(None, "pending"), ("pending", "validated")]


async def test_purge_removes_day_old_keys_and_expired_tokens_in_batches(
    db: FakeUnitOfWorkFactory, clock: SteppingClock
) -> None:
    from backend.domain.orders import IdempotencyRecord
    from backend.domain.users import RefreshToken

    now = clock.now()
    old = now - timedelta(hours=25)
    for i in range(5):
        db.idempotency.rows[("u", f"old-{i}")] = IdempotencyRecord("u", f"old-{i}", "h", None, old)
    db.idempotency.rows[("u", "new")] = IdempotencyRecord("u", "new", "h", None, now)

    def token(name: str, expires_in: timedelta, spent: bool) -> RefreshToken:
        return RefreshToken(
            id=name,
            user_id="u",
            family_id="f",
            token_hash=name,
            created_at=old,
            expires_at=now + expires_in,
            spent_at=old if spent else None,
        )

    for t in (
        token("expired-spent", timedelta(hours=-1), spent=True),
        token("expired", timedelta(seconds=-1), spent=False),
        token("spent-live", timedelta(days=1), spent=True),  # kept: reuse detection
        token("live", timedelta(days=1), spent=False),
    ):
        db.refresh_tokens.rows[t.id] = t
    commits = db.commits

    report = await services(db, clock, POLICY).maintenance.purge_expired()

    assert (report.idempotency_keys, report.refresh_tokens) == (5, 2)
    assert list(db.idempotency.rows) == [("u", "new")]
    assert sorted(db.refresh_tokens.rows) == ["live", "spent-live"]
    assert report.outbox_events == 0
    assert report.stream_tickets == 0
    # Batches of 2: keys 2+2+1, tokens 2+0, events 0, stream tickets 0.
    assert db.commits - commits == 3 + 2 + 1 + 1


async def test_a_rejecting_batch_locks_all_its_products_before_giving_stock_back(
    db: FakeUnitOfWorkFactory, clock: SteppingClock
) -> None:
    # Two orders over both products, the second listing them the other way round; both fail
    # validation (total above 1000.00), so the batch gives back the stock of both.
    await place(db, clock, (P2, 1), (P1, 50))
    await place(db, clock, (P1, 50), (P2, 1))
    products: FakeStockProducts = db.products  # type: ignore[attr-defined]
    placed = len(products.adjust_calls)
    clock.advance(seconds=61)

    report = await run("validate_pending", db, clock)

    assert report.moved_to == {"rejected": 2}  # one batch (batch_size=2)
    # One lock, of every product of the batch in id order, before any stock moved back.
    assert products.lock_calls == [(sorted({P1, P2}), placed)]
    assert len(products.adjust_calls) == placed + 4
    assert (stock(db, P1), stock(db, P2)) == (500, 50)


async def test_jobs_that_never_give_stock_back_lock_no_products(
    db: FakeUnitOfWorkFactory, clock: SteppingClock
) -> None:
    await place(db, clock, (P1, 3))
    clock.advance(seconds=61)
    await run("validate_pending", db, clock)  # validated: locks, as it might have rejected
    products: FakeStockProducts = db.products  # type: ignore[attr-defined]
    products.lock_calls.clear()
    clock.advance(seconds=121)
    assert (await run("auto_approve", db, clock)).moved == 1
    assert (await run("start_processing", db, clock)).moved == 1
    clock.advance(seconds=121)
    assert (await run("complete_processing", db, clock)).moved == 1
    assert products.lock_calls == []


async def test_an_admins_validate_now_goes_through_the_outbox_to_the_consumer(
    db: FakeUnitOfWorkFactory, clock: SteppingClock
) -> None:
    """`request_validation` writes `order.validation_requested` (and kicks the relay after
    the commit); the validation consumer runs it like an `order.created`, once."""
    from backend.domain.events import ORDER_VALIDATION_REQUESTED
    from tests.fakes.orders import make_user

    svc = services(db, clock, POLICY)
    order = await place(db, clock, (P1, 1))
    await svc.workflow.request_validation(order.id, make_user(ADMIN_ID, admin=True))
    assert status_of(db, order) is S.PENDING  # nothing validated in the request itself
    assert svc.relay_kicks == 1
    requested = [e for e in db.outbox.events if e.type == ORDER_VALIDATION_REQUESTED]
    assert [e.aggregate_id for e in requested] == [order.id]

    dispatcher = EventDispatcher(db, clock, [svc.validation])
    report = await dispatcher.dispatch(requested[0])
    again = await dispatcher.dispatch(requested[0])  # redelivered

    assert (report.handled, again.duplicates) == (["workflow.validate_order"],) * 2
    assert moves(db, order) == [(None, "pending"), ("pending", "validated")]
    created = next(e for e in db.outbox.events if e.type == ORDER_CREATED)
    await dispatcher.dispatch(created)  # the placement's own event: a no-op now
    assert moves(db, order) == [(None, "pending"), ("pending", "validated")]


ADMIN_ID = "ad000000-0000-4000-8000-0000000000ad"
