"""The tiered cache (L1 in-process TTLCache + L2 Redis with pub/sub invalidation)."""

from __future__ import annotations

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from backend.core.config import Settings
from backend.infrastructure.cache.codecs import CATALOG_CODECS
from backend.infrastructure.cache.redis_tier import RedisTier
from backend.infrastructure.cache.tiered import TieredCache

__all__ = ["TieredCache", "build_cache"]


def _client(settings: Settings, *, socket_timeout: float | None) -> Redis:
    # No retries: the cache degrades on the first failure instead of stalling a request
    # through redis-py's reconnect backoff (up to seconds); the breaker retries later.
    assert settings.redis_url is not None
    return Redis.from_url(
        settings.redis_url,
        socket_timeout=socket_timeout,
        socket_connect_timeout=settings.redis_socket_timeout,
        retry=Retry(NoBackoff(), 0),
        decode_responses=False,
    )


def build_cache(settings: Settings) -> TieredCache:
    """L1 + L2 when REDIS_URL is set (full mode), L1 only otherwise (embedded mode)."""
    if not settings.redis_url:
        return TieredCache(
            policy=settings.cache_policy, codecs=CATALOG_CODECS, enabled=settings.cache_enabled
        )
    return TieredCache(
        policy=settings.cache_policy,
        codecs=CATALOG_CODECS,
        l2=RedisTier(_client(settings, socket_timeout=settings.redis_socket_timeout)),
        subscriber=lambda: _client(settings, socket_timeout=settings.redis_socket_timeout),
        prefix=settings.redis_key_prefix,
        enabled=settings.cache_enabled,
    )
