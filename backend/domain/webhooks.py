"""Webhooks: endpoints admins register, and the deliveries of order events to them.

An endpoint signs with its current secret and, for an overlap window after a rotation, with
the previous one too (the Standard Webhooks signature header carries several signatures).
A delivery is one (event, endpoint) pair: its body is fixed when the event is consumed, its
`webhook-id` is the event id, and every attempt, retry or replay sends the same bytes.
"""

from __future__ import annotations

import base64
import json
import random
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Protocol

from backend.domain.errors import InvalidInput
from backend.domain.events import DomainEvent

SECRET_PREFIX = "whsec_"  # noqa: S105 - the format's prefix, not a secret
RESPONSE_EXCERPT_BYTES = 1024
ENDPOINT_DISABLED = "endpoint disabled"


def generate_secret() -> str:
    """`whsec_` + base64 of 32 random bytes (the Standard Webhooks secret format)."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode("ascii")


class UnsafeTarget(InvalidInput):
    """A webhook URL that could reach the service's own network (SSRF), or that is not a
    plain http(s) URL to a host we can vet."""

    slug = "unsafe-webhook-target"
    title = "Webhook target refused"


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


@dataclass(slots=True)
class WebhookEndpoint:
    url: str
    event_types: tuple[str, ...]
    secret: str
    created_at: datetime
    description: str | None = None
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    previous_secret: str | None = None
    previous_secret_expires_at: datetime | None = None
    enabled: bool = True
    disabled_at: datetime | None = None
    disabled_reason: str | None = None
    failing_since: datetime | None = None  # first failure since the last success
    updated_at: datetime | None = None

    def subscribes_to(self, event_type: str) -> bool:
        return event_type in self.event_types

    def signing_secrets(self, now: datetime) -> list[str]:
        """The current secret, plus the previous one while its overlap lasts."""
        current = [self.secret]
        expires = self.previous_secret_expires_at
        if self.previous_secret and expires is not None and now < expires:
            current.append(self.previous_secret)
        return current

    def rotate(self, new_secret: str, now: datetime, overlap: timedelta) -> None:
        self.previous_secret = self.secret
        self.previous_secret_expires_at = now + overlap
        self.secret = new_secret
        self.updated_at = now

    def record_success(self, now: datetime) -> None:
        if self.failing_since is not None:
            self.failing_since = None
            self.updated_at = now

    def record_failure(self, now: datetime, disable_after: timedelta) -> bool:
        """True when this failure ends a failing stretch longer than `disable_after`: the
        endpoint is disabled then."""
        if self.failing_since is None:
            self.failing_since = now
            self.updated_at = now
            return False
        if self.enabled and now - self.failing_since >= disable_after:
            self.disable(f"failing since {self.failing_since.isoformat()}", now)
            return True
        return False

    def disable(self, reason: str, now: datetime) -> None:
        if self.enabled:
            self.enabled = False
            self.disabled_at = now
            self.disabled_reason = reason
            self.failing_since = self.failing_since or now
            self.updated_at = now

    def enable(self, now: datetime) -> datetime | None:
        """Re-enable; the start of the gap whose failed deliveries should be replayed
        (None when the endpoint was not disabled)."""
        if self.enabled:
            return None
        gap_start = min(t for t in (self.failing_since, self.disabled_at) if t is not None)
        self.enabled = True
        self.disabled_at = None
        self.disabled_reason = None
        self.failing_since = None
        self.updated_at = now
        return gap_start


@dataclass(frozen=True, slots=True)
class SendResult:
    """What one HTTP attempt came to (the sender never raises for the endpoint's faults)."""

    response_status: int | None
    latency_ms: float
    error: str | None = None
    response_excerpt: str | None = None
    retry_after: float | None = None  # seconds, from a 429/503 `Retry-After`

    @property
    def succeeded(self) -> bool:
        return self.response_status is not None and 200 <= self.response_status < 300

    @property
    def gone(self) -> bool:
        """410: the receiver says this endpoint is gone for good: disable it."""
        return self.response_status == 410


@dataclass(frozen=True, slots=True)
class DeliveryAttempt:
    delivery_id: str
    number: int
    at: datetime
    response_status: int | None
    latency_ms: float
    error: str | None
    response_excerpt: str | None


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    max_attempts: int = 6
    base_delay: timedelta = timedelta(seconds=30)
    factor: float = 4.0
    max_delay: timedelta = timedelta(hours=6)

    def delay(self, failures: int, rng: random.Random | None = None) -> timedelta:
        """Exponential backoff with jitter after the `failures`-th failure of a round: half
        the exponential step for sure, the other half at random (so receivers that came back
        are not hit by every retry at once)."""
        step = self.base_delay.total_seconds() * self.factor ** max(0, failures - 1)
        step = min(step, self.max_delay.total_seconds())
        jitter = (rng or random).uniform(0, step / 2)
        return timedelta(seconds=step / 2 + jitter)


def webhook_body(event: DomainEvent) -> str:
    """The delivered JSON, serialized once so every attempt signs and sends the same bytes."""
    document = {
        "id": event.id,
        "type": event.type,
        "timestamp": event.occurred_at.astimezone(UTC).isoformat(),
        "data": event.payload,
    }
    return json.dumps(document, separators=(",", ":"), sort_keys=True, default=str)


@dataclass(slots=True)
class WebhookDelivery:
    endpoint_id: str
    event_id: str
    event_type: str
    body: str
    created_at: datetime
    next_attempt_at: datetime | None
    attempts_left: int
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    status: DeliveryStatus = DeliveryStatus.PENDING
    attempt: int = 0  # attempts made so far, replays included
    response_status: int | None = None
    error: str | None = None
    response_excerpt: str | None = None
    latency_ms: float | None = None
    last_attempt_at: datetime | None = None
    updated_at: datetime | None = None
    attempts: list[DeliveryAttempt] = field(default_factory=list)  # the log, when loaded

    @classmethod
    def of_event(
        cls, event: DomainEvent, endpoint: WebhookEndpoint, now: datetime, max_attempts: int
    ) -> WebhookDelivery:
        """Pending for an enabled endpoint; for a disabled one, failed at once (no attempt),
        so that re-enabling the endpoint replays it with the rest of the gap."""
        delivery = cls(
            endpoint_id=endpoint.id,
            event_id=event.id,
            event_type=event.type,
            body=webhook_body(event),
            created_at=now,
            updated_at=now,
            next_attempt_at=now,
            attempts_left=max_attempts,
        )
        if not endpoint.enabled:
            delivery.give_up(ENDPOINT_DISABLED, now)
        return delivery

    def record(
        self, result: SendResult, now: datetime, policy: RetryPolicy, rng: random.Random | None
    ) -> DeliveryAttempt:
        """Apply one attempt's result: succeeded, failed for good (410, or no attempt left),
        or pending again after the backoff (or the receiver's `Retry-After`, if longer)."""
        self.attempt += 1
        self.attempts_left -= 1
        self.response_status = result.response_status
        self.error = result.error
        self.response_excerpt = result.response_excerpt
        self.latency_ms = result.latency_ms
        self.last_attempt_at = now
        self.updated_at = now
        if result.succeeded:
            self.status, self.next_attempt_at = DeliveryStatus.SUCCEEDED, None
        elif result.gone or self.attempts_left <= 0:
            self.status, self.next_attempt_at = DeliveryStatus.FAILED, None
        else:
            failures = policy.max_attempts - self.attempts_left
            delay = policy.delay(failures, rng)
            if result.retry_after is not None:  # honoured, up to the backoff's own ceiling
                asked = min(timedelta(seconds=result.retry_after), policy.max_delay)
                delay = max(delay, asked)
            self.status, self.next_attempt_at = DeliveryStatus.PENDING, now + delay
        return DeliveryAttempt(
            delivery_id=self.id,
            number=self.attempt,
            at=now,
            response_status=result.response_status,
            latency_ms=result.latency_ms,
            error=result.error,
            response_excerpt=result.response_excerpt,
        )

    def give_up(self, reason: str, now: datetime) -> None:
        """Failed without an attempt (e.g. its endpoint is disabled)."""
        self.status = DeliveryStatus.FAILED
        self.error = reason
        self.next_attempt_at = None
        self.updated_at = now

    def replay(self, now: datetime, max_attempts: int) -> None:
        """Send again from now with a fresh budget of attempts; same event, same body, same
        `webhook-id`."""
        self.status = DeliveryStatus.PENDING
        self.next_attempt_at = now
        self.attempts_left = max_attempts
        self.updated_at = now


def excerpt(raw: bytes) -> str:
    """The first KB of a response body, as text (undecodable bytes replaced)."""
    return raw[:RESPONSE_EXCERPT_BYTES].decode("utf-8", errors="replace")


# --------------------------------------------------------------------------- ports
class WebhookEndpointRepository(Protocol):
    async def add(self, endpoint: WebhookEndpoint) -> None: ...

    async def get(self, endpoint_id: str) -> WebhookEndpoint | None: ...

    async def save(self, endpoint: WebhookEndpoint) -> None: ...

    async def delete(self, endpoint_id: str) -> bool:
        """False when there was no such endpoint; its deliveries go with it."""
        ...

    async def page(self, limit: int, offset: int) -> tuple[list[WebhookEndpoint], int]:
        """Oldest first, and the total."""
        ...

    async def subscribed_to(self, event_type: str) -> list[WebhookEndpoint]:
        """Every endpoint (enabled or not) whose event types include `event_type`."""
        ...


class WebhookDeliveryRepository(Protocol):
    async def add_once(self, deliveries: Sequence[WebhookDelivery]) -> int:
        """Insert, skipping any (event, endpoint) pair already stored; how many were new."""
        ...

    async def get(self, delivery_id: str) -> WebhookDelivery | None:
        """With its attempts, oldest first."""
        ...

    async def save(self, delivery: WebhookDelivery) -> None:
        """Its state; attempts are added with `add_attempt`."""
        ...

    async def add_attempt(self, attempt: DeliveryAttempt) -> None: ...

    async def claim_due(
        self, now: datetime, lease_until: datetime, limit: int, skip_endpoints: Sequence[str]
    ) -> list[WebhookDelivery]:
        """Up to `limit` pending deliveries due by `now` (oldest due first), not of
        `skip_endpoints`, skipping rows others hold; each is leased to the caller by moving
        its `next_attempt_at` to `lease_until` (a sender that dies loses the lease then)."""
        ...

    async def page_of_endpoint(
        self, endpoint_id: str, limit: int, offset: int
    ) -> tuple[list[WebhookDelivery], int]:
        """Newest first, each with its attempts (oldest first), and the total."""
        ...

    async def replay_failed(
        self, endpoint_id: str, since: datetime, now: datetime, max_attempts: int
    ) -> int:
        """Every delivery of the endpoint that failed at or after `since` is pending again
        from `now` with `max_attempts` attempts; how many."""
        ...


class SecretCipher(Protocol):
    """Encrypts endpoint secrets at rest."""

    def encrypt(self, plaintext: str) -> str: ...

    def decrypt(self, token: str) -> str: ...


class TargetGuard(Protocol):
    async def vet(self, url: str) -> None:
        """Raise `UnsafeTarget` unless every address `url`'s host resolves to is public."""
        ...


class WebhookSender(Protocol):
    async def send(self, url: str, body: str, headers: dict[str, str]) -> SendResult:
        """POST `body`; never follows redirects; a refused target, a timeout or a network
        error is a result with an `error`, not an exception."""
        ...


class WebhookSigner(Protocol):
    def headers(
        self, message_id: str, body: str, secrets: Sequence[str], at: datetime
    ) -> dict[str, str]:
        """`webhook-id`, `webhook-timestamp` and `webhook-signature` (one signature per
        secret, space-separated)."""
        ...
