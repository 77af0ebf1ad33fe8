"""The webhook use cases over fakes: registration, the consumer (one delivery per event and
endpoint, also when the event is relayed twice), sending with retries, 410, disabling and
re-enabling with the gap replayed, rotation, and a hung endpoint not holding up others."""

from __future__ import annotations

import asyncio
import json
import random
from datetime import UTC, datetime, timedelta

import pytest
from standardwebhooks.webhooks import Webhook

from backend.domain.events import DomainEvent
from backend.domain.webhooks import (
    ENDPOINT_DISABLED,
    DeliveryStatus,
    RetryPolicy,
    SendResult,
    UnsafeTarget,
)
from backend.infrastructure.webhooks.signing import StandardWebhooksSigner
from backend.services.events import EventDispatcher
from backend.services.webhook_delivery import WebhookDeliverer
from backend.services.webhooks import (
    DeliveryNotFound,
    WebhookAdmin,
    WebhookConsumer,
    WebhookNotFound,
    WebhookPolicy,
)
from tests.fakes.orders import SteppingClock
from tests.fakes.uow import FakeUnitOfWorkFactory
from tests.fakes.webhooks import FakeGuard, ScriptedSender

A, B = "https://a.example.com/hook", "https://b.example.com/hook"
OK, ERROR, GONE = SendResult(200, 3.0), SendResult(500, 3.0, "HTTP 500"), SendResult(410, 1.0)
POLICY = WebhookPolicy(retry=RetryPolicy(max_attempts=3, base_delay=timedelta(seconds=10)))


class World:
    def __init__(self, scripts: dict[str, list[SendResult]] | None = None) -> None:
        self.db = FakeUnitOfWorkFactory()
        self.clock = SteppingClock(datetime.now(UTC))
        self.kicks = 0
        self.guard = FakeGuard()
        self.sender = ScriptedSender(scripts or {A: [OK], B: [OK]})
        self.admin = WebhookAdmin(self.db, self.clock, POLICY, self.guard, self.kick)
        self.consumer = WebhookConsumer(self.clock, POLICY, self.kick)
        self.dispatcher = EventDispatcher(self.db, self.clock, [self.consumer])
        self.deliverer = WebhookDeliverer(
            self.db, self.clock, POLICY, self.sender, StandardWebhooksSigner(), random.Random(1)
        )

    async def kick(self) -> None:
        self.kicks += 1

    async def event(self, type_: str = "order.created") -> DomainEvent:
        event = DomainEvent(type_, "order", "o1", {"order_id": "o1"}, occurred_at=self.clock.now())
        await self.dispatcher.dispatch(event)
        return event

    def deliveries(self) -> list:  # type: ignore[type-arg]
        return sorted(self.db.webhook_deliveries.rows.values(), key=lambda d: d.created_at)


async def test_a_refused_target_is_not_registered() -> None:
    w = World()
    w.guard.refused.add("http://127.0.0.1/")
    with pytest.raises(UnsafeTarget):
        await w.admin.create("http://127.0.0.1/", ["order.created"], None)
    assert w.db.webhook_endpoints.rows == {}


async def test_an_event_becomes_one_delivery_per_subscribed_endpoint_even_relayed_twice() -> None:
    w = World()
    a = await w.admin.create(A, ["order.created", "order.created"], "a")
    await w.admin.create(B, ["order.status_changed"], None)
    assert a.event_types == ("order.created",)
    event = await w.event()
    await w.dispatcher.dispatch(event)  # the relay published it again
    assert [(d.endpoint_id, d.event_id) for d in w.deliveries()] == [(a.id, event.id)]
    assert w.kicks == 1  # after the one commit that wrote the delivery


async def test_500_500_200_is_delivered_on_the_third_attempt_with_the_same_webhook_id() -> None:
    w = World({A: [ERROR, ERROR, OK]})
    endpoint = await w.admin.create(A, ["order.created"], None)
    event = await w.event()
    for _ in range(3):
        await w.deliverer.deliver_due()
        w.clock.advance(seconds=60)  # past the backoff
    [delivery] = w.deliveries()
    assert (delivery.status, delivery.attempt) == (DeliveryStatus.SUCCEEDED, 3)
    ids = [headers["webhook-id"] for _, _, headers in w.sender.sent]
    assert ids == [event.id] * 3
    for _, body, headers in w.sender.sent:
        assert Webhook(endpoint.secret).verify(body, headers)["id"] == event.id
    page = await w.admin.deliveries(endpoint.id, 10, 0)
    assert [a.response_status for a in page.items[0].attempts] == [500, 500, 200]


async def test_a_retry_is_not_sent_before_its_backoff() -> None:
    w = World({A: [ERROR, OK]})
    await w.admin.create(A, ["order.created"], None)
    await w.event()
    await w.deliverer.deliver_due()
    run = await w.deliverer.deliver_due()
    assert run.sent == 0
    assert len(w.sender.sent) == 1


async def test_410_disables_the_endpoint_and_later_events_wait_for_enable() -> None:
    w = World({A: [GONE, OK]})
    endpoint = await w.admin.create(A, ["order.created"], None)
    await w.event()
    run = await w.deliverer.deliver_due()
    assert run.outcomes["failed"] == 1
    stored = await w.admin.get(endpoint.id)
    assert not stored.enabled
    await w.event()  # while disabled: recorded failed, nothing sent
    await w.deliverer.deliver_due()
    assert len(w.sender.sent) == 1
    assert w.deliveries()[1].error == ENDPOINT_DISABLED
    enabled, replayed = await w.admin.enable(endpoint.id)
    assert enabled.enabled
    assert replayed == 2  # the 410'd delivery and the one made while disabled
    await w.deliverer.deliver_due()
    assert {d.status for d in w.deliveries()} == {DeliveryStatus.SUCCEEDED}


async def test_an_endpoint_failing_for_the_whole_stretch_is_disabled() -> None:
    policy_days = POLICY.disable_after
    w = World({A: [ERROR]})
    endpoint = await w.admin.create(A, ["order.created"], None)
    await w.event()
    await w.deliverer.deliver_due()
    w.clock.advance(seconds=policy_days.total_seconds())
    await w.event()
    await w.deliverer.deliver_due()
    stored = await w.admin.get(endpoint.id)
    assert not stored.enabled
    assert stored.disabled_reason is not None


async def test_after_rotation_both_secrets_verify_each_delivery() -> None:
    w = World()
    endpoint = await w.admin.create(A, ["order.created"], None)
    rotated = await w.admin.rotate_secret(endpoint.id)
    assert rotated.secret != endpoint.secret
    await w.event()
    await w.deliverer.deliver_due()
    [(_, body, headers)] = w.sender.sent
    Webhook(endpoint.secret).verify(body, headers)
    Webhook(rotated.secret).verify(body, headers)


async def test_replay_sends_the_same_body_and_id_again() -> None:
    w = World()
    endpoint = await w.admin.create(A, ["order.created"], None)
    await w.event()
    await w.deliverer.deliver_due()
    [delivery] = w.deliveries()
    await w.admin.replay(endpoint.id, delivery.id)
    await w.deliverer.deliver_due()
    first, second = w.sender.sent
    assert first[1] == second[1]
    assert first[2]["webhook-id"] == second[2]["webhook-id"] == delivery.event_id
    assert json.loads(first[1])["id"] == delivery.event_id


async def test_replay_failed_since_a_time_only_takes_failed_deliveries_since_then() -> None:
    w = World({A: [GONE]})
    endpoint = await w.admin.create(A, ["order.created"], None)
    await w.event()
    await w.deliverer.deliver_due()
    cutoff = w.clock.now()
    await w.admin.enable(endpoint.id)  # replays the 410'd one, which fails again
    await w.deliverer.deliver_due()
    assert await w.admin.replay_failed(endpoint.id, cutoff + timedelta(seconds=1)) == 0
    assert await w.admin.replay_failed(endpoint.id, cutoff - timedelta(hours=1)) == 1


async def test_unknown_ids_are_not_found() -> None:
    w = World()
    endpoint = await w.admin.create(A, ["order.created"], None)
    with pytest.raises(WebhookNotFound):
        await w.admin.delete("00000000-0000-0000-0000-000000000000")
    with pytest.raises(DeliveryNotFound):
        await w.admin.replay(endpoint.id, "00000000-0000-0000-0000-000000000000")
    await w.admin.delete(endpoint.id)
    with pytest.raises(WebhookNotFound):
        await w.admin.deliveries(endpoint.id, 10, 0)


class HangingSender(ScriptedSender):
    """Sends to A never return until released; B answers at once."""

    def __init__(self) -> None:
        super().__init__({A: [OK], B: [OK]})
        self.release = asyncio.Event()
        self.hanging = 0

    async def send(self, url: str, body: str, headers: dict[str, str]) -> SendResult:
        if url == A:
            self.hanging += 1
            await self.release.wait()
            self.hanging -= 1
        return await super().send(url, body, headers)


async def test_a_hung_endpoint_holds_only_its_own_slots_while_others_are_served() -> None:
    w = World()
    sender = HangingSender()
    policy = WebhookPolicy(per_endpoint=2, concurrency=10, batch_size=3)
    deliverer = WebhookDeliverer(w.db, w.clock, policy, sender, StandardWebhooksSigner())
    await w.admin.create(A, ["order.created"], None)
    for _ in range(5):
        await w.event()  # five deliveries to A (the hung one), due first
    await w.admin.create(B, ["order.created"], None)
    for _ in range(3):
        await w.event()  # three more to A, three to B

    async def b_served() -> None:
        while sum(1 for url, _, _ in sender.sent if url == B) < 3:
            await asyncio.sleep(0.01)

    run = asyncio.ensure_future(deliverer.deliver_due())
    await asyncio.wait_for(b_served(), timeout=10)  # liveness only: B never waits for A
    assert sender.hanging == 2  # A holds its two slots, no more
    sender.release.set()
    report = await run
    assert report.outcomes["succeeded"] == 11  # A's eight too, once released


async def test_every_attempt_is_counted_by_outcome() -> None:
    from prometheus_client import REGISTRY

    def count(outcome: str) -> float:
        value = REGISTRY.get_sample_value("webhook_deliveries_total", {"outcome": outcome})
        return value or 0.0

    before = {o: count(o) for o in ("succeeded", "retrying", "failed")}
    w = World({A: [ERROR, OK], B: [GONE]})
    await w.admin.create(A, ["order.created"], None)
    await w.admin.create(B, ["order.created"], None)
    await w.event()
    await w.deliverer.deliver_due()
    w.clock.advance(seconds=60)
    await w.deliverer.deliver_due()
    after = {o: count(o) - before[o] for o in before}
    assert after == {"succeeded": 1.0, "retrying": 1.0, "failed": 1.0}
