"""The consumers of order events that tell the owner: an in-app notification and an email.

Each runs in the dispatcher's unit of work (`events.py`), a batch of events at a time, so
its rows and the (event, consumer) dedup records commit together; what leaves the process
(the streams' wake-up, the SMTP send) is registered with `tx.on_commit` and happens only
after that commit.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Any

from backend.domain.email import EmailMessage, EmailRenderer, EmailSend, EmailStatus
from backend.domain.events import ORDER_CREATED, ORDER_STATUS_CHANGED, DomainEvent
from backend.domain.notifications import NewNotification, NotificationSignal
from backend.domain.ports import Clock, Transaction
from backend.domain.users import User
from backend.services.email import EmailPolicy, message_id, template_for

IN_APP_CONSUMER = "notifications.in_app"
EMAIL_CONSUMER = "notifications.email"
ORDER_EVENTS = frozenset({ORDER_CREATED, ORDER_STATUS_CHANGED})

DeliveryKick = Callable[[Sequence[str]], Awaitable[None]]


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
    """Writes the owners' notifications in the dispatcher's transaction, a batch of events
    in a few statements; the wake-up of the live streams follows the commit."""

    name = IN_APP_CONSUMER
    event_types = ORDER_EVENTS

    def __init__(self, clock: Clock, signal: NotificationSignal) -> None:
        self._clock = clock
        self._signal = signal

    async def handle(self, event: DomainEvent, tx: Transaction) -> None:
        await self.handle_many([event], tx)

    async def handle_many(self, events: Sequence[DomainEvent], tx: Transaction) -> None:
        now = self._clock.now()
        wanted = [notification_for(event, now) for event in events if has_owner(event)]
        if not wanted:
            return
        # Locked until the commit: a user's ids become visible in increasing order.
        present = await tx.notifications.lock_recipients([n.user_id for n in wanted])
        made = await tx.notifications.add_many([n for n in wanted if n.user_id in present])
        # (an owner deleted meanwhile has nobody to tell; an event that already made its
        # notification, its dedup row purged or in a race, makes none again)
        if not made:
            return
        user_ids = sorted({n.user_id for n in made})

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
    """Records the owners' emails for a batch of order events; `kick` (after commit) asks a
    worker to send the new ones now, the due-sends job is the safety net."""

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
        await self.handle_many([event], tx)

    async def handle_many(self, events: Sequence[DomainEvent], tx: Transaction) -> None:
        mine = [event for event in events if has_owner(event)]
        if not mine:
            return
        owners = await tx.users.get_many([str(e.payload["user_id"]) for e in mine])
        now = self._clock.now()
        sends = [
            self._send(event, user, now)
            for event in mine
            if (user := owners.get(str(event.payload["user_id"]))) is not None
        ]  # an owner deleted meanwhile has nobody to write to
        recorded = await tx.email_sends.add_many(sends)
        if not recorded:
            return

        async def kick() -> None:
            await self._kick(recorded)

        tx.on_commit(kick)

    def _send(self, event: DomainEvent, user: User, now: datetime) -> EmailSend:
        template = template_for(event.type)
        rendered = self._renderer.render(template, email_context(event, user.full_name))
        return EmailSend(
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
