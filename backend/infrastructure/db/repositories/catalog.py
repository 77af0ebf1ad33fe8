"""SQL repository of products and stock adjustments."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import BigInteger, ColumnElement, Select, func, literal, or_, select, update

from backend.domain.catalog import (
    MAX_STOCK,
    Product,
    ProductPage,
    ProductQuery,
    SkuTaken,
    SortField,
    StockAdjustment,
)
from backend.infrastructure.db.driver import driver
from backend.infrastructure.db.repositories.base import SqlRepository
from backend.infrastructure.db.tables.catalog import products, stock_adjustments
from backend.infrastructure.db.types import from_cents

_SORT_COLUMNS = {
    SortField.NAME: products.c.name,
    SortField.PRICE: products.c.price,
    SortField.CREATED_AT: products.c.created_at,
}
_PRODUCT_COLUMNS = list(products.c)


def _product(row: Any) -> Product:
    return Product(
        id=row.id,
        sku=row.sku,
        name=row.name,
        description=row.description,
        price=row.price,
        currency=row.currency,
        stock=row.stock,
        is_active=row.is_active,
        version=row.version,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


# `reserve` on PostgreSQL: the conditional UPDATE of every line in one statement, sent as
# it is (docs/adr/0019). One line needs no lock order. Several lines lock their rows in
# ascending id order first (the sorted FOR UPDATE produces them in that order, and the
# UPDATE reaches a row only through it), so two placements sharing products never wait for
# each other in a cycle; under READ COMMITTED the UPDATE re-checks `stock >= quantity`
# against the newest row version, so no interleaving oversells.
_RESERVE_ONE = """
UPDATE products AS p
SET stock = p.stock - $2, version = p.version + 1, updated_at = $3
WHERE p.id = $1::uuid AND p.stock >= $2
RETURNING p.id, p.sku, p.name, p.description, p.price, p.currency, p.stock, p.is_active,
    p.version, p.created_at, p.updated_at
"""
_RESERVE_MANY = """
WITH locked AS MATERIALIZED (
    SELECT id FROM products WHERE id = ANY($1::uuid[]) ORDER BY id FOR UPDATE
), wanted AS (
    SELECT * FROM unnest($1::uuid[], $2::integer[]) AS w(id, quantity)
)
UPDATE products AS p
SET stock = p.stock - wanted.quantity, version = p.version + 1, updated_at = $3
FROM locked JOIN wanted USING (id)
WHERE p.id = locked.id AND p.stock >= wanted.quantity
RETURNING p.id, p.sku, p.name, p.description, p.price, p.currency, p.stock, p.is_active,
    p.version, p.created_at, p.updated_at
"""


def _raw_product(row: Any) -> Product:
    """A product from asyncpg's record (no SQLAlchemy types)."""
    return Product(
        id=str(row["id"]),
        sku=row["sku"],
        name=row["name"],
        description=row["description"],
        price=from_cents(row["price"]),
        currency=row["currency"],
        stock=row["stock"],
        is_active=row["is_active"],
        version=row["version"],
        created_at=row["created_at"].astimezone(UTC),
        updated_at=row["updated_at"].astimezone(UTC),
    )


def _like_pattern(text: str) -> str:
    """`%text%` with LIKE's wildcards in the user's text taken literally."""
    escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _filters(query: ProductQuery) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    if not query.include_inactive:
        conditions.append(products.c.is_active.is_(True))
    if query.q:
        pattern = _like_pattern(query.q)
        conditions.append(
            or_(
                *(
                    func.lower(column).like(pattern, escape="\\")
                    for column in (products.c.name, products.c.sku, products.c.description)
                )
            )
        )
    if query.min_price is not None:
        conditions.append(products.c.price >= query.min_price)
    if query.max_price is not None:
        conditions.append(products.c.price <= query.max_price)
    if query.in_stock:
        conditions.append(products.c.stock > 0)
    return conditions


class SqlProductRepository(SqlRepository):
    async def get(self, product_id: str) -> Product | None:
        row = (
            await self._conn.execute(select(*_PRODUCT_COLUMNS).where(products.c.id == product_id))
        ).first()
        return _product(row) if row is not None else None

    async def get_many(self, product_ids: Sequence[str]) -> dict[str, Product]:
        if not product_ids:
            return {}
        rows = await self._conn.execute(
            select(*_PRODUCT_COLUMNS).where(products.c.id.in_(list(product_ids)))
        )
        return {row.id: _product(row) for row in rows}

    async def lock(self, product_ids: Sequence[str]) -> None:
        if not product_ids:
            return
        # Rows are locked as the sorted result is produced, so in id order (SQLAlchemy
        # renders no FOR UPDATE on SQLite, whose BEGIN IMMEDIATE already holds everything).
        statement = (
            select(products.c.id)
            .where(products.c.id.in_(sorted(set(product_ids))))
            .order_by(products.c.id)
            .with_for_update()
        )
        await self._conn.execute(statement)

    async def reserve(self, quantities: Mapping[str, int], at: datetime) -> dict[str, Product]:
        if not quantities:
            return {}
        if self.dialect != "postgresql":
            taken = [
                pid
                for pid in sorted(quantities)
                if await self.adjust_stock(pid, -quantities[pid]) is not None
            ]
            return await self.get_many(taken)
        ids = sorted(quantities)
        async with driver(self._conn) as raw:
            if len(ids) == 1:
                rows = await raw.fetch(_RESERVE_ONE, ids[0], quantities[ids[0]], at)
            else:
                rows = await raw.fetch(_RESERVE_MANY, ids, [quantities[pid] for pid in ids], at)
        return {str(row["id"]): _raw_product(row) for row in rows}

    async def adjust_stock(self, product_id: str, delta: int) -> int | None:
        # One statement: the condition and the change are atomic on both databases, so
        # no interleaving of concurrent adjustments can take the stock below zero.
        # The delta is BIGINT so `stock + delta` cannot overflow while being checked.
        change = literal(delta, BigInteger)
        statement = (
            update(products)
            .where(
                products.c.id == product_id,
                products.c.stock + change >= 0,
                products.c.stock + change <= MAX_STOCK,
            )
            .values(
                stock=products.c.stock + change,
                version=products.c.version + 1,
                updated_at=datetime.now(UTC),
            )
            .returning(products.c.stock)
        )
        stock = (await self._conn.execute(statement)).scalar_one_or_none()
        return None if stock is None else int(stock)

    async def add(self, product: Product) -> None:
        statement = (
            self.insert_ignoring_conflicts(products, ["sku"])
            .values(**_values(product))
            .returning(products.c.id)
        )
        if (await self._conn.execute(statement)).first() is None:
            raise SkuTaken(product.sku)

    async def update(self, product: Product, *, expected_version: int) -> bool:
        values = _values(product)
        for immutable in ("id", "sku", "stock", "created_at"):
            values.pop(immutable)
        statement = (
            update(products)
            .where(products.c.id == product.id, products.c.version == expected_version)
            .values(**values)
        )
        return (await self._conn.execute(statement)).rowcount == 1

    async def list(self, query: ProductQuery) -> ProductPage:
        conditions = _filters(query)
        total = (
            await self._conn.execute(select(func.count()).select_from(products).where(*conditions))
        ).scalar_one()
        rows = await self._conn.execute(_page(select(*_PRODUCT_COLUMNS), query, conditions))
        return ProductPage(
            items=[_product(row) for row in rows],
            total=total,
            limit=query.limit,
            offset=query.offset,
        )

    async def record_adjustment(self, adjustment: StockAdjustment) -> None:
        await self._conn.execute(
            stock_adjustments.insert().values(
                id=adjustment.id,
                product_id=adjustment.product_id,
                delta=adjustment.delta,
                reason=adjustment.reason,
                stock_after=adjustment.stock_after,
                actor_id=adjustment.actor_id,
                created_at=adjustment.created_at,
            )
        )

    async def adjustments(self, product_id: str) -> Sequence[StockAdjustment]:
        rows = await self._conn.execute(
            select(stock_adjustments)
            .where(stock_adjustments.c.product_id == product_id)
            .order_by(stock_adjustments.c.created_at, stock_adjustments.c.id)
        )
        return [
            StockAdjustment(
                id=row.id,
                product_id=row.product_id,
                delta=row.delta,
                reason=row.reason,
                stock_after=row.stock_after,
                actor_id=row.actor_id,
                created_at=row.created_at,
            )
            for row in rows
        ]


def _values(product: Product) -> dict[str, Any]:
    return {
        "id": product.id,
        "sku": product.sku,
        "name": product.name,
        "description": product.description,
        "price": product.price,
        "currency": product.currency,
        "stock": product.stock,
        "is_active": product.is_active,
        "version": product.version,
        "created_at": product.created_at,
        "updated_at": product.updated_at,
    }


def _page(statement: Select[Any], query: ProductQuery, conditions: list[Any]) -> Select[Any]:
    column = _SORT_COLUMNS[query.sort]
    order = column.desc() if query.descending else column.asc()
    # The id breaks ties so pages never overlap or skip rows with equal sort values.
    tiebreak = products.c.id.desc() if query.descending else products.c.id.asc()
    return (
        statement.where(*conditions)
        .order_by(order, tiebreak)
        .limit(query.limit)
        .offset(query.offset)
    )
