"""The webhook repositories on real databases (SQLite and PostgreSQL): secrets encrypted at
rest, one delivery per (event, endpoint), claims that lease and skip, the log and replays."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import pytest
from sqlalchemy import select

from backend.domain.events import DomainEvent
from backend.domain.webhooks import (
    DeliveryStatus,
    RetryPolicy,
    SendResult,
    WebhookDelivery,
    WebhookEndpoint,
    generate_secret,
)
from backend.infrastructure.db.engine import create_engine
from backend.infrastructure.db.repositories.webhooks import (
    SqlWebhookDeliveryRepository,
    SqlWebhookEndpointRepository,
)
from backend.infrastructure.db.tables import webhook_endpoints
from backend.infrastructure.webhooks.cipher import FernetSecretCipher

NOW = datetime(2026, 12, 3, 8, 0, tzinfo=UTC)
CIPHER = FernetSecretCipher("test-webhook-key-0123456789-0123456789")
T = TypeVar("T")


class Repos:
    def __init__(self, conn: Any) -> None:
        self.conn = conn
        self.endpoints = SqlWebhookEndpointRepository(conn, CIPHER)
        self.deliveries = SqlWebhookDeliveryRepository(conn)


@pytest.fixture
async def transaction(database_url: str) -> AsyncIterator[Callable[[], Any]]:
    """`async with transaction() as repos:` one committed transaction."""
    engine = create_engine(database_url)

    @asynccontextmanager
    async def open_one() -> AsyncIterator[Repos]:
        async with engine.begin() as conn:
            yield Repos(conn)

    yield open_one
    await engine.dispose()


def endpoint(n: int = 0, types: tuple[str, ...] = ("order.created",)) -> WebhookEndpoint:
    return WebhookEndpoint(
        url=f"https://hooks{n}.example.com/",
        event_types=types,
        secret=generate_secret(),
        created_at=NOW + timedelta(seconds=n),
        description=f"endpoint {n}",
    )


def event(n: int = 0, type_: str = "order.created") -> DomainEvent:
    return DomainEvent(type_, "order", f"o{n}", {"n": n}, occurred_at=NOW)


async def stored(transaction: Callable[[], Any], work: Callable[[Repos], Awaitable[T]]) -> T:
    async with transaction() as repos:
        return await work(repos)


async def test_endpoints_round_trip_with_secrets_encrypted_at_rest(
    transaction: Callable[[], Any],
) -> None:
    first, second = endpoint(1), endpoint(2, ("order.created", "order.status_changed"))
    first.rotate(generate_secret(), NOW, timedelta(hours=1))
    async with transaction() as repos:
        await repos.endpoints.add(first)
        await repos.endpoints.add(second)
    async with transaction() as repos:
        assert await repos.endpoints.get(first.id) == first
        raw = (await repos.conn.execute(select(webhook_endpoints))).mappings().all()
        for row in raw:
            assert "whsec_" not in row["secret_encrypted"]
        items, total = await repos.endpoints.page(limit=1, offset=1)
        assert (total, [e.id for e in items]) == (2, [second.id])
        changed = await repos.endpoints.subscribed_to("order.status_changed")
        assert [e.id for e in changed] == [second.id]
        second.disable("HTTP 410", NOW)
        await repos.endpoints.save(second)
    async with transaction() as repos:
        reread = await repos.endpoints.get(second.id)
        assert reread is not None and not reread.enabled and reread.disabled_at == NOW


async def test_one_delivery_per_event_and_endpoint(transaction: Callable[[], Any]) -> None:
    target, e = endpoint(), event()
    async with transaction() as repos:
        await repos.endpoints.add(target)
        first = WebhookDelivery.of_event(e, target, NOW, 3)
        assert await repos.deliveries.add_once([first]) == 1
    async with transaction() as repos:
        again = WebhookDelivery.of_event(e, target, NOW, 3)  # the event relayed twice
        assert await repos.deliveries.add_once([again]) == 0
        items, total = await repos.deliveries.page_of_endpoint(target.id, 10, 0)
        assert (total, [d.id for d in items]) == (1, [first.id])


async def test_a_claim_leases_due_rows_and_skips_busy_endpoints(
    transaction: Callable[[], Any],
) -> None:
    a, b = endpoint(1), endpoint(2)
    async with transaction() as repos:
        await repos.endpoints.add(a)
        await repos.endpoints.add(b)
        rows = [WebhookDelivery.of_event(event(n), t, NOW, 3) for n, t in enumerate((a, b, a))]
        await repos.deliveries.add_once(rows)
    lease = NOW + timedelta(seconds=30)
    async with transaction() as repos:
        claimed = await repos.deliveries.claim_due(NOW, lease, 10, skip_endpoints=[a.id])
    assert [d.endpoint_id for d in claimed] == [b.id]
    async with transaction() as repos:
        assert await repos.deliveries.claim_due(NOW, lease, 10, []) != []
    async with transaction() as repos:  # every row is leased now: nothing due before `lease`
        assert await repos.deliveries.claim_due(NOW + timedelta(seconds=29), lease, 10, []) == []
        assert len(await repos.deliveries.claim_due(lease, lease, 10, [])) == 3


async def test_attempts_are_logged_and_failed_deliveries_replayed_since_a_time(
    transaction: Callable[[], Any],
) -> None:
    target = endpoint()
    policy = RetryPolicy(max_attempts=2)
    old = WebhookDelivery.of_event(event(1), target, NOW - timedelta(hours=2), 2)
    recent = WebhookDelivery.of_event(event(2), target, NOW, 2)
    async with transaction() as repos:
        await repos.endpoints.add(target)
        await repos.deliveries.add_once([old, recent])
        for delivery in (old, recent):  # each fails (twice: no attempt left) when created
            for _ in range(2):
                attempt = delivery.record(
                    SendResult(500, 12.5, "HTTP 500", "boom"), delivery.created_at, policy, None
                )
                await repos.deliveries.add_attempt(attempt)
            await repos.deliveries.save(delivery)
    async with transaction() as repos:
        items, _ = await repos.deliveries.page_of_endpoint(target.id, 10, 0)
        assert [d.id for d in items] == [recent.id, old.id]  # newest first
        assert [a.number for a in items[0].attempts] == [1, 2]
        assert items[0].attempts[0].response_excerpt == "boom"
        assert items[0].status is DeliveryStatus.FAILED
        replayed = await repos.deliveries.replay_failed(target.id, NOW - timedelta(hours=1), NOW, 5)
    assert replayed == 1
    async with transaction() as repos:
        again = await repos.deliveries.get(recent.id)
        assert again is not None
        assert (again.status, again.attempts_left, again.attempt) == (DeliveryStatus.PENDING, 5, 2)
        untouched = await repos.deliveries.get(old.id)
        assert untouched is not None and untouched.status is DeliveryStatus.FAILED


async def test_deleting_an_endpoint_deletes_its_deliveries_and_attempts(
    transaction: Callable[[], Any],
) -> None:
    target = endpoint()
    d = WebhookDelivery.of_event(event(), target, NOW, 3)
    async with transaction() as repos:
        await repos.endpoints.add(target)
        await repos.deliveries.add_once([d])
        await repos.deliveries.add_attempt(
            d.record(SendResult(500, 1.0, "HTTP 500"), NOW, RetryPolicy(), None)
        )
    async with transaction() as repos:
        assert await repos.endpoints.delete(target.id) is True
        assert await repos.endpoints.delete(target.id) is False
        assert await repos.deliveries.get(d.id) is None


@pytest.mark.postgres
async def test_two_concurrent_claims_never_take_the_same_row(pg_url: str) -> None:
    engine = create_engine(pg_url)
    try:
        target = endpoint()
        async with engine.begin() as conn:
            repos = Repos(conn)
            await repos.endpoints.add(target)
            await repos.deliveries.add_once(
                [WebhookDelivery.of_event(event(n), target, NOW, 3) for n in range(40)]
            )

        async def claim() -> list[str]:
            async with engine.begin() as conn:
                got = await SqlWebhookDeliveryRepository(conn).claim_due(
                    NOW, NOW + timedelta(minutes=1), 25, []
                )
                await asyncio.sleep(0.1)  # hold the row locks while the other claims
                return [d.id for d in got]

        first, second = await asyncio.gather(claim(), claim())
        assert not set(first) & set(second)
        assert len(first) + len(second) == 40
    finally:
        await engine.dispose()
