"""POST /products/{id}/stock under concurrency, through the whole stack, on both databases."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.helpers.auth import auth_headers

PRODUCTS = "/api/v1/products"


async def test_100_concurrent_decrements_on_stock_30_exactly_30_succeed(
    database_url: str, settings_for: Any, client_for: Any
) -> None:
    async with client_for(settings_for(database_url)) as client:
        admin = await auth_headers(client, role="admin")
        created = await client.post(
            PRODUCTS,
            json={"sku": "LAST-30", "name": "Scarce", "price": "9.99", "stock": 30},
            headers=admin,
        )
        url = f"{PRODUCTS}/{created.json()['id']}"

        responses = await asyncio.gather(
            *(
                client.post(f"{url}/stock", json={"delta": -1, "reason": "rush"}, headers=admin)
                for _ in range(100)
            )
        )
        statuses = [r.status_code for r in responses]
        assert (statuses.count(200), statuses.count(409)) == (30, 70)
        assert sorted(r.json()["stock"] for r in responses if r.status_code == 200) == list(
            range(30)
        )
        final = (await client.get(url)).json()
        assert (final["stock"], final["version"]) == (0, 31)
        records = await client.app.state.container.catalog.adjustments(final["id"])  # type: ignore[attr-defined]
        assert len(records) == 30
