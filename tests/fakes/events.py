"""Fake outbox and consumer dedup."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from backend.domain.events import DomainEvent, OutboxRecord


class FakeOutbox:
    def __init__(self) -> None:
        self.rows: dict[str, OutboxRecord] = {}
        self.pending: list[DomainEvent] = []  # written in the open transaction

    async def add(self, event: DomainEvent) -> None:
        self.pending.append(event)

    def _commit(self) -> None:
        for event in self.pending:
            self.rows[event.id] = OutboxRecord(event=event, attempts=0, published_at=None)
        self.pending.clear()

    @property
    def events(self) -> list[DomainEvent]:
        return [record.event for record in self.rows.values()]

    async def claim_unpublished(self, limit: int) -> Sequence[OutboxRecord]:
        unpublished = [r for r in self.rows.values() if r.published_at is None]
        return sorted(unpublished, key=lambda r: r.event.occurred_at)[:limit]

    async def mark_published(self, event_ids: Sequence[str], at: datetime) -> None:
        for event_id in event_ids:
            record = self.rows[event_id]
            self.rows[event_id] = OutboxRecord(record.event, record.attempts, at)

    async def record_attempt(self, event_ids: Sequence[str]) -> None:
        for event_id in event_ids:
            record = self.rows[event_id]
            self.rows[event_id] = OutboxRecord(record.event, record.attempts + 1, None)

    async def backlog(self, now: datetime) -> tuple[int, float]:
        unpublished = [r for r in self.rows.values() if r.published_at is None]
        if not unpublished:
            return 0, 0.0
        oldest = min(r.event.occurred_at for r in unpublished)
        return len(unpublished), (now - oldest).total_seconds()


class FakeProcessedEvents:
    def __init__(self) -> None:
        self.seen: set[tuple[str, str]] = set()

    async def mark_processed(self, event_id: str, consumer: str) -> bool:
        if (event_id, consumer) in self.seen:
            return False
        self.seen.add((event_id, consumer))
        return True
