"""Webhook use cases: the admin's endpoints and deliveries log, and the consumer that turns
each order event into one delivery per subscribed endpoint (ADR 0016).

Sending is `services/webhook_delivery.py`; here nothing leaves the database except the
kick that asks a worker to deliver now, registered with `on_commit`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from backend.domain.errors import NotFound
from backend.domain.events import EVENT_TYPES, DomainEvent
from backend.domain.ports import Clock, OnCommit, Transaction, UnitOfWorkFactory
from backend.domain.webhooks import (
    RetryPolicy,
    TargetGuard,
    WebhookDelivery,
    WebhookEndpoint,
    generate_secret,
)


class WebhookNotFound(NotFound):
    slug = "webhook-not-found"
    title = "Webhook not found"


class DeliveryNotFound(NotFound):
    slug = "webhook-delivery-not-found"
    title = "Webhook delivery not found"


@dataclass(frozen=True, slots=True)
class WebhookPolicy:
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    secret_overlap: timedelta = timedelta(hours=24)
    disable_after: timedelta = timedelta(days=5)
    # The sender's loop (services/webhook_delivery.py).
    batch_size: int = 50
    concurrency: int = 50
    per_endpoint: int = 5
    lease: timedelta = timedelta(seconds=60)  # longer than one send may take
    run_for: timedelta = timedelta(seconds=50)  # then the run stops claiming and returns


@dataclass(frozen=True, slots=True)
class EndpointPage:
    items: list[WebhookEndpoint]
    total: int


@dataclass(frozen=True, slots=True)
class DeliveryPage:
    items: list[WebhookDelivery]
    total: int


class WebhookAdmin:
    """What admins do with endpoints. Every change that makes deliveries due kicks the
    sender after the commit (Beat's poll is the safety net)."""

    def __init__(
        self,
        uow: UnitOfWorkFactory,
        clock: Clock,
        policy: WebhookPolicy,
        guard: TargetGuard,
        kick: OnCommit,
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._policy = policy
        self._guard = guard
        self._kick = kick

    async def create(
        self, url: str, event_types: Sequence[str], description: str | None
    ) -> WebhookEndpoint:
        """The new endpoint, with the secret in the clear: the only time it is shown."""
        await self._guard.vet(url)
        endpoint = WebhookEndpoint(
            url=url,
            event_types=tuple(dict.fromkeys(event_types)),
            description=description,
            secret=generate_secret(),
            created_at=self._clock.now(),
        )
        async with self._uow() as uow:
            await uow.webhook_endpoints.add(endpoint)
            await uow.commit()
        return endpoint

    async def page(self, limit: int, offset: int) -> EndpointPage:
        async with self._uow() as uow:
            items, total = await uow.webhook_endpoints.page(limit, offset)
        return EndpointPage(items, total)

    async def get(self, endpoint_id: str) -> WebhookEndpoint:
        async with self._uow() as uow:
            return await _endpoint(uow, endpoint_id)

    async def delete(self, endpoint_id: str) -> None:
        async with self._uow() as uow:
            if not await uow.webhook_endpoints.delete(endpoint_id):
                raise WebhookNotFound(f"No webhook {endpoint_id}.")
            await uow.commit()

    async def rotate_secret(self, endpoint_id: str) -> WebhookEndpoint:
        """A new secret (shown once); the old one keeps signing for the overlap window."""
        async with self._uow() as uow:
            endpoint = await _endpoint(uow, endpoint_id)
            endpoint.rotate(generate_secret(), self._clock.now(), self._policy.secret_overlap)
            await uow.webhook_endpoints.save(endpoint)
            await uow.commit()
        return endpoint

    async def enable(self, endpoint_id: str) -> tuple[WebhookEndpoint, int]:
        """Re-enable a disabled endpoint and replay the deliveries that failed since its
        failing stretch began; (the endpoint, how many were replayed)."""
        async with self._uow() as uow:
            endpoint = await _endpoint(uow, endpoint_id)
            now = self._clock.now()
            gap_start = endpoint.enable(now)
            replayed = 0
            if gap_start is not None:
                await uow.webhook_endpoints.save(endpoint)
                replayed = await self._replay_since(uow, endpoint.id, gap_start, now)
            await uow.commit()
        return endpoint, replayed

    async def deliveries(self, endpoint_id: str, limit: int, offset: int) -> DeliveryPage:
        async with self._uow() as uow:
            await _endpoint(uow, endpoint_id)
            items, total = await uow.webhook_deliveries.page_of_endpoint(endpoint_id, limit, offset)
        return DeliveryPage(items, total)

    async def replay(self, endpoint_id: str, delivery_id: str) -> WebhookDelivery:
        """Send one delivery again (whatever its status): same body, same `webhook-id`."""
        async with self._uow() as uow:
            await _endpoint(uow, endpoint_id)
            delivery = await uow.webhook_deliveries.get(delivery_id)
            if delivery is None or delivery.endpoint_id != endpoint_id:
                raise DeliveryNotFound(f"No delivery {delivery_id} of webhook {endpoint_id}.")
            delivery.replay(self._clock.now(), self._policy.retry.max_attempts)
            await uow.webhook_deliveries.save(delivery)
            uow.on_commit(self._kick)
            await uow.commit()
        return delivery

    async def replay_failed(self, endpoint_id: str, since: datetime) -> int:
        """Every delivery that failed at or after `since` is sent again; how many."""
        async with self._uow() as uow:
            await _endpoint(uow, endpoint_id)
            count = await self._replay_since(uow, endpoint_id, since, self._clock.now())
            await uow.commit()
        return count

    async def _replay_since(
        self, tx: Transaction, endpoint_id: str, since: datetime, now: datetime
    ) -> int:
        count = await tx.webhook_deliveries.replay_failed(
            endpoint_id, since, now, self._policy.retry.max_attempts
        )
        if count:
            tx.on_commit(self._kick)
        return count


async def _endpoint(tx: Transaction, endpoint_id: str) -> WebhookEndpoint:
    endpoint = await tx.webhook_endpoints.get(endpoint_id)
    if endpoint is None:
        raise WebhookNotFound(f"No webhook {endpoint_id}.")
    return endpoint


class WebhookConsumer:
    """One delivery row per (event, subscribed endpoint), written in the event's consumer
    transaction: the dispatcher's (event, consumer) dedup makes it once however often the
    event is relayed. The sending happens after the commit, in the sender's task."""

    name = "webhooks.deliveries"
    event_types = frozenset(EVENT_TYPES)

    def __init__(self, clock: Clock, policy: WebhookPolicy, kick: OnCommit) -> None:
        self._clock = clock
        self._policy = policy
        self._kick = kick

    async def handle(self, event: DomainEvent, tx: Transaction) -> None:
        await self.handle_many([event], tx)

    async def handle_many(self, events: Sequence[DomainEvent], tx: Transaction) -> None:
        subscribed: dict[str, list[WebhookEndpoint]] = {}
        for event_type in dict.fromkeys(e.type for e in events):
            subscribed[event_type] = await tx.webhook_endpoints.subscribed_to(event_type)
        if not any(subscribed.values()):
            return
        now = self._clock.now()
        max_attempts = self._policy.retry.max_attempts
        deliveries = [
            WebhookDelivery.of_event(event, endpoint, now, max_attempts)
            for event in events
            for endpoint in subscribed[event.type]
        ]
        await tx.webhook_deliveries.add_once(deliveries)
        if any(e.enabled for endpoints in subscribed.values() for e in endpoints):
            tx.on_commit(self._kick)
