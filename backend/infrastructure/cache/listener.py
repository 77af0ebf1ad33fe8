"""The invalidation listener: one per process, subscribed to the cache channel.

It owns a dedicated connection (a subscribed connection can run no other command)
built without redis-py's silent reconnect-and-resubscribe, because every reconnect
must run `TieredCache.resync()`: messages published while disconnected are lost.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING

from redis.asyncio import Redis
from redis.asyncio.client import PubSub

from backend.core.logging import get_logger

if TYPE_CHECKING:
    from backend.infrastructure.cache.tiered import TieredCache

log = get_logger(__name__)

HEARTBEAT_SECONDS = 5.0  # idle this long: PING; no PONG by the next heartbeat: reconnect
FIRST_BACKOFF = 0.05
MAX_BACKOFF = 2.0


async def listen_for_invalidations(cache: TieredCache, connect: Callable[[], Redis]) -> None:
    backoff = FIRST_BACKOFF
    while True:
        client = connect()
        pubsub = client.pubsub(ignore_subscribe_messages=True)
        try:
            await pubsub.subscribe(cache.channel)
            await cache.resync()
            cache.subscribed.set()
            if backoff > FIRST_BACKOFF:
                log.info("cache_listener_reconnected")
            backoff = FIRST_BACKOFF
            await _pump(cache, pubsub)
        except asyncio.CancelledError:
            raise
        except Exception as error:
            if cache.subscribed.is_set() or backoff == FIRST_BACKOFF:
                log.warning("cache_listener_disconnected", error=repr(error))
            cache.subscribed.clear()
            if cache.l2 is not None:
                cache.l2.record_error("listen", error, log_it=False)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF)
        finally:
            cache.subscribed.clear()
            await _close(pubsub, client)


async def _pump(cache: TieredCache, pubsub: PubSub) -> None:
    awaiting_pong = False
    while True:
        _raise_if_cancel_was_swallowed()
        message = await pubsub.get_message(timeout=HEARTBEAT_SECONDS)
        if message is None:
            if awaiting_pong:
                raise ConnectionError("Redis did not answer PING on the cache channel")
            await pubsub.ping()
            awaiting_pong = True
        elif message["type"] == "pong":
            awaiting_pong = False
        elif message["type"] == "message":
            awaiting_pong = False
            cache.apply_message(message["data"])


def _raise_if_cancel_was_swallowed() -> None:
    """On Python 3.11 `asyncio.wait_for` (used inside redis-py) can swallow a cancellation
    that lands as its inner call completes; the task is then still `cancelling()`. Without
    this check such a listener would run on, and block the app's shutdown."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


async def _close(pubsub: PubSub, client: Redis) -> None:
    try:
        await pubsub.aclose()  # type: ignore[no-untyped-call]
        await client.aclose()
    except Exception:  # closing a dead connection may fail; nothing to recover
        log.debug("cache_listener_close_failed", exc_info=True)
