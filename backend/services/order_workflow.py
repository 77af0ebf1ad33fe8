"""The order workflow: every status change, by a person or by the system, and validation.

`OrderWorkflow` is built by the Container with the unit-of-work factory, the clock, the
event recorder, the catalogue cache and the workflow policy. Its public methods that take
ids open one unit of work and commit it; `apply_transition` and `validate_in` take a
`Transaction` and run inside a unit someone else owns (a Beat job's batch, the validation
consumer's dispatch), so they cannot commit (ADR 0014).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from functools import partial

from backend.domain import workflow
from backend.domain.catalog import Cache
from backend.domain.errors import Conflict, PermissionDenied
from backend.domain.events import ORDER_STATUS_CHANGED, ORDER_VALIDATION_REQUESTED, DomainEvent
from backend.domain.orders import (
    ClaimFilter,
    IllegalTransition,
    Order,
    OrderNotFound,
    OrderStatus,
    OrderStatusChange,
    lines_total,
    status_changed_payload,
)
from backend.domain.ports import Clock, Transaction, UnitOfWorkFactory
from backend.domain.users import User
from backend.domain.workflow import Actor
from backend.services.catalog import products_changed
from backend.services.event_recorder import EventRecorder
from backend.services.orders import visible_order

CAS_ATTEMPTS = 3


@dataclass(frozen=True, slots=True)
class WorkflowPolicy:
    batch_size: int = 200
    move_batch_size: int = 1000  # the set-based jobs' batches (`advance_batch`)
    move_lanes: int = 1  # their batches at once (PostgreSQL only: SQLite has one writer)
    max_batches: int = 50
    grace_period: timedelta = timedelta(seconds=120)
    processing_time: timedelta = timedelta(seconds=120)
    auto_approve_max_total: Decimal = Decimal("1000.00")
    max_total: Decimal = Decimal("100000.00")
    validation_retry_after: timedelta = timedelta(seconds=60)
    idempotency_ttl: timedelta = timedelta(hours=24)
    outbox_retention: timedelta = timedelta(days=7)


def actor_of(user: User) -> Actor:
    return Actor.ADMIN if user.is_admin else Actor.OWNER


class OrderWorkflow:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        clock: Clock,
        events: EventRecorder,
        cache: Cache,
        policy: WorkflowPolicy | None = None,
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._events = events
        self._cache = cache
        self.policy = policy or WorkflowPolicy()

    # ------------------------------------------------------------------ people
    async def cancel(self, order_id: str, requester: User, reason: str | None = None) -> Order:
        return await self._act(order_id, requester, OrderStatus.CANCELLED, reason)

    async def approve(self, order_id: str, requester: User) -> Order:
        return await self._act(order_id, requester, OrderStatus.APPROVED)

    async def reject(self, order_id: str, requester: User, reason: str) -> Order:
        return await self._act(order_id, requester, OrderStatus.REJECTED, reason)

    async def _act(
        self, order_id: str, requester: User, target: OrderStatus, reason: str | None = None
    ) -> Order:
        async with self._uow() as tx:
            order = await visible_order(tx, order_id, requester)
            after = await self.apply_transition(
                tx,
                order,
                target,
                actor=actor_of(requester),
                actor_id=requester.id,
                reason=reason,
                now=self._clock.now(),
            )
            await tx.commit()
        return after

    async def request_validation(self, order_id: str, requester: User) -> Order:
        """An admin's "validate now": checks it may start (admin, order pending) and writes
        the request to the outbox in the same transaction; the validation consumer runs it
        like every other validation (the relay is kicked after the commit)."""
        async with self._uow() as tx:
            order = await visible_order(tx, order_id, requester)
            if not requester.is_admin:
                raise PermissionDenied("Only admins may start a validation.")
            if order.status is not OrderStatus.PENDING:
                raise IllegalTransition(order.status, OrderStatus.VALIDATED)
            event = DomainEvent(
                type=ORDER_VALIDATION_REQUESTED,
                aggregate_type="order",
                aggregate_id=order.id,
                payload={"order_id": order.id, "actor": str(Actor.ADMIN), "actor_id": requester.id},
                occurred_at=self._clock.now(),
            )
            await self._events.record(tx, event)
            await tx.commit()
        return order

    # ------------------------------------------------------------------ the system
    async def transition(
        self,
        order_id: str,
        target: OrderStatus,
        *,
        actor: Actor = Actor.SYSTEM,
        actor_id: str | None = None,
        reason: str | None = None,
    ) -> Order:
        """One transition in its own unit of work."""
        async with self._uow() as tx:
            order = await tx.orders.get(order_id)
            if order is None:
                raise OrderNotFound(order_id)
            after = await self.apply_transition(
                tx,
                order,
                target,
                actor=actor,
                actor_id=actor_id,
                reason=reason,
                now=self._clock.now(),
            )
            await tx.commit()
        return after

    async def apply_transition(
        self,
        tx: Transaction,
        order: Order,
        target: OrderStatus,
        *,
        actor: Actor,
        actor_id: str | None = None,
        reason: str | None = None,
        now: datetime,
    ) -> Order:
        """Compare-and-set the status, release stock if the edge says so, write history and
        the event: all in `tx`. Losing a race re-reads and re-checks, so a concurrent change
        gives `IllegalTransition` (409), never a double transition."""
        for _ in range(CAS_ATTEMPTS):
            edge = workflow.require(order.status, target, actor)
            moved = await tx.orders.compare_and_set_status(
                order.id, expected=order.status, target=target, reason=reason, at=now
            )
            if moved:
                after = order.moved_to(target, reason=reason, at=now)
                if edge.releases_stock:
                    await self._release_stock(tx, order)
                await self._record_change(tx, order, after, actor, actor_id, now)
                return after
            reloaded = await tx.orders.get(order.id)
            if reloaded is None:
                raise OrderNotFound(order.id)
            order = reloaded
        raise Conflict("The order kept changing while we tried to move it; retry.")

    async def system_transition(
        self,
        tx: Transaction,
        order: Order,
        target: OrderStatus,
        now: datetime,
        reason: str | None = None,
    ) -> Order | None:
        """The system's move of one order in `tx`; None when the order is no longer where
        the caller found it (another actor won the compare-and-set)."""
        try:
            return await self.apply_transition(
                tx, order, target, actor=Actor.SYSTEM, reason=reason, now=now
            )
        except Conflict:  # IllegalTransition included: cancelled or moved meanwhile
            return None

    async def advance_batch(
        self, tx: Transaction, target: OrderStatus, *, limit: int, now: datetime, where: ClaimFilter
    ) -> dict[OrderStatus, int]:
        """A Beat job's batch moved set-based: the workflow's rule for `target`
        (`workflow.batch_move`: which statuses the system may move from, none giving stock
        back) applied by the repository to up to `limit` orders `where` admits, claim, moves,
        history and events in one statement on PostgreSQL. How many moved, per starting
        status; the metrics and the relay kick follow the commit as for any recorded event."""
        move = workflow.batch_move(target)
        moved = await tx.orders.move_batch(move, limit=limit, at=now, where=where)
        self._events.written_by_repository(
            tx,
            ORDER_STATUS_CHANGED,
            {(str(source), str(move.target), str(move.actor)): n for source, n in moved.items()},
        )
        return moved

    async def validate_in(self, tx: Transaction, order: Order, now: datetime) -> Order | None:
        """PRODUCT.md's validation in `tx` (the Beat safety net and the consumer alike):
        validated, or rejected with the reason (the transition releases the stock); None
        when the order is not pending (validating twice is a no-op)."""
        if order.status is not OrderStatus.PENDING:
            return None
        reason = await validation_failure(tx, order, self.policy.max_total)
        target = OrderStatus.VALIDATED if reason is None else OrderStatus.REJECTED
        return await self.system_transition(tx, order, target, now, reason)

    async def _release_stock(self, tx: Transaction, order: Order) -> None:
        product_ids = sorted(line.product_id for line in order.lines)
        quantities = {line.product_id: line.quantity for line in order.lines}
        for product_id in product_ids:
            await tx.products.adjust_stock(product_id, quantities[product_id])
        tx.on_commit(partial(products_changed, self._cache, product_ids))

    async def _record_change(
        self,
        tx: Transaction,
        before: Order,
        after: Order,
        actor: Actor,
        actor_id: str | None,
        now: datetime,
    ) -> None:
        change, event = _change_and_event(before, after, actor, actor_id, now)
        await tx.orders.add_history(change)
        await self._events.record(tx, event)


def _change_and_event(
    before: Order, after: Order, actor: Actor, actor_id: str | None, now: datetime
) -> tuple[OrderStatusChange, DomainEvent]:
    """The history entry and the `order.status_changed` event of one move."""
    change = OrderStatusChange(
        order_id=after.id,
        from_status=before.status,
        to_status=after.status,
        actor=actor,
        actor_id=actor_id,
        reason=after.status_reason,
        at=now,
    )
    event = DomainEvent(
        type=ORDER_STATUS_CHANGED,
        aggregate_type="order",
        aggregate_id=after.id,
        payload=status_changed_payload(before, after, actor, actor_id),
        occurred_at=now,
    )
    return change, event


async def validation_failure(tx: Transaction, order: Order, max_total: Decimal) -> str | None:
    """Why the order fails PRODUCT.md's validation rules, or None when it passes."""
    ids = sorted({line.product_id for line in order.lines})
    products = await tx.products.get_many(ids)
    inactive = [pid for pid in ids if pid not in products or not products[pid].is_active]
    if inactive:
        return f"Product(s) no longer available: {', '.join(inactive)}."
    if not order.total_matches_lines:
        return f"Total {order.total} does not match the lines ({lines_total(order.lines)})."
    if order.total > max_total:
        return f"Total {order.total} is above the maximum order total of {max_total}."
    return None
