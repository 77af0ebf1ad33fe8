"""Catalogue use cases: reads through the cache, writes through the unit of work.

Every write registers its cache invalidation with `uow.on_commit`: it runs after the commit
(a reader that misses after it can only load the committed state) and never for a change
that rolled back.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterable, Sequence
from decimal import Decimal
from functools import partial

from backend.domain.catalog import (
    MAX_STOCK,
    PRODUCT_LIST_NS,
    PRODUCT_NS,
    Cache,
    InsufficientStockForAdjustment,
    InvalidProduct,
    Product,
    ProductChanges,
    ProductNotFound,
    ProductPage,
    ProductQuery,
    ProductRepository,
    StockAdjustment,
)
from backend.domain.errors import Conflict
from backend.domain.ports import Clock, UnitOfWorkFactory
from backend.domain.versioning import ExpectedVersion

MAX_LIMIT = 100
MAX_REASON = 200
UPDATE_ATTEMPTS = 3


class StockLimitExceeded(Conflict):
    slug = "stock-limit"
    title = "Stock would exceed the maximum"


class ConcurrentUpdate(Conflict):
    slug = "concurrent-update"
    title = "Concurrent update"


async def products_changed(cache: Cache, product_ids: Iterable[str]) -> None:
    """Register with `tx.on_commit` wherever these products' rows (stock included) change
    (the catalogue and the orders flow). Shielded: a request cancelled after its commit
    still invalidates what it changed."""
    await asyncio.shield(_invalidate(cache, list(product_ids)))


async def _invalidate(cache: Cache, product_ids: list[str]) -> None:
    if product_ids:
        await cache.invalidate(PRODUCT_NS, *product_ids)
    await cache.invalidate_namespace(PRODUCT_LIST_NS)


def check_query(query: ProductQuery) -> None:
    if not 1 <= query.limit <= MAX_LIMIT or query.offset < 0:
        raise InvalidProduct(f"limit must be 1..{MAX_LIMIT} and offset >= 0.")
    if (
        query.min_price is not None
        and query.max_price is not None
        and query.min_price > query.max_price
    ):
        raise InvalidProduct(
            "min_price must not exceed max_price.",
            errors=[
                {
                    "loc": ["query", "min_price"],
                    "msg": "min_price must not exceed max_price",
                    "type": "value_error",
                }
            ],
        )


class CatalogService:
    def __init__(
        self, uow: UnitOfWorkFactory, cache: Cache, clock: Clock, *, currency: str
    ) -> None:
        self._uow = uow
        self._cache = cache
        self._clock = clock
        self._currency = currency

    # ------------------------------------------------------------------ reads
    async def get(self, product_id: str, *, include_inactive: bool = False) -> Product:
        product: Product | None = await self._cache.get_or_load(
            PRODUCT_NS, product_id, lambda: self._load(product_id)
        )
        if product is None or not (product.is_active or include_inactive):
            raise ProductNotFound(product_id)
        return product

    async def _load(self, product_id: str) -> Product | None:
        async with self._uow().read_only() as uow:  # one row: no transaction needed
            return await uow.products.get(product_id)

    async def list(self, query: ProductQuery) -> ProductPage:
        check_query(query)
        page: ProductPage | None = await self._cache.get_or_load(
            PRODUCT_LIST_NS, query.cache_key(), lambda: self._load_page(query)
        )
        assert page is not None  # a page is never None, only possibly empty
        return page

    async def _load_page(self, query: ProductQuery) -> ProductPage:
        async with self._uow() as uow:
            return await uow.products.list(query)

    async def adjustments(self, product_id: str) -> Sequence[StockAdjustment]:
        async with self._uow() as uow:
            if await uow.products.get(product_id) is None:
                raise ProductNotFound(product_id)
            return await uow.products.adjustments(product_id)

    # ------------------------------------------------------------------ writes
    async def create(
        self,
        *,
        sku: str,
        name: str,
        price: Decimal | str | int,
        stock: int = 0,
        description: str | None = None,
    ) -> Product:
        product = Product.new(
            id=str(uuid.uuid4()),
            sku=sku,
            name=name,
            description=description,
            price=price,
            stock=stock,
            currency=self._currency,
            now=self._clock.now(),
        )
        async with self._uow() as uow:
            await uow.products.add(product)
            uow.on_commit(partial(products_changed, self._cache, [product.id]))
            await uow.commit()
        return product

    async def update(
        self, product_id: str, changes: ProductChanges, *, expected_version: ExpectedVersion = None
    ) -> Product:
        """Edit a product. With `expected_version` (If-Match) a stale version is refused;
        without it, a concurrent edit is retried on the fresh row (last writer wins).
        The next attempt re-checks `expected_version` against the row the other edit left."""
        for _ in range(UPDATE_ATTEMPTS):
            async with self._uow() as uow:
                product = await uow.products.get(product_id)
                if product is None:
                    raise ProductNotFound(product_id)
                product.check_version(expected_version)
                read_version = product.version
                if not product.apply(changes, self._clock.now()):
                    return product
                if await uow.products.update(product, expected_version=read_version):
                    uow.on_commit(partial(products_changed, self._cache, [product_id]))
                    await uow.commit()
                    return product
        raise ConcurrentUpdate(f"Product {product_id} is being edited concurrently; retry.")

    async def deactivate(
        self, product_id: str, *, expected_version: ExpectedVersion = None
    ) -> None:
        await self.update(
            product_id, ProductChanges(is_active=False), expected_version=expected_version
        )

    async def adjust_stock(
        self, product_id: str, delta: int, reason: str, *, actor_id: str | None = None
    ) -> Product:
        reason = reason.strip()
        if delta == 0 or abs(delta) > MAX_STOCK:
            raise InvalidProduct(f"delta must be a non-zero integer within ±{MAX_STOCK}.")
        if not 1 <= len(reason) <= MAX_REASON:
            raise InvalidProduct(f"reason must be 1..{MAX_REASON} characters.")
        async with self._uow() as uow:
            stock_after = await uow.products.adjust_stock(product_id, delta)
            if stock_after is None:
                raise await self._refusal(uow.products, product_id, delta)
            await uow.products.record_adjustment(
                StockAdjustment(
                    id=str(uuid.uuid4()),
                    product_id=product_id,
                    delta=delta,
                    reason=reason,
                    stock_after=stock_after,
                    actor_id=actor_id,
                    created_at=self._clock.now(),
                )
            )
            product = await uow.products.get(product_id)
            uow.on_commit(partial(products_changed, self._cache, [product_id]))
            await uow.commit()
        assert product is not None
        return product

    @staticmethod
    async def _refusal(products: ProductRepository, product_id: str, delta: int) -> Exception:
        """Why the conditional UPDATE changed nothing: absent, below zero, or over the cap."""
        product = await products.get(product_id)
        if product is None:
            return ProductNotFound(product_id)
        if product.stock + delta < 0:
            return InsufficientStockForAdjustment(product_id, product.stock, delta)
        return StockLimitExceeded(f"Stock of {product_id} would exceed {MAX_STOCK}.")
