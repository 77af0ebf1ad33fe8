"""The login-failure stores behind the lockout: Redis (full mode) and memory (embedded)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable

import pytest
from redis.asyncio import Redis

from backend.core.metrics import DEPENDENCY_ERRORS
from backend.infrastructure.security.lockout import (
    FallbackLoginAttempts,
    MemoryLoginAttempts,
    RedisLoginAttempts,
)

Store = MemoryLoginAttempts | RedisLoginAttempts


class Timer:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


@pytest.fixture
def prefix() -> str:
    return f"oftest:identity:{uuid.uuid4().hex[:8]}:"


@pytest.fixture(params=["memory", "redis"])
async def make_store(
    request: pytest.FixtureRequest, prefix: str
) -> AsyncIterator[Callable[..., Store]]:
    """Builds a store of the parametrized kind with (max_failures, window, lockout)."""
    redis: Redis | None = None
    if request.param == "redis":
        redis = Redis.from_url(request.getfixturevalue("redis_url"))

    def build(max_failures: int = 5, window: int = 900, lockout: int = 900) -> Store:
        if redis is None:
            return MemoryLoginAttempts(max_failures, window, lockout)
        return RedisLoginAttempts(redis, prefix, max_failures, window, lockout)

    yield build
    if redis is not None:
        keys = [key async for key in redis.scan_iter(match=f"{prefix}*")]
        if keys:
            await redis.delete(*keys)
        await redis.aclose()


async def test_the_fifth_failure_locks_the_key(make_store: Callable[..., Store]) -> None:
    store = make_store(max_failures=5, lockout=900)
    for _ in range(4):
        assert await store.record_failure("ada@example.com") == 0
        assert await store.locked_for("ada@example.com") == 0
    assert await store.record_failure("ada@example.com") == 900
    assert 899 <= await store.locked_for("ada@example.com") <= 900
    assert await store.locked_for("bob@example.com") == 0


async def test_a_reset_clears_failures_but_not_a_lock(make_store: Callable[..., Store]) -> None:
    store = make_store(max_failures=3)
    for _ in range(2):
        await store.record_failure("ada@example.com")
    await store.reset("ada@example.com")
    assert await store.record_failure("ada@example.com") == 0  # counting restarted
    assert await store.record_failure("ada@example.com") == 0
    assert await store.record_failure("ada@example.com") > 0
    await store.reset("ada@example.com")
    assert await store.locked_for("ada@example.com") > 0


async def test_concurrent_failures_lock_exactly_once(make_store: Callable[..., Store]) -> None:
    store = make_store(max_failures=5)
    results = await asyncio.gather(*(store.record_failure("ada@example.com") for _ in range(5)))
    assert sorted(results) == [0, 0, 0, 0, 900]
    assert await store.locked_for("ada@example.com") > 0


async def test_the_lock_expires(make_store: Callable[..., Store]) -> None:
    store = make_store(max_failures=1, window=1, lockout=1)
    assert await store.record_failure("ada@example.com") == 1
    assert await store.locked_for("ada@example.com") == 1
    # Wait for the 1 s lock to lapse (a bounded poll, not a timing assertion).
    for _ in range(40):
        if await store.locked_for("ada@example.com") == 0:
            break
        await asyncio.sleep(0.1)
    assert await store.locked_for("ada@example.com") == 0


def test_memory_windows_and_locks_follow_the_clock() -> None:
    timer = Timer()
    store = MemoryLoginAttempts(3, window_seconds=60, lockout_seconds=300, timer=timer)

    async def scenario() -> None:
        await store.record_failure("ada@example.com")
        await store.record_failure("ada@example.com")
        timer.now += 61  # the window lapsed: the count starts again
        assert await store.record_failure("ada@example.com") == 0
        assert await store.record_failure("ada@example.com") == 0
        assert await store.record_failure("ada@example.com") == 300
        timer.now += 299.5
        assert await store.locked_for("ada@example.com") == 1
        timer.now += 1
        assert await store.locked_for("ada@example.com") == 0

    asyncio.run(scenario())


async def test_redis_keys_carry_the_prefix_and_no_email(redis: Redis, prefix: str) -> None:
    store = RedisLoginAttempts(redis, prefix, 2, 900, 900)
    await store.record_failure("ada@example.com")
    await store.record_failure("ada@example.com")
    keys = [key.decode() async for key in redis.scan_iter(match=f"{prefix}*")]
    assert keys and all(key.startswith(f"{prefix}login:") for key in keys)
    assert not any("ada" in key for key in keys)
    ttl = await redis.ttl(keys[0])
    assert 0 < ttl <= 900
    await redis.delete(*keys)


async def test_redis_down_falls_back_to_memory_and_counts_it() -> None:
    # Nothing listens on port 1: every Redis call fails at once.
    dead = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2)
    store = FallbackLoginAttempts(
        RedisLoginAttempts(dead, "oftest:dead:", 2, 900, 900), MemoryLoginAttempts(2, 900, 900)
    )
    errors = DEPENDENCY_ERRORS.labels(dependency="redis")
    before = errors._value.get()
    try:
        assert await store.locked_for("ada@example.com") == 0
        assert await store.record_failure("ada@example.com") == 0
        assert await store.record_failure("ada@example.com") == 900
        assert await store.locked_for("ada@example.com") > 0  # the lockout still holds
        await store.reset("ada@example.com")
    finally:
        await dead.aclose()
    assert errors._value.get() - before == 5


async def test_fallback_prefers_redis_when_it_answers(redis: Redis, prefix: str) -> None:
    shared = RedisLoginAttempts(redis, prefix, 2, 900, 900)
    store = FallbackLoginAttempts(shared, MemoryLoginAttempts(2, 900, 900))
    await store.record_failure("ada@example.com")
    await shared.record_failure("ada@example.com")  # e.g. another API instance
    assert await store.locked_for("ada@example.com") > 0
    keys = [key async for key in redis.scan_iter(match=f"{prefix}*")]
    await redis.delete(*keys)
