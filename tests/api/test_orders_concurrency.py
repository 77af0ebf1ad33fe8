"""Concurrent placement through the whole HTTP stack, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from typing import Any

from sqlalchemy import func, select

from backend.infrastructure.db.tables import orders
from tests.api.test_foundation import assert_problem
from tests.helpers.orders import api_product, api_stock, api_user, body_of, container_of

ORDERS = "/api/v1/orders"


async def test_sixty_orders_for_the_last_ten_units_over_http(
    database_url: str, settings_for: Any, client_for: Any
) -> None:
    async with client_for(settings_for(database_url)) as client:
        buyers = [(await api_user(client))[1] for _ in range(6)]
        product = await api_product(client, stock=10)
        responses = await asyncio.gather(
            *(
                client.post(ORDERS, json=body_of((product.id, 1)), headers=buyers[i % 6])
                for i in range(60)
            )
        )
        assert Counter(r.status_code for r in responses) == {201: 10, 409: 50}
        for refused in (r for r in responses if r.status_code == 409):
            assert assert_problem(refused, 409, "insufficient-stock")["product_ids"] == [product.id]
        assert await api_stock(client, product.id) == 0
        async with container_of(client).engine.connect() as conn:
            count = (await conn.execute(select(func.count()).select_from(orders))).scalar_one()
        assert count == 10


async def test_overlapping_multi_line_orders_over_http_never_deadlock(
    database_url: str, settings_for: Any, client_for: Any
) -> None:
    async with client_for(settings_for(database_url)) as client:
        _, headers = await api_user(client)
        products = [await api_product(client, stock=100) for _ in range(4)]
        rng = random.Random(3)
        bodies = [
            body_of(*((p.id, 1) for p in rng.sample(products, 3)))  # random line order
            for _ in range(30)
        ]
        responses = await asyncio.gather(
            *(client.post(ORDERS, json=b, headers=headers) for b in bodies)
        )
        assert [r.status_code for r in responses] == [201] * 30
        for product in products:
            ordered = sum(1 for b in bodies for i in b["items"] if i["product_id"] == product.id)
            assert await api_stock(client, product.id) == 100 - ordered
