"""Products and stock: the entity, its rules, the listing query, and the ports the
catalogue depends on (its repository and the read cache)."""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Protocol, TypeVar

from backend.domain.errors import Conflict, InvalidInput, NotFound, StaleVersion
from backend.domain.versioning import ExpectedVersion, version_allowed

CENT = Decimal("0.01")
MAX_PRICE = Decimal("99999999.99")  # fits integer cents comfortably on both databases
MAX_STOCK = 2_147_483_647  # a 32-bit INTEGER column
SKU_PATTERN = re.compile(r"^[A-Z0-9][A-Z0-9._-]{0,63}$")
MAX_NAME = 200
MAX_DESCRIPTION = 5000

T = TypeVar("T")


# --------------------------------------------------------------------------- errors
class ProductNotFound(NotFound):
    slug = "product-not-found"
    title = "Product not found"

    def __init__(self, product_id: str) -> None:
        super().__init__(f"No product {product_id}.", product_id=product_id)


class SkuTaken(Conflict):
    slug = "sku-taken"
    title = "SKU already in use"

    def __init__(self, sku: str) -> None:
        super().__init__(f"Another product already has the SKU {sku}.", sku=sku)


class InsufficientStockForAdjustment(Conflict):
    slug = "insufficient-stock"
    title = "Stock would go below zero"

    def __init__(self, product_id: str, stock: int, delta: int) -> None:
        super().__init__(
            f"Product {product_id} has {stock} in stock; a change of {delta} would go below zero.",
            product_id=product_id,
            stock=stock,
        )


class ProductVersionMismatch(StaleVersion):
    def __init__(self, product_id: str, current: int) -> None:
        super().__init__(
            f"Product {product_id} is at version {current}; re-read it and retry.",
            current_version=current,
        )


class InvalidProduct(InvalidInput):
    pass


# --------------------------------------------------------------------------- value rules
def normalize_sku(raw: str) -> str:
    """SKUs are compared case-insensitively: stored upper-case, surrounding blanks dropped."""
    sku = raw.strip().upper()
    if not SKU_PATTERN.match(sku):
        raise InvalidProduct("A SKU is 1..64 letters, digits, '.', '_' or '-'.")
    return sku


def to_price(value: Decimal | str | int) -> Decimal:
    """A non-negative amount with at most 2 decimal places, returned with exactly 2."""
    try:
        price = Decimal(value)
    except (InvalidOperation, ValueError, TypeError) as error:
        raise InvalidProduct("The price is not a number.") from error
    if not price.is_finite() or price < 0 or price > MAX_PRICE:
        raise InvalidProduct(f"The price must be between 0.00 and {MAX_PRICE}.")
    if price != price.quantize(CENT):
        raise InvalidProduct("The price has more than 2 decimal places.")
    return CENT * 0 if price.is_zero() else price.quantize(CENT)  # never "-0.00"


def _checked_name(name: str) -> str:
    name = name.strip()
    if not 1 <= len(name) <= MAX_NAME:
        raise InvalidProduct(f"A name is 1..{MAX_NAME} characters.")
    return name


def _checked_description(description: str | None) -> str | None:
    if description is not None and len(description) > MAX_DESCRIPTION:
        raise InvalidProduct(f"A description is at most {MAX_DESCRIPTION} characters.")
    return description


# --------------------------------------------------------------------------- the entity
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

    @classmethod
    def new(
        cls,
        *,
        id: str,
        sku: str,
        name: str,
        description: str | None,
        price: Decimal | str | int,
        stock: int,
        currency: str,
        now: datetime,
    ) -> Product:
        if not 0 <= stock <= MAX_STOCK:
            raise InvalidProduct(f"Stock must be between 0 and {MAX_STOCK}.")
        return cls(
            id=id,
            sku=normalize_sku(sku),
            name=_checked_name(name),
            description=_checked_description(description),
            price=to_price(price),
            currency=currency,
            stock=stock,
            is_active=True,
            version=1,
            created_at=now,
            updated_at=now,
        )

    def check_version(self, expected: ExpectedVersion) -> None:
        """Optimistic concurrency: refuse an edit based on another version."""
        if not version_allowed(expected, self.version):
            raise ProductVersionMismatch(self.id, self.version)

    def apply(self, changes: ProductChanges, now: datetime) -> bool:
        """Apply an edit; True when something actually changed (and the version moved)."""
        updated = {
            "name": _checked_name(changes.name) if changes.name is not None else self.name,
            "description": (
                _checked_description(changes.description)
                if changes.description_set
                else self.description
            ),
            "price": to_price(changes.price) if changes.price is not None else self.price,
            "is_active": self.is_active if changes.is_active is None else changes.is_active,
        }
        if all(getattr(self, key) == value for key, value in updated.items()):
            return False
        for key, value in updated.items():
            setattr(self, key, value)
        self.version += 1
        self.updated_at = now
        return True


@dataclass(frozen=True, slots=True)
class ProductChanges:
    """A partial edit. `description_set` tells "set to None" apart from "not given"."""

    name: str | None = None
    description: str | None = None
    description_set: bool = False
    price: Decimal | None = None
    is_active: bool | None = None


@dataclass(frozen=True, slots=True)
class StockAdjustment:
    """The record of one manual stock change (who, why, by how much, and the result)."""

    id: str
    product_id: str
    delta: int
    reason: str
    stock_after: int
    actor_id: str | None
    created_at: datetime


# --------------------------------------------------------------------------- listing
class SortField(StrEnum):
    NAME = "name"
    PRICE = "price"
    CREATED_AT = "created_at"


@dataclass(frozen=True, slots=True)
class ProductQuery:
    q: str | None = None
    min_price: Decimal | None = None
    max_price: Decimal | None = None
    in_stock: bool = False
    include_inactive: bool = False
    sort: SortField = SortField.CREATED_AT
    descending: bool = False
    limit: int = 20
    offset: int = 0

    def cache_key(self) -> str:
        """A canonical text form: equal queries share one cached page (JSON, so no text in
        `q` can make two different queries look alike)."""
        prices = [None if p is None else f"{p:.2f}" for p in (self.min_price, self.max_price)]
        return json.dumps(
            [
                self.q,
                *prices,
                self.in_stock,
                self.include_inactive,
                self.sort.value,
                self.descending,
                self.limit,
                self.offset,
            ],
            separators=(",", ":"),
        )


@dataclass(frozen=True, slots=True)
class ProductPage:
    items: Sequence[Product]
    total: int
    limit: int
    offset: int


# --------------------------------------------------------------------------- ports
class ProductRepository(Protocol):
    """Persistence of products. Stock changes are ONE conditional UPDATE each.

    The orders issue relies on `get_many` and `adjust_stock` exactly as below.
    """

    async def get(self, product_id: str) -> Product | None: ...

    async def get_many(self, product_ids: Sequence[str]) -> dict[str, Product]: ...

    async def adjust_stock(self, product_id: str, delta: int) -> int | None:
        """`UPDATE ... SET stock = stock + :delta, version = version + 1
        WHERE id = :id AND stock + :delta >= 0`; the new stock, or None when the
        product is absent or the stock would go below zero (nothing changed).
        (It also refuses, with None, a result above MAX_STOCK: the column's range.)"""
        ...

    async def reserve(self, quantities: Mapping[str, int], at: datetime) -> dict[str, Product]:
        """Take each quantity off its product's stock where the stock is at least that much
        (in ascending id order; on PostgreSQL one statement). The products whose stock was
        taken, as they are now, by id; an absent or short product is not among them and its
        stock is unchanged. Active or not does not matter here: the caller decides, and rolls
        back what it does not keep."""
        ...

    async def lock(self, product_ids: Sequence[str]) -> None:
        """Hold these products' rows until the unit of work ends, taken in ascending id order:
        the one order in which every stock change takes them (a single order's changes run
        in id order), so a unit of work that changes the stock of many orders at once takes
        them all first, and no two units of work can wait for each other in a cycle.
        (SQLite needs nothing: its writer holds the whole database.)"""
        ...

    async def add(self, product: Product) -> None:
        """Insert a new product; `SkuTaken` when the SKU is in use."""
        ...

    async def update(self, product: Product, *, expected_version: int) -> bool:
        """Store the edited fields if the row is still at `expected_version`; False otherwise."""
        ...

    async def list(self, query: ProductQuery) -> ProductPage: ...

    async def record_adjustment(self, adjustment: StockAdjustment) -> None: ...

    async def adjustments(self, product_id: str) -> Sequence[StockAdjustment]:
        """The recorded manual adjustments of a product, oldest first."""
        ...


class Cache(Protocol):
    """A read-through cache of domain values, by namespace and key.

    Values handed out are shared with other readers: callers must not mutate them.
    """

    async def get_or_load(
        self, namespace: str, key: str, load: Callable[[], Awaitable[T | None]]
    ) -> T | None:
        """The cached value, else `load()` once per key however many callers miss at once.
        `None` results are not cached."""
        ...

    async def invalidate(self, namespace: str, *keys: str) -> None:
        """Drop these keys here at once and, via the shared tier, on every other process."""
        ...

    async def invalidate_namespace(self, namespace: str) -> None:
        """Drop every entry of a namespace (e.g. all cached listing pages), everywhere."""
        ...


# The namespaces the catalogue caches under (one TTL/size policy each in settings).
PRODUCT_NS = "product"
PRODUCT_LIST_NS = "product_list"
