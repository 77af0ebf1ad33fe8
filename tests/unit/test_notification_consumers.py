"""The consumers that tell an order's owner, and email delivery, over the fakes: exactly one
notification and one recorded email per event however often it is dispatched, after-commit
work only after a commit, and the retry policy of delivery."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

import pytest

from backend.domain.email import EmailDeliveryFailed, EmailMessage, RetrySchedule
from backend.domain.events import ORDER_CREATED, ORDER_STATUS_CHANGED, DomainEvent, OutboxRecord
from backend.domain.users import User
from backend.infrastructure.email import JinjaEmailRenderer
from backend.services.batches import BatchBudget
from backend.services.email import DeliveryOutcome, EmailDelivery, EmailPolicy
from backend.services.events import EventDispatcher
from backend.services.notification_consumers import (
    EmailNotificationConsumer,
    InAppNotificationConsumer,
)
from tests.fakes.clock import SteppingClock
from tests.fakes.orders import make_user
from tests.fakes.uow import FakeUnitOfWorkFactory

ORDER_ID = "1234abcd-0000-4000-8000-000000000001"


class RecordingSignal:
    def __init__(self) -> None:
        self.notified: list[list[str]] = []

    async def notify(self, user_ids: list[str]) -> None:
        self.notified.append(list(user_ids))


class ScriptedSender:
    """Fails with the scripted failures in turn, then delivers."""

    def __init__(self, *failures: EmailDeliveryFailed) -> None:
        self.failures = list(failures)
        self.sent: list[EmailMessage] = []
        self.attempts = 0

    async def send(self, message: EmailMessage) -> None:
        self.attempts += 1
        if self.failures:
            raise self.failures.pop(0)
        self.sent.append(message)


def order_event(user: User, kind: str = ORDER_CREATED, **payload: object) -> DomainEvent:
    body = {"order_id": ORDER_ID, "user_id": user.id, "status": "pending", "total": "9.90",
            "currency": "EUR", "items": [{"product_id": "p", "sku": "SKU-1", "quantity": 1}],
            **payload}  # fmt: skip
    return DomainEvent(type=kind, aggregate_type="order", aggregate_id=ORDER_ID, payload=body)


class World:
    def __init__(self) -> None:
        self.db = FakeUnitOfWorkFactory()
        self.clock = SteppingClock()
        self.signal = RecordingSignal()
        self.kicks: list[list[str]] = []  # one kick per commit, naming its sends
        self.policy = EmailPolicy(message_id_domain="shop.example")

        async def kick(send_ids: Sequence[str]) -> None:
            self.kicks.append(list(send_ids))

        self.consumers = (
            InAppNotificationConsumer(self.clock, self.signal),
            EmailNotificationConsumer(self.clock, JinjaEmailRenderer(), self.policy, kick),
        )
        self.dispatcher = EventDispatcher(self.db, self.clock, self.consumers)

    def customer(self) -> User:
        user = make_user("c0ffee00-0000-4000-8000-000000000001")
        self.db.users.rows[user.id] = user
        return user


async def test_one_notification_and_one_email_per_event_dispatched_twice() -> None:
    world = World()
    user = world.customer()
    event = order_event(user)
    first = await world.dispatcher.dispatch(event)
    again = await world.dispatcher.dispatch(event)
    assert sorted(first.handled) == ["notifications.email", "notifications.in_app"]
    assert sorted(again.duplicates) == ["notifications.email", "notifications.in_app"]
    world.db.processed_events.seen.clear()  # the dedup records purged: the unique keys hold
    await world.dispatcher.dispatch(event)
    [notification] = world.db.notifications.rows.values()
    assert (notification.user_id, notification.event_id) == (user.id, event.id)
    assert notification.title == "Order 1234abcd placed"
    assert notification.data["order_id"] == ORDER_ID and world.db.notifications.locked
    [send] = world.db.email_sends.sends.values()
    assert send.message.recipient == user.email and send.template == "order_created"
    assert send.message.message_id == f"<{event.id}.order_created@shop.example>"
    assert send.message.subject == "Order 1234abcd placed" and "SKU-1" in send.message.text
    assert world.signal.notified == [[user.id]]  # once, after the one commit that made it
    assert world.kicks == [[send.id]]


async def test_a_batch_tells_every_owner_in_one_unit_with_one_wake_up_and_one_kick() -> None:
    world = World()
    alice = world.customer()
    bob = make_user("c0ffee00-0000-4000-8000-000000000002")
    world.db.users.rows[bob.id] = bob
    ghost = make_user("deadbeef-0000-4000-8000-000000000001")  # deleted meanwhile
    world.db.notifications.missing_users.add(ghost.id)
    events = [order_event(alice), order_event(bob), order_event(ghost), order_event(alice)]
    seen = events[3]
    await world.dispatcher.dispatch(seen)  # one of them was handled before
    world.signal.notified.clear()
    world.kicks.clear()
    commits = world.db.commits

    report = await world.dispatcher.dispatch_many(
        [OutboxRecord(event=e, attempts=1, published_at=None) for e in events]
    )

    assert report.handled == {"notifications.in_app": 3, "notifications.email": 3}
    assert report.duplicates == {"notifications.in_app": 1, "notifications.email": 1}
    assert world.db.commits - commits == 3  # one per consumer, one to mark them handled
    made = sorted(world.db.notifications.rows.values(), key=lambda n: n.id)
    assert [(n.user_id, n.event_id) for n in made] == [
        (alice.id, seen.id), (alice.id, events[0].id), (bob.id, events[1].id)
    ]  # fmt: skip
    assert world.signal.notified == [sorted([alice.id, bob.id])]
    assert len(world.kicks) == 1 and len(world.kicks[0]) == 2
    recipients = {world.db.email_sends.sends[i].message.recipient for i in world.kicks[0]}
    assert recipients == {alice.email, bob.email}


async def test_a_status_change_names_both_states_and_the_reason() -> None:
    world = World()
    user = world.customer()
    event = order_event(user, ORDER_STATUS_CHANGED, from_status="pending",
                        to_status="rejected", status="rejected", reason="Too <big>")  # fmt: skip
    await world.dispatcher.dispatch(event)
    [notification] = world.db.notifications.rows.values()
    assert notification.title == "Order 1234abcd rejected"
    assert "from pending to rejected" in notification.body and "Too <big>" in notification.body
    [send] = world.db.email_sends.sends.values()
    assert send.message.subject == "Order 1234abcd is now rejected"
    assert "Too &lt;big&gt;" in send.message.html


async def test_nothing_leaves_the_process_when_the_transaction_rolls_back() -> None:
    world = World()
    event = order_event(world.customer())
    for consumer in world.consumers:
        async with world.db() as uow:
            await consumer.handle(event, uow)  # never committed
    assert world.signal.notified == [] and world.kicks == []
    assert world.db.notifications.rows == {} and world.db.email_sends.sends == {}


async def test_a_deleted_owner_and_an_ownerless_event_tell_nobody() -> None:
    world = World()
    ghost = make_user("deadbeef-0000-4000-8000-000000000001")  # never stored
    world.db.notifications.missing_users.add(ghost.id)
    ownerless = DomainEvent(type=ORDER_CREATED, aggregate_type="order", aggregate_id="x",
                            payload={"n": 1})  # fmt: skip
    for event in (order_event(ghost), ownerless):
        report = await world.dispatcher.dispatch(event)
        assert report.complete and len(report.handled) == 2  # handled: nothing to do
    assert world.db.notifications.rows == {} and world.db.email_sends.sends == {}
    assert world.signal.notified == [] and world.kicks == []


def transient(code: int = 451) -> EmailDeliveryFailed:
    return EmailDeliveryFailed(f"{code} later", permanent=False, code=code)


async def recorded_send(world: World) -> str:
    await world.dispatcher.dispatch(order_event(world.customer()))
    [send_id] = world.db.email_sends.sends
    return send_id


@pytest.mark.parametrize(
    ("failures", "outcomes", "attempts"),
    [
        ([], ["sent"], 1),
        ([transient()], ["retry", "sent"], 2),
        ([EmailDeliveryFailed("550 no", permanent=True, code=550)], ["failed", "skipped"], 1),
        ([transient(), transient(), transient()], ["retry", "retry", "failed", "skipped"], 3),
    ],
)
async def test_delivery_retries_what_may_succeed_and_stops_at_what_cannot(
    failures: list[EmailDeliveryFailed], outcomes: list[str], attempts: int
) -> None:
    world = World()
    send_id = await recorded_send(world)
    sender = ScriptedSender(*failures)
    retry = RetrySchedule(max_attempts=3, base=timedelta(seconds=10))
    delivery = EmailDelivery(world.db, world.clock, sender, EmailPolicy(retry=retry))
    seen = []
    for _ in outcomes:
        result = await delivery.deliver(send_id)
        seen.append(str(result.outcome))
        if result.outcome is DeliveryOutcome.RETRY:
            assert result.retry_in == timedelta(seconds=10) * 2 ** (sender.attempts - 1)
            assert (await delivery.deliver(send_id)).outcome is DeliveryOutcome.SKIPPED  # not due
            world.clock.advance(hours=1)
    assert seen == outcomes and sender.attempts == attempts
    assert world.db.email_sends.sends[send_id].attempts == attempts


async def test_due_sends_are_delivered_in_bounded_batches() -> None:
    world = World()
    user = world.customer()
    for n in range(5):
        event = order_event(user, ORDER_STATUS_CHANGED, from_status="pending",
                            to_status="validated", status="validated", n=n)  # fmt: skip
        await world.dispatcher.dispatch(event)
    sender = ScriptedSender()
    policy = EmailPolicy(budget=BatchBudget(size=2, max_batches=2))
    delivery = EmailDelivery(world.db, world.clock, sender, policy)
    first = await delivery.deliver_due()
    second = await delivery.deliver_due()
    assert [len(first), len(second)] == [4, 1]  # 2 batches of 2, then the last one
    assert {r.outcome for r in first + second} == {DeliveryOutcome.SENT}
    assert len(sender.sent) == 5 and await delivery.deliver_due() == []
