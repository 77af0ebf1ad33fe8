"""In-memory product repository (with transaction semantics) and a recording cache."""

from __future__ import annotations

import copy
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any, Protocol, TypeVar

from backend.domain.catalog import (
    MAX_STOCK,
    Product,
    ProductPage,
    ProductQuery,
    SkuTaken,
    StockAdjustment,
)

T = TypeVar("T")


class _Adjusting(Protocol):
    rows: dict[str, Product]

    async def adjust_stock(self, product_id: str, delta: int) -> int | None: ...


async def reserve_by_adjusting(
    repo: _Adjusting, quantities: Mapping[str, int]
) -> dict[str, Product]:
    """`ProductRepository.reserve` on a fake: each line's stock adjusted in id order; the
    products that had enough, as they are now."""
    taken = [
        pid
        for pid in sorted(quantities)
        if await repo.adjust_stock(pid, -quantities[pid]) is not None
    ]
    return {pid: replace(repo.rows[pid]) for pid in taken}


class FakeProductRepository:
    """Rows and adjustments snapshot on begin and restore on rollback, like a transaction."""

    def __init__(self, *products: Product) -> None:
        self.rows: dict[str, Product] = {p.id: replace(p) for p in products}
        self.adjustment_rows: list[StockAdjustment] = []
        self.loads = 0  # reads of single products, to count cache misses reaching the store
        self._snapshot: tuple[dict[str, Product], list[StockAdjustment]] | None = None

    # transaction hooks (called by FakeUnitOfWork)
    def _begin(self) -> None:
        self._snapshot = (copy.deepcopy(self.rows), list(self.adjustment_rows))

    def _commit(self) -> None:
        self._snapshot = None

    def _rollback(self) -> None:
        if self._snapshot is not None:
            self.rows, self.adjustment_rows = self._snapshot
        self._snapshot = None

    # ProductRepository
    async def get(self, product_id: str) -> Product | None:
        self.loads += 1
        product = self.rows.get(product_id)
        return replace(product) if product else None

    async def get_many(self, product_ids: Sequence[str]) -> dict[str, Product]:
        return {pid: replace(self.rows[pid]) for pid in product_ids if pid in self.rows}

    async def lock(self, product_ids: Sequence[str]) -> None:
        pass  # one in-memory writer: nothing to order

    async def reserve(self, quantities: Mapping[str, int], at: datetime) -> dict[str, Product]:
        return await reserve_by_adjusting(self, quantities)

    async def adjust_stock(self, product_id: str, delta: int) -> int | None:
        product = self.rows.get(product_id)
        if product is None or not 0 <= product.stock + delta <= MAX_STOCK:
            return None
        self.rows[product_id] = replace(
            product, stock=product.stock + delta, version=product.version + 1
        )
        return product.stock + delta

    async def add(self, product: Product) -> None:
        if any(p.sku == product.sku for p in self.rows.values()):
            raise SkuTaken(product.sku)
        self.rows[product.id] = replace(product)

    async def update(self, product: Product, *, expected_version: int) -> bool:
        stored = self.rows.get(product.id)
        if stored is None or stored.version != expected_version:
            return False
        self.rows[product.id] = replace(product, stock=stored.stock)
        return True

    async def list(self, query: ProductQuery) -> ProductPage:
        matching = [p for p in self.rows.values() if _matches(p, query)]
        matching.sort(key=lambda p: p.id, reverse=query.descending)
        matching.sort(key=lambda p: getattr(p, query.sort.value), reverse=query.descending)
        items = matching[query.offset : query.offset + query.limit]
        return ProductPage(
            items=[replace(p) for p in items],
            total=len(matching),
            limit=query.limit,
            offset=query.offset,
        )

    async def record_adjustment(self, adjustment: StockAdjustment) -> None:
        self.adjustment_rows.append(adjustment)

    async def adjustments(self, product_id: str) -> Sequence[StockAdjustment]:
        return [a for a in self.adjustment_rows if a.product_id == product_id]


def _matches(product: Product, query: ProductQuery) -> bool:
    if not (product.is_active or query.include_inactive):
        return False
    if query.q:
        needle = query.q.lower()
        haystack = (product.name, product.sku, product.description or "")
        if not any(needle in text.lower() for text in haystack):
            return False
    if query.min_price is not None and product.price < query.min_price:
        return False
    if query.max_price is not None and product.price > query.max_price:
        return False
    return not (query.in_stock and product.stock <= 0)


class RecordingCache:
    """A plain dict cache that records what the service asked of it."""

    def __init__(self) -> None:
        self.values: dict[tuple[str, str], Any] = {}
        self.invalidated: list[tuple[str, str]] = []
        self.namespaces_invalidated: list[str] = []

    async def get_or_load(
        self, namespace: str, key: str, load: Callable[[], Awaitable[T | None]]
    ) -> T | None:
        if (namespace, key) in self.values:
            return self.values[(namespace, key)]  # type: ignore[no-any-return]
        value = await load()
        if value is not None:
            self.values[(namespace, key)] = value
        return value

    async def invalidate(self, namespace: str, *keys: str) -> None:
        for key in keys:
            self.values.pop((namespace, key), None)
            self.invalidated.append((namespace, key))

    async def invalidate_namespace(self, namespace: str) -> None:
        for cached in [k for k in self.values if k[0] == namespace]:
            del self.values[cached]
        self.namespaces_invalidated.append(namespace)
