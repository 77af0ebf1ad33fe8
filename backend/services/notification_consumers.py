"""The consumers of order events that tell the owner: an in-app notification and an email.

Each runs in the dispatcher's unit of work (`events.py`), so its row and the (event,
consumer) dedup record commit together; what leaves the process (the streams' wake-up, the
SMTP send) is registered with `tx.on_commit` and happens only after that commit.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from backend.domain.email import EmailMessage, EmailRenderer, EmailSend, EmailStatus
from backend.domain.events import ORDER_CREATED, ORDER_STATUS_CHANGED, DomainEvent
from backend.domain.notifications import NewNotification, NotificationSignal
from backend.domain.ports import Clock, Transaction
from backend.services.email import EmailPolicy, message_id, template_for

IN_APP_CONSUMER = "notifications.in_app"
EMAIL_CONSUMER = "notifications.email"
ORDER_EVENTS = frozenset({ORDER_CREATED, ORDER_STATUS_CHANGED})

DeliveryKick = Callable[[str], Awaitable[None]]


def short_id(order_id: str) -> str:
    return order_id.split("-", 1)[0]


def has_owner(event: DomainEvent) -> bool:
    """Order events name their order and its owner; anything else tells nobody."""
    return bool(event.payload.get("order_id")) and bool(event.payload.get("user_id"))


def notification_for(event: DomainEvent, at: datetime) -> NewNotification:
    """What the owner reads about an order event (title, one-line body, the facts)."""
    p = event.payload
    order = short_id(str(p["order_id"]))
    data: dict[str, Any] = {
        "order_id": p["order_id"],
        "status": p.get("status"),
        "total": p.get("total"),
        "currency": p.get("currency"),
    }
    if event.type == ORDER_CREATED:
        title = f"Order {order} placed"
        body = f"Your order {order} ({p.get('total')} {p.get('currency')}) was placed."
    else:
        data |= {"from_status": p.get("from_status"), "reason": p.get("reason")}
        title = f"Order {order} {p.get('to_status')}"
        body = f"Your order {order} moved from {p.get('from_status')} to {p.get('to_status')}."
        if p.get("reason"):
            body += f" Reason: {p['reason']}"
    return NewNotification(
        user_id=str(p["user_id"]),
        event_id=event.id,
        type=event.type,
        title=title[:200],
        body=body,
        data=data,
        created_at=at,
    )


class InAppNotificationConsumer:
    """Writes the owner's notification in the dispatcher's transaction; the wake-up of the
    live streams follows the commit."""

    name = IN_APP_CONSUMER
    event_types = ORDER_EVENTS

    def __init__(self, clock: Clock, signal: NotificationSignal) -> None:
        self._clock = clock
        self._signal = signal

    async def handle(self, event: DomainEvent, tx: Transaction) -> None:
        if not has_owner(event):
            return
        notification = notification_for(event, self._clock.now())
        if not await tx.notifications.lock_recipient(notification.user_id):
            return  # the owner was deleted: nobody to tell
        if await tx.notifications.add(notification) is None:
            return  # this event already made it (the dedup row was purged, or a race)
        user_ids = [notification.user_id]

        async def wake() -> None:
            await self._signal.notify(user_ids)

        tx.on_commit(wake)


def email_context(event: DomainEvent, name: str | None) -> dict[str, Any]:
    p = event.payload
    return {
        "name": name,
        "order_id": p["order_id"],
        "short_id": short_id(str(p["order_id"])),
        "status": p.get("status"),
        "from_status": p.get("from_status"),
        "reason": p.get("reason"),
        "total": p.get("total"),
        "currency": p.get("currency"),
        "items": p.get("items", []),
    }


class EmailNotificationConsumer:
    """Records the owner's email for an order event; `kick` (after commit) asks a worker to
    send it now, the due-sends job is the safety net."""

    name = EMAIL_CONSUMER
    event_types = ORDER_EVENTS

    def __init__(
        self, clock: Clock, renderer: EmailRenderer, policy: EmailPolicy, kick: DeliveryKick
    ) -> None:
        self._clock = clock
        self._renderer = renderer
        self._policy = policy
        self._kick = kick

    async def handle(self, event: DomainEvent, tx: Transaction) -> None:
        if not has_owner(event):
            return
        user = await tx.users.get(str(event.payload["user_id"]))
        if user is None:
            return  # the owner was deleted: nobody to write to
        template = template_for(event.type)
        rendered = self._renderer.render(template, email_context(event, user.full_name))
        now = self._clock.now()
        send = EmailSend(
            id=str(uuid.uuid4()),
            event_id=event.id,
            template=template,
            message=EmailMessage(
                recipient=user.email,
                subject=rendered.subject,
                text=rendered.text,
                html=rendered.html,
                message_id=message_id(event.id, template, self._policy.message_id_domain),
            ),
            status=EmailStatus.PENDING,
            attempts=0,
            next_attempt_at=now,
            last_error=None,
            created_at=now,
        )
        if not await tx.email_sends.add(send):
            return

        async def kick() -> None:
            await self._kick(send.id)

        tx.on_commit(kick)
