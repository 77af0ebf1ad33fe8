"""Named policies, one sliding-window counter per (policy, client key), and fail-open.

The strategy is `limits`' sliding-window counter (docs/adr/0011): O(1) memory and one
atomic Lua call per hit whatever the quota, no double burst at a window boundary.

When the storage (Redis) fails, `hit` returns None and the caller lets the request through:
rate limiting protects the service, it must never be the reason the service is down. Each
such request is counted; the failure is logged at most once per `log_interval`, and the
storage is not retried for `retry_after_failure` seconds, so a black-holed Redis costs one
socket timeout per interval instead of one per request.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import SlidingWindowCounterRateLimiter
from limits.errors import StorageError
from redis.asyncio import Redis
from redis.exceptions import RedisError

from backend.core.config import Settings
from backend.core.logging import get_logger
from backend.core.metrics import RATE_LIMIT_STORAGE_ERRORS, RATE_LIMITED_REQUESTS

log = get_logger(__name__)

# TimeoutError (socket timeouts) is an OSError; redis-py errors arrive wrapped in StorageError.
STORAGE_FAILURES: tuple[type[Exception], ...] = (StorageError, RedisError, OSError)

# Policy name -> the Settings field holding its `limits` notation ("100/minute").
POLICY_SETTINGS = {
    "default": "rate_limit_default",
    "authenticated": "rate_limit_authenticated",
    "login": "rate_limit_login",
    "register": "rate_limit_register",
}


@dataclass(frozen=True)
class Policy:
    name: str
    item: RateLimitItem

    @classmethod
    def parse(cls, name: str, notation: str) -> Policy:
        return cls(name, parse(notation))

    @property
    def quota(self) -> int:
        return int(self.item.amount)

    @property
    def window_seconds(self) -> int:
        return int(self.item.get_expiry())


@dataclass(frozen=True)
class Decision:
    policy: Policy
    allowed: bool
    remaining: int
    reset_after: int  # whole seconds until the budget grows again (>= 1 when denied)


class RateLimiter:
    def __init__(
        self,
        storage: Storage,
        policies: Mapping[str, Policy],
        *,
        retry_after_failure: float = 1.0,
        log_interval: float = 60.0,
        timer: Callable[[], float] = time.monotonic,
    ) -> None:
        self.storage = storage
        self.policies = dict(policies)
        self._strategy = SlidingWindowCounterRateLimiter(storage)
        self._retry_after_failure = retry_after_failure
        self._log_interval = log_interval
        self._timer = timer
        self._bypass_until = -math.inf
        self._last_logged = -math.inf
        self._failed_since_log = 0
        self._degraded = False

    @property
    def backend(self) -> str:
        return "redis" if isinstance(self.storage, RedisStorage) else "memory"

    async def hit(self, policy_name: str, key: str) -> Decision | None:
        """Spend one request of `key`'s budget under the policy.

        None means the storage could not be asked: let the request through.
        """
        policy = self.policies[policy_name]
        if self._timer() < self._bypass_until:
            self._count_failure(None)
            return None
        try:
            allowed = await self._strategy.hit(policy.item, policy.name, key)
            stats = await self._strategy.get_window_stats(policy.item, policy.name, key)
        except STORAGE_FAILURES as error:
            self._bypass_until = self._timer() + self._retry_after_failure
            self._count_failure(error)
            return None
        self._note_recovery()
        reset_after = max(0, math.ceil(stats.reset_time - time.time()))
        if not allowed:
            RATE_LIMITED_REQUESTS.labels(policy=policy.name).inc()
            reset_after = max(1, reset_after)
        return Decision(policy, allowed, max(0, int(stats.remaining)), reset_after)

    def _count_failure(self, error: Exception | None) -> None:
        RATE_LIMIT_STORAGE_ERRORS.inc()
        self._degraded = True
        self._failed_since_log += 1
        now = self._timer()
        if error is None or now - self._last_logged < self._log_interval:
            return
        log.warning(
            "rate_limit_storage_unavailable",
            backend=self.backend,
            error=repr(error),
            requests_let_through=self._failed_since_log,
            detail="requests are served without rate limiting until the storage answers",
        )
        self._last_logged = now
        self._failed_since_log = 0

    def _note_recovery(self) -> None:
        if self._degraded:
            self._degraded = False
            log.info(
                "rate_limit_storage_recovered",
                backend=self.backend,
                requests_let_through=self._failed_since_log,
            )
            self._failed_since_log = 0
            self._last_logged = -math.inf

    async def aclose(self) -> None:
        # MemoryStorage runs a one-shot expiry task; do not leave it pending on shutdown.
        timer = getattr(self.storage, "timer", None)
        if isinstance(timer, asyncio.Task) and not timer.done():
            timer.cancel()
            await asyncio.gather(timer, return_exceptions=True)


def build_policies(settings: Settings) -> dict[str, Policy]:
    return {name: Policy.parse(name, getattr(settings, f)) for name, f in POLICY_SETTINGS.items()}


def build_storage(settings: Settings, redis: Redis | None) -> Storage:
    if redis is None:
        return MemoryStorage()
    # Share the container's connection pool (and its socket timeouts): one pool per process.
    return RedisStorage(
        "async+redis://",
        implementation="redispy",
        wrap_exceptions=True,
        key_prefix=f"{settings.redis_key_prefix}ratelimit",
        connection_pool=redis.connection_pool,  # type: ignore[arg-type]
    )


def build_rate_limiter(settings: Settings, redis: Redis | None) -> RateLimiter | None:
    if not settings.rate_limit_enabled:
        return None
    return RateLimiter(
        build_storage(settings, redis),
        build_policies(settings),
        retry_after_failure=settings.rate_limit_storage_retry_seconds,
        log_interval=settings.rate_limit_error_log_interval,
    )
