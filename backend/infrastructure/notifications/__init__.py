"""Live notification fan-out (ADR 0015): one hub per API process holds the open streams;
in full mode one Redis subscriber per process rings them, in embedded mode a tail of the
notifications table does. Either way the doorbell only says "look": streams read the
database, which is the only source of what they send."""

from backend.infrastructure.notifications.hub import NotificationHub
from backend.infrastructure.notifications.signal import (
    LocalNotificationSignal,
    RedisNotificationSignal,
    RedisWakeListener,
)
from backend.infrastructure.notifications.tail import tail_notifications

__all__ = [
    "LocalNotificationSignal",
    "NotificationHub",
    "RedisNotificationSignal",
    "RedisWakeListener",
    "tail_notifications",
]
