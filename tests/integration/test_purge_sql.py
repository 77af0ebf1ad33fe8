"""The purge job's SQL: expired refresh tokens and day-old idempotency keys, in bounded
batches, on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from backend.domain.events import DomainEvent
from backend.domain.orders import StoredResponse
from backend.domain.users import RefreshToken
from backend.infrastructure.db.engine import create_engine
from backend.infrastructure.db.tables import (
    idempotency_keys,
    outbox_events,
    processed_events,
    refresh_tokens,
)
from backend.infrastructure.db.uow import SqlUnitOfWork
from backend.services.maintenance import Maintenance
from backend.services.order_workflow import WorkflowPolicy
from tests.fakes.orders import SteppingClock
from tests.helpers.orders import seed_user

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def token(user_id: str, name: str, expires_at: datetime, spent: bool = False) -> RefreshToken:
    return RefreshToken(
        id=str(uuid.uuid4()),
        user_id=user_id,
        family_id=str(uuid.uuid4()),
        token_hash=name.ljust(64, "0"),
        created_at=NOW - timedelta(days=8),
        expires_at=expires_at,
        spent_at=NOW - timedelta(days=2) if spent else None,
    )


async def test_purge_deletes_only_what_expired(database_url: str) -> None:
    engine = create_engine(database_url)
    try:
        async with SqlUnitOfWork(engine) as uow:
            user = await seed_user(uow)
            for i in range(5):
                expired = NOW - timedelta(hours=i + 1)
                await uow.refresh_tokens.add(token(user.id, f"old{i}", expired))
            await uow.refresh_tokens.add(token(user.id, "spentlive", NOW + timedelta(days=1), True))
            await uow.refresh_tokens.add(token(user.id, "live", NOW + timedelta(days=1)))
            for i, age in enumerate((timedelta(hours=25), timedelta(hours=30), timedelta(hours=1))):
                key = f"key-{i}"
                await uow.idempotency.claim(
                    user.id,
                    key,
                    request_hash="h" * 64,
                    now=NOW - age,
                    expired_before=NOW - timedelta(days=1),
                    wait_seconds=1,
                )
                await uow.idempotency.complete(user.id, key, StoredResponse(201, {}, None))
            await uow.commit()

        report = await Maintenance(
            lambda: SqlUnitOfWork(engine), SteppingClock(NOW), WorkflowPolicy(batch_size=2)
        ).purge_expired()

        assert (report.refresh_tokens, report.idempotency_keys) == (5, 2)
        async with engine.connect() as conn:
            hashes = (await conn.execute(select(refresh_tokens.c.token_hash))).scalars().all()
            keys = (await conn.execute(select(idempotency_keys.c.key))).scalars().all()
        assert sorted(h.rstrip("0") for h in hashes) == ["live", "spentlive"]
        assert keys == ["key-2"]
    finally:
        await engine.dispose()


async def test_purge_deletes_handled_events_past_the_retention_with_their_dedup_rows(
    database_url: str,
) -> None:
    engine = create_engine(database_url)
    month_ago = NOW - timedelta(days=30)

    def event() -> DomainEvent:
        return DomainEvent("order.created", "order", str(uuid.uuid4()), {}, occurred_at=month_ago)

    old_handled = [event() for _ in range(3)]
    recent_handled, unhandled, unpublished = event(), event(), event()
    try:
        async with SqlUnitOfWork(engine) as uow:
            for e in (*old_handled, recent_handled, unhandled, unpublished):
                await uow.outbox.add(e)
            published = [e.id for e in (*old_handled, recent_handled, unhandled)]
            await uow.outbox.mark_published(published, month_ago)
            await uow.outbox.mark_handled([e.id for e in old_handled], NOW - timedelta(days=8))
            await uow.outbox.mark_handled([recent_handled.id], NOW - timedelta(days=6))
            for e in (*old_handled, recent_handled, unhandled):
                assert await uow.processed_events.mark_processed(e.id, "a-consumer")
            await uow.commit()

        report = await Maintenance(
            lambda: SqlUnitOfWork(engine), SteppingClock(NOW), WorkflowPolicy(batch_size=2)
        ).purge_expired()

        assert report.outbox_events == 3
        async with engine.connect() as conn:
            kept = set((await conn.execute(select(outbox_events.c.id))).scalars())
            deduped = set((await conn.execute(select(processed_events.c.event_id))).scalars())
        assert kept == {recent_handled.id, unhandled.id, unpublished.id}
        assert deduped == {recent_handled.id, unhandled.id}
    finally:
        await engine.dispose()
