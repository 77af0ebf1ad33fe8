"""The SQL product repository on SQLite and PostgreSQL: mapping, listing, the conditional
stock UPDATE under real concurrency, and the constraints behind it."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import text, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from backend.domain.catalog import (
    InsufficientStockForAdjustment,
    Product,
    ProductQuery,
    SkuTaken,
    SortField,
    StockAdjustment,
)
from backend.infrastructure.cache import TieredCache
from backend.infrastructure.cache.codecs import CATALOG_CODECS
from backend.infrastructure.db.engine import create_engine
from backend.infrastructure.db.tables.catalog import products
from backend.infrastructure.db.uow import SqlUnitOfWork
from backend.services.catalog import CatalogService
from tests.fakes.orders import SteppingClock

T0 = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url)
    yield engine
    await engine.dispose()


def make(
    sku: str, *, price: str = "1.00", stock: int = 1, minutes: int = 0, **kw: object
) -> Product:
    values: dict[str, object] = {
        "id": str(uuid.uuid4()),
        "sku": sku,
        "name": f"Name {sku}",
        "description": None,
        "price": price,
        "stock": stock,
        "currency": "EUR",
        "now": T0 + timedelta(minutes=minutes),
    }
    values.update(kw)
    return Product.new(**values)  # type: ignore[arg-type]


async def store(engine: AsyncEngine, *items: Product) -> None:
    async with SqlUnitOfWork(engine) as uow:
        for item in items:
            await uow.products.add(item)
        await uow.commit()


async def test_add_get_and_get_many_round_trip(engine: AsyncEngine) -> None:
    first = make("A", price="19.90", stock=3, description="hot water")
    second = make("B")
    await store(engine, first, second)
    async with SqlUnitOfWork(engine) as uow:
        assert await uow.products.get(first.id) == first
        assert await uow.products.get(str(uuid.uuid4())) is None
        many = await uow.products.get_many([first.id, second.id, str(uuid.uuid4())])
        assert await uow.products.get_many([]) == {}
    assert many == {first.id: first, second.id: second}
    assert isinstance(many[first.id].price, Decimal)
    assert many[first.id].created_at.tzinfo is not None


async def test_a_taken_sku_raises_and_keeps_the_transaction_usable(engine: AsyncEngine) -> None:
    await store(engine, make("A"))
    async with SqlUnitOfWork(engine) as uow:
        with pytest.raises(SkuTaken):
            await uow.products.add(make("A"))
        await uow.products.add(make("B"))  # the conflict did not abort the transaction
        await uow.commit()
    async with SqlUnitOfWork(engine) as uow:
        page = await uow.products.list(ProductQuery())
    assert sorted(p.sku for p in page.items) == ["A", "B"]


async def test_update_is_conditional_on_the_version(engine: AsyncEngine) -> None:
    item = make("A")
    await store(engine, item)
    async with SqlUnitOfWork(engine) as uow:
        current = await uow.products.get(item.id)
        assert current is not None
        current.name, current.version = "Renamed", 2
        assert await uow.products.update(current, expected_version=1) is True
        current.name, current.version = "Lost", 3
        assert await uow.products.update(current, expected_version=1) is False
        await uow.commit()
    async with SqlUnitOfWork(engine) as uow:
        stored = await uow.products.get(item.id)
    assert stored is not None
    assert (stored.name, stored.version) == ("Renamed", 2)


async def test_adjust_stock_changes_stock_and_version_or_nothing(engine: AsyncEngine) -> None:
    item = make("A", stock=2)
    await store(engine, item)
    async with SqlUnitOfWork(engine) as uow:
        assert await uow.products.adjust_stock(item.id, -2) == 0
        assert await uow.products.adjust_stock(item.id, -1) is None
        assert await uow.products.adjust_stock(str(uuid.uuid4()), 1) is None
        assert await uow.products.adjust_stock(item.id, 2_147_483_647) == 2_147_483_647
        assert await uow.products.adjust_stock(item.id, 1) is None  # above the column's range
        await uow.commit()
    async with SqlUnitOfWork(engine) as uow:
        stored = await uow.products.get(item.id)
    assert stored is not None
    assert (stored.stock, stored.version) == (2_147_483_647, 3)
    assert stored.updated_at > item.updated_at


async def test_the_check_constraint_refuses_negative_stock_written_directly(
    engine: AsyncEngine,
) -> None:
    item = make("A", stock=1)
    await store(engine, item)
    with pytest.raises(IntegrityError):
        async with engine.begin() as conn:
            await conn.execute(update(products).where(products.c.id == item.id).values(stock=-1))


async def test_adjustments_are_recorded_in_order(engine: AsyncEngine) -> None:
    item = make("A", stock=5)
    await store(engine, item)
    async with SqlUnitOfWork(engine) as uow:
        for n, delta in enumerate((3, -1)):
            await uow.products.record_adjustment(
                StockAdjustment(
                    id=str(uuid.uuid4()),
                    product_id=item.id,
                    delta=delta,
                    reason=f"r{n}",
                    stock_after=5 + delta,
                    actor_id=None,
                    created_at=T0 + timedelta(seconds=n),
                )
            )
        await uow.commit()
    async with SqlUnitOfWork(engine) as uow:
        records = await uow.products.adjustments(item.id)
    assert [(r.delta, r.reason) for r in records] == [(3, "r0"), (-1, "r1")]


# --------------------------------------------------------------------------- listing
@pytest.fixture
async def shelf(engine: AsyncEngine) -> dict[str, Product]:
    items = {
        "tea": make("TEA-1", price="4.50", stock=10, minutes=1, name="Green tea"),
        "mug": make("MUG-1", price="12.00", stock=0, minutes=2, name="Mug", description="for TEA"),
        "pot": make("POT-1", price="30.00", stock=2, minutes=3, name="Teapot"),
        "cup": make("CUP-1", price="4.50", stock=4, minutes=4, name="Cup"),
        "old": make("OLD-1", price="1.00", stock=9, minutes=5, name="Old tea"),
    }
    items["old"].is_active = False
    await store(engine, *items.values())
    return items


async def listing(engine: AsyncEngine, **query: object) -> tuple[list[str], int]:
    async with SqlUnitOfWork(engine) as uow:
        page = await uow.products.list(ProductQuery(**query))  # type: ignore[arg-type]
    return [p.sku for p in page.items], page.total


async def test_listing_shows_active_products_unless_asked(
    engine: AsyncEngine, shelf: dict[str, Product]
) -> None:
    assert (await listing(engine))[1] == 4
    skus, total = await listing(engine, include_inactive=True)
    assert total == 5
    assert "OLD-1" in skus


async def test_listing_filters(engine: AsyncEngine, shelf: dict[str, Product]) -> None:
    # q matches name, sku or description, case-insensitively
    assert sorted((await listing(engine, q="tea"))[0]) == ["MUG-1", "POT-1", "TEA-1"]
    assert (await listing(engine, q="cup-"))[0] == ["CUP-1"]
    assert (await listing(engine, q="%"))[0] == []  # wildcards are literal
    assert (await listing(engine, q="_"))[0] == []
    prices = await listing(engine, min_price=Decimal("4.50"), max_price=Decimal("12.00"))
    assert sorted(prices[0]) == ["CUP-1", "MUG-1", "TEA-1"]
    assert sorted((await listing(engine, in_stock=True))[0]) == ["CUP-1", "POT-1", "TEA-1"]


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        (SortField.NAME, ["CUP-1", "TEA-1", "MUG-1", "POT-1"]),
        (SortField.CREATED_AT, ["TEA-1", "MUG-1", "POT-1", "CUP-1"]),
    ],
)
async def test_listing_sorts_both_ways(
    engine: AsyncEngine, shelf: dict[str, Product], sort: SortField, expected: list[str]
) -> None:
    assert (await listing(engine, sort=sort))[0] == expected
    assert (await listing(engine, sort=sort, descending=True))[0] == expected[::-1]


async def test_listing_by_price_breaks_ties_by_id_both_ways(
    engine: AsyncEngine, shelf: dict[str, Product]
) -> None:
    ids = {p.sku: p.id for p in shelf.values()}
    tied = sorted(["TEA-1", "CUP-1"], key=ids.__getitem__)
    ascending = (await listing(engine, sort=SortField.PRICE))[0]
    assert ascending == [*tied, "MUG-1", "POT-1"]
    assert (await listing(engine, sort=SortField.PRICE, descending=True))[0] == ascending[::-1]


async def test_paging_covers_every_row_once_with_a_correct_total(
    engine: AsyncEngine, shelf: dict[str, Product]
) -> None:
    seen: list[str] = []
    for offset in range(0, 6, 3):
        skus, total = await listing(engine, sort=SortField.NAME, limit=3, offset=offset)
        assert total == 4
        seen += skus
    assert seen == ["CUP-1", "TEA-1", "MUG-1", "POT-1"]
    assert await listing(engine, offset=50) == ([], 4)


# --------------------------------------------------------------------------- concurrency
async def test_100_concurrent_decrements_on_stock_30_exactly_30_succeed(
    engine: AsyncEngine,
) -> None:
    item = make("HOT", stock=30)
    await store(engine, item)
    catalog = CatalogService(
        lambda: SqlUnitOfWork(engine),
        TieredCache(policy=lambda ns: (30.0, 100), codecs=CATALOG_CODECS),
        SteppingClock(),
        currency="EUR",
    )

    async def take_one() -> bool:
        try:
            await catalog.adjust_stock(item.id, -1, "flash sale")
        except InsufficientStockForAdjustment:  # the only acceptable failure
            return False
        return True

    results = await asyncio.gather(*(take_one() for _ in range(100)))
    assert results.count(True) == 30
    async with SqlUnitOfWork(engine) as uow:
        stored = await uow.products.get(item.id)
        recorded = await uow.products.adjustments(item.id)
        raw = (
            await uow.connection.execute(text("SELECT stock FROM products WHERE sku = 'HOT'"))
        ).scalar_one()
    assert stored is not None
    assert (stored.stock, raw, stored.version) == (0, 0, 31)
    assert len(recorded) == 30
    assert sorted(r.stock_after for r in recorded) == list(range(30))
