"""The invalidation listener: one per process, subscribed to the cache channel through the
shared subscriber loop (`backend/infrastructure/pubsub.py`). Every (re)subscription runs
`TieredCache.resync()`: invalidations published while disconnected are lost."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from redis.asyncio import Redis

from backend.infrastructure import pubsub

if TYPE_CHECKING:
    from backend.infrastructure.cache.tiered import TieredCache


class _InvalidationListener:
    name = "cache"

    def __init__(self, cache: TieredCache) -> None:
        self._cache = cache
        self.channel = cache.channel

    async def on_subscribed(self) -> None:
        await self._cache.resync()
        self._cache.subscribed.set()

    def on_message(self, data: bytes) -> None:
        self._cache.apply_message(data)

    def on_lost(self, error: BaseException) -> None:
        self._cache.subscribed.clear()
        if self._cache.l2 is not None:
            self._cache.l2.record_error("listen", error, log_it=False)


async def listen_for_invalidations(cache: TieredCache, connect: Callable[[], Redis]) -> None:
    try:
        await pubsub.listen(_InvalidationListener(cache), connect)
    finally:
        cache.subscribed.clear()
