"""The tiered cache (L1 in-process TTLCache + L2 Redis with pub/sub invalidation)."""

from __future__ import annotations

from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError

from backend.core.config import Settings
from backend.infrastructure.cache.codecs import CATALOG_CODECS
from backend.infrastructure.cache.redis_tier import RedisTier
from backend.infrastructure.cache.tiered import TieredCache
from backend.infrastructure.pubsub import subscriber_client

__all__ = ["TieredCache", "build_cache"]


def _client(settings: Settings, *, retries: int, socket_timeout: float | None) -> Redis:
    # At most one immediate retry, on a dropped connection only (a pooled connection that
    # went stale when Redis restarted): never redis-py's default backoff, which would stall
    # a request for seconds before the cache could fall back to L1 and the database.
    assert settings.redis_url is not None
    return Redis.from_url(
        settings.redis_url,
        socket_timeout=socket_timeout,
        socket_connect_timeout=settings.redis_socket_timeout,
        retry=Retry(NoBackoff(), retries, supported_errors=(RedisConnectionError,)),
        decode_responses=False,
    )


EMBEDDED_MAX_TTL_SECONDS = 1.0


def build_cache(settings: Settings) -> TieredCache:
    """L1 + L2 when REDIS_URL is set (full mode), L1 only otherwise (embedded mode)."""
    if not settings.redis_url:
        # No channel reaches other processes' L1 (a second uvicorn worker, the Celery
        # worker that releases stock): entries live at most 1 s, so a write made
        # elsewhere is visible everywhere within 1 s (PRODUCT.md), and at once here.
        def policy(namespace: str) -> tuple[float, int]:
            ttl, size = settings.cache_policy(namespace)
            return min(ttl, EMBEDDED_MAX_TTL_SECONDS), size

        return TieredCache(policy=policy, codecs=CATALOG_CODECS, enabled=settings.cache_enabled)
    redis_url = settings.redis_url
    return TieredCache(
        policy=settings.cache_policy,
        codecs=CATALOG_CODECS,
        l2=RedisTier(_client(settings, retries=1, socket_timeout=settings.redis_socket_timeout)),
        # The listener reconnects itself (and resyncs): redis-py must not do it silently. Its
        # reads carry their own timeout (the heartbeat), so the socket needs none.
        subscriber=lambda: subscriber_client(redis_url, settings.redis_socket_timeout),
        prefix=settings.redis_key_prefix,
        enabled=settings.cache_enabled,
    )
