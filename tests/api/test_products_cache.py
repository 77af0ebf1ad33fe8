"""Products served from the tiered cache by two app instances sharing Redis and PostgreSQL,
through a Redis outage, and with the database unreachable."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY
from redis.asyncio import Redis

from backend.core.config import Settings
from tests.api.test_foundation import assert_problem
from tests.helpers.auth import auth_headers
from tests.helpers.polling import eventually
from tests.helpers.redis_server import RedisServer
from tests.support import make_settings

PRODUCTS = "/api/v1/products"


@asynccontextmanager
async def two_instances(
    client_for: Any, settings: Settings
) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient]]:
    """Two API instances (two `create_app`s, two containers, two L1s) on one Redis and one
    database, each with its invalidation listener subscribed."""
    async with AsyncExitStack() as stack:
        a = await stack.enter_async_context(client_for(settings))
        b = await stack.enter_async_context(client_for(settings))
        await asyncio.wait_for(asyncio.gather(*(cache(c).subscribed.wait() for c in (a, b))), 10)
        yield a, b


def cache(client: httpx.AsyncClient) -> Any:
    return client.app.state.container.cache  # type: ignore[attr-defined]


async def clear_prefix(redis_url: str, prefix: str) -> None:
    client = Redis.from_url(redis_url)
    keys = [key async for key in client.scan_iter(match=f"{prefix}*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()


@pytest.fixture
async def shared(tmp_path: Path, pg_url: str, redis_url: str) -> AsyncIterator[Settings]:
    prefix = f"oftest:products:{uuid.uuid4().hex[:8]}:"
    yield make_settings(tmp_path, pg_url, redis_url=redis_url, redis_key_prefix=prefix)
    await clear_prefix(redis_url, prefix)


async def create(client: httpx.AsyncClient, admin: dict[str, str], **fields: Any) -> Any:
    body = {"sku": f"S-{uuid.uuid4().hex[:8]}", "name": "Tea", "price": "4.50", "stock": 9}
    response = await client.post(PRODUCTS, json={**body, **fields}, headers=admin)
    assert response.status_code == 201, response.text
    return response.json()


def name_is(client: httpx.AsyncClient, url: str, expected: str) -> Any:
    async def check() -> bool:
        response = await client.get(url)
        return bool(response.status_code == 200 and response.json()["name"] == expected)

    return check


def cache_count(tier: str, result: str, namespace: str = "product") -> float:
    labels = {"namespace": namespace, "tier": tier, "result": result}
    return REGISTRY.get_sample_value("cache_requests_total", labels) or 0.0


# --------------------------------------------------------------------------- two instances
async def test_a_write_on_one_instance_reaches_the_other_within_a_second(
    client_for: Any, shared: Settings
) -> None:
    async with two_instances(client_for, shared) as (a, b):
        admin = await auth_headers(a, role="admin")
        product = await create(a, admin)
        url = f"{PRODUCTS}/{product['id']}"
        assert (await b.get(url)).json()["name"] == "Tea"  # now in b's L1
        assert (await b.get(url)).json()["name"] == "Tea"

        patched = await a.patch(url, json={"name": "Black tea"}, headers=admin)
        assert patched.status_code == 200
        assert (await a.get(url)).json()["name"] == "Black tea"  # the writer: at once
        await eventually(name_is(b, url, "Black tea"), within=1.0)  # the other: within 1 s


async def test_a_listing_on_the_other_instance_follows_a_stock_change(
    client_for: Any, shared: Settings
) -> None:
    async with two_instances(client_for, shared) as (a, b):
        admin = await auth_headers(a, role="admin")
        product = await create(a, admin, stock=1)

        async def b_lists_it() -> bool:
            items = (await b.get(PRODUCTS, params={"in_stock": "true"})).json()["items"]
            return product["id"] in {i["id"] for i in items}

        await eventually(b_lists_it)
        assert await b_lists_it()  # cached on b now
        await a.post(
            f"{PRODUCTS}/{product['id']}/stock", json={"delta": -1, "reason": "sold"}, headers=admin
        )

        async def b_dropped_it() -> bool:
            return not await b_lists_it()

        await eventually(b_dropped_it, within=1.0)


async def test_fifty_concurrent_reads_of_a_cold_product_load_it_once(
    client_for: Any, shared: Settings
) -> None:
    async with two_instances(client_for, shared) as (a, b):
        admin = await auth_headers(a, role="admin")
        product = await create(a, admin)
        url = f"{PRODUCTS}/{product['id']}"
        l2_lookups = cache_count("l2", "miss") + cache_count("l2", "hit")
        responses = await asyncio.gather(*(b.get(url) for _ in range(50)))
        assert {r.status_code for r in responses} == {200}
        # One L2 lookup (a miss: nothing cached the new product yet) means one database load.
        assert cache_count("l2", "miss") + cache_count("l2", "hit") - l2_lookups == 1


# --------------------------------------------------------------------------- redis outage
def redis_errors() -> float:
    value = 0.0
    for operation in ("get", "fill", "invalidate", "bump", "versions", "listen", "lease"):
        value += (
            REGISTRY.get_sample_value("cache_redis_errors_total", {"operation": operation}) or 0
        )
    return value


async def test_reads_survive_a_redis_outage_and_invalidation_resumes_after_it(
    client_for: Any, tmp_path: Path, pg_url: str, own_redis: RedisServer
) -> None:
    settings = make_settings(tmp_path, pg_url, redis_url=own_redis.url)
    async with two_instances(client_for, settings) as (a, b):
        admin = await auth_headers(a, role="admin")
        product = await create(a, admin)
        url = f"{PRODUCTS}/{product['id']}"
        assert (await b.get(url)).status_code == 200
        errors = redis_errors()

        own_redis.stop()
        assert (await b.get(url)).json()["name"] == "Tea"  # from L1
        assert (await b.get(PRODUCTS)).status_code == 200  # from the database
        fresh = await create(a, admin)  # writes work; their invalidation waits for Redis
        assert (await b.get(f"{PRODUCTS}/{fresh['id']}")).status_code == 200
        assert (await a.patch(url, json={"name": "Outage tea"}, headers=admin)).status_code == 200
        assert (await a.get(url)).json()["name"] == "Outage tea"
        assert redis_errors() > errors  # counted, never a failed request

        own_redis.start()
        await asyncio.wait_for(
            asyncio.gather(cache(a).subscribed.wait(), cache(b).subscribed.wait()), 15
        )
        # b dropped its L1 on reconnecting (it may have missed messages)...
        assert (await b.get(url)).json()["name"] == "Outage tea"
        # ...and invalidations flow between the instances again.
        assert (await a.patch(url, json={"name": "After tea"}, headers=admin)).status_code == 200
        await eventually(name_is(b, url, "After tea"), within=1.0)


# --------------------------------------------------------------------------- database down
async def test_reads_with_the_database_unreachable_are_503(client_for: Any, tmp_path: Path) -> None:
    unreachable = "postgresql+asyncpg://postgres@127.0.0.1:1/orderflow"
    async with client_for(make_settings(tmp_path, unreachable, db_connect_timeout=1)) as client:
        one = await client.get(f"{PRODUCTS}/{uuid.uuid4()}")
        body = assert_problem(one, 503, "dependency-unavailable")
        assert "database" in body["detail"]
        assert one.headers["retry-after"]
        assert_problem(await client.get(PRODUCTS), 503, "dependency-unavailable")
