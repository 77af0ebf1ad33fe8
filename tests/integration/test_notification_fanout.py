"""The live fan-out: the per-process hub, Redis wake-ups (one subscriber per process), the
embedded table tail, and a stream following the database through them."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from backend.domain.notifications import NewNotification, TooManyStreams
from backend.infrastructure import pubsub
from backend.infrastructure.db.engine import create_engine
from backend.infrastructure.db.uow import SqlUnitOfWork
from backend.infrastructure.notifications import (
    NotificationHub,
    RedisNotificationSignal,
    RedisWakeListener,
    tail_notifications,
)
from backend.services.notifications import NotificationService, StreamPolicy
from tests.fakes.clock import SteppingClock
from tests.helpers.orders import seed_user

RUNG_WITHIN = 10.0  # a bound for "never rung", not a speed requirement


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url)
    yield engine
    await engine.dispose()


def uow_factory(engine: AsyncEngine):  # type: ignore[no-untyped-def]
    return lambda: SqlUnitOfWork(engine)


async def new_user(engine: AsyncEngine) -> str:
    async with SqlUnitOfWork(engine) as uow:
        user = await seed_user(uow)
        await uow.commit()
    return user.id


async def notify(engine: AsyncEngine, user_id: str, n: int = 0) -> int:
    async with SqlUnitOfWork(engine) as uow:
        await uow.notifications.lock_recipient(user_id)
        made = await uow.notifications.add(
            NewNotification(
                user_id=user_id,
                event_id=str(uuid.uuid4()),
                type="order.created",
                title=f"n{n}",
                body="b",
                data={"n": n},
                created_at=datetime.now(UTC),
            )
        )
        await uow.commit()
    assert made is not None
    return made.id


def test_the_hub_limits_streams_per_user_and_rings_only_that_user() -> None:
    async def scenario() -> None:
        hub = NotificationHub(max_per_user=2)
        a1, a2 = hub.acquire("alice"), hub.acquire("alice")
        with pytest.raises(TooManyStreams) as refused:
            hub.acquire("alice")
        assert refused.value.retry_after >= 1 and "At most 2" in refused.value.detail
        bob = hub.acquire("bob")
        hub.wake(["alice"])
        assert await a1.wait(0) and await a2.wait(0)
        assert not await bob.wait(0)
        hub.release(a1)
        hub.release(a1)  # idempotent
        assert hub.open_streams("alice") == 1
        hub.acquire("alice")  # a slot is free again
        hub.close()
        assert bob.closed and await bob.wait(RUNG_WITHIN)

    asyncio.run(scenario())


@pytest.mark.redis
async def test_a_redis_wake_up_reaches_the_hub_of_another_process(redis_url: str) -> None:
    prefix = f"oftest:{uuid.uuid4().hex[:8]}:"
    hub = NotificationHub(max_per_user=5)
    listener = RedisWakeListener(hub, prefix)
    subscribed = asyncio.Event()
    original = listener.on_subscribed

    async def on_subscribed() -> None:
        await original()
        subscribed.set()

    listener.on_subscribed = on_subscribed  # type: ignore[method-assign]
    task = asyncio.create_task(pubsub.listen(listener, lambda: Redis.from_url(redis_url)))
    publisher = Redis.from_url(redis_url)
    try:
        await asyncio.wait_for(subscribed.wait(), RUNG_WITHIN)
        alice, bob = hub.acquire("alice"), hub.acquire("bob")
        await RedisNotificationSignal(publisher, prefix).notify(["alice"])
        assert await alice.wait(RUNG_WITHIN), "the wake-up never arrived"
        assert not await bob.wait(0.2)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await publisher.aclose()


async def test_a_failed_wake_up_is_swallowed_and_counted() -> None:
    dead = Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2)
    try:
        await RedisNotificationSignal(dead, "x:").notify(["alice"])  # does not raise
    finally:
        await dead.aclose()


async def test_the_table_tail_rings_the_users_with_new_rows(engine: AsyncEngine) -> None:
    alice, bob = await new_user(engine), await new_user(engine)
    before = await notify(engine, alice)  # older than the tail: never rings
    hub = NotificationHub(max_per_user=5)
    a, b = hub.acquire(alice), hub.acquire(bob)
    stopping = asyncio.Event()
    tail = asyncio.create_task(tail_notifications(hub, uow_factory(engine), 0.05, stopping))
    try:
        assert not await a.wait(0.3)
        await notify(engine, alice)
        assert await a.wait(RUNG_WITHIN), "the tail never rang"
        assert not await b.wait(0.2)
    finally:
        stopping.set()
        await asyncio.wait_for(tail, RUNG_WITHIN)
    assert before > 0


async def test_a_stream_replays_then_follows_then_ends_at_its_lifetime(
    engine: AsyncEngine,
) -> None:
    alice = await new_user(engine)
    first, second = await notify(engine, alice, 1), await notify(engine, alice, 2)
    clock = SteppingClock(datetime.now(UTC))
    policy = StreamPolicy(replay_batch=1, recheck_seconds=0.05, max_lifetime=timedelta(hours=1))
    service = NotificationService(uow_factory(engine), clock, policy)
    hub = NotificationHub(max_per_user=5)
    doorbell = hub.acquire(alice)
    stream = service.follow(doorbell, alice, first - 1).__aiter__()
    assert (await anext(stream)).id == first  # replay, one batch at a time
    assert (await anext(stream)).id == second
    third = asyncio.create_task(anext(stream))
    made = await notify(engine, alice, 3)
    hub.wake([alice])
    assert (await asyncio.wait_for(third, RUNG_WITHIN)).id == made
    clock.advance(hours=2)
    with pytest.raises(StopAsyncIteration):
        await asyncio.wait_for(anext(stream), RUNG_WITHIN)
    hub.release(doorbell)


async def test_a_stream_ends_when_the_hub_closes(engine: AsyncEngine) -> None:
    alice = await new_user(engine)
    service = NotificationService(uow_factory(engine), SteppingClock(), StreamPolicy())
    hub = NotificationHub(max_per_user=5)
    stream = service.follow(hub.acquire(alice), alice, 0).__aiter__()
    waiting = asyncio.create_task(anext(stream))
    await asyncio.sleep(0.1)
    hub.close()
    with pytest.raises(StopAsyncIteration):
        await asyncio.wait_for(waiting, RUNG_WITHIN)
