"""Webhooks end to end with a real Celery worker and Beat (embedded and full mode) and real
HTTP receivers on 127.0.0.1 that verify every delivery with `standardwebhooks`: retries
until a 2xx with one webhook-id, the log of every attempt, replays, secret rotation, an
event relayed twice delivered once, and a hung receiver that does not hold up another."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select

from backend.domain.events import DomainEvent
from backend.domain.webhooks import WebhookDelivery, WebhookEndpoint
from backend.infrastructure.db.tables import webhook_attempts, webhook_deliveries
from tests.helpers.webhook_receiver import Receiver, Reply, blackhole
from tests.worker.processes import wait_until
from tests.worker.stack import MODES, Stack

pytestmark = pytest.mark.slow

FAST = {
    "webhook_allow_private_targets": True,
    "webhook_backoff_base": 0.2,
    "webhook_backoff_factor": 2,
    "webhook_poll_interval": 0.5,
    "outbox_poll_interval": 0.5,
    "workflow_retry_after": 3600,
}


async def register(stack: Stack, url: str) -> WebhookEndpoint:
    async with stack.container() as container:
        return await container.webhooks.create(url, ["order.created"], None)


async def emit(stack: Stack, n: int = 1) -> list[str]:
    """`n` order.created events, committed as a service commits them (the relay is kicked)."""
    events = [
        DomainEvent("order.created", "order", str(uuid.uuid4()), {"order_id": str(i)})
        for i in range(n)
    ]
    async with stack.container() as container:
        for event in events:
            async with container.uow() as uow:
                await container.events.record(uow, event)
                await uow.commit()
    return [e.id for e in events]


async def deliveries(stack: Stack, endpoint_id: str) -> list[WebhookDelivery]:
    async with stack.container() as container:
        return (await container.webhooks.deliveries(endpoint_id, 100, 0)).items


def settled(stack: Stack, endpoint_id: str, count: int, status: str = "succeeded") -> bool:
    found = asyncio.run(deliveries(stack, endpoint_id))
    return len(found) == count and all(d.status.value == status for d in found)


@pytest.mark.parametrize("mode", MODES)
def test_500_500_200_is_delivered_on_the_third_attempt_then_replayed_and_rotated(
    make_stack: Any, mode: str
) -> None:
    stack = make_stack(mode, **FAST)
    stack.worker()
    stack.beat()
    with Receiver(Reply(500, b"no"), Reply(500, b"no"), Reply(200, b"ok")) as receiver:
        endpoint = asyncio.run(register(stack, receiver.url))
        [event_id] = asyncio.run(emit(stack))
        wait_until(
            lambda: settled(stack, endpoint.id, 1),
            60,
            lambda: f"not delivered: {asyncio.run(deliveries(stack, endpoint.id))}\n{stack.logs()}",
        )
        [delivery] = asyncio.run(deliveries(stack, endpoint.id))
        assert delivery.attempt == 3
        assert [a.response_status for a in delivery.attempts] == [500, 500, 200]
        assert [a.response_excerpt for a in delivery.attempts] == ["no", "no", "ok"]
        assert len(receiver.received) == 3
        bodies = receiver.verified(endpoint.secret)  # every attempt verifies
        assert {b["id"] for b in bodies} == {event_id}
        assert {r.headers["webhook-id"] for r in receiver.received} == {event_id}

        async def replay_and_rotate() -> str:
            async with stack.container() as container:
                rotated = await container.webhooks.rotate_secret(endpoint.id)
                await container.webhooks.replay(endpoint.id, delivery.id)
            return rotated.secret

        new_secret = asyncio.run(replay_and_rotate())
        wait_until(lambda: len(receiver.received) == 4, 30, stack.logs)
        replayed = receiver.received[3]
        assert replayed.headers["webhook-id"] == event_id
        assert replayed.body == receiver.received[0].body  # the same bytes
        # During the overlap a receiver holding either secret verifies the delivery.
        assert receiver.verifies_with(endpoint.secret, replayed)
        assert receiver.verifies_with(new_secret, replayed)
        assert len(replayed.headers["webhook-signature"].split(" ")) == 2


@pytest.mark.parametrize("mode", MODES)
def test_an_event_relayed_twice_is_delivered_once(make_stack: Any, mode: str) -> None:
    stack = make_stack(mode, **FAST)
    with Receiver() as receiver:
        endpoint = asyncio.run(register(stack, receiver.url))

        async def dispatch_twice() -> None:
            """Two hand-overs of the event, as two relays whose leases overlapped would make;
            the worker's relay then finds it unpublished and hands it over a third time."""
            [event_id] = await emit(stack)
            async with stack.container() as container:
                async with container.uow() as uow:
                    [record] = await uow.outbox.claim_unpublished(10)  # never committed
                assert record.event.id == event_id
                await container.event_dispatcher.dispatch_many([record])
                await container.event_dispatcher.dispatch_many([record])

        asyncio.run(dispatch_twice())
        stack.worker()
        stack.beat()

        def explain() -> str:
            found = asyncio.run(deliveries(stack, endpoint.id))
            return f"deliveries: {found}\nreceived: {receiver.received}\n{stack.logs()}"

        wait_until(lambda: settled(stack, endpoint.id, 1), 60, explain)
        # Give a stray second delivery every chance to show up: the relay's own hand-over too.
        asyncio.run(asyncio.sleep(2))
        assert len(receiver.received) == 1, explain()
        assert len(asyncio.run(deliveries(stack, endpoint.id))) == 1, explain()


@pytest.mark.parametrize("mode", MODES)
def test_a_hung_receiver_does_not_hold_up_another_endpoint(make_stack: Any, mode: str) -> None:
    stack = make_stack(mode, **FAST, webhook_timeout=20, webhook_per_endpoint_concurrency=2)
    with blackhole() as hung_url, Receiver() as receiver:
        hung = asyncio.run(register(stack, hung_url))
        quick = asyncio.run(register(stack, receiver.url))
        stack.worker()
        stack.beat()
        asyncio.run(emit(stack, 4))
        wait_until(lambda: settled(stack, quick.id, 4), 60, stack.logs)
        first_quick = min(r.at_utc for r in receiver.received)
        last_quick = max(r.at_utc for r in receiver.received)
        # Every delivery to the working endpoint arrived while the hung endpoint's first sends
        # were still waiting on their 20 s timeout: not one hung attempt had ended by then.
        ended = hung_attempts_ended_before(stack, hung.id, last_quick)
        assert ended == 0, (
            f"{asyncio.run(deliveries(stack, hung.id))}\n"
            f"quick: {[r.at_utc for r in receiver.received]}\n{stack.logs()}"
        )
        assert last_quick >= first_quick
        pending = asyncio.run(deliveries(stack, hung.id))
        assert len(pending) == 4
        assert all(d.status.value == "pending" for d in pending)


def hung_attempts_ended_before(stack: Stack, endpoint_id: str, moment: datetime) -> int:
    a, d = webhook_attempts, webhook_deliveries
    query = select(a.c.at).join(d, d.c.id == a.c.delivery_id).where(d.c.endpoint_id == endpoint_id)
    rows = asyncio.run(stack.rows(query))
    return sum(1 for (at,) in rows if _utc(at) <= moment)


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value
