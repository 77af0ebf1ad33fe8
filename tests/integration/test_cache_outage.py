"""The tiered cache through a Redis outage: a private redis-server is stopped mid-test."""

from __future__ import annotations

import asyncio
from pathlib import Path

from prometheus_client import REGISTRY

from backend.domain.catalog import PRODUCT_NS
from tests.helpers.polling import eventually
from tests.helpers.redis_server import RedisServer
from tests.integration.test_cache import Loader, running, sample
from tests.support import make_settings


def redis_errors() -> float:
    total = 0.0
    for metric in REGISTRY.collect():
        if metric.name == "cache_redis_errors":
            total += sum(s.value for s in metric.samples if s.name.endswith("_total"))
    return total


async def test_reads_survive_an_outage_and_invalidation_resumes_after_it(
    tmp_path: Path, own_redis: RedisServer
) -> None:
    settings = make_settings(tmp_path, "sqlite+aiosqlite://", redis_url=own_redis.url)
    async with running(settings) as a, running(settings) as b:
        await a.get_or_load(PRODUCT_NS, "p1", Loader(sample("v1")))
        assert (await b.get_or_load(PRODUCT_NS, "p1", Loader(sample("never")))).name == "v1"
        errors_before = redis_errors()

        own_redis.stop()
        # Reads keep working: from L1, or from the loader (the database) for cold keys.
        assert (await b.get_or_load(PRODUCT_NS, "p1", Loader(sample("never")))).name == "v1"
        assert (await b.get_or_load(PRODUCT_NS, "p2", Loader(sample("cold")))).name == "cold"
        # A write during the outage: applied locally, remembered for Redis.
        await a.invalidate(PRODUCT_NS, "p1")
        assert (await a.get_or_load(PRODUCT_NS, "p1", Loader(sample("v2")))).name == "v2"
        assert redis_errors() > errors_before

        own_redis.start()  # with the data it had, including the now stale "v1" in L2
        await asyncio.wait_for(asyncio.gather(a.subscribed.wait(), b.subscribed.wait()), 15)
        # Back: a replayed its pending invalidation and b flushed its L1 on reconnecting.
        assert (await b.get_or_load(PRODUCT_NS, "p1", Loader(sample("v2")))).name == "v2"

        # And invalidation flows between the processes again.
        await a.invalidate(PRODUCT_NS, "p1")

        async def b_sees_v3() -> bool:
            value = await b.get_or_load(PRODUCT_NS, "p1", Loader(sample("v3")))
            return bool(value.name == "v3")

        await eventually(b_sees_v3)
