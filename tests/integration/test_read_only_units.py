"""Read-only units of work: on PostgreSQL no BEGIN (so no ROLLBACK) reaches the server, and the
pooled connection is a transaction again for the next unit; SQLite keeps transactions."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from backend.infrastructure.db.engine import create_engine
from backend.infrastructure.db.uow import SqlUnitOfWork
from tests.helpers.orders import seed_product


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url, pool_size=1, max_overflow=0)
    yield engine
    await engine.dispose()


async def statements_sent(engine: AsyncEngine, body: Any) -> list[str]:
    """The first word of each plain statement the driver sent while `body()` ran (asyncpg's
    query logger sees BEGIN, not prepared statements)."""
    sent: list[str] = []

    def log(record: Any) -> None:
        sent.append(record.query.strip().split()[0].upper().rstrip(";"))

    async with engine.connect() as conn:  # the pool's only connection
        raw = (await conn.get_raw_connection()).driver_connection
    raw.add_query_logger(log)
    try:
        await body()
    finally:
        raw.remove_query_logger(log)
    return sent


async def a_product(engine: AsyncEngine) -> str:
    async with SqlUnitOfWork(engine) as uow:
        product = await seed_product(uow, stock=5)
        await uow.commit()
    return product.id


async def read_a_product(engine: AsyncEngine, product_id: str) -> None:
    async with SqlUnitOfWork(engine).read_only() as uow:
        assert (await uow.products.get(product_id)) is not None


async def test_a_read_only_unit_sends_no_begin(pg_url: str) -> None:
    engine = create_engine(pg_url, pool_size=1, max_overflow=0)
    try:
        product_id = await a_product(engine)
        assert await statements_sent(engine, lambda: read_a_product(engine, product_id)) == []

        async def read_in_a_transaction() -> None:
            async with SqlUnitOfWork(engine) as uow:
                await uow.products.get(product_id)

        assert "BEGIN" in await statements_sent(engine, read_in_a_transaction)  # the control
    finally:
        await engine.dispose()


async def test_the_next_unit_on_the_same_connection_is_a_transaction_again(
    engine: AsyncEngine,
) -> None:
    product_id = await a_product(engine)
    await read_a_product(engine, product_id)
    async with SqlUnitOfWork(engine) as uow:  # the pool's only connection, used read-only
        await uow.connection.execute(text("UPDATE products SET stock = 0"))
        # no commit: rolled back
    async with SqlUnitOfWork(engine).read_only() as uow:
        product = await uow.products.get(product_id)
        assert product is not None and product.stock > 0


async def test_a_read_only_unit_refuses_to_commit(engine: AsyncEngine) -> None:
    async with SqlUnitOfWork(engine).read_only() as uow:
        with pytest.raises(RuntimeError, match="read-only"):
            await uow.commit()
