"""Email delivery (ADR 0015): one attempt at a recorded send happens outside any
transaction, and what may succeed later is retried with backoff. Sends are recorded, one per
(event, template), by `EmailNotificationConsumer` (`notification_consumers.py`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from enum import StrEnum

from backend.domain.email import EmailDeliveryFailed, EmailSender, RetrySchedule
from backend.domain.ports import Clock, UnitOfWorkFactory
from backend.services.batches import BatchBudget, run_batches


@dataclass(frozen=True, slots=True)
class EmailPolicy:
    message_id_domain: str = "orderflow.localhost"
    retry: RetrySchedule = field(default_factory=RetrySchedule)
    # Longer than one send can take (connect + commands, each with its timeout): a claimed
    # send is nobody else's for this long, and due again if its worker died.
    lease: timedelta = timedelta(minutes=5)
    budget: BatchBudget = field(default_factory=lambda: BatchBudget(size=100, max_batches=10))


def template_for(event_type: str) -> str:
    return event_type.replace(".", "_")


def message_id(event_id: str, template: str, domain: str) -> str:
    """The same for every attempt at one (event, template)."""
    return f"<{event_id}.{template}@{domain}>"


class DeliveryOutcome(StrEnum):
    SENT = "sent"
    RETRY = "retry"
    FAILED = "failed"
    SKIPPED = "skipped"  # not due, already final, or another worker holds it


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    send_id: str
    outcome: DeliveryOutcome
    retry_in: timedelta | None = None
    error: str | None = None


class EmailDelivery:
    def __init__(
        self,
        uow_factory: UnitOfWorkFactory,
        clock: Clock,
        sender: EmailSender,
        policy: EmailPolicy,
    ) -> None:
        self._uow = uow_factory
        self._clock = clock
        self._sender = sender
        self._policy = policy

    async def deliver(self, send_id: str) -> DeliveryResult:
        """One attempt at one send, if it is due: claim (commit), send (no transaction
        open), record the outcome (commit)."""
        now = self._clock.now()
        async with self._uow() as uow:
            send = await uow.email_sends.claim(send_id, now, now + self._policy.lease)
            await uow.commit()
        if send is None:
            return DeliveryResult(send_id, DeliveryOutcome.SKIPPED)
        attempts = send.attempts + 1
        try:
            await self._sender.send(send.message)
        except EmailDeliveryFailed as failure:
            return await self._record_failure(send_id, attempts, failure)
        async with self._uow() as uow:
            await uow.email_sends.record_sent(send_id, attempts, self._clock.now())
            await uow.commit()
        return DeliveryResult(send_id, DeliveryOutcome.SENT)

    async def _record_failure(
        self, send_id: str, attempts: int, failure: EmailDeliveryFailed
    ) -> DeliveryResult:
        delay = None if failure.permanent else self._policy.retry.delay_after(attempts)
        async with self._uow() as uow:
            if delay is None:
                await uow.email_sends.record_failed(send_id, attempts, failure.reason)
            else:
                next_at = self._clock.now() + delay
                await uow.email_sends.record_retry(send_id, attempts, next_at, failure.reason)
            await uow.commit()
        if delay is None:
            return DeliveryResult(send_id, DeliveryOutcome.FAILED, error=failure.reason)
        return DeliveryResult(send_id, DeliveryOutcome.RETRY, retry_in=delay, error=failure.reason)

    async def deliver_due(self) -> list[DeliveryResult]:
        """One attempt at every send due now (retries, sends whose kick was lost), in
        bounded batches: a claimed send is leased, so the next batch finds the others."""
        results: list[DeliveryResult] = []

        async def batch(limit: int) -> int:
            async with self._uow() as uow:
                due = await uow.email_sends.due_ids(self._clock.now(), limit)
            for send_id in due:
                results.append(await self.deliver(send_id))
            return len(due)

        await run_batches(batch, self._policy.budget)
        return results
