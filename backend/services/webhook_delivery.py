"""Sending due webhook deliveries: leased claims, concurrent sends, one record per attempt.

A run fills free send slots with claims made through the bounded-batch runner (each claim
a short unit of work that leases its rows), sends concurrently outside any transaction,
records each attempt as soon as it ends, and claims again whenever a slot frees up. An
endpoint with `per_endpoint` sends in flight is skipped by the claims, so a hung receiver
holds a few slots for the send timeout while every other endpoint is served (ADR 0016).
"""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from datetime import datetime

from backend.core.metrics import WEBHOOK_DELIVERIES
from backend.domain.ports import Clock, Transaction, UnitOfWorkFactory
from backend.domain.webhooks import (
    ENDPOINT_DISABLED,
    DeliveryStatus,
    SendResult,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookSender,
    WebhookSigner,
)
from backend.services.batches import BatchBudget, run_batches
from backend.services.webhooks import WebhookPolicy

WAKE_UP_SECONDS = 0.5  # while sends are in flight, look for newly due rows this often


@dataclass(slots=True)
class DeliveryRun:
    outcomes: Counter[str] = field(default_factory=Counter)  # succeeded / retrying / failed

    @property
    def sent(self) -> int:
        return sum(self.outcomes.values())


@dataclass(frozen=True, slots=True)
class _Claimed:
    delivery: WebhookDelivery
    endpoint: WebhookEndpoint


class WebhookDeliverer:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        clock: Clock,
        policy: WebhookPolicy,
        sender: WebhookSender,
        signer: WebhookSigner,
        rng: random.Random | None = None,
    ) -> None:
        self._uow = uow
        self._clock = clock
        self._policy = policy
        self._sender = sender
        self._signer = signer
        self._rng = rng

    async def deliver_due(self) -> DeliveryRun:
        run = DeliveryRun()
        in_flight: dict[asyncio.Task[str], str] = {}  # send -> its endpoint id
        stop_claiming_at = time.monotonic() + self._policy.run_for.total_seconds()
        while True:
            if time.monotonic() < stop_claiming_at:
                await self._fill(in_flight, run)
            if not in_flight:
                return run
            done, _ = await asyncio.wait(
                in_flight, timeout=WAKE_UP_SECONDS, return_when=asyncio.FIRST_COMPLETED
            )
            for task in done:
                del in_flight[task]
                run.outcomes[task.result()] += 1

    async def _fill(self, in_flight: dict[asyncio.Task[str], str], run: DeliveryRun) -> None:
        async def claim_batch(limit: int) -> int:
            room = self._policy.concurrency - len(in_flight)
            if room <= 0:
                return 0
            claimed = await self._claim(min(limit, room), Counter(in_flight.values()), run)
            for item in claimed:
                task = asyncio.create_task(self._send(item))
                in_flight[task] = item.endpoint.id
            return len(claimed)

        budget = BatchBudget(size=self._policy.batch_size, max_batches=self._max_fills())
        await run_batches(claim_batch, budget)

    def _max_fills(self) -> int:
        return max(1, -(-self._policy.concurrency // self._policy.batch_size))

    async def _claim(self, limit: int, busy: Counter[str], run: DeliveryRun) -> list[_Claimed]:
        """Lease up to `limit` due deliveries, skipping endpoints at their in-flight cap;
        rows past an endpoint's cap within this claim are handed back (due at once)."""
        now = self._clock.now()
        full = [endpoint for endpoint, n in busy.items() if n >= self._policy.per_endpoint]
        async with self._uow() as uow:
            rows = await uow.webhook_deliveries.claim_due(
                now, now + self._policy.lease, limit, full
            )
            claimed, handed_back = await self._admit(uow, rows, Counter(busy), run)
            for delivery in handed_back:
                delivery.next_attempt_at = now
                await uow.webhook_deliveries.save(delivery)
            await uow.commit()
        return claimed

    async def _admit(
        self, tx: Transaction, rows: list[WebhookDelivery], busy: Counter[str], run: DeliveryRun
    ) -> tuple[list[_Claimed], list[WebhookDelivery]]:
        claimed: list[_Claimed] = []
        handed_back: list[WebhookDelivery] = []
        endpoints: dict[str, WebhookEndpoint | None] = {}
        for delivery in rows:
            if delivery.endpoint_id not in endpoints:
                endpoints[delivery.endpoint_id] = await tx.webhook_endpoints.get(
                    delivery.endpoint_id
                )
            endpoint = endpoints[delivery.endpoint_id]
            if endpoint is None or not endpoint.enabled:
                delivery.give_up(ENDPOINT_DISABLED, self._clock.now())
                await tx.webhook_deliveries.save(delivery)
                run.outcomes["failed"] += 1
                WEBHOOK_DELIVERIES.labels(outcome="failed").inc()
            elif busy[endpoint.id] >= self._policy.per_endpoint:
                handed_back.append(delivery)
            else:
                busy[endpoint.id] += 1
                claimed.append(_Claimed(delivery, endpoint))
        return claimed, handed_back

    async def _send(self, item: _Claimed) -> str:
        """One attempt, then its record; the outcome's name."""
        now = self._clock.now()
        delivery, endpoint = item.delivery, item.endpoint
        headers = self._signer.headers(
            delivery.event_id, delivery.body, endpoint.signing_secrets(now), now
        )
        result = await self._sender.send(endpoint.url, delivery.body, headers)
        outcome = await self._record(delivery.id, result)
        WEBHOOK_DELIVERIES.labels(outcome=outcome).inc()
        return outcome

    async def _record(self, delivery_id: str, result: SendResult) -> str:
        now = self._clock.now()
        async with self._uow() as uow:
            delivery = await uow.webhook_deliveries.get(delivery_id)
            if delivery is None:  # its endpoint was deleted meanwhile
                return "failed"
            attempt = delivery.record(result, now, self._policy.retry, self._rng)
            await uow.webhook_deliveries.add_attempt(attempt)
            await uow.webhook_deliveries.save(delivery)
            await self._update_endpoint(uow, delivery.endpoint_id, result, now)
            await uow.commit()
        if delivery.status is DeliveryStatus.PENDING:
            return "retrying"
        return delivery.status.value

    async def _update_endpoint(
        self, tx: Transaction, endpoint_id: str, result: SendResult, now: datetime
    ) -> None:
        """One clock reading with the delivery's: a gap that starts with this failure
        includes the delivery that failed."""
        endpoint = await tx.webhook_endpoints.get(endpoint_id)
        if endpoint is None:
            return
        before = replace(endpoint)
        if result.succeeded:
            endpoint.record_success(now)
        elif result.gone:
            endpoint.disable("the receiver answered 410 Gone", now)
        else:
            endpoint.record_failure(now, self._policy.disable_after)
        if endpoint != before:
            await tx.webhook_endpoints.save(endpoint)
