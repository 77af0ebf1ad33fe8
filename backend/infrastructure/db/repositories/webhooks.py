"""SQL repositories of webhook endpoints (secrets encrypted at rest) and deliveries."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from backend.domain.webhooks import (
    DeliveryAttempt,
    DeliveryStatus,
    SecretCipher,
    WebhookDelivery,
    WebhookEndpoint,
)
from backend.infrastructure.db.repositories.base import SqlRepository
from backend.infrastructure.db.tables import webhook_attempts, webhook_deliveries, webhook_endpoints

ERROR_CHARS = 500  # the column's width


class SqlWebhookEndpointRepository(SqlRepository):
    def __init__(self, connection: AsyncConnection, cipher: SecretCipher) -> None:
        super().__init__(connection)
        self._cipher = cipher

    def _values(self, endpoint: WebhookEndpoint) -> dict[str, Any]:
        previous = endpoint.previous_secret
        return {
            "url": endpoint.url,
            "event_types": list(endpoint.event_types),
            "description": endpoint.description,
            "secret_encrypted": self._cipher.encrypt(endpoint.secret),
            "previous_secret_encrypted": self._cipher.encrypt(previous) if previous else None,
            "previous_secret_expires_at": endpoint.previous_secret_expires_at,
            "enabled": endpoint.enabled,
            "disabled_at": endpoint.disabled_at,
            "disabled_reason": endpoint.disabled_reason,
            "failing_since": endpoint.failing_since,
            "updated_at": endpoint.updated_at or endpoint.created_at,
        }

    def _endpoint(self, row: Any) -> WebhookEndpoint:
        previous = row["previous_secret_encrypted"]
        return WebhookEndpoint(
            id=row["id"],
            url=row["url"],
            event_types=tuple(row["event_types"]),
            description=row["description"],
            secret=self._cipher.decrypt(row["secret_encrypted"]),
            previous_secret=self._cipher.decrypt(previous) if previous else None,
            previous_secret_expires_at=row["previous_secret_expires_at"],
            enabled=bool(row["enabled"]),
            disabled_at=row["disabled_at"],
            disabled_reason=row["disabled_reason"],
            failing_since=row["failing_since"],
            created_at=row["created_at"],
            updated_at=row["updated_at"],
        )

    async def add(self, endpoint: WebhookEndpoint) -> None:
        values = self._values(endpoint)
        await self._conn.execute(
            insert(webhook_endpoints).values(
                id=endpoint.id, created_at=endpoint.created_at, **values
            )
        )

    async def get(self, endpoint_id: str) -> WebhookEndpoint | None:
        query = select(webhook_endpoints).where(webhook_endpoints.c.id == endpoint_id)
        row = (await self._conn.execute(query)).mappings().first()
        return self._endpoint(row) if row else None

    async def save(self, endpoint: WebhookEndpoint) -> None:
        await self._conn.execute(
            update(webhook_endpoints)
            .where(webhook_endpoints.c.id == endpoint.id)
            .values(**self._values(endpoint))
        )

    async def delete(self, endpoint_id: str) -> bool:
        # Explicit child deletes: SQLite enforces ON DELETE CASCADE only with a pragma.
        deliveries = select(webhook_deliveries.c.id).where(
            webhook_deliveries.c.endpoint_id == endpoint_id
        )
        await self._conn.execute(
            delete(webhook_attempts).where(webhook_attempts.c.delivery_id.in_(deliveries))
        )
        await self._conn.execute(
            delete(webhook_deliveries).where(webhook_deliveries.c.endpoint_id == endpoint_id)
        )
        result = await self._conn.execute(
            delete(webhook_endpoints).where(webhook_endpoints.c.id == endpoint_id)
        )
        return bool(result.rowcount)

    async def page(self, limit: int, offset: int) -> tuple[list[WebhookEndpoint], int]:
        query = (
            select(webhook_endpoints)
            .order_by(webhook_endpoints.c.created_at, webhook_endpoints.c.id)
            .limit(limit)
            .offset(offset)
        )
        rows = (await self._conn.execute(query)).mappings().all()
        total = await self._conn.scalar(select(func.count()).select_from(webhook_endpoints))
        return [self._endpoint(row) for row in rows], int(total or 0)

    async def subscribed_to(self, event_type: str) -> list[WebhookEndpoint]:
        # Endpoints are few (admins register them): filtering the JSON list in Python keeps
        # one query for both databases.
        rows = (await self._conn.execute(select(webhook_endpoints))).mappings().all()
        return [e for e in map(self._endpoint, rows) if e.subscribes_to(event_type)]


def _delivery(row: Any) -> WebhookDelivery:
    return WebhookDelivery(
        id=row["id"],
        endpoint_id=row["endpoint_id"],
        event_id=row["event_id"],
        event_type=row["event_type"],
        body=row["body"],
        status=DeliveryStatus(row["status"]),
        attempt=row["attempt"],
        attempts_left=row["attempts_left"],
        response_status=row["response_status"],
        error=row["error"],
        response_excerpt=row["response_excerpt"],
        latency_ms=row["latency_ms"],
        next_attempt_at=row["next_attempt_at"],
        last_attempt_at=row["last_attempt_at"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def _attempt(row: Any) -> DeliveryAttempt:
    return DeliveryAttempt(
        delivery_id=row["delivery_id"],
        number=row["number"],
        at=row["at"],
        response_status=row["response_status"],
        latency_ms=row["latency_ms"],
        error=row["error"],
        response_excerpt=row["response_excerpt"],
    )


def _state(delivery: WebhookDelivery) -> dict[str, Any]:
    return {
        "status": delivery.status.value,
        "attempt": delivery.attempt,
        "attempts_left": delivery.attempts_left,
        "response_status": delivery.response_status,
        "error": delivery.error[:ERROR_CHARS] if delivery.error else None,
        "response_excerpt": delivery.response_excerpt,
        "latency_ms": delivery.latency_ms,
        "next_attempt_at": delivery.next_attempt_at,
        "last_attempt_at": delivery.last_attempt_at,
        "updated_at": delivery.updated_at or delivery.created_at,
    }


class SqlWebhookDeliveryRepository(SqlRepository):
    async def add_once(self, deliveries: Sequence[WebhookDelivery]) -> int:
        rows = [
            {
                "id": d.id,
                "endpoint_id": d.endpoint_id,
                "event_id": d.event_id,
                "event_type": d.event_type,
                "body": d.body,
                "created_at": d.created_at,
                **_state(d),
            }
            for d in deliveries
        ]
        unique = ["event_id", "endpoint_id"]
        return len(await self.insert_new(webhook_deliveries, unique, rows, webhook_deliveries.c.id))

    async def get(self, delivery_id: str) -> WebhookDelivery | None:
        query = select(webhook_deliveries).where(webhook_deliveries.c.id == delivery_id)
        row = (await self._conn.execute(query)).mappings().first()
        if row is None:
            return None
        delivery = _delivery(row)
        await self._load_attempts([delivery])
        return delivery

    async def save(self, delivery: WebhookDelivery) -> None:
        await self._conn.execute(
            update(webhook_deliveries)
            .where(webhook_deliveries.c.id == delivery.id)
            .values(**_state(delivery))
        )

    async def add_attempt(self, attempt: DeliveryAttempt) -> None:
        await self._conn.execute(
            insert(webhook_attempts).values(
                delivery_id=attempt.delivery_id,
                number=attempt.number,
                at=attempt.at,
                response_status=attempt.response_status,
                latency_ms=attempt.latency_ms,
                error=attempt.error[:ERROR_CHARS] if attempt.error else None,
                response_excerpt=attempt.response_excerpt,
            )
        )

    async def claim_due(
        self, now: datetime, lease_until: datetime, limit: int, skip_endpoints: Sequence[str]
    ) -> list[WebhookDelivery]:
        d = webhook_deliveries
        query = (
            select(d)
            .where(d.c.status == DeliveryStatus.PENDING.value, d.c.next_attempt_at <= now)
            .order_by(d.c.next_attempt_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        if skip_endpoints:
            query = query.where(d.c.endpoint_id.not_in(list(skip_endpoints)))
        claimed = [_delivery(row) for row in (await self._conn.execute(query)).mappings().all()]
        if claimed:
            await self._conn.execute(
                update(d)
                .where(d.c.id.in_([c.id for c in claimed]))
                .values(next_attempt_at=lease_until)
            )
        return claimed

    async def page_of_endpoint(
        self, endpoint_id: str, limit: int, offset: int
    ) -> tuple[list[WebhookDelivery], int]:
        d = webhook_deliveries
        query = (
            select(d)
            .where(d.c.endpoint_id == endpoint_id)
            .order_by(d.c.created_at.desc(), d.c.id)
            .limit(limit)
            .offset(offset)
        )
        items = [_delivery(row) for row in (await self._conn.execute(query)).mappings().all()]
        total = await self._conn.scalar(
            select(func.count()).select_from(d).where(d.c.endpoint_id == endpoint_id)
        )
        await self._load_attempts(items)
        return items, int(total or 0)

    async def _load_attempts(self, deliveries: list[WebhookDelivery]) -> None:
        if not deliveries:
            return
        by_id = {delivery.id: delivery for delivery in deliveries}
        a = webhook_attempts
        query = select(a).where(a.c.delivery_id.in_(list(by_id))).order_by(a.c.number)
        for row in (await self._conn.execute(query)).mappings().all():
            by_id[row["delivery_id"]].attempts.append(_attempt(row))

    async def replay_failed(
        self, endpoint_id: str, since: datetime, now: datetime, max_attempts: int
    ) -> int:
        d = webhook_deliveries
        result = await self._conn.execute(
            update(d)
            .where(
                d.c.endpoint_id == endpoint_id,
                d.c.status == DeliveryStatus.FAILED.value,
                d.c.updated_at >= since,  # when it failed: the last change of a failed row
            )
            .values(
                status=DeliveryStatus.PENDING.value,
                next_attempt_at=now,
                attempts_left=max_attempts,
                updated_at=now,
            )
        )
        return int(result.rowcount)
