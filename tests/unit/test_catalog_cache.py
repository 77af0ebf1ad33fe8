"""The tiered cache's L1 behaviour (embedded mode: no Redis) and its codecs."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from backend.domain.catalog import PRODUCT_LIST_NS, PRODUCT_NS, Product, ProductPage
from backend.infrastructure.cache import TieredCache
from backend.infrastructure.cache.codecs import CATALOG_CODECS, JsonCodec

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def product(pid: str = "p1", name: str = "Kettle") -> Product:
    return Product(
        id=pid,
        sku=f"SKU-{pid}",
        name=name,
        description="hot water",
        price=Decimal("19.90"),
        currency="EUR",
        stock=3,
        is_active=True,
        version=4,
        created_at=NOW,
        updated_at=NOW,
    )


def l1_cache(**kwargs: object) -> TieredCache:
    return TieredCache(
        policy=lambda ns: (30.0, 2) if ns == "tiny" else (30.0, 100),
        codecs=CATALOG_CODECS,
        **kwargs,  # type: ignore[arg-type]
    )


class Loader:
    """Counts calls; each call waits on a gate so concurrent misses really overlap."""

    def __init__(self, value: object = "v") -> None:
        self.calls = 0
        self.value = value
        self.gate = asyncio.Event()
        self.gate.set()

    async def __call__(self) -> object:
        self.calls += 1
        await self.gate.wait()
        return self.value


async def test_fifty_concurrent_misses_of_one_key_load_once() -> None:
    cache, load = l1_cache(), Loader()
    load.gate.clear()
    readers = [asyncio.create_task(cache.get_or_load("ns", "k", load)) for _ in range(50)]
    await asyncio.sleep(0.01)  # let every reader reach the miss
    load.gate.set()
    assert await asyncio.gather(*readers) == ["v"] * 50
    assert load.calls == 1
    assert await cache.get_or_load("ns", "k", load) == "v"
    assert load.calls == 1  # now an L1 hit


async def test_a_failed_load_reaches_every_waiter_and_is_not_cached() -> None:
    cache, calls = l1_cache(), []

    async def failing() -> str:
        calls.append(1)
        await asyncio.sleep(0.01)
        raise RuntimeError("database down")

    results = await asyncio.gather(
        *(cache.get_or_load("ns", "k", failing) for _ in range(5)), return_exceptions=True
    )
    assert all(isinstance(r, RuntimeError) for r in results)
    assert len(calls) == 1
    assert await cache.get_or_load("ns", "k", Loader("ok")) == "ok"


async def test_none_is_not_cached() -> None:
    cache, load = l1_cache(), Loader(None)
    assert await cache.get_or_load("ns", "k", load) is None
    assert await cache.get_or_load("ns", "k", load) is None
    assert load.calls == 2


async def test_an_invalidation_during_a_load_keeps_its_stale_result_out() -> None:
    cache = l1_cache()
    old, new = Loader("old"), Loader("new")
    old.gate.clear()
    early = asyncio.create_task(cache.get_or_load("ns", "k", old))
    await asyncio.sleep(0)
    await cache.invalidate("ns", "k")  # a write committed while the old value was loading
    # A reader after the invalidation does not join the overtaken load...
    assert await cache.get_or_load("ns", "k", new) == "new"
    old.gate.set()
    assert await early == "old"  # (the early reader started before the write: fine)
    # ...and the overtaken load did not overwrite the fresh entry.
    assert await cache.get_or_load("ns", "k", Loader("never")) == "new"


async def test_a_reader_that_gives_up_does_not_cancel_the_load_for_others() -> None:
    cache, load = l1_cache(), Loader()
    load.gate.clear()
    quitter = asyncio.create_task(cache.get_or_load("ns", "k", load))
    stayer = asyncio.create_task(cache.get_or_load("ns", "k", load))
    await asyncio.sleep(0)
    quitter.cancel()
    load.gate.set()
    assert await stayer == "v"
    assert load.calls == 1


async def test_invalidate_drops_keys_and_invalidate_namespace_drops_all() -> None:
    cache = l1_cache()
    for key in ("a", "b"):
        await cache.get_or_load("ns", key, Loader(key))
    await cache.get_or_load("other", "a", Loader("x"))
    await cache.invalidate("ns", "a")
    assert await cache.get_or_load("ns", "a", Loader("a2")) == "a2"
    assert await cache.get_or_load("ns", "b", Loader("b2")) == "b"
    await cache.invalidate_namespace("ns")
    assert await cache.get_or_load("ns", "b", Loader("b3")) == "b3"
    assert await cache.get_or_load("other", "a", Loader("y")) == "x"


async def test_each_namespace_gets_its_own_size_policy() -> None:
    cache = l1_cache()
    for key in ("a", "b", "c"):
        await cache.get_or_load("tiny", key, Loader(key))
    counted = Loader("again")
    await cache.get_or_load("tiny", "a", counted)
    assert counted.calls == 1  # evicted: the tiny namespace holds 2 entries
    for key in ("a", "b", "c"):
        await cache.get_or_load("roomy", key, Loader(key))
    assert await cache.get_or_load("roomy", "a", Loader("never")) == "a"


async def test_a_disabled_cache_always_loads() -> None:
    cache, load = l1_cache(enabled=False), Loader()
    await cache.get_or_load("ns", "k", load)
    await cache.get_or_load("ns", "k", load)
    assert load.calls == 2


async def test_messages_from_other_processes_are_applied_and_own_ones_skipped() -> None:
    cache = l1_cache()
    await cache.get_or_load(PRODUCT_NS, "p1", Loader("v1"))
    own = {"op": "del", "o": cache.origin, "ns": PRODUCT_NS, "keys": ["p1"]}
    cache.apply_message(json.dumps(own).encode())
    assert await cache.get_or_load(PRODUCT_NS, "p1", Loader("never")) == "v1"
    other = {**own, "o": "someone-else"}
    cache.apply_message(json.dumps(other).encode())
    assert await cache.get_or_load(PRODUCT_NS, "p1", Loader("v2")) == "v2"

    await cache.get_or_load(PRODUCT_LIST_NS, "page", Loader("p1"))
    bump = {"op": "bump", "o": "someone-else", "ns": PRODUCT_LIST_NS, "v": 9}
    cache.apply_message(json.dumps(bump).encode())
    assert await cache.get_or_load(PRODUCT_LIST_NS, "page", Loader("p2")) == "p2"
    cache.apply_message(b"not json")  # ignored, logged


def test_product_and_page_codecs_round_trip() -> None:
    item = product()
    product_codec, page_codec = CATALOG_CODECS[PRODUCT_NS], CATALOG_CODECS[PRODUCT_LIST_NS]
    assert product_codec.decode(product_codec.encode(item)) == item
    page = ProductPage(items=[item, product("p2")], total=7, limit=2, offset=0)
    assert page_codec.decode(page_codec.encode(page)) == page


@pytest.mark.parametrize(
    "raw",
    [
        b'{"schema": 999, "value": {}}',  # written by another deploy
        b'{"schema": 1, "value": {"id": "x"}}',  # the right schema, an incomplete value
        b"\xff\xfe",
        b"[]",
    ],
)
def test_entries_of_another_schema_or_unreadable_are_misses(raw: bytes) -> None:
    assert CATALOG_CODECS[PRODUCT_NS].decode(raw) is None


def test_the_schema_version_is_in_the_envelope() -> None:
    codec = JsonCodec(3, lambda v: v, lambda v: v)
    assert json.loads(codec.encode({"a": 1})) == {"schema": 3, "value": {"a": 1}}
    assert JsonCodec(4, lambda v: v, lambda v: v).decode(codec.encode({"a": 1})) is None
