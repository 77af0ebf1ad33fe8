"""Fake outbox and consumer dedup."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from backend.domain.events import DomainEvent, OutboxRecord


class FakeOutbox:
    def __init__(self) -> None:
        self.rows: dict[str, OutboxRecord] = {}
        self.pending: list[DomainEvent] = []  # written in the open transaction
        self.handled: dict[str, datetime] = {}
        self._snapshot: tuple[dict[str, OutboxRecord], dict[str, datetime]] | None = None

    async def add(self, event: DomainEvent) -> None:
        self.pending.append(event)

    async def add_many(self, events: Sequence[DomainEvent]) -> None:
        self.pending.extend(events)

    def _begin(self) -> None:
        self._snapshot = (dict(self.rows), dict(self.handled))

    def _commit(self) -> None:
        for event in self.pending:
            self.rows[event.id] = OutboxRecord(event=event, attempts=0, published_at=None)
        self.pending.clear()
        self._snapshot = None

    def _rollback(self) -> None:
        """Relay bookkeeping (published, attempts, handled) is undone like the SQL rows."""
        snapshot = self._snapshot
        if snapshot is not None:
            self.rows, self.handled = snapshot
        self._snapshot = None
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
            self.rows[event_id] = OutboxRecord(record.event, record.attempts, at, record.request_id)

    async def record_attempt(self, event_ids: Sequence[str]) -> None:
        for event_id in event_ids:
            record = self.rows[event_id]
            self.rows[event_id] = OutboxRecord(
                record.event, record.attempts + 1, record.published_at, record.request_id
            )

    async def backlog(self, now: datetime) -> tuple[int, float]:
        unpublished = [r for r in self.rows.values() if r.published_at is None]
        if not unpublished:
            return 0, 0.0
        oldest = min(r.event.occurred_at for r in unpublished)
        return len(unpublished), (now - oldest).total_seconds()

    async def claim_unhandled(
        self, published_before: datetime, max_deliveries: int, limit: int
    ) -> Sequence[OutboxRecord]:
        stale = [
            r
            for r in self.rows.values()
            if r.published_at is not None
            and r.published_at < published_before
            and r.event.id not in self.handled
            and r.attempts < max_deliveries
        ]
        return sorted(stale, key=lambda r: r.published_at or published_before)[:limit]

    async def mark_handled(self, event_ids: Sequence[str], at: datetime) -> None:
        for event_id in event_ids:
            self.handled[event_id] = at

    async def purge_handled(self, handled_before: datetime, limit: int) -> int:
        """(The SQL version also deletes the events' dedup records; this fake keeps them.)"""
        doomed = sorted((at, eid) for eid, at in self.handled.items() if at < handled_before)
        for _, event_id in doomed[:limit]:
            del self.rows[event_id], self.handled[event_id]
        return len(doomed[:limit])


class FakeProcessedEvents:
    """Transactional like the real table: a consumer that fails un-records its event."""

    def __init__(self) -> None:
        self.seen: set[tuple[str, str]] = set()
        self._snapshot: set[tuple[str, str]] | None = None

    def _begin(self) -> None:
        self._snapshot = set(self.seen)

    def _commit(self) -> None:
        self._snapshot = None

    def _rollback(self) -> None:
        if self._snapshot is not None:
            self.seen = self._snapshot
        self._snapshot = None

    async def mark_processed(self, event_id: str, consumer: str) -> bool:
        if (event_id, consumer) in self.seen:
            return False
        self.seen.add((event_id, consumer))
        return True

    async def mark_processed_many(self, event_ids: Sequence[str], consumer: str) -> set[str]:
        return {i for i in event_ids if await self.mark_processed(i, consumer)}
