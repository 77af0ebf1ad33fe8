"""Order use cases: placement with stock reservation, the workflow, reads with ownership.

Every function that takes `uow` opens it (one transaction) and commits it itself, except
`apply_transition`, which works inside a unit of work its caller opened (batch jobs).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from backend.domain import workflow
from backend.domain.catalog import Product
from backend.domain.errors import Conflict, InvalidInput, PermissionDenied, StaleVersion
from backend.domain.events import ORDER_CREATED, ORDER_STATUS_CHANGED, DomainEvent
from backend.domain.orders import (
    MAX_LINES,
    MAX_QUANTITY,
    IdempotencyInFlight,
    IdempotencyKeyReused,
    IllegalTransition,
    InsufficientStock,
    MixedCurrencies,
    Order,
    OrderLine,
    OrderNotEditable,
    OrderNotFound,
    OrderPage,
    OrderQuery,
    OrderStatus,
    OrderStatusChange,
    PlaceOrderCommand,
    ProductUnavailable,
    StoredResponse,
    lines_total,
)
from backend.domain.ports import Clock, UnitOfWork
from backend.domain.users import User
from backend.domain.versioning import ExpectedVersion, version_allowed
from backend.domain.workflow import Actor

CAS_ATTEMPTS = 3
IDEMPOTENCY_TTL = timedelta(hours=24)


@dataclass(frozen=True, slots=True)
class Idempotency:
    """An `Idempotency-Key` and how to render the response that is stored under it."""

    key: str
    render: Callable[[Order], StoredResponse]
    wait_seconds: float = 5.0


@dataclass(frozen=True, slots=True)
class Placement:
    order: Order | None  # None when the answer is a replay
    response: StoredResponse | None  # the stored (or replayed) response, with a key only
    replayed: bool = False


def actor_of(user: User) -> Actor:
    return Actor.ADMIN if user.is_admin else Actor.OWNER


def fingerprint(command: PlaceOrderCommand) -> str:
    """Hash of the request's meaning (not its bytes): key order and spacing do not count."""
    document = {
        "items": [[item.product_id, item.quantity] for item in command.items],
        "shipping_address": command.shipping_address,
        "note": command.note,
    }
    return hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()


def check_command(command: PlaceOrderCommand) -> None:
    """The rules the API schema also enforces, for callers that are not the API."""
    if not 1 <= len(command.items) <= MAX_LINES:
        raise InvalidInput(f"An order has 1 to {MAX_LINES} items.")
    if any(not 1 <= item.quantity <= MAX_QUANTITY for item in command.items):
        raise InvalidInput(f"Each quantity is 1 to {MAX_QUANTITY}.")
    if len({item.product_id for item in command.items}) != len(command.items):
        raise InvalidInput("Each product may appear at most once in an order.")


# --------------------------------------------------------------------------- placement
async def place_order(
    uow: UnitOfWork,
    command: PlaceOrderCommand,
    *,
    clock: Clock,
    idempotency: Idempotency | None = None,
) -> Placement:
    """Reserve stock for every line and write the order, all in one transaction."""
    check_command(command)
    now = clock.now()
    async with uow:
        if idempotency is not None:
            replay = await _claim_key(uow, command, idempotency, now)
            if replay is not None:
                return Placement(order=None, response=replay, replayed=True)
        products = await _load_products(uow, command)
        await _reserve_stock(uow, command)
        order = _new_order(command, products, now)
        await _write_new_order(uow, order, now)
        response = None
        if idempotency is not None:
            response = idempotency.render(order)
            await uow.idempotency.complete(command.user_id, idempotency.key, response)
        await uow.commit()
    return Placement(order=order, response=response)


async def _claim_key(
    uow: UnitOfWork, command: PlaceOrderCommand, idem: Idempotency, now: datetime
) -> StoredResponse | None:
    """None when this request owns the key; else the first request's response."""
    request_hash = fingerprint(command)
    record = await uow.idempotency.claim(
        command.user_id,
        idem.key,
        request_hash=request_hash,
        now=now,
        expired_before=now - IDEMPOTENCY_TTL,
        wait_seconds=idem.wait_seconds,
    )
    if record is None:
        return None
    if record.request_hash != request_hash:
        raise IdempotencyKeyReused()
    if record.response is None:  # a committed key always has one; defensive
        raise IdempotencyInFlight()
    return record.response


async def _load_products(uow: UnitOfWork, command: PlaceOrderCommand) -> dict[str, Product]:
    ids = [item.product_id for item in command.items]
    products = await uow.products.get_many(sorted(ids))
    missing = [pid for pid in ids if pid not in products or not products[pid].is_active]
    if missing:
        positions = {item.product_id: i for i, item in enumerate(command.items)}
        raise ProductUnavailable(missing, positions)
    currencies = {p.currency for p in products.values()}
    if len(currencies) > 1:
        raise MixedCurrencies(currencies)
    return products


async def _reserve_stock(uow: UnitOfWork, command: PlaceOrderCommand) -> None:
    """Sorted product-id order: two orders lock shared rows in the same order, never a cycle.
    Every short product is collected; raising aborts the unit of work, so nothing stays."""
    short = []
    for item in sorted(command.items, key=lambda i: i.product_id):
        if await uow.products.adjust_stock(item.product_id, -item.quantity) is None:
            short.append(item.product_id)
    if short:
        raise InsufficientStock(short)


def _new_order(command: PlaceOrderCommand, products: dict[str, Product], now: datetime) -> Order:
    lines = tuple(
        OrderLine(
            product_id=item.product_id,
            sku=products[item.product_id].sku,
            product_name=products[item.product_id].name,
            unit_price=products[item.product_id].price,
            quantity=item.quantity,
        )
        for item in command.items
    )
    return Order(
        id=str(uuid.uuid4()),
        user_id=command.user_id,
        status=workflow.INITIAL,
        lines=lines,
        total=lines_total(lines),
        currency=next(iter(products.values())).currency,
        shipping_address=command.shipping_address,
        note=command.note,
        status_reason=None,
        version=1,
        created_at=now,
        updated_at=now,
    )


async def _write_new_order(uow: UnitOfWork, order: Order, now: datetime) -> None:
    await uow.orders.add(order)
    await uow.orders.add_history(
        OrderStatusChange(
            order_id=order.id,
            from_status=None,
            to_status=order.status,
            actor=Actor.OWNER,
            actor_id=order.user_id,
            reason=None,
            at=now,
        )
    )
    await uow.outbox.add(
        DomainEvent(
            type=ORDER_CREATED,
            aggregate_type="order",
            aggregate_id=order.id,
            payload=created_payload(order),
            occurred_at=now,
        )
    )


def created_payload(order: Order) -> dict[str, Any]:
    return {
        "order_id": order.id,
        "user_id": order.user_id,
        "status": str(order.status),
        "total": str(order.total),
        "currency": order.currency,
        "actor": str(Actor.OWNER),
        "actor_id": order.user_id,
        "reason": None,
        "items": [
            {"product_id": line.product_id, "sku": line.sku, "quantity": line.quantity}
            for line in order.lines
        ],
        "created_at": order.created_at.isoformat(),
    }


def changed_payload(
    before: Order, after: Order, actor: Actor, actor_id: str | None
) -> dict[str, Any]:
    return {
        "order_id": after.id,
        "user_id": after.user_id,
        "from_status": str(before.status),
        "to_status": str(after.status),
        "status": str(after.status),
        "total": str(after.total),
        "currency": after.currency,
        "actor": str(actor),
        "actor_id": actor_id,
        "reason": after.status_reason,
        "version": after.version,
        "at": after.updated_at.isoformat(),
        "items": [
            {"product_id": line.product_id, "sku": line.sku, "quantity": line.quantity}
            for line in after.lines
        ],
    }


def products_with_stock_changed(events: Iterable[DomainEvent]) -> list[str]:
    """Products whose stock these committed events changed: every line of a new order
    (reserved) and of an order that moved along a stock-releasing edge (released).
    The composition root drops their cached reads after each commit, whoever committed
    (an API request or a worker), so cached stock follows the orders."""
    changed: set[str] = set()
    for event in events:
        payload = event.payload
        if event.type == ORDER_STATUS_CHANGED:
            edge = workflow.transition_for(
                OrderStatus(payload["from_status"]), OrderStatus(payload["to_status"])
            )
            if edge is None or not edge.releases_stock:
                continue
        elif event.type != ORDER_CREATED:
            continue
        changed.update(item["product_id"] for item in payload.get("items", ()))
    return sorted(changed)


# --------------------------------------------------------------------------- reads
async def _visible(uow: UnitOfWork, order_id: str, requester: User) -> Order:
    """The order if the requester may see it; another customer's order is a 404, not a 403."""
    order = await uow.orders.get(order_id)
    if order is None or (not requester.is_admin and order.user_id != requester.id):
        raise OrderNotFound(order_id)
    return order


async def get_order(uow: UnitOfWork, order_id: str, requester: User) -> Order:
    async with uow:
        return await _visible(uow, order_id, requester)


async def list_orders(uow: UnitOfWork, requester: User, query: OrderQuery) -> OrderPage:
    if not requester.is_admin:
        if query.user_id not in (None, requester.id):
            raise PermissionDenied("Only admins may list other users' orders.")
        query = replace(query, user_id=requester.id)
    async with uow:
        return await uow.orders.search(query)


async def order_history(uow: UnitOfWork, order_id: str, requester: User) -> list[OrderStatusChange]:
    async with uow:
        await _visible(uow, order_id, requester)
        return await uow.orders.history(order_id)


async def update_order_details(
    uow: UnitOfWork,
    order_id: str,
    requester: User,
    changes: dict[str, str | None],
    *,
    expected_version: ExpectedVersion,
    clock: Clock,
) -> Order:
    """Shipping address and note, while the order is pending or validated."""
    unknown = set(changes) - {"shipping_address", "note"}
    if unknown:
        raise InvalidInput(f"Only shipping_address and note can be changed, not {sorted(unknown)}.")
    async with uow:
        order = await _visible(uow, order_id, requester)
        if not version_allowed(expected_version, order.version):
            raise StaleVersion(f"The order is at version {order.version}; re-read it and retry.")
        if order.status not in workflow.EDITABLE_STATES:
            raise OrderNotEditable(order.status)
        if not changes:
            return order
        now = clock.now()
        updated = await uow.orders.update_details(
            order_id,
            changes=changes,
            editable=workflow.EDITABLE_STATES,
            expected_version=order.version,
            at=now,
        )
        if not updated:  # moved or edited since we read it
            current = await _visible(uow, order_id, requester)
            if current.status not in workflow.EDITABLE_STATES:
                raise OrderNotEditable(current.status)
            raise StaleVersion(f"The order changed meanwhile (now version {current.version}).")
        await uow.commit()
    return replace(
        order,
        shipping_address=changes.get("shipping_address", order.shipping_address),
        note=changes.get("note", order.note),
        version=order.version + 1,
        updated_at=now,
    )


# --------------------------------------------------------------------------- workflow
async def apply_transition(
    uow: UnitOfWork,
    order: Order,
    target: OrderStatus,
    *,
    actor: Actor,
    actor_id: str | None = None,
    reason: str | None = None,
    now: datetime,
) -> Order:
    """Compare-and-set the status, release stock if the edge says so, write history and the
    event: all in the caller's open unit of work. Losing a race re-reads and re-checks, so a
    concurrent change gives `IllegalTransition` (409), never a double transition."""
    for _ in range(CAS_ATTEMPTS):
        edge = workflow.require(order.status, target, actor)
        moved = await uow.orders.compare_and_set_status(
            order.id, expected=order.status, target=target, reason=reason, at=now
        )
        if moved:
            after = order.moved_to(target, reason=reason, at=now)
            if edge.releases_stock:
                await _release_stock(uow, order)
            await _record_change(uow, order, after, actor, actor_id, now)
            return after
        reloaded = await uow.orders.get(order.id)
        if reloaded is None:
            raise OrderNotFound(order.id)
        order = reloaded
    raise Conflict("The order kept changing while we tried to move it; retry.")


async def _release_stock(uow: UnitOfWork, order: Order) -> None:
    for line in sorted(order.lines, key=lambda ln: ln.product_id):
        await uow.products.adjust_stock(line.product_id, line.quantity)


async def _record_change(
    uow: UnitOfWork, before: Order, after: Order, actor: Actor, actor_id: str | None, now: datetime
) -> None:
    await uow.orders.add_history(
        OrderStatusChange(
            order_id=after.id,
            from_status=before.status,
            to_status=after.status,
            actor=actor,
            actor_id=actor_id,
            reason=after.status_reason,
            at=now,
        )
    )
    await uow.outbox.add(
        DomainEvent(
            type=ORDER_STATUS_CHANGED,
            aggregate_type="order",
            aggregate_id=after.id,
            payload=changed_payload(before, after, actor, actor_id),
            occurred_at=now,
        )
    )


async def transition_order(
    uow: UnitOfWork,
    order_id: str,
    target: OrderStatus,
    *,
    clock: Clock,
    actor: Actor = Actor.SYSTEM,
    actor_id: str | None = None,
    reason: str | None = None,
) -> Order:
    """One transition in its own unit of work (what the workers call for auto-approve,
    start processing and complete)."""
    async with uow:
        order = await uow.orders.get(order_id)
        if order is None:
            raise OrderNotFound(order_id)
        after = await apply_transition(
            uow, order, target, actor=actor, actor_id=actor_id, reason=reason, now=clock.now()
        )
        await uow.commit()
    return after


async def _act(
    uow: UnitOfWork,
    order_id: str,
    requester: User,
    target: OrderStatus,
    *,
    clock: Clock,
    reason: str | None = None,
) -> Order:
    async with uow:
        order = await _visible(uow, order_id, requester)
        after = await apply_transition(
            uow,
            order,
            target,
            actor=actor_of(requester),
            actor_id=requester.id,
            reason=reason,
            now=clock.now(),
        )
        await uow.commit()
    return after


async def cancel_order(
    uow: UnitOfWork,
    order_id: str,
    requester: User,
    *,
    clock: Clock,
    reason: str | None = None,
) -> Order:
    return await _act(uow, order_id, requester, OrderStatus.CANCELLED, clock=clock, reason=reason)


async def approve_order(uow: UnitOfWork, order_id: str, requester: User, *, clock: Clock) -> Order:
    return await _act(uow, order_id, requester, OrderStatus.APPROVED, clock=clock)


async def reject_order(
    uow: UnitOfWork,
    order_id: str,
    requester: User,
    *,
    clock: Clock,
    reason: str,
) -> Order:
    return await _act(uow, order_id, requester, OrderStatus.REJECTED, clock=clock, reason=reason)


async def request_validation(uow: UnitOfWork, order_id: str, requester: User) -> Order:
    """Checks that validation may start now (admin, order pending); the caller enqueues it."""
    async with uow:
        order = await _visible(uow, order_id, requester)
    if not requester.is_admin:
        raise PermissionDenied("Only admins may start a validation.")
    if order.status is not OrderStatus.PENDING:
        raise IllegalTransition(order.status, OrderStatus.VALIDATED)
    return order


# --------------------------------------------------------------------------- validation
async def validate_order(
    uow: UnitOfWork,
    order_id: str,
    *,
    clock: Clock,
    max_total: Decimal,
) -> Order | None:
    """PRODUCT.md's rules. Pass: validated; fail: rejected with the reason, stock released.
    An order that is no longer pending (or absent) is left alone: running twice is a no-op."""
    async with uow:
        order = await uow.orders.get(order_id)
        if order is None or order.status is not OrderStatus.PENDING:
            return order
        reason = await validation_failure(uow, order, max_total)
        target = OrderStatus.VALIDATED if reason is None else OrderStatus.REJECTED
        try:
            after = await apply_transition(
                uow, order, target, actor=Actor.SYSTEM, reason=reason, now=clock.now()
            )
        except IllegalTransition:  # cancelled meanwhile: nothing to validate
            return await uow.orders.get(order_id)
        await uow.commit()
    return after


async def validation_failure(uow: UnitOfWork, order: Order, max_total: Decimal) -> str | None:
    """Why the order fails PRODUCT.md's validation rules, or None when it passes."""
    ids = sorted({line.product_id for line in order.lines})
    products = await uow.products.get_many(ids)
    inactive = [pid for pid in ids if pid not in products or not products[pid].is_active]
    if inactive:
        return f"Product(s) no longer available: {', '.join(inactive)}."
    if not order.total_matches_lines:
        return f"Total {order.total} does not match the lines ({lines_total(order.lines)})."
    if order.total > max_total:
        return f"Total {order.total} is above the maximum order total of {max_total}."
    return None
