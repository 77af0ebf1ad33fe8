"""The tiered cache against a real Redis: two caches in one test stand for two processes."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY
from redis.asyncio import Redis

from backend.core.config import Settings
from backend.domain.catalog import PRODUCT_LIST_NS, PRODUCT_NS
from backend.infrastructure.cache import TieredCache, build_cache
from tests.helpers.polling import eventually
from tests.support import make_settings


class Loader:
    def __init__(self, value: Any) -> None:
        self.value = value
        self.calls = 0
        self.gate = asyncio.Event()
        self.gate.set()

    async def __call__(self) -> Any:
        self.calls += 1
        await self.gate.wait()
        return self.value


@asynccontextmanager
async def running(settings: Settings) -> AsyncIterator[TieredCache]:
    """A cache with its invalidation listener, as the API lifespan runs it."""
    cache = build_cache(settings)
    listener = asyncio.create_task(cache.listen())
    try:
        await asyncio.wait_for(cache.subscribed.wait(), 10)
        yield cache
    finally:
        listener.cancel()
        await asyncio.gather(listener, return_exceptions=True)
        await cache.aclose()


@pytest.fixture
async def shared(tmp_path: Path, redis_url: str) -> AsyncIterator[Settings]:
    prefix = f"oftest:cache:{uuid.uuid4().hex[:8]}:"
    yield make_settings(
        tmp_path, "sqlite+aiosqlite://", redis_url=redis_url, redis_key_prefix=prefix
    )
    client = Redis.from_url(redis_url)
    keys = [key async for key in client.scan_iter(match=f"{prefix}*")]
    if keys:
        await client.delete(*keys)
    await client.aclose()


def product_key(settings: Settings, key: str, version: str = "0") -> str:
    return f"{settings.redis_key_prefix}cache:{PRODUCT_NS}:{version}:{key}"


def sample(name: str = "v1") -> Any:
    from tests.unit.test_catalog_cache import product

    return product("p1", name=name)


async def test_a_value_loaded_by_one_process_is_an_l2_hit_for_another(shared: Settings) -> None:
    async with running(shared) as a, running(shared) as b:
        first, second = Loader(sample()), Loader(sample("never"))
        assert (await a.get_or_load(PRODUCT_NS, "p1", first)).name == "v1"
        assert (await b.get_or_load(PRODUCT_NS, "p1", second)).name == "v1"
        assert (first.calls, second.calls) == (1, 0)


async def test_fifty_concurrent_cold_reads_hit_the_loader_once(shared: Settings) -> None:
    async with running(shared) as cache:
        load = Loader(sample())
        load.gate.clear()
        readers = [
            asyncio.create_task(cache.get_or_load(PRODUCT_NS, "p1", load)) for _ in range(50)
        ]
        await asyncio.sleep(0.05)
        load.gate.set()
        assert {p.name for p in await asyncio.gather(*readers)} == {"v1"}
        assert load.calls == 1


async def test_an_invalidation_reaches_the_other_process_within_a_second(
    shared: Settings,
) -> None:
    async with running(shared) as a, running(shared) as b:
        await b.get_or_load(PRODUCT_NS, "p1", Loader(sample("old")))
        await a.invalidate(PRODUCT_NS, "p1")
        # The writer's own process sees the change at once...
        assert (await a.get_or_load(PRODUCT_NS, "p1", Loader(sample("new")))).name == "new"

        # ...the other one within a second.
        async def b_sees_new() -> bool:
            value = await b.get_or_load(PRODUCT_NS, "p1", Loader(sample("new")))
            return bool(value.name == "new")

        await eventually(b_sees_new)


async def test_a_namespace_bump_reaches_every_process(shared: Settings) -> None:
    async with running(shared) as a, running(shared) as b:
        await b.get_or_load(PRODUCT_LIST_NS, "page-1", Loader(_page("old")))
        await a.invalidate_namespace(PRODUCT_LIST_NS)
        assert (await a.get_or_load(PRODUCT_LIST_NS, "page-1", Loader(_page("new")))).total == 2

        async def b_sees_new() -> bool:
            page = await b.get_or_load(PRODUCT_LIST_NS, "page-1", Loader(_page("new")))
            return bool(page.total == 2)

        await eventually(b_sees_new)
        client = Redis.from_url(shared.redis_url or "")
        version = await client.get(f"{shared.redis_key_prefix}cache:version:{PRODUCT_LIST_NS}")
        await client.aclose()
        assert version == b"1"


def _page(which: str) -> Any:
    from backend.domain.catalog import ProductPage

    return ProductPage(items=[sample(which)], total=1 if which == "old" else 2, limit=20, offset=0)


async def test_a_load_overtaken_by_an_invalidation_is_not_stored_anywhere(
    shared: Settings,
) -> None:
    async with running(shared) as a, running(shared) as b:
        slow = Loader(sample("old"))  # read from the database before the write committed
        slow.gate.clear()
        reader = asyncio.create_task(b.get_or_load(PRODUCT_NS, "p1", slow))
        await asyncio.sleep(0.05)  # b has missed L2 and holds the lease
        await a.invalidate(PRODUCT_NS, "p1")  # the write commits and invalidates
        await asyncio.sleep(0.05)
        slow.gate.set()
        await reader
        client = Redis.from_url(shared.redis_url or "")
        stored = await client.get(product_key(shared, "p1"))
        await client.aclose()
        assert stored is None  # the lease was revoked: the old value never reached L2
        fresh = await b.get_or_load(PRODUCT_NS, "p1", Loader(sample("new")))
        assert fresh.name == "new"  # nor L1


async def test_an_entry_of_another_schema_is_a_miss_and_is_replaced(shared: Settings) -> None:
    client = Redis.from_url(shared.redis_url or "")
    key = product_key(shared, "p1")
    await client.set(key, json.dumps({"schema": 0, "value": {"old": "shape"}}), px=30_000)
    async with running(shared) as cache:
        load = Loader(sample())
        assert (await cache.get_or_load(PRODUCT_NS, "p1", load)).name == "v1"
        assert load.calls == 1
    stored = json.loads(await client.get(key) or b"{}")
    await client.aclose()
    assert stored["schema"] == 1
    assert stored["value"]["name"] == "v1"


async def test_lookups_are_counted_per_namespace_tier_and_result(shared: Settings) -> None:
    def count(tier: str, result: str) -> float:
        labels = {"namespace": PRODUCT_NS, "tier": tier, "result": result}
        return REGISTRY.get_sample_value("cache_requests_total", labels) or 0.0

    before = {k: count(*k) for k in [("l1", "hit"), ("l1", "miss"), ("l2", "hit"), ("l2", "miss")]}
    async with running(shared) as a, running(shared) as b:
        await a.get_or_load(PRODUCT_NS, "p1", Loader(sample()))  # l1 miss, l2 miss
        await a.get_or_load(PRODUCT_NS, "p1", Loader(sample()))  # l1 hit
        await b.get_or_load(PRODUCT_NS, "p1", Loader(sample()))  # l1 miss, l2 hit
    after = {k: count(*k) for k in before}
    assert {k: after[k] - before[k] for k in before} == {
        ("l1", "hit"): 1,
        ("l1", "miss"): 2,
        ("l2", "hit"): 1,
        ("l2", "miss"): 1,
    }


async def test_users_are_never_written_to_redis_and_a_drop_reaches_every_process(
    shared: Settings,
) -> None:
    from backend.domain.users import USERS_NS
    from tests.unit.test_auth_service import PASSWORD

    user = {"id": "u1", "password": PASSWORD}  # stands for a User (its password hash)
    assert shared.cache_policy(USERS_NS)[0] == shared.user_cache_seconds == 1.0  # the default
    # A TTL far longer than the test: only the broadcast drop can make b load again.
    shared = shared.model_copy(update={"user_cache_seconds": 600.0})
    async with running(shared) as a, running(shared) as b:
        assert await b.get_or_load(USERS_NS, "u1", Loader(user)) is user
        client = Redis.from_url(str(shared.redis_url))
        try:
            stored = [key async for key in client.scan_iter(match=f"*{USERS_NS}*")]
        finally:
            await client.aclose()
        assert stored == []  # no codec: L1 only, so no password hash ever reaches Redis

        await a.invalidate(USERS_NS, "u1")  # e.g. the user was deactivated on process a
        replaced = {"id": "u1", "password": "changed"}

        async def b_reloads() -> bool:
            return await b.get_or_load(USERS_NS, "u1", Loader(replaced)) is replaced

        await eventually(b_reloads)


async def test_concurrent_writers_share_redis_round_trips_and_each_is_current_on_return(
    shared: Settings,
) -> None:
    async with running(shared) as a, running(shared) as b:
        products = {f"p{i}": sample(f"v{i}") for i in range(20)}
        for key, value in products.items():  # cached in both processes, and in L2
            await a.get_or_load(PRODUCT_NS, key, Loader(value))
            await b.get_or_load(PRODUCT_NS, key, Loader(value))
        assert a.l2 is not None
        sends = {"invalidate": 0, "bump": 0}
        delete, bump = a.l2.delete_and_publish, a.l2.bump_and_publish

        async def counted_delete(*args: Any) -> bool:
            sends["invalidate"] += 1
            return await delete(*args)

        async def counted_bump(*args: Any) -> str | None:
            sends["bump"] += 1
            return await bump(*args)

        a.l2.delete_and_publish = counted_delete  # type: ignore[method-assign]
        a.l2.bump_and_publish = counted_bump  # type: ignore[method-assign]
        client = Redis.from_url(shared.redis_url or "")

        async def writer(key: str) -> None:
            await a.invalidate(PRODUCT_NS, key)
            await a.invalidate_namespace(PRODUCT_LIST_NS)
            # On return: out of this process's L1 and out of L2.
            assert await client.exists(product_key(shared, key)) == 0
            fresh = Loader(sample("fresh"))
            assert (await a.get_or_load(PRODUCT_NS, key, fresh)).name == "fresh"

        try:
            await asyncio.gather(*(writer(key) for key in products))
        finally:
            await client.aclose()
        # Twenty writers, far fewer sends (the first goes alone, the rest join batches).
        assert 1 <= sends["invalidate"] < 20 and 1 <= sends["bump"] < 20
        for key in products:  # and the other process dropped its copies

            async def dropped(key: str = key) -> bool:
                product = await b.get_or_load(PRODUCT_NS, key, Loader(sample("new")))
                return product.name in ("new", "fresh")  # from its loader, or a's fill

            await eventually(dropped)
