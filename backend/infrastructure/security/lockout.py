"""Failed-login bookkeeping for the per-email lockout (`LoginAttempts`).

Full mode keeps it in Redis (shared by every API instance); embedded mode, and full mode
while Redis is unreachable, keep it in process memory. See docs/adr/0007.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable
from typing import Any

from cachetools import TTLCache
from redis.asyncio import Redis
from redis.exceptions import RedisError

from backend.core.logging import get_logger
from backend.core.metrics import DEPENDENCY_ERRORS

log = get_logger(__name__)

MAX_TRACKED_KEYS = 100_000  # memory bound of the in-process store

# KEYS: failures counter, lock flag. ARGV: max failures, window s, lockout s.
# One round trip, atomic: concurrent failures cannot both miss the threshold.
_RECORD_FAILURE = """
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('EXPIRE', KEYS[1], ARGV[2]) end
if n >= tonumber(ARGV[1]) then
  redis.call('SET', KEYS[2], '1', 'EX', ARGV[3])
  redis.call('DEL', KEYS[1])
  return tonumber(ARGV[3])
end
return 0
"""


def _digest(key: str) -> str:
    # Emails never reach Redis in clear text.
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:40]


class MemoryLoginAttempts:
    def __init__(
        self,
        max_failures: int,
        window_seconds: int,
        lockout_seconds: int,
        timer: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_failures = max_failures
        self.window = window_seconds
        self.lockout = lockout_seconds
        self._timer = timer
        # (count, window end) per key and lock end per key; entries expire on their own.
        self._failures: TTLCache[str, tuple[int, float]] = TTLCache(
            MAX_TRACKED_KEYS, ttl=window_seconds, timer=timer
        )
        self._locks: TTLCache[str, float] = TTLCache(
            MAX_TRACKED_KEYS, ttl=lockout_seconds, timer=timer
        )

    async def locked_for(self, key: str) -> int:
        until = self._locks.get(_digest(key))
        if until is None:
            return 0
        return max(0, math.ceil(until - self._timer()))

    async def record_failure(self, key: str) -> int:
        digest, now = _digest(key), self._timer()
        count, window_end = self._failures.get(digest, (0, now + self.window))
        if window_end <= now:
            count, window_end = 0, now + self.window
        count += 1
        if count >= self.max_failures:
            self._failures.pop(digest, None)
            self._locks[digest] = now + self.lockout
            return self.lockout
        self._failures[digest] = (count, window_end)
        return 0

    async def reset(self, key: str) -> None:
        self._failures.pop(_digest(key), None)


class RedisLoginAttempts:
    def __init__(
        self,
        redis: Redis,
        prefix: str,
        max_failures: int,
        window_seconds: int,
        lockout_seconds: int,
    ) -> None:
        self._redis = redis
        self._prefix = f"{prefix}login:"
        self.max_failures = max_failures
        self.window = window_seconds
        self.lockout = lockout_seconds
        self._record = redis.register_script(_RECORD_FAILURE)

    def _keys(self, key: str) -> tuple[str, str]:
        digest = _digest(key)
        return f"{self._prefix}failures:{digest}", f"{self._prefix}locked:{digest}"

    async def locked_for(self, key: str) -> int:
        remaining_ms = int(await self._redis.pttl(self._keys(key)[1]))
        return math.ceil(remaining_ms / 1000) if remaining_ms > 0 else 0

    async def record_failure(self, key: str) -> int:
        failures, lock = self._keys(key)
        result: Any = await self._record(
            keys=[failures, lock], args=[self.max_failures, self.window, self.lockout]
        )
        return int(result)

    async def reset(self, key: str) -> None:
        await self._redis.delete(self._keys(key)[0])


class FallbackLoginAttempts:
    """Redis first; while Redis fails, the in-process store keeps the lockout working
    (per instance) instead of failing logins or dropping the protection."""

    def __init__(self, primary: RedisLoginAttempts, fallback: MemoryLoginAttempts) -> None:
        self.primary = primary
        self.fallback = fallback

    def _failed(self, operation: str, error: RedisError) -> None:
        DEPENDENCY_ERRORS.labels(dependency="redis").inc()
        log.warning("login_attempts_redis_failed", operation=operation, error=repr(error))

    async def locked_for(self, key: str) -> int:
        local = await self.fallback.locked_for(key)
        try:
            return max(local, await self.primary.locked_for(key))
        except RedisError as error:
            self._failed("locked_for", error)
            return local

    async def record_failure(self, key: str) -> int:
        try:
            return await self.primary.record_failure(key)
        except RedisError as error:
            self._failed("record_failure", error)
            return await self.fallback.record_failure(key)

    async def reset(self, key: str) -> None:
        await self.fallback.reset(key)
        try:
            await self.primary.reset(key)
        except RedisError as error:
            self._failed("reset", error)
