"""Wake-ups after a notification commits: published on a Redis channel in full mode (every
API process subscribes once), only counted in embedded mode (the API tails the table)."""

from __future__ import annotations

from collections.abc import Sequence

from redis.asyncio import Redis

from backend.core.logging import get_logger
from backend.core.metrics import DEPENDENCY_ERRORS, NOTIFICATIONS_CREATED
from backend.infrastructure.notifications.hub import NotificationHub

log = get_logger(__name__)


def wake_channel(prefix: str) -> str:
    return f"{prefix}notifications:wake"


class LocalNotificationSignal:
    async def notify(self, user_ids: Sequence[str]) -> None:
        NOTIFICATIONS_CREATED.inc(len(user_ids))


class RedisNotificationSignal:
    def __init__(self, redis: Redis, prefix: str) -> None:
        self._redis = redis
        self._channel = wake_channel(prefix)

    async def notify(self, user_ids: Sequence[str]) -> None:
        NOTIFICATIONS_CREATED.inc(len(user_ids))
        try:
            async with self._redis.pipeline(transaction=False) as pipe:
                for user_id in sorted(set(user_ids)):
                    pipe.publish(self._channel, user_id.encode())
                await pipe.execute()
        except Exception as error:  # streams re-read the database on their own, later
            DEPENDENCY_ERRORS.labels(dependency="redis").inc()
            log.warning("notification_wake_failed", error=repr(error))


class RedisWakeListener:
    """The one subscriber of this process (`backend/infrastructure/pubsub.py` runs it)."""

    name = "notifications"

    def __init__(self, hub: NotificationHub, prefix: str) -> None:
        self._hub = hub
        self.channel = wake_channel(prefix)

    async def on_subscribed(self) -> None:
        self._hub.wake_all()  # wake-ups published while we were away are lost

    def on_message(self, data: bytes) -> None:
        self._hub.wake([data.decode(errors="replace")])

    def on_lost(self, error: BaseException) -> None:
        return None  # the streams' periodic re-read covers the gap until resubscribed
