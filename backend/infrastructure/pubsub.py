"""One Redis pub/sub subscriber loop, shared by every per-process listener (the cache's
invalidations, the notification stream's wake-ups).

It owns a dedicated connection (a subscribed connection can run no other command) built
without redis-py's silent reconnect-and-resubscribe, because every reconnect must tell the
listener (`on_subscribed`): messages published while disconnected are lost, and only the
listener knows how to make up for them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Protocol

from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError

from backend.core.logging import get_logger

log = get_logger(__name__)

HEARTBEAT_SECONDS = 5.0  # idle this long: PING; no PONG by the next heartbeat: reconnect
FIRST_BACKOFF = 0.05
MAX_BACKOFF = 2.0


def subscriber_client(url: str, connect_timeout: float) -> Redis:
    """A client for one subscription: no silent retry (`listen` reconnects and tells its
    listener), and no socket timeout (reads carry their own, the heartbeat)."""
    return Redis.from_url(
        url,
        socket_timeout=None,
        socket_connect_timeout=connect_timeout,
        retry=Retry(NoBackoff(), 0, supported_errors=(RedisConnectionError,)),
        decode_responses=False,
    )


class ChannelListener(Protocol):
    @property
    def name(self) -> str:
        """Names the log lines: `<name>_listener_disconnected`, `..._reconnected`."""
        ...

    @property
    def channel(self) -> str: ...

    async def on_subscribed(self) -> None:
        """(Re)subscribed: make up for what may have been missed; raising reconnects."""
        ...

    def on_message(self, data: bytes) -> None: ...

    def on_lost(self, error: BaseException) -> None:
        """The subscription broke (it is retried with backoff)."""
        ...


async def listen(listener: ChannelListener, connect: Callable[[], Redis]) -> None:
    """Subscribe, pump messages, and resubscribe with backoff, until cancelled."""
    backoff = FIRST_BACKOFF
    subscribed = False
    while True:
        client = connect()
        pubsub = client.pubsub(ignore_subscribe_messages=True)
        try:
            await pubsub.subscribe(listener.channel)
            await listener.on_subscribed()
            subscribed = True
            if backoff > FIRST_BACKOFF:
                log.info(f"{listener.name}_listener_reconnected")
            backoff = FIRST_BACKOFF
            await _pump(listener, pubsub)
        except asyncio.CancelledError:
            raise
        except Exception as error:
            if subscribed or backoff == FIRST_BACKOFF:
                log.warning(f"{listener.name}_listener_disconnected", error=repr(error))
            subscribed = False
            listener.on_lost(error)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF)
        finally:
            await _close(pubsub, client, listener.name)


async def _pump(listener: ChannelListener, pubsub: PubSub) -> None:
    awaiting_pong = False
    while True:
        _raise_if_cancel_was_swallowed()
        message = await pubsub.get_message(timeout=HEARTBEAT_SECONDS)
        if message is None:
            if awaiting_pong:
                raise ConnectionError(f"Redis did not answer PING on {listener.channel}")
            await pubsub.ping()
            awaiting_pong = True
        elif message["type"] == "pong":
            awaiting_pong = False
        elif message["type"] == "message":
            awaiting_pong = False
            listener.on_message(message["data"])


def _raise_if_cancel_was_swallowed() -> None:
    """On Python 3.11 `asyncio.wait_for` (used inside redis-py) can swallow a cancellation
    that lands as its inner call completes; the task is then still `cancelling()`. Without
    this check such a listener would run on, and block the app's shutdown."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


async def _close(pubsub: PubSub, client: Redis, name: str) -> None:
    try:
        await pubsub.aclose()
        await client.aclose()
    except Exception:  # closing a dead connection may fail; nothing to recover
        log.debug(f"{name}_listener_close_failed", exc_info=True)
