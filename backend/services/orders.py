"""Order placement, reads with ownership and detail edits (the workflow's transitions are
in `order_workflow.py`).

`OrderService` is built by the Container with the unit-of-work factory, the clock, the
event recorder, the catalogue cache and its policy; each public method opens one unit of
work and commits it itself (ADR 0014).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from backend.domain import workflow
from backend.domain.catalog import Cache, Product
from backend.domain.errors import InvalidInput, PermissionDenied, StaleVersion
from backend.domain.events import ORDER_CREATED, DomainEvent
from backend.domain.orders import (
    MAX_LINES,
    MAX_QUANTITY,
    IdempotencyInFlight,
    IdempotencyKeyReused,
    InsufficientStock,
    MixedCurrencies,
    Order,
    OrderLine,
    OrderNotEditable,
    OrderNotFound,
    OrderPage,
    OrderQuery,
    OrderStatusChange,
    PlaceOrderCommand,
    ProductUnavailable,
    StoredResponse,
    lines_total,
)
from backend.domain.ports import Clock, Transaction, UnitOfWorkFactory
from backend.domain.users import User
from backend.domain.versioning import ExpectedVersion, version_allowed
from backend.domain.workflow import Actor
from backend.services.catalog import products_changed
from backend.services.event_recorder import EventRecorder


@dataclass(frozen=True, slots=True)
class OrderPolicy:
    idempotency_ttl: timedelta = timedelta(hours=24)
    # How long a placement waits for a concurrent request holding the same key (PostgreSQL).
    idempotency_wait_seconds: float = 5.0


@dataclass(frozen=True, slots=True)
class Idempotency:
    """An `Idempotency-Key` and how to render the response that is stored under it."""

    key: str
    render: Callable[[Order], StoredResponse]


@dataclass(frozen=True, slots=True)
class Placement:
    order: Order | None  # None when the answer is a replay
    response: StoredResponse | None  # the stored (or replayed) response, with a key only
    replayed: bool = False


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


async def visible_order(tx: Transaction, order_id: str, requester: User) -> Order:
    """The order if the requester may see it; another customer's order is a 404, not a 403."""
    order = await tx.orders.get(order_id)
    if order is None or (not requester.is_admin and order.user_id != requester.id):
        raise OrderNotFound(order_id)
    return order


class OrderService:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        clock: Clock,
        events: EventRecorder,
        cache: Cache,
        policy: OrderPolicy | None = None,
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._events = events
        self._cache = cache
        self._policy = policy or OrderPolicy()

    # ------------------------------------------------------------------ placement
    async def place(
        self, command: PlaceOrderCommand, idempotency: Idempotency | None = None
    ) -> Placement:
        """Reserve stock for every line and write the order, all in one transaction.

        On PostgreSQL that is four round trips besides BEGIN and COMMIT's: the key's claim,
        the reservation of every line, and one statement for the order, its lines, its
        history entry, its event and the stored response (docs/adr/0019)."""
        check_command(command)
        now = self._clock.now()
        async with self._uow() as tx:
            if idempotency is not None:
                replay = await self._claim_key(tx, command, idempotency, now)
                if replay is not None:
                    return Placement(order=None, response=replay, replayed=True)
            products = await _reserve_stock(tx, command, now)
            tx.on_commit(partial(products_changed, self._cache, sorted(products)))
            order = _new_order(command, products, now)
            response = None
            async with tx.together():
                await self._write_new_order(tx, order, now)
                if idempotency is not None:
                    response = idempotency.render(order)
                    await tx.idempotency.complete(command.user_id, idempotency.key, response)
            await tx.commit()
        return Placement(order=order, response=response)

    async def _claim_key(
        self, tx: Transaction, command: PlaceOrderCommand, idem: Idempotency, now: datetime
    ) -> StoredResponse | None:
        """None when this request owns the key; else the first request's response."""
        request_hash = fingerprint(command)
        record = await tx.idempotency.claim(
            command.user_id,
            idem.key,
            request_hash=request_hash,
            now=now,
            expired_before=now - self._policy.idempotency_ttl,
            wait_seconds=self._policy.idempotency_wait_seconds,
        )
        if record is None:
            return None
        if record.request_hash != request_hash:
            raise IdempotencyKeyReused()
        if record.response is None:  # a committed key always has one; defensive
            raise IdempotencyInFlight()
        return record.response

    async def _write_new_order(self, tx: Transaction, order: Order, now: datetime) -> None:
        await tx.orders.add(order)
        await tx.orders.add_history(
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
        event = DomainEvent(
            type=ORDER_CREATED,
            aggregate_type="order",
            aggregate_id=order.id,
            payload=created_payload(order),
            occurred_at=now,
        )
        await self._events.record(tx, event)

    # ------------------------------------------------------------------ reads
    async def get(self, order_id: str, requester: User) -> Order:
        # Read-only: the order row and its lines (written once, with the order) need no
        # common snapshot, so no transaction round trips (docs/adr/0019).
        async with self._uow().read_only() as tx:
            return await visible_order(tx, order_id, requester)

    async def list(self, requester: User, query: OrderQuery) -> OrderPage:
        if not requester.is_admin:
            if query.user_id not in (None, requester.id):
                raise PermissionDenied("Only admins may list other users' orders.")
            query = replace(query, user_id=requester.id)
        async with self._uow() as tx:
            return await tx.orders.search(query)

    async def history(self, order_id: str, requester: User) -> Sequence[OrderStatusChange]:
        async with self._uow() as tx:
            await visible_order(tx, order_id, requester)
            return await tx.orders.history(order_id)

    # ------------------------------------------------------------------ edits
    async def update_details(
        self,
        order_id: str,
        requester: User,
        changes: dict[str, str | None],
        *,
        expected_version: ExpectedVersion,
    ) -> Order:
        """Shipping address and note, while the order is pending or validated."""
        unknown = set(changes) - {"shipping_address", "note"}
        if unknown:
            raise InvalidInput(
                f"Only shipping_address and note can be changed, not {sorted(unknown)}."
            )
        async with self._uow() as tx:
            order = await visible_order(tx, order_id, requester)
            if not version_allowed(expected_version, order.version):
                raise StaleVersion(
                    f"The order is at version {order.version}; re-read it and retry."
                )
            if order.status not in workflow.EDITABLE_STATES:
                raise OrderNotEditable(order.status)
            if not changes:
                return order
            now = self._clock.now()
            updated = await tx.orders.update_details(
                order_id,
                changes=changes,
                editable=workflow.EDITABLE_STATES,
                expected_version=order.version,
                at=now,
            )
            if not updated:  # moved or edited since we read it
                current = await visible_order(tx, order_id, requester)
                if current.status not in workflow.EDITABLE_STATES:
                    raise OrderNotEditable(current.status)
                raise StaleVersion(f"The order changed meanwhile (now version {current.version}).")
            await tx.commit()
        return replace(
            order,
            shipping_address=changes.get("shipping_address", order.shipping_address),
            note=changes.get("note", order.note),
            version=order.version + 1,
            updated_at=now,
        )


async def _reserve_stock(
    tx: Transaction, command: PlaceOrderCommand, now: datetime
) -> dict[str, Product]:
    """Take every line's quantity (one conditional UPDATE, rows in product-id order: two
    orders lock shared rows in the same order, never a cycle) and return the products as
    they are now. When a product is unknown, inactive or short, or the currencies differ,
    raising aborts the unit of work, so nothing reserved stays; the refusal is the one the
    checks give in this order: unavailable products, mixed currencies, short products
    (every one named)."""
    wanted = {item.product_id: item.quantity for item in command.items}
    reserved = await tx.products.reserve(wanted, now)
    if len(reserved) == len(wanted) and _sellable(reserved):
        return reserved
    products = {**await tx.products.get_many(sorted(set(wanted) - set(reserved))), **reserved}
    ids = [item.product_id for item in command.items]
    missing = [pid for pid in ids if pid not in products or not products[pid].is_active]
    if missing:
        positions = {item.product_id: i for i, item in enumerate(command.items)}
        raise ProductUnavailable(missing, positions)
    currencies = {p.currency for p in products.values()}
    if len(currencies) > 1:
        raise MixedCurrencies(currencies)
    raise InsufficientStock(sorted(set(wanted) - set(reserved)))


def _sellable(products: dict[str, Product]) -> bool:
    """Every product active, all in one currency."""
    return all(p.is_active for p in products.values()) and (
        len({p.currency for p in products.values()}) == 1
    )


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
