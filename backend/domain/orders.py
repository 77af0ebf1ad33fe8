"""Orders, lines, history and idempotency keys: entities, errors and repository ports."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from decimal import Decimal
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol

from backend.domain.errors import Conflict, InvalidInput, NotFound

if TYPE_CHECKING:
    from backend.domain.workflow import BatchMove

MAX_LINES = 50
MAX_QUANTITY = 1000
CENT = Decimal("0.01")


class OrderStatus(StrEnum):
    PENDING = "pending"
    VALIDATED = "validated"
    APPROVED = "approved"
    PROCESSING = "processing"
    COMPLETED = "completed"
    REJECTED = "rejected"
    CANCELLED = "cancelled"


@dataclass(frozen=True, slots=True)
class OrderLine:
    """A snapshot of the product as it was sold: later catalogue changes never touch it."""

    product_id: str
    sku: str
    product_name: str
    unit_price: Decimal
    quantity: int

    @property
    def line_total(self) -> Decimal:
        return (self.unit_price * self.quantity).quantize(CENT)


def lines_total(lines: Iterable[OrderLine]) -> Decimal:
    return sum((line.line_total for line in lines), Decimal("0.00")).quantize(CENT)


@dataclass(slots=True)
class Order:
    id: str
    user_id: str
    status: OrderStatus
    lines: tuple[OrderLine, ...]
    total: Decimal
    currency: str
    shipping_address: str | None
    note: str | None
    status_reason: str | None
    version: int
    created_at: datetime
    updated_at: datetime

    @property
    def total_matches_lines(self) -> bool:
        return self.total == lines_total(self.lines)

    def moved_to(self, status: OrderStatus, *, reason: str | None, at: datetime) -> Order:
        """The order as the compare-and-set update leaves it."""
        return replace(
            self, status=status, status_reason=reason, version=self.version + 1, updated_at=at
        )


def status_changed_payload(
    before: Order, after: Order, actor: str, actor_id: str | None
) -> dict[str, Any]:
    """The payload of `order.status_changed` (notifications, webhooks and their consumers
    read it): the order as the move left it. A set-based move that writes its events in SQL
    must write exactly this (tests/integration/test_batch_moves.py compares them)."""
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


@dataclass(frozen=True, slots=True)
class ClaimFilter:
    """Which orders a job takes besides their status: created or last changed before a
    moment, at most a total (None: no bound)."""

    created_before: datetime | None = None
    updated_before: datetime | None = None
    max_total: Decimal | None = None


@dataclass(frozen=True, slots=True)
class OrderStatusChange:
    """One history entry. `from_status` is None for the order's first entry (placement)."""

    order_id: str
    from_status: OrderStatus | None
    to_status: OrderStatus
    actor: str  # an `Actor` of the workflow: owner, admin or system
    actor_id: str | None
    reason: str | None
    at: datetime


@dataclass(frozen=True, slots=True)
class LineRequest:
    product_id: str
    quantity: int


@dataclass(frozen=True, slots=True)
class PlaceOrderCommand:
    user_id: str
    items: tuple[LineRequest, ...]
    shipping_address: str | None = None
    note: str | None = None


@dataclass(frozen=True, slots=True)
class StoredResponse:
    """What an idempotent request answered the first time, replayed verbatim."""

    status_code: int
    body: dict[str, Any]
    location: str | None


@dataclass(frozen=True, slots=True)
class IdempotencyRecord:
    user_id: str
    key: str
    request_hash: str
    response: StoredResponse | None
    created_at: datetime


OrderSortField = str  # "created_at" | "total"


@dataclass(frozen=True, slots=True)
class OrderQuery:
    user_id: str | None = None
    status: OrderStatus | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None
    sort: OrderSortField = "created_at"
    descending: bool = True
    limit: int = 20
    offset: int = 0


@dataclass(frozen=True, slots=True)
class OrderPage:
    items: list[Order] = field(default_factory=list)
    total: int = 0


# --------------------------------------------------------------------------- errors
class OrderNotFound(NotFound):
    slug = "not-found"
    title = "Order not found"

    def __init__(self, order_id: str) -> None:
        super().__init__(f"No order {order_id}.")


class InsufficientStock(Conflict):
    slug = "insufficient-stock"
    title = "Insufficient stock"

    def __init__(self, product_ids: Sequence[str]) -> None:
        ids = sorted(product_ids)
        super().__init__(
            f"Not enough stock for product(s) {', '.join(ids)}; nothing was reserved.",
            product_ids=ids,
        )
        self.product_ids = ids


class ProductUnavailable(InvalidInput):
    slug = "product-unavailable"
    title = "Product unavailable"

    def __init__(self, product_ids: Sequence[str], positions: dict[str, int]) -> None:
        ids = sorted(product_ids)
        errors = [
            {
                "loc": ["body", "items", positions[pid], "product_id"],
                "msg": f"Product {pid} does not exist or is not active.",
                "type": "product_unavailable",
            }
            for pid in ids
        ]
        super().__init__(
            f"Unknown or inactive product(s): {', '.join(ids)}.", product_ids=ids, errors=errors
        )
        self.product_ids = ids


class IllegalTransition(Conflict):
    slug = "illegal-transition"
    title = "Transition not allowed"

    def __init__(self, from_status: OrderStatus, to_status: OrderStatus) -> None:
        super().__init__(
            f"An order cannot move from '{from_status}' to '{to_status}'.",
            from_status=str(from_status),
            to_status=str(to_status),
        )
        self.from_status = from_status
        self.to_status = to_status


class OrderNotEditable(Conflict):
    slug = "order-not-editable"
    title = "Order not editable"

    def __init__(self, status: OrderStatus) -> None:
        super().__init__(
            f"An order in status '{status}' can no longer be changed; "
            "only pending and validated orders can.",
            order_status=str(status),
        )


class MixedCurrencies(InvalidInput):
    slug = "mixed-currencies"
    title = "Mixed currencies"

    def __init__(self, currencies: Iterable[str]) -> None:
        found = sorted(set(currencies))
        super().__init__(f"One order cannot mix currencies ({', '.join(found)}).")


class IdempotencyKeyReused(InvalidInput):
    slug = "idempotency-key-reused"
    title = "Idempotency key reused"

    def __init__(self) -> None:
        super().__init__(
            "This Idempotency-Key was already used with a different request body; "
            "use a new key for a new request."
        )


class IdempotencyInFlight(Conflict):
    slug = "idempotency-in-flight"
    title = "Request in flight"

    def __init__(self) -> None:
        super().__init__(
            "A request with this Idempotency-Key is still being processed; retry shortly."
        )


# --------------------------------------------------------------------------- ports
class OrderRepository(Protocol):
    """Persistence of orders; transitions are compare-and-set updates."""

    async def add(self, order: Order) -> None:
        """Insert the order and its lines."""
        ...

    async def get(self, order_id: str) -> Order | None: ...

    async def get_many(self, order_ids: Sequence[str]) -> dict[str, Order]:
        """The orders (with their lines) found among `order_ids`, by id: two queries for a
        whole batch (the workers' jobs)."""
        ...

    async def search(self, query: OrderQuery) -> OrderPage: ...

    async def compare_and_set_status(
        self,
        order_id: str,
        *,
        expected: OrderStatus,
        target: OrderStatus,
        reason: str | None,
        at: datetime,
    ) -> bool:
        """`UPDATE orders SET status = :target, version = version + 1, ... WHERE id = :id
        AND status = :expected`; False when another transaction moved it first."""
        ...

    async def move_batch(
        self, move: BatchMove, *, limit: int, at: datetime, where: ClaimFilter
    ) -> dict[OrderStatus, int]:
        """The set-based move of a Beat job's batch, `move` being the workflow's rule: claim
        up to `limit` orders whose status is one of `move.sources` and that `where` admits,
        oldest first, skipping rows other transactions hold (`FOR UPDATE SKIP LOCKED`), and
        move each to `move.target` as `compare_and_set_status` does (status, reason cleared,
        version + 1, `updated_at = at`), with its history row (by `move.actor`) and its
        `order.status_changed` outbox event (`status_changed_payload`), in this transaction.
        How many moved, per starting status. PostgreSQL: one statement."""
        ...

    async def update_details(
        self,
        order_id: str,
        *,
        changes: dict[str, str | None],
        editable: Sequence[OrderStatus],
        expected_version: int | None,
        at: datetime,
    ) -> bool:
        """Set shipping_address/note when the status is editable (and the version matches)."""
        ...

    async def add_history(self, change: OrderStatusChange) -> None: ...

    async def history(self, order_id: str) -> list[OrderStatusChange]:
        """Oldest first."""
        ...

    async def claim_ids(
        self,
        status: OrderStatus,
        *,
        limit: int,
        created_before: datetime | None = None,
        updated_before: datetime | None = None,
        max_total: Decimal | None = None,
    ) -> list[str]:
        """Ids of up to `limit` orders in `status`, oldest first, row-locked for this unit of
        work and skipping rows other transactions hold (`FOR UPDATE SKIP LOCKED`)."""
        ...


class IdempotencyRepository(Protocol):
    """Idempotency keys of order creation, written in the order's transaction."""

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
        """Insert the key row first in the transaction. None: this request owns the key now.
        Otherwise the committed record another request left (a row older than
        `expired_before` is taken over instead). Raises `IdempotencyInFlight` when another
        transaction holds the key for longer than `wait_seconds`."""
        ...

    async def complete(self, user_id: str, key: str, response: StoredResponse) -> None: ...

    async def purge(self, expired_before: datetime, limit: int) -> int:
        """Delete up to `limit` rows created before `expired_before`; the number deleted."""
        ...
