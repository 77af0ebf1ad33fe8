"""The notification, stream-ticket and email-send repositories on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from backend.domain.email import EmailMessage, EmailSend, EmailStatus
from backend.domain.notifications import NewNotification, NotificationQuery
from backend.infrastructure.db.engine import create_engine
from backend.infrastructure.db.uow import SqlUnitOfWork
from tests.helpers.orders import seed_user

NOW = datetime(2026, 12, 3, 8, 0, tzinfo=UTC)


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url)
    yield engine
    await engine.dispose()


async def new_user(engine: AsyncEngine) -> str:
    async with SqlUnitOfWork(engine) as uow:
        user = await seed_user(uow)
        await uow.commit()
    return user.id


def note(user_id: str, event_id: str | None = None, n: int = 0) -> NewNotification:
    return NewNotification(
        user_id=user_id,
        event_id=event_id or str(uuid.uuid4()),
        type="order.created",
        title=f"Order placed {n}",
        body="Your order was placed.",
        data={"order_id": "o1", "n": n},
        created_at=NOW + timedelta(seconds=n),
    )


async def test_one_notification_per_event_and_user(engine: AsyncEngine) -> None:
    alice, bob = await new_user(engine), await new_user(engine)
    event_id = str(uuid.uuid4())
    async with SqlUnitOfWork(engine) as uow:
        assert await uow.notifications.lock_recipient(alice)
        assert not await uow.notifications.lock_recipient(str(uuid.uuid4()))  # no such user
        first = await uow.notifications.add(note(alice, event_id))
        again = await uow.notifications.add(note(alice, event_id))
        for_bob = await uow.notifications.add(note(bob, event_id))
        await uow.commit()
    assert first is not None and first.id > 0 and first.read_at is None
    assert first.data == {"order_id": "o1", "n": 0}
    assert again is None
    assert for_bob is not None and for_bob.id > first.id


async def test_page_is_newest_first_with_unread_filter_and_total(engine: AsyncEngine) -> None:
    alice, bob = await new_user(engine), await new_user(engine)
    async with SqlUnitOfWork(engine) as uow:
        made = [await uow.notifications.add(note(alice, n=i)) for i in range(5)]
        await uow.notifications.add(note(bob))
        await uow.commit()
    ids = [m.id for m in made if m is not None]
    async with SqlUnitOfWork(engine) as uow:
        assert await uow.notifications.mark_read(alice, ids[4], NOW)
        assert await uow.notifications.mark_read(alice, ids[4], NOW + timedelta(1))  # again: ok
        await uow.commit()
    async with SqlUnitOfWork(engine) as uow:
        page = await uow.notifications.page(NotificationQuery(alice, limit=2, offset=1))
        unread = await uow.notifications.page(NotificationQuery(alice, unread_only=True))
        read = await uow.notifications.get(alice, ids[4])
    assert page.total == 5 and [n.id for n in page.items] == [ids[3], ids[2]]
    assert unread.total == 4 and [n.id for n in unread.items] == ids[3::-1]
    assert read is not None and read.read_at == NOW  # the first read time stays


async def test_mark_read_refuses_another_users_notification(engine: AsyncEngine) -> None:
    alice, bob = await new_user(engine), await new_user(engine)
    async with SqlUnitOfWork(engine) as uow:
        made = await uow.notifications.add(note(alice))
        await uow.commit()
    assert made is not None
    async with SqlUnitOfWork(engine) as uow:
        assert not await uow.notifications.mark_read(bob, made.id, NOW)
        assert not await uow.notifications.mark_read(alice, made.id + 1000, NOW)
        await uow.commit()
    async with SqlUnitOfWork(engine) as uow:
        assert await uow.notifications.get(bob, made.id) is None
        still = await uow.notifications.get(alice, made.id)
    assert still is not None and still.read_at is None


async def test_mark_all_read_touches_only_that_users_unread(engine: AsyncEngine) -> None:
    alice, bob = await new_user(engine), await new_user(engine)
    async with SqlUnitOfWork(engine) as uow:
        for i in range(3):
            await uow.notifications.add(note(alice, n=i))
        await uow.notifications.add(note(bob))
        await uow.commit()
    async with SqlUnitOfWork(engine) as uow:
        assert await uow.notifications.mark_all_read(alice, NOW) == 3
        assert await uow.notifications.mark_all_read(alice, NOW) == 0
        await uow.commit()
    async with SqlUnitOfWork(engine) as uow:
        alice_unread = await uow.notifications.page(NotificationQuery(alice, unread_only=True))
        bob_unread = await uow.notifications.page(NotificationQuery(bob, unread_only=True))
    assert alice_unread.total == 0 and bob_unread.total == 1


async def test_after_and_latest_read_by_sequence(engine: AsyncEngine) -> None:
    alice, bob = await new_user(engine), await new_user(engine)
    async with SqlUnitOfWork(engine) as uow:
        start = await uow.notifications.max_id()
        a1 = await uow.notifications.add(note(alice, n=1))
        b1 = await uow.notifications.add(note(bob, n=2))
        a2 = await uow.notifications.add(note(alice, n=3))
        await uow.commit()
    assert a1 and b1 and a2
    async with SqlUnitOfWork(engine) as uow:
        assert [x.id for x in await uow.notifications.after(alice, start, 10)] == [a1.id, a2.id]
        assert [x.id for x in await uow.notifications.after(alice, a1.id, 10)] == [a2.id]
        assert await uow.notifications.after(alice, a2.id, 10) == []
        latest = await uow.notifications.latest(start, 2)
        assert latest == [(a1.id, alice), (b1.id, bob)]
        assert await uow.notifications.max_id() == a2.id


@pytest.mark.postgres
async def test_writers_of_one_recipient_commit_ids_in_order(pg_url: str) -> None:
    """The second writer waits for the first one's commit, so its id is the higher one and a
    reader that saw it can never later find a lower id appear."""
    engine = create_engine(pg_url)
    try:
        alice = await new_user(engine)
        async with SqlUnitOfWork(engine) as first:
            await first.notifications.lock_recipient(alice)
            made_first = await first.notifications.add(note(alice, n=1))

            async def second_writer() -> int:
                async with SqlUnitOfWork(engine) as second:
                    await second.notifications.lock_recipient(alice)
                    made = await second.notifications.add(note(alice, n=2))
                    await second.commit()
                assert made is not None
                return made.id

            task = asyncio.create_task(second_writer())
            await asyncio.sleep(0.3)
            assert not task.done(), "the second writer did not wait for the recipient lock"
            await first.commit()
        second_id = await task
        assert made_first is not None and second_id > made_first.id
    finally:
        await engine.dispose()


async def test_stream_ticket_is_redeemed_once_and_not_after_expiry(engine: AsyncEngine) -> None:
    alice = await new_user(engine)
    async with SqlUnitOfWork(engine) as uow:
        later = NOW + timedelta(seconds=60)
        await uow.stream_tickets.add("a" * 64, alice, created_at=NOW, expires_at=later)
        await uow.stream_tickets.add("b" * 64, alice, created_at=NOW, expires_at=NOW)
        await uow.commit()
    async with SqlUnitOfWork(engine) as uow:
        assert await uow.stream_tickets.redeem("a" * 64, NOW) == alice
        assert await uow.stream_tickets.redeem("a" * 64, NOW) is None
        assert await uow.stream_tickets.redeem("b" * 64, NOW) is None  # expired
        assert await uow.stream_tickets.redeem("c" * 64, NOW) is None  # unknown
        assert await uow.stream_tickets.purge(NOW + timedelta(seconds=1), 10) == 1
        await uow.commit()


def email_send(event_id: str, template: str = "order_created") -> EmailSend:
    return EmailSend(
        id=str(uuid.uuid4()),
        event_id=event_id,
        template=template,
        message=EmailMessage(
            recipient="alice@example.com",
            subject="Order placed",
            text="Hello",
            html="<p>Hello</p>",
            message_id=f"<{event_id}.{template}@example.com>",
        ),
        status=EmailStatus.PENDING,
        attempts=0,
        next_attempt_at=NOW,
        last_error=None,
        created_at=NOW,
    )


async def test_email_send_is_recorded_once_per_event_and_template(engine: AsyncEngine) -> None:
    event_id = str(uuid.uuid4())
    async with SqlUnitOfWork(engine) as uow:
        assert await uow.email_sends.add(email_send(event_id))
        assert not await uow.email_sends.add(email_send(event_id))
        assert await uow.email_sends.add(email_send(event_id, "other"))
        await uow.commit()


async def test_email_send_claim_lease_retry_and_outcomes(engine: AsyncEngine) -> None:
    send, other = email_send(str(uuid.uuid4())), email_send(str(uuid.uuid4()))
    lease = NOW + timedelta(minutes=2)
    async with SqlUnitOfWork(engine) as uow:
        await uow.email_sends.add(send)
        await uow.email_sends.add(other)
        await uow.commit()
    async with SqlUnitOfWork(engine) as uow:
        assert sorted(await uow.email_sends.due_ids(NOW, 10)) == sorted([send.id, other.id])
        claimed = await uow.email_sends.claim(send.id, NOW, lease)
        assert claimed is not None and claimed.message == send.message
        assert await uow.email_sends.claim(send.id, NOW, lease) is None  # leased
        assert await uow.email_sends.due_ids(NOW, 10) == [other.id]
        retry_at = NOW + timedelta(seconds=30)
        await uow.email_sends.record_retry(send.id, 1, retry_at, "451 try later")
        await uow.email_sends.record_failed(other.id, 1, "550 no such user")
        await uow.commit()
    async with SqlUnitOfWork(engine) as uow:
        assert await uow.email_sends.claim(send.id, NOW, lease) is None  # not due yet
        assert await uow.email_sends.claim(other.id, retry_at, lease) is None  # failed: final
        again = await uow.email_sends.claim(send.id, retry_at, lease)
        assert again is not None and again.attempts == 1 and again.last_error == "451 try later"
        await uow.email_sends.record_sent(send.id, 2, retry_at)
        await uow.commit()
    async with SqlUnitOfWork(engine) as uow:
        sent, failed = await uow.email_sends.get(send.id), await uow.email_sends.get(other.id)
    assert sent is not None and sent.status is EmailStatus.SENT and sent.sent_at == retry_at
    assert sent.attempts == 2 and sent.next_attempt_at is None and sent.last_error is None
    assert failed is not None and failed.status is EmailStatus.FAILED
    assert failed.last_error == "550 no such user" and failed.next_attempt_at is None


async def test_a_batch_locks_its_recipients_and_makes_each_notification_once(
    engine: AsyncEngine,
) -> None:
    alice, bob = await new_user(engine), await new_user(engine)
    ghost = str(uuid.uuid4())
    seen = note(alice, n=0)
    async with SqlUnitOfWork(engine) as uow:
        await uow.notifications.add(seen)
        await uow.commit()
    batch = [note(bob, n=1), seen, note(alice, n=2), note(bob, n=3)]
    async with SqlUnitOfWork(engine) as uow:
        assert await uow.notifications.lock_recipients([bob, ghost, alice, bob]) == {alice, bob}
        assert await uow.notifications.lock_recipients([]) == set()
        made = await uow.notifications.add_many(batch)
        assert await uow.notifications.add_many([]) == []
        await uow.commit()
    assert [(m.user_id, m.title) for m in made] == [
        (bob, "Order placed 1"), (alice, "Order placed 2"), (bob, "Order placed 3")
    ]  # fmt: skip
    assert made[0].id < made[1].id < made[2].id  # drawn in the given order
    assert made[1].data == {"order_id": "o1", "n": 2} and made[1].read_at is None
    async with SqlUnitOfWork(engine) as uow:
        stored = await uow.notifications.after(bob, 0, 10)
    assert [n.id for n in stored] == [made[0].id, made[2].id]


async def test_a_batch_of_email_sends_records_the_new_ones(engine: AsyncEngine) -> None:
    seen = email_send(str(uuid.uuid4()))
    async with SqlUnitOfWork(engine) as uow:
        await uow.email_sends.add(seen)
        await uow.commit()
    fresh, other = email_send(str(uuid.uuid4())), email_send(str(uuid.uuid4()))
    again = email_send(seen.event_id)  # the same (event, template) under a new id
    async with SqlUnitOfWork(engine) as uow:
        assert await uow.email_sends.add_many([fresh, again, other]) == [fresh.id, other.id]
        assert await uow.email_sends.add_many([]) == []
        await uow.commit()
    async with SqlUnitOfWork(engine) as uow:
        stored = await uow.email_sends.get(other.id)
    assert stored is not None and stored.message == other.message


async def test_users_are_read_in_one_batch(engine: AsyncEngine) -> None:
    alice, bob = await new_user(engine), await new_user(engine)
    async with SqlUnitOfWork(engine) as uow:
        found = await uow.users.get_many([alice, str(uuid.uuid4()), bob, alice])
        assert await uow.users.get_many([]) == {}
    assert set(found) == {alice, bob} and found[bob].id == bob
