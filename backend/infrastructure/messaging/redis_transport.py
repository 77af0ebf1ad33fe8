"""A guard for kombu's Redis transport: a channel whose connection was already collected
fails with a connection error, not an AttributeError that kills the worker (ADR 0017).

When the worker loses Redis, Celery's consumer calls `connection.collect()`, which sets the
transport's `client` to None, and then closes that connection. Closing its default channel
restores the channel's unacknowledged messages through a fresh Redis client, built from
`self.connection.client.hostname`: `AttributeError: 'NoneType' object has no attribute
'hostname'`. Celery ignores only connection errors during that cleanup, so the worker died
("Unrecoverable error") in about one Redis outage in three under load (whenever a message
was in hand). Upstream: celery/kombu#970 (restoring unacked messages on close after the
transport is gone) and celery/kombu#582 (the same AttributeError in `_connparams`); seen with
celery 5.7.0, kombu 5.7.0, redis-py 8.1.0.

The guard raises redis-py's ConnectionError there instead, one of the transport's
`connection_errors`, which the cleanup ignores; the consumer then reconnects as it does
after any connection loss. The messages stay in Redis's unacked index (restored after the
visibility timeout), and the outbox relay re-publishes whatever no consumer finished
(ADR 0010): nothing is lost.
"""

from __future__ import annotations

from typing import Any

from kombu.transport import redis as kombu_redis
from redis.exceptions import ConnectionError as RedisConnectionError

_GUARD = "_orderflow_collected_transport_guard"


def guard_collected_transport() -> None:
    """Install the guard (idempotent)."""
    original = kombu_redis.Channel._connparams
    if getattr(original, _GUARD, False):
        return

    def _connparams(self: Any, asynchronous: bool = False) -> Any:
        transport = self.connection
        if transport is None or transport.client is None:
            raise RedisConnectionError("the broker connection of this channel was already closed")
        return original(self, asynchronous=asynchronous)

    setattr(_connparams, _GUARD, True)
    kombu_redis.Channel._connparams = _connparams  # type: ignore[method-assign]
