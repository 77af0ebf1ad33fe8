"""Request and response bodies of /orders.

Request bodies forbid unknown fields: a client that sends `status`, `total`, `user_id` or
a price gets a 422 naming the field, rather than a silent drop it might rely on.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    Field,
    StringConstraints,
)
from pydantic_core import PydanticCustomError

from backend.api.v1.schemas.common import INTEGER, NOT_BLANK, NUL_FREE, PartialUpdate, StrictModel
from backend.domain.orders import (
    MAX_LINES,
    MAX_QUANTITY,
    Order,
    OrderLine,
    OrderStatus,
    OrderStatusChange,
)


def _to_utc(value: datetime) -> datetime:
    try:
        return value.astimezone(UTC)
    except OverflowError:  # e.g. 0001-01-01T00:00:00+05:00 is before year 1 in UTC
        raise PydanticCustomError(
            "datetime_out_of_range", "The time is out of range once converted to UTC"
        ) from None


_UNIX_SECONDS = re.compile(r"^\s*[-+]?\d+(\.\d*)?\s*$")


def _iso_8601_only(value: object) -> object:
    """pydantic also reads a number as Unix seconds; the document says date-time (RFC 3339)."""
    if isinstance(value, int | float) or (isinstance(value, str) and _UNIX_SECONDS.match(value)):
        raise PydanticCustomError(
            "datetime_format", "A date-time with an offset, e.g. 2026-01-31T12:00:00Z"
        )
    return value


UtcDateTime = Annotated[AwareDatetime, BeforeValidator(_iso_8601_only), AfterValidator(_to_utc)]


def money(value: Decimal) -> str:
    return f"{value:.2f}"


MoneyStr = Annotated[
    str, Field(pattern=r"^-?\d+\.\d{2}$", examples=["19.90"], description="2-place decimal")
]
ShippingAddress = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500), *NOT_BLANK
]
Note = Annotated[str, StringConstraints(max_length=1000), *NUL_FREE]
Reason = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500), *NOT_BLANK
]


class OrderItemIn(StrictModel):
    product_id: uuid.UUID
    quantity: Annotated[int, Field(ge=1, le=MAX_QUANTITY), INTEGER]


def _each_product_once(items: list[OrderItemIn]) -> list[OrderItemIn]:
    seen: set[uuid.UUID] = set()
    for item in items:
        if item.product_id in seen:
            raise PydanticCustomError(
                "duplicate_product",
                "Product {product_id} appears more than once; order it once, with the total",
                {"product_id": str(item.product_id)},
            )
        seen.add(item.product_id)
    return items


class OrderCreateIn(StrictModel):
    items: Annotated[
        list[OrderItemIn],
        Field(min_length=1, max_length=MAX_LINES),
        AfterValidator(_each_product_once),
    ]
    shipping_address: ShippingAddress | None = None
    note: Note | None = None


class OrderUpdateIn(PartialUpdate):
    shipping_address: ShippingAddress | None = None
    note: Note | None = None


class CancelIn(StrictModel):
    reason: Reason | None = None


class RejectIn(StrictModel):
    reason: Reason


class OrderLineOut(BaseModel):
    product_id: str
    sku: str
    product_name: str
    unit_price: MoneyStr
    quantity: int
    line_total: MoneyStr

    @classmethod
    def of(cls, line: OrderLine) -> OrderLineOut:
        return cls(
            product_id=line.product_id,
            sku=line.sku,
            product_name=line.product_name,
            unit_price=money(line.unit_price),
            quantity=line.quantity,
            line_total=money(line.line_total),
        )


class OrderOut(BaseModel):
    id: str
    user_id: str
    status: OrderStatus
    items: list[OrderLineOut]
    total: MoneyStr
    currency: str
    shipping_address: str | None
    note: str | None
    status_reason: str | None
    version: int
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, order: Order) -> OrderOut:
        return cls(
            id=order.id,
            user_id=order.user_id,
            status=order.status,
            items=[OrderLineOut.of(line) for line in order.lines],
            total=money(order.total),
            currency=order.currency,
            shipping_address=order.shipping_address,
            note=order.note,
            status_reason=order.status_reason,
            version=order.version,
            created_at=order.created_at,
            updated_at=order.updated_at,
        )


class OrderPageOut(BaseModel):
    items: list[OrderOut]
    total: int
    limit: int
    offset: int


class HistoryEntryOut(BaseModel):
    from_status: OrderStatus | None
    to_status: OrderStatus
    actor: Literal["owner", "admin", "system"]
    reason: str | None
    at: datetime

    @classmethod
    def of(cls, change: OrderStatusChange) -> HistoryEntryOut:
        return cls(
            from_status=change.from_status,
            to_status=change.to_status,
            actor=change.actor,
            reason=change.reason,
            at=change.at,
        )


class ValidationStartedOut(BaseModel):
    message: Literal["validation started"] = "validation started"
