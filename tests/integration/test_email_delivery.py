"""Email delivery end to end below the worker: a recorded send, the SMTP sender and a real
SMTP server (aiosmtpd on 127.0.0.1, a free port), on SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from backend.domain.email import EmailMessage, EmailSend, EmailStatus, RetrySchedule
from backend.infrastructure.db.engine import create_engine
from backend.infrastructure.db.uow import SqlUnitOfWork
from backend.infrastructure.email import SmtpConfig, SmtpSender
from backend.services.email import DeliveryOutcome, EmailDelivery, EmailPolicy
from tests.fakes.clock import SteppingClock
from tests.helpers.smtp import Mailbox, smtp_server

NOW = datetime(2026, 12, 3, 8, 0, tzinfo=UTC)
POLICY = EmailPolicy(retry=RetrySchedule(max_attempts=3, base=timedelta(seconds=30)))


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url)
    yield engine
    await engine.dispose()


async def recorded_send(engine: AsyncEngine) -> str:
    event_id = str(uuid.uuid4())
    send = EmailSend(
        id=str(uuid.uuid4()),
        event_id=event_id,
        template="order_created",
        message=EmailMessage(
            recipient="alice@example.com",
            subject="Order 1234abcd placed",
            text="Hello",
            html="<p>Hello</p>",
            message_id=f"<{event_id}.order_created@orderflow.example>",
        ),
        status=EmailStatus.PENDING,
        attempts=0,
        next_attempt_at=NOW,
        last_error=None,
        created_at=NOW,
    )
    async with SqlUnitOfWork(engine) as uow:
        await uow.email_sends.add(send)
        await uow.commit()
    return send.id


def delivery(engine: AsyncEngine, port: int, clock: SteppingClock) -> EmailDelivery:
    sender = SmtpSender(SmtpConfig(host="127.0.0.1", port=port, starttls=False, timeout=2))
    return EmailDelivery(lambda: SqlUnitOfWork(engine), clock, sender, POLICY)


async def stored(engine: AsyncEngine, send_id: str) -> EmailSend:
    async with SqlUnitOfWork(engine) as uow:
        send = await uow.email_sends.get(send_id)
    assert send is not None
    return send


async def test_451_then_250_delivers_on_the_retry(engine: AsyncEngine) -> None:
    send_id = await recorded_send(engine)
    clock = SteppingClock(NOW)
    mailbox = Mailbox("451 4.3.0 Try again later")
    with smtp_server(mailbox) as port:
        first = await delivery(engine, port, clock).deliver(send_id)
        assert first.outcome is DeliveryOutcome.RETRY and first.retry_in == timedelta(seconds=30)
        after_first = await stored(engine, send_id)
        assert after_first.status is EmailStatus.PENDING and after_first.attempts == 1
        assert after_first.last_error is not None and "451" in after_first.last_error
        early = await delivery(engine, port, clock).deliver(send_id)
        assert early.outcome is DeliveryOutcome.SKIPPED  # not due yet
        clock.advance(seconds=31)
        second = await delivery(engine, port, clock).deliver(send_id)
    assert second.outcome is DeliveryOutcome.SENT
    final = await stored(engine, send_id)
    assert final.status is EmailStatus.SENT and final.attempts == 2
    assert mailbox.attempts == 2
    [(recipients, mail)] = mailbox.accepted
    assert recipients == ["alice@example.com"] and mail["Subject"] == "Order 1234abcd placed"
    assert mail["Message-ID"] == final.message.message_id


async def test_550_is_recorded_failed_and_not_retried(engine: AsyncEngine) -> None:
    send_id = await recorded_send(engine)
    clock = SteppingClock(NOW)
    mailbox = Mailbox(refuse_recipient="550 5.1.1 No such user")
    with smtp_server(mailbox) as port:
        result = await delivery(engine, port, clock).deliver(send_id)
        clock.advance(days=1)
        again = await delivery(engine, port, clock).deliver(send_id)
        async with SqlUnitOfWork(engine) as uow:
            due = await uow.email_sends.due_ids(clock.now(), 10)
    assert result.outcome is DeliveryOutcome.FAILED and "550" in (result.error or "")
    assert again.outcome is DeliveryOutcome.SKIPPED and due == []
    failed = await stored(engine, send_id)
    assert failed.status is EmailStatus.FAILED and failed.attempts == 1
    assert failed.next_attempt_at is None and "No such user" in (failed.last_error or "")
    assert mailbox.attempts == 1 and mailbox.accepted == []


async def test_transient_failures_give_up_after_the_last_attempt(engine: AsyncEngine) -> None:
    send_id = await recorded_send(engine)
    clock = SteppingClock(NOW)
    mailbox = Mailbox(*["421 4.4.2 Busy"] * 5)
    outcomes = []
    with smtp_server(mailbox) as port:
        for _ in range(4):
            outcomes.append((await delivery(engine, port, clock).deliver(send_id)).outcome)
            clock.advance(hours=1)
    assert outcomes == [
        DeliveryOutcome.RETRY,
        DeliveryOutcome.RETRY,
        DeliveryOutcome.FAILED,
        DeliveryOutcome.SKIPPED,
    ]
    assert (await stored(engine, send_id)).attempts == 3 and mailbox.attempts == 3
