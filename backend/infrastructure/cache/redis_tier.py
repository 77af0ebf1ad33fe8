"""L2: the Redis operations of the tiered cache, each failing soft.

A failure is counted, logged once per outage, and opens a short breaker so a dead or
slow Redis costs one timeout per cooldown instead of one per request. Every method
reports failure with `FAILED` (or False); none raises a Redis error.

Fills are guarded by a lease (after Facebook's memcache leases): a reader that misses
takes a lease token with `SET NX` in the same round trip as the GET, and its fill is
only stored if the lease is still its own. An invalidation deletes the key AND its
lease, so a value read from the database before a concurrent write committed can
never be stored after that write's invalidation.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Final, TypeVar

from redis.asyncio import Redis
from redis.exceptions import RedisError

from backend.core.logging import get_logger
from backend.core.metrics import CACHE_REDIS_ERRORS

log = get_logger(__name__)
T = TypeVar("T")


class _Failed:
    def __repr__(self) -> str:
        return "FAILED"


FAILED: Final = _Failed()

# KEYS: value, lease. ARGV: token, lease ms. The value, or nil after taking the lease
# (unless another reader holds it: then this reader's fill will simply not be stored).
_GET_OR_LEASE = """
local value = redis.call('GET', KEYS[1])
if value then return value end
redis.call('SET', KEYS[2], ARGV[1], 'NX', 'PX', ARGV[2])
return false
"""
# KEYS: value, lease. ARGV: token, value, ttl ms.
_FILL = """
if redis.call('GET', KEYS[2]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  redis.call('DEL', KEYS[2])
  return 1
end
return 0
"""
# KEYS: namespace version. ARGV: channel, message head (the version completes it).
_BUMP = """
local version = redis.call('INCR', KEYS[1])
redis.call('PUBLISH', ARGV[1], ARGV[2] .. version .. '}')
return version
"""
_ERRORS = (RedisError, OSError, asyncio.TimeoutError)


class RedisTier:
    def __init__(self, client: Redis, *, cooldown: float = 1.0) -> None:
        self.client = client
        self._cooldown = cooldown
        self._open_until = 0.0
        self._failing = False
        self._get_or_lease = client.register_script(_GET_OR_LEASE)
        self._fill = client.register_script(_FILL)
        self._bump = client.register_script(_BUMP)

    @property
    def available(self) -> bool:
        return time.monotonic() >= self._open_until

    def mark_available(self) -> None:
        """The invalidation listener reached Redis again: stop skipping L2."""
        self._open_until = 0.0

    async def _call(self, operation: str, run: Callable[[], Awaitable[T]]) -> T | _Failed:
        if not self.available:
            return FAILED
        try:
            result = await run()
        except _ERRORS as error:
            self.record_error(operation, error)
            return FAILED
        if self._failing:
            self._failing = False
            log.info("cache_redis_recovered", operation=operation)
        return result

    def record_error(self, operation: str, error: BaseException, *, log_it: bool = True) -> None:
        """Count every failure, log the first of an outage, skip L2 for a cooldown."""
        CACHE_REDIS_ERRORS.labels(operation).inc()
        if log_it and not self._failing:
            log.warning("cache_redis_unavailable", operation=operation, error=repr(error))
        self._failing = True
        self._open_until = time.monotonic() + self._cooldown

    async def get_or_lease(
        self, key: str, lease: str, token: str, lease_ms: int
    ) -> bytes | _Failed | None:
        return await self._call(
            "get", lambda: self._get_or_lease(keys=[key, lease], args=[token, lease_ms])
        )

    async def lease(self, lease: str, token: str, lease_ms: int) -> None:
        await self._call("lease", lambda: self.client.set(lease, token, nx=True, px=lease_ms))

    async def fill(self, key: str, lease: str, token: str, raw: bytes, ttl_ms: int) -> bool:
        stored = await self._call(
            "fill", lambda: self._fill(keys=[key, lease], args=[token, raw, ttl_ms])
        )
        return stored == 1

    async def delete_and_publish(self, keys: Sequence[str], channel: str, message: bytes) -> bool:
        async def run() -> Any:
            async with self.client.pipeline(transaction=False) as pipe:
                if keys:
                    pipe.delete(*keys)
                pipe.publish(channel, message)
                return await pipe.execute()

        return await self._call("invalidate", run) is not FAILED

    async def bump_and_publish(self, version_key: str, channel: str, head: str) -> str | None:
        version = await self._call(
            "bump", lambda: self._bump(keys=[version_key], args=[channel, head])
        )
        return None if isinstance(version, _Failed) else str(version)

    async def read_versions(self, version_keys: Sequence[str]) -> list[str] | None:
        values = await self._call("versions", lambda: self.client.mget(list(version_keys)))
        if isinstance(values, _Failed):
            return None
        return [
            "0" if v is None else v.decode() if isinstance(v, bytes) else str(v) for v in values
        ]

    async def aclose(self) -> None:
        await self.client.aclose()
