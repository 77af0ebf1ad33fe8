"""Catalogue use cases over in-memory fakes: rules, invalidation, atomicity."""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from backend.domain.catalog import (
    PRODUCT_LIST_NS,
    PRODUCT_NS,
    InsufficientStockForAdjustment,
    InvalidProduct,
    ProductChanges,
    ProductNotFound,
    ProductQuery,
    ProductVersionMismatch,
    SkuTaken,
    SortField,
)
from backend.infrastructure.cache import TieredCache
from backend.infrastructure.cache.codecs import CATALOG_CODECS
from backend.services.catalog import CatalogService, StockLimitExceeded, products_changed
from tests.fakes.catalog import FakeProductRepository, RecordingCache
from tests.fakes.orders import SteppingClock
from tests.fakes.uow import FakeUnitOfWorkFactory


@pytest.fixture
def db() -> FakeUnitOfWorkFactory:
    return FakeUnitOfWorkFactory()


@pytest.fixture
def cache() -> RecordingCache:
    return RecordingCache()


@pytest.fixture
def catalog(db: FakeUnitOfWorkFactory, cache: RecordingCache) -> CatalogService:
    return CatalogService(db, cache, SteppingClock(), currency="EUR")


def repo(db: FakeUnitOfWorkFactory) -> FakeProductRepository:
    return db.products  # type: ignore[no-any-return]


async def test_create_stores_the_product_and_invalidates_listings(
    catalog: CatalogService, db: FakeUnitOfWorkFactory, cache: RecordingCache
) -> None:
    product = await catalog.create(sku="tea-1", name="Green tea", price="4.5", stock=7)
    stored = repo(db).rows[product.id]
    assert (stored.sku, stored.price, stored.currency, stored.stock) == (
        "TEA-1",
        Decimal("4.50"),
        "EUR",
        7,
    )
    assert cache.namespaces_invalidated == [PRODUCT_LIST_NS]
    assert db.commits == 1


async def test_a_taken_sku_is_refused_whatever_its_case(catalog: CatalogService) -> None:
    await catalog.create(sku="TEA-1", name="Green tea", price="4.50")
    with pytest.raises(SkuTaken):
        await catalog.create(sku="tea-1", name="Other", price="1.00")


async def test_get_reads_through_the_cache_and_hides_inactive_products(
    catalog: CatalogService, db: FakeUnitOfWorkFactory
) -> None:
    product = await catalog.create(sku="A", name="A", price="1.00")
    loads = repo(db).loads
    assert (await catalog.get(product.id)).id == product.id
    assert (await catalog.get(product.id)).id == product.id
    assert repo(db).loads == loads + 1  # the second read was a cache hit

    await catalog.deactivate(product.id)
    with pytest.raises(ProductNotFound):
        await catalog.get(product.id)
    assert (await catalog.get(product.id, include_inactive=True)).is_active is False
    with pytest.raises(ProductNotFound):
        await catalog.get("00000000-0000-0000-0000-000000000000")


async def test_update_invalidates_the_product_and_the_listings(
    catalog: CatalogService, cache: RecordingCache
) -> None:
    product = await catalog.create(sku="A", name="A", price="1.00")
    await catalog.get(product.id)
    updated = await catalog.update(product.id, ProductChanges(name="B"), expected_version=1)
    assert (updated.name, updated.version) == ("B", 2)
    assert (PRODUCT_NS, product.id) in cache.invalidated
    assert (await catalog.get(product.id)).name == "B"


async def test_a_stale_if_match_is_refused_and_nothing_changes(
    catalog: CatalogService, db: FakeUnitOfWorkFactory
) -> None:
    product = await catalog.create(sku="A", name="A", price="1.00")
    await catalog.update(product.id, ProductChanges(name="B"))
    with pytest.raises(ProductVersionMismatch):
        await catalog.update(product.id, ProductChanges(name="C"), expected_version=1)
    assert repo(db).rows[product.id].name == "B"


async def test_a_no_op_update_keeps_the_version(catalog: CatalogService) -> None:
    product = await catalog.create(sku="A", name="A", price="1.00")
    same = await catalog.update(product.id, ProductChanges(name="A", price=Decimal("1")))
    assert same.version == 1


async def test_an_update_racing_another_is_retried_without_if_match(
    catalog: CatalogService, db: FakeUnitOfWorkFactory
) -> None:
    product = await catalog.create(sku="A", name="A", price="1.00")
    store = repo(db)
    real_update = store.update
    raced = []

    async def racing_update(p, *, expected_version):  # type: ignore[no-untyped-def]
        if not raced:  # another writer commits between our read and our write, once
            raced.append(True)
            store.rows[p.id].version += 1
            assert store._snapshot is not None  # committed: survives our rollback too
            store._snapshot[0][p.id].version += 1
        return await real_update(p, expected_version=expected_version)

    store.update = racing_update  # type: ignore[method-assign]
    updated = await catalog.update(product.id, ProductChanges(name="Mine"))
    assert (updated.name, updated.version) == ("Mine", 3)
    raced.clear()
    with pytest.raises(ProductVersionMismatch):
        await catalog.update(product.id, ProductChanges(name="Again"), expected_version=3)


async def test_deactivating_twice_is_harmless(catalog: CatalogService) -> None:
    product = await catalog.create(sku="A", name="A", price="1.00")
    await catalog.deactivate(product.id)
    await catalog.deactivate(product.id)
    assert (await catalog.get(product.id, include_inactive=True)).version == 2
    with pytest.raises(ProductNotFound):
        await catalog.deactivate("missing")


async def test_adjust_stock_records_the_adjustment(
    catalog: CatalogService, db: FakeUnitOfWorkFactory
) -> None:
    product = await catalog.create(sku="A", name="A", price="1.00", stock=5)
    after = await catalog.adjust_stock(product.id, -2, " sold at the fair ", actor_id="u1")
    assert (after.stock, after.version) == (3, 2)
    [record] = await catalog.adjustments(product.id)
    assert (record.delta, record.reason, record.stock_after, record.actor_id) == (
        -2,
        "sold at the fair",
        3,
        "u1",
    )


async def test_adjust_stock_below_zero_changes_and_records_nothing(
    catalog: CatalogService, db: FakeUnitOfWorkFactory
) -> None:
    product = await catalog.create(sku="A", name="A", price="1.00", stock=1)
    with pytest.raises(InsufficientStockForAdjustment) as raised:
        await catalog.adjust_stock(product.id, -2, "oops")
    assert raised.value.extra["stock"] == 1
    assert repo(db).rows[product.id].stock == 1
    assert await catalog.adjustments(product.id) == []


async def test_adjust_stock_of_an_unknown_product_is_not_found(catalog: CatalogService) -> None:
    with pytest.raises(ProductNotFound):
        await catalog.adjust_stock("missing", 1, "restock")
    with pytest.raises(ProductNotFound):
        await catalog.adjustments("missing")


async def test_adjust_stock_above_the_column_range_is_refused(catalog: CatalogService) -> None:
    product = await catalog.create(sku="A", name="A", price="1.00", stock=2_147_483_000)
    with pytest.raises(StockLimitExceeded):
        await catalog.adjust_stock(product.id, 1000, "too many")


@pytest.mark.parametrize(("delta", "reason"), [(0, "x"), (1, ""), (1, "   "), (1, "r" * 201)])
async def test_adjust_stock_validates_its_input(
    catalog: CatalogService, delta: int, reason: str
) -> None:
    product = await catalog.create(sku="A", name="A", price="1.00", stock=1)
    with pytest.raises(InvalidProduct):
        await catalog.adjust_stock(product.id, delta, reason)


async def test_list_filters_sorts_pages_and_caches(
    catalog: CatalogService, db: FakeUnitOfWorkFactory, cache: RecordingCache
) -> None:
    for sku, price, stock in [("A", "3.00", 0), ("B", "1.00", 5), ("C", "2.00", 5)]:
        await catalog.create(sku=sku, name=f"Tea {sku}", price=price, stock=stock)
    page = await catalog.list(ProductQuery(in_stock=True, sort=SortField.PRICE, descending=True))
    assert [p.sku for p in page.items] == ["C", "B"]
    assert page.total == 2
    # The next identical listing is served from the cache...
    key = ProductQuery(in_stock=True, sort=SortField.PRICE, descending=True).cache_key()
    assert (PRODUCT_LIST_NS, key) in cache.values
    # ...until a write invalidates the listings.
    await catalog.adjust_stock(page.items[0].id, -5, "sold out")
    again = await catalog.list(ProductQuery(in_stock=True, sort=SortField.PRICE, descending=True))
    assert [p.sku for p in again.items] == ["B"]


@pytest.mark.parametrize(
    "query",
    [
        ProductQuery(limit=0),
        ProductQuery(limit=101),
        ProductQuery(offset=-1),
        ProductQuery(min_price=Decimal("5"), max_price=Decimal("4")),
    ],
)
async def test_list_refuses_bad_queries(catalog: CatalogService, query: ProductQuery) -> None:
    with pytest.raises(InvalidProduct):
        await catalog.list(query)


async def test_concurrent_cold_reads_load_once_through_the_real_l1_cache(
    db: FakeUnitOfWorkFactory,
) -> None:
    cache = TieredCache(policy=lambda ns: (30.0, 100), codecs=CATALOG_CODECS)
    catalog = CatalogService(db, cache, SteppingClock(), currency="EUR")
    product = await catalog.create(sku="A", name="A", price="1.00")
    loads = repo(db).loads
    results = await asyncio.gather(*(catalog.get(product.id) for _ in range(50)))
    assert {p.id for p in results} == {product.id}
    assert repo(db).loads == loads + 1


async def test_products_changed_invalidates_each_product_and_the_listings(
    cache: RecordingCache,
) -> None:
    await products_changed(cache, ["a", "b"])
    assert cache.invalidated == [(PRODUCT_NS, "a"), (PRODUCT_NS, "b")]
    assert cache.namespaces_invalidated == [PRODUCT_LIST_NS]
