"""Outbox and consumer-dedup repositories."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import structlog
from sqlalchemy import Select, delete, func, insert, select, update

from backend.domain.events import DomainEvent, OutboxRecord
from backend.infrastructure.db.repositories.base import SqlRepository
from backend.infrastructure.db.tables import outbox_events, processed_events

# Inside `together()` on PostgreSQL: one part of the unit's single write statement (the
# payload as JSON text, see `writes.py`).
_INSERT_EVENTS = """INSERT INTO outbox_events (id, type, aggregate_type, aggregate_id, payload,
    created_at, attempts, request_id)
SELECT e.id, e.type, e.aggregate_type, e.aggregate_id, e.payload::jsonb, e.created_at, 0,
    e.request_id
FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::timestamptz[],
    $7::text[]) AS e(id, type, aggregate_type, aggregate_id, payload, created_at, request_id)"""


class SqlOutboxRepository(SqlRepository):
    async def add(self, event: DomainEvent) -> None:
        await self.add_many([event])

    async def add_many(self, events: Sequence[DomainEvent]) -> None:
        if not events:
            return
        request_id = current_request_id()
        rows = [
            {
                "id": event.id,
                "type": event.type,
                "aggregate_type": event.aggregate_type,
                "aggregate_id": event.aggregate_id,
                "payload": event.payload,
                "created_at": event.occurred_at,
                "attempts": 0,
                "request_id": request_id,
            }
            for event in events
        ]
        if (writes := self._deferred()) is not None:
            writes.add(
                _INSERT_EVENTS,
                [row["id"] for row in rows],
                [row["type"] for row in rows],
                [row["aggregate_type"] for row in rows],
                [row["aggregate_id"] for row in rows],
                [json.dumps(row["payload"]) for row in rows],
                [row["created_at"] for row in rows],
                [row["request_id"] for row in rows],
            )
            return
        await self._conn.execute(insert(outbox_events), rows)  # one executemany

    async def claim_unpublished(self, limit: int) -> Sequence[OutboxRecord]:
        query = (
            select(outbox_events)
            .where(outbox_events.c.published_at.is_(None))
            .order_by(outbox_events.c.created_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return await self._records(query)

    async def claim_unhandled(
        self, published_before: datetime, max_deliveries: int, limit: int
    ) -> Sequence[OutboxRecord]:
        query = (
            select(outbox_events)
            .where(
                outbox_events.c.published_at.is_not(None),
                outbox_events.c.handled_at.is_(None),
                outbox_events.c.published_at < published_before,
                outbox_events.c.attempts < max_deliveries,
            )
            .order_by(outbox_events.c.published_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
        return await self._records(query)

    async def mark_handled(self, event_ids: Sequence[str], at: datetime) -> None:
        if event_ids:
            await self._conn.execute(
                update(outbox_events)
                .where(outbox_events.c.id.in_(list(event_ids)))
                .values(handled_at=at)
            )

    async def _records(self, query: Select[Any]) -> list[OutboxRecord]:
        rows = (await self._conn.execute(query)).mappings().all()
        return [
            OutboxRecord(
                event=DomainEvent(
                    id=row["id"],
                    type=row["type"],
                    aggregate_type=row["aggregate_type"],
                    aggregate_id=row["aggregate_id"],
                    payload=row["payload"],
                    occurred_at=row["created_at"],
                ),
                attempts=row["attempts"],
                published_at=row["published_at"],
                request_id=row["request_id"],
            )
            for row in rows
        ]

    async def mark_published(self, event_ids: Sequence[str], at: datetime) -> None:
        if event_ids:
            await self._conn.execute(
                update(outbox_events)
                .where(outbox_events.c.id.in_(list(event_ids)))
                .values(published_at=at)
            )

    async def record_attempt(self, event_ids: Sequence[str]) -> None:
        if event_ids:
            await self._conn.execute(
                update(outbox_events)
                .where(outbox_events.c.id.in_(list(event_ids)))
                .values(attempts=outbox_events.c.attempts + 1)
            )

    async def purge_handled(self, handled_before: datetime, limit: int) -> int:
        ids = await self.oldest_ids(
            outbox_events, outbox_events.c.handled_at, handled_before, limit
        )
        if not ids:
            return 0
        await self._conn.execute(
            delete(processed_events).where(processed_events.c.event_id.in_(ids))
        )
        result = await self._conn.execute(delete(outbox_events).where(outbox_events.c.id.in_(ids)))
        return int(result.rowcount)

    async def backlog(self, now: datetime) -> tuple[int, float]:
        row = (
            await self._conn.execute(
                select(func.count(), func.min(outbox_events.c.created_at)).where(
                    outbox_events.c.published_at.is_(None)
                )
            )
        ).one()
        count, oldest = row[0], row[1]
        if oldest is None:
            return 0, 0.0
        return int(count), max(0.0, (now - oldest).total_seconds())


class SqlProcessedEvents(SqlRepository):
    async def mark_processed(self, event_id: str, consumer: str) -> bool:
        return bool(await self.mark_processed_many([event_id], consumer))

    async def mark_processed_many(self, event_ids: Sequence[str], consumer: str) -> set[str]:
        at = datetime.now(UTC)
        rows = [{"event_id": i, "consumer": consumer, "processed_at": at} for i in event_ids]
        unique = ["event_id", "consumer"]
        made = await self.insert_new(processed_events, unique, rows, processed_events.c.event_id)
        return {str(row.event_id) for row in made}


def current_request_id() -> str | None:
    """The request id bound by the API middleware (or a task's context), if any."""
    value = structlog.contextvars.get_contextvars().get("request_id")
    return str(value)[:64] if value else None
