"""Fake webhook repositories (snapshot on begin, restored on rollback), and a fake sender
that answers from a script per URL."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from datetime import datetime

from backend.domain.webhooks import (
    DeliveryAttempt,
    DeliveryStatus,
    SendResult,
    UnsafeTarget,
    WebhookDelivery,
    WebhookEndpoint,
)


class _Snapshotting:
    def __init__(self) -> None:
        self.rows: dict[str, object] = {}
        self._snapshot: dict[str, object] | None = None

    def _begin(self) -> None:
        self._snapshot = copy.deepcopy(self.rows)

    def _commit(self) -> None:
        self._snapshot = None

    def _rollback(self) -> None:
        if self._snapshot is not None:
            self.rows = self._snapshot
        self._snapshot = None


class FakeWebhookEndpoints(_Snapshotting):
    rows: dict[str, WebhookEndpoint]  # type: ignore[assignment]

    async def add(self, endpoint: WebhookEndpoint) -> None:
        self.rows[endpoint.id] = copy.deepcopy(endpoint)

    async def get(self, endpoint_id: str) -> WebhookEndpoint | None:
        found = self.rows.get(endpoint_id)
        return copy.deepcopy(found) if found else None

    async def save(self, endpoint: WebhookEndpoint) -> None:
        self.rows[endpoint.id] = copy.deepcopy(endpoint)

    async def delete(self, endpoint_id: str) -> bool:
        return self.rows.pop(endpoint_id, None) is not None

    async def page(self, limit: int, offset: int) -> tuple[list[WebhookEndpoint], int]:
        ordered = sorted(self.rows.values(), key=lambda e: (e.created_at, e.id))
        return [copy.deepcopy(e) for e in ordered[offset : offset + limit]], len(ordered)

    async def subscribed_to(self, event_type: str) -> list[WebhookEndpoint]:
        return [copy.deepcopy(e) for e in self.rows.values() if e.subscribes_to(event_type)]


class FakeWebhookDeliveries(_Snapshotting):
    rows: dict[str, WebhookDelivery]  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        self.attempts: list[DeliveryAttempt] = []

    async def add_once(self, deliveries: Sequence[WebhookDelivery]) -> int:
        taken = {(d.event_id, d.endpoint_id) for d in self.rows.values()}
        added = 0
        for d in deliveries:
            if (d.event_id, d.endpoint_id) not in taken:
                self.rows[d.id] = copy.deepcopy(d)
                added += 1
        return added

    async def get(self, delivery_id: str) -> WebhookDelivery | None:
        found = self.rows.get(delivery_id)
        if found is None:
            return None
        delivery = copy.deepcopy(found)
        delivery.attempts = [a for a in self.attempts if a.delivery_id == delivery_id]
        return delivery

    async def save(self, delivery: WebhookDelivery) -> None:
        if delivery.id in self.rows:
            self.rows[delivery.id] = copy.deepcopy(delivery)
            self.rows[delivery.id].attempts = []

    async def add_attempt(self, attempt: DeliveryAttempt) -> None:
        self.attempts.append(attempt)

    async def claim_due(
        self, now: datetime, lease_until: datetime, limit: int, skip_endpoints: Sequence[str]
    ) -> list[WebhookDelivery]:
        due = [
            d
            for d in self.rows.values()
            if d.status is DeliveryStatus.PENDING
            and d.next_attempt_at is not None
            and d.next_attempt_at <= now
            and d.endpoint_id not in skip_endpoints
        ]
        due.sort(key=lambda d: (d.next_attempt_at, d.created_at))
        claimed = due[:limit]
        for d in claimed:
            d.next_attempt_at = lease_until
        return [copy.deepcopy(d) for d in claimed]

    async def page_of_endpoint(
        self, endpoint_id: str, limit: int, offset: int
    ) -> tuple[list[WebhookDelivery], int]:
        mine = [d for d in self.rows.values() if d.endpoint_id == endpoint_id]
        mine.sort(key=lambda d: d.created_at, reverse=True)
        page = [copy.deepcopy(d) for d in mine[offset : offset + limit]]
        for d in page:
            d.attempts = [a for a in self.attempts if a.delivery_id == d.id]
        return page, len(mine)

    async def replay_failed(
        self, endpoint_id: str, since: datetime, now: datetime, max_attempts: int
    ) -> int:
        count = 0
        for d in self.rows.values():
            if (
                d.endpoint_id == endpoint_id
                and d.status is DeliveryStatus.FAILED
                and (d.updated_at or d.created_at) >= since
            ):
                d.replay(now, max_attempts)
                count += 1
        return count


class ScriptedSender:
    """Answers each URL from its script (the last answer repeats); records every send."""

    def __init__(self, scripts: dict[str, list[SendResult]]) -> None:
        self.scripts = scripts
        self.sent: list[tuple[str, str, dict[str, str]]] = []

    async def send(self, url: str, body: str, headers: dict[str, str]) -> SendResult:
        self.sent.append((url, body, headers))
        script = self.scripts[url]
        return script.pop(0) if len(script) > 1 else script[0]


class FakeGuard:
    """Refuses the URLs it is told to."""

    def __init__(self, refused: set[str] | None = None) -> None:
        self.refused = refused or set()

    async def vet(self, url: str) -> None:
        if url in self.refused:
            raise UnsafeTarget(f"The webhook host of {url} is a loopback address.")
