"""In-app notifications: listed, marked read, and followed live on a stream (ADR 0015).
They are written by `InAppNotificationConsumer` (`notification_consumers.py`)."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from backend.domain.notifications import (
    Notification,
    NotificationNotFound,
    NotificationPage,
    NotificationQuery,
    StreamTicketInvalid,
    StreamWakeup,
)
from backend.domain.ports import Clock, UnitOfWorkFactory


@dataclass(frozen=True, slots=True)
class StreamPolicy:
    replay_batch: int = 100
    # Between doorbells a stream re-reads the database anyway: a lost wake-up (Redis down,
    # a message dropped) delays a notification by at most this long, never loses it.
    recheck_seconds: float = 15.0
    max_lifetime: timedelta = timedelta(hours=1)
    ticket_ttl: timedelta = timedelta(seconds=60)


@dataclass(frozen=True, slots=True)
class StreamTicket:
    ticket: str
    expires_at: datetime


def _ticket_hash(ticket: str) -> str:
    return hashlib.sha256(ticket.encode()).hexdigest()


class NotificationService:
    def __init__(self, uow_factory: UnitOfWorkFactory, clock: Clock, policy: StreamPolicy) -> None:
        self._uow = uow_factory
        self._clock = clock
        self._policy = policy

    async def page(self, query: NotificationQuery) -> NotificationPage:
        async with self._uow() as uow:
            return await uow.notifications.page(query)

    async def mark_read(self, user_id: str, notification_id: int) -> Notification:
        async with self._uow() as uow:
            if not await uow.notifications.mark_read(user_id, notification_id, self._clock.now()):
                raise NotificationNotFound(notification_id)
            notification = await uow.notifications.get(user_id, notification_id)
            await uow.commit()
        assert notification is not None
        return notification

    async def mark_all_read(self, user_id: str) -> int:
        async with self._uow() as uow:
            count = await uow.notifications.mark_all_read(user_id, self._clock.now())
            await uow.commit()
        return count

    async def issue_ticket(self, user_id: str) -> StreamTicket:
        """A one-time credential for one stream request (browsers' EventSource cannot send
        an Authorization header); only its hash is stored."""
        ticket = secrets.token_urlsafe(32)
        now = self._clock.now()
        expires_at = now + self._policy.ticket_ttl
        async with self._uow() as uow:
            await uow.stream_tickets.add(
                _ticket_hash(ticket), user_id, created_at=now, expires_at=expires_at
            )
            await uow.commit()
        return StreamTicket(ticket, expires_at)

    async def redeem_ticket(self, ticket: str) -> str:
        """The id of the (active) user the ticket was issued to; the ticket is spent."""
        async with self._uow() as uow:
            user_id = await uow.stream_tickets.redeem(_ticket_hash(ticket), self._clock.now())
            user = await uow.users.get(user_id) if user_id is not None else None
            await uow.commit()
        if user is None or not user.is_active:  # a deactivated user's tickets die with it
            raise StreamTicketInvalid()
        return user.id

    async def after(self, user_id: str, after_id: int) -> list[Notification]:
        async with self._uow() as uow:
            return await uow.notifications.after(user_id, after_id, self._policy.replay_batch)

    async def follow(
        self, doorbell: StreamWakeup, user_id: str, after_id: int
    ) -> AsyncIterator[Notification]:
        """Every notification of the user with an id above `after_id`, oldest first, as
        they come, until the lifetime cap or shutdown. The doorbell was registered before
        the first read, so a notification committed in between still rings it."""
        deadline = self._clock.now() + self._policy.max_lifetime
        last = after_id
        while not doorbell.closed:
            batch = await self.after(user_id, last)
            for notification in batch:
                yield notification
                last = notification.id
            if len(batch) == self._policy.replay_batch:
                continue  # more to replay
            left = (deadline - self._clock.now()).total_seconds()
            if left <= 0:
                return
            await doorbell.wait(min(self._policy.recheck_seconds, left))
