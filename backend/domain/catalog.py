"""Products and stock."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Protocol


@dataclass(slots=True)
class Product:
    id: str
    sku: str
    name: str
    description: str | None
    price: Decimal  # exactly 2 places
    currency: str
    stock: int  # available quantity, never negative
    is_active: bool
    version: int
    created_at: datetime
    updated_at: datetime


class ProductRepository(Protocol):
    """Persistence of products. Stock changes are ONE conditional UPDATE each.

    The orders issue relies on `get_many` and `adjust_stock` exactly as below;
    the catalogue issue adds the rest (create, update, list, ...).
    """

    async def get(self, product_id: str) -> Product | None: ...

    async def get_many(self, product_ids: Sequence[str]) -> dict[str, Product]: ...

    async def adjust_stock(self, product_id: str, delta: int) -> int | None:
        """`UPDATE ... SET stock = stock + :delta, version = version + 1
        WHERE id = :id AND stock + :delta >= 0`; the new stock, or None when the
        product is absent or the stock would go below zero (nothing changed)."""
        ...
