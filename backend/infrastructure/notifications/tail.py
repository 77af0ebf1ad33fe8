"""Embedded mode's wake-ups: one task per API process tails the notifications table by id.

SQLite has one writer at a time, so ids become visible in increasing order and reading
`id > last seen` misses none."""

from __future__ import annotations

import asyncio
import contextlib

from backend.core.logging import get_logger
from backend.domain.ports import UnitOfWorkFactory
from backend.infrastructure.notifications.hub import NotificationHub

log = get_logger(__name__)

TAIL_BATCH = 500


async def tail_notifications(
    hub: NotificationHub, uow_factory: UnitOfWorkFactory, interval: float, stopping: asyncio.Event
) -> None:
    """Ring the streams of every user with a notification newer than the last one seen,
    every `interval` seconds, until `stopping` is set."""
    last: int | None = None
    while not stopping.is_set():
        try:
            async with uow_factory() as uow:
                if last is None:
                    last = await uow.notifications.max_id()
                    rows = []
                else:
                    rows = await uow.notifications.latest(last, TAIL_BATCH)
        except Exception as error:  # the database may be down; streams wait for it
            log.debug("notification_tail_failed", error=repr(error))
            rows = []
        if rows:
            hub.wake(user_id for _, user_id in rows)
            last = rows[-1][0]
            if len(rows) == TAIL_BATCH:
                continue
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), interval)
