"""In-memory orders, idempotency keys and product stock, with transaction semantics.

Each fake snapshots its state when a unit of work begins and restores it on rollback
(`_begin`/`_commit`/`_rollback`, called by `FakeUnitOfWork`), so service tests can prove
that a failure leaves nothing behind.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from backend.domain.catalog import Product
from backend.domain.events import ORDER_STATUS_CHANGED, DomainEvent
from backend.domain.orders import (
    ClaimFilter,
    IdempotencyRecord,
    Order,
    OrderPage,
    OrderQuery,
    OrderStatus,
    OrderStatusChange,
    StoredResponse,
    status_changed_payload,
)
from backend.domain.users import Role, User
from backend.domain.workflow import BatchMove
from tests.fakes.catalog import reserve_by_adjusting
from tests.fakes.clock import SteppingClock
from tests.fakes.events import FakeOutbox

__all__ = ["SteppingClock"]  # the one fake clock lives in tests/fakes/clock.py


class _Transactional:
    """Snapshot-on-begin state for a fake repository (one open unit of work at a time)."""

    _state_attrs: tuple[str, ...] = ()

    def __init__(self) -> None:
        self._snapshot: dict[str, Any] | None = None

    def _begin(self) -> None:
        self._snapshot = {name: copy.deepcopy(getattr(self, name)) for name in self._state_attrs}

    def _commit(self) -> None:
        self._snapshot = None

    def _rollback(self) -> None:
        if self._snapshot is not None:
            for name, value in self._snapshot.items():
                setattr(self, name, value)
        self._snapshot = None


def make_product(
    product_id: str,
    *,
    price: str = "10.00",
    stock: int = 10,
    active: bool = True,
    currency: str = "EUR",
) -> Product:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    return Product(
        id=product_id,
        sku=f"SKU-{product_id[:8].upper()}",
        name=f"Product {product_id[:8]}",
        description=None,
        price=Decimal(price),
        currency=currency,
        stock=stock,
        is_active=active,
        version=1,
        created_at=now,
        updated_at=now,
    )


class FakeStockProducts(_Transactional):
    """Just the part of the product repository that orders use: reads and stock moves."""

    _state_attrs = ("rows",)

    def __init__(self, *products: Product) -> None:
        super().__init__()
        self.rows: dict[str, Product] = {p.id: p for p in products}
        self.adjust_calls: list[tuple[str, int]] = []
        # (the ids locked, how many adjustments had been made by then)
        self.lock_calls: list[tuple[list[str], int]] = []

    def put(self, product: Product) -> None:
        self.rows[product.id] = product

    async def get(self, product_id: str) -> Product | None:
        product = self.rows.get(product_id)
        return replace(product) if product else None

    async def get_many(self, product_ids: Sequence[str]) -> dict[str, Product]:
        return {pid: replace(self.rows[pid]) for pid in product_ids if pid in self.rows}

    async def lock(self, product_ids: Sequence[str]) -> None:
        self.lock_calls.append((sorted(set(product_ids)), len(self.adjust_calls)))

    async def reserve(self, quantities: Mapping[str, int], at: datetime) -> dict[str, Product]:
        return await reserve_by_adjusting(self, quantities)

    async def adjust_stock(self, product_id: str, delta: int) -> int | None:
        self.adjust_calls.append((product_id, delta))
        product = self.rows.get(product_id)
        if product is None or product.stock + delta < 0:
            return None
        self.rows[product_id] = replace(
            product, stock=product.stock + delta, version=product.version + 1
        )
        return product.stock + delta


class FakeOrderRepository(_Transactional):
    _state_attrs = ("rows", "changes")

    def __init__(self, outbox: FakeOutbox | None = None) -> None:
        super().__init__()
        self.rows: dict[str, Order] = {}
        self.changes: list[OrderStatusChange] = []
        self.outbox = outbox  # where `move_batch` writes its events

    async def add(self, order: Order) -> None:
        assert order.id not in self.rows
        self.rows[order.id] = replace(order)

    async def get(self, order_id: str) -> Order | None:
        order = self.rows.get(order_id)
        return replace(order) if order else None

    async def get_many(self, order_ids: Sequence[str]) -> dict[str, Order]:
        return {i: replace(self.rows[i]) for i in order_ids if i in self.rows}

    async def search(self, query: OrderQuery) -> OrderPage:
        found = [
            o
            for o in self.rows.values()
            if (query.user_id is None or o.user_id == query.user_id)
            and (query.status is None or o.status is query.status)
            and (query.created_from is None or o.created_at >= query.created_from)
            and (query.created_to is None or o.created_at <= query.created_to)
        ]
        found.sort(key=lambda o: (getattr(o, query.sort), o.id), reverse=query.descending)
        page = found[query.offset : query.offset + query.limit]
        return OrderPage(items=[replace(o) for o in page], total=len(found))

    async def compare_and_set_status(
        self,
        order_id: str,
        *,
        expected: OrderStatus,
        target: OrderStatus,
        reason: str | None,
        at: datetime,
    ) -> bool:
        order = self.rows.get(order_id)
        if order is None or order.status is not expected:
            return False
        self.rows[order_id] = order.moved_to(target, reason=reason, at=at)
        return True

    async def update_details(
        self,
        order_id: str,
        *,
        changes: dict[str, str | None],
        editable: Sequence[OrderStatus],
        expected_version: int | None,
        at: datetime,
    ) -> bool:
        order = self.rows.get(order_id)
        if order is None or order.status not in editable:
            return False
        if expected_version is not None and order.version != expected_version:
            return False
        self.rows[order_id] = replace(
            order,
            shipping_address=changes.get("shipping_address", order.shipping_address),
            note=changes.get("note", order.note),
            version=order.version + 1,
            updated_at=at,
        )
        return True

    async def add_history(self, change: OrderStatusChange) -> None:
        self.changes.append(change)

    async def move_batch(
        self, move: BatchMove, *, limit: int, at: datetime, where: ClaimFilter
    ) -> dict[OrderStatus, int]:
        due = [
            o
            for o in self.rows.values()
            if o.status in move.sources
            and (where.created_before is None or o.created_at < where.created_before)
            and (where.updated_before is None or o.updated_at < where.updated_before)
            and (where.max_total is None or o.total <= where.max_total)
        ]
        due.sort(key=lambda o: (o.created_at, o.id))
        moved: dict[OrderStatus, int] = {}
        for before in due[:limit]:
            after = before.moved_to(move.target, reason=None, at=at)
            self.rows[before.id] = after
            actor = str(move.actor)
            self.changes.append(
                OrderStatusChange(before.id, before.status, move.target, actor, None, None, at)
            )
            if self.outbox is not None:
                payload = status_changed_payload(before, after, actor, None)
                await self.outbox.add(
                    DomainEvent(ORDER_STATUS_CHANGED, "order", before.id, payload, occurred_at=at)
                )
            moved[before.status] = moved.get(before.status, 0) + 1
        return moved

    async def history(self, order_id: str) -> list[OrderStatusChange]:
        return [c for c in self.changes if c.order_id == order_id]

    async def claim_ids(
        self,
        status: OrderStatus,
        *,
        limit: int,
        created_before: datetime | None = None,
        updated_before: datetime | None = None,
        max_total: Decimal | None = None,
    ) -> list[str]:
        due = [
            o
            for o in self.rows.values()
            if o.status is status
            and (created_before is None or o.created_at < created_before)
            and (updated_before is None or o.updated_at < updated_before)
            and (max_total is None or o.total <= max_total)
        ]
        due.sort(key=lambda o: (o.created_at, o.id))
        return [o.id for o in due[:limit]]


class FakeIdempotencyRepository(_Transactional):
    _state_attrs = ("rows",)

    def __init__(self) -> None:
        super().__init__()
        self.rows: dict[tuple[str, str], IdempotencyRecord] = {}

    async def claim(
        self,
        user_id: str,
        key: str,
        *,
        request_hash: str,
        now: datetime,
        expired_before: datetime,
        wait_seconds: float,
    ) -> IdempotencyRecord | None:
        existing = self.rows.get((user_id, key))
        if existing is not None and existing.created_at >= expired_before:
            return existing
        self.rows[(user_id, key)] = IdempotencyRecord(user_id, key, request_hash, None, now)
        return None

    async def complete(self, user_id: str, key: str, response: StoredResponse) -> None:
        self.rows[(user_id, key)] = replace(self.rows[(user_id, key)], response=response)

    async def purge(self, expired_before: datetime, limit: int) -> int:
        old = [k for k, r in self.rows.items() if r.created_at < expired_before][:limit]
        for k in old:
            del self.rows[k]
        return len(old)


def make_user(user_id: str, *, admin: bool = False) -> User:
    now = datetime(2026, 1, 1, tzinfo=UTC)
    return User(
        id=user_id,
        email=f"{user_id[:8]}@example.com",
        full_name=None,
        role=Role.ADMIN if admin else Role.CUSTOMER,
        is_active=True,
        password_hash="x",
        created_at=now,
        updated_at=now,
    )
