"""Endpoint and delivery rules: rotation overlap, retries with backoff, giving up, 410,
disabling after a long failing stretch and re-enabling with the gap to replay."""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta

from backend.domain.events import DomainEvent
from backend.domain.webhooks import (
    ENDPOINT_DISABLED,
    DeliveryStatus,
    RetryPolicy,
    SendResult,
    WebhookDelivery,
    WebhookEndpoint,
    generate_secret,
    webhook_body,
)

NOW = datetime(2026, 12, 3, 8, 0, tzinfo=UTC)
POLICY = RetryPolicy(max_attempts=3, base_delay=timedelta(seconds=10), factor=4)


def endpoint(**changes: object) -> WebhookEndpoint:
    values: dict[str, object] = {
        "url": "https://hooks.example.com/",
        "event_types": ("order.created",),
        "secret": generate_secret(),
        "created_at": NOW,
    }
    values.update(changes)
    return WebhookEndpoint(**values)  # type: ignore[arg-type]


def event() -> DomainEvent:
    return DomainEvent(
        type="order.created",
        aggregate_type="order",
        aggregate_id="o1",
        payload={"order_id": "o1", "total": "10.00"},
        occurred_at=NOW,
    )


def delivery(target: WebhookEndpoint | None = None) -> WebhookDelivery:
    return WebhookDelivery.of_event(event(), target or endpoint(), NOW, POLICY.max_attempts)


def status(code: int | None, **extra: object) -> SendResult:
    return SendResult(response_status=code, latency_ms=5.0, **extra)  # type: ignore[arg-type]


def test_the_body_is_the_standard_envelope_of_the_event() -> None:
    e = event()
    assert json.loads(webhook_body(e)) == {
        "id": e.id,
        "type": "order.created",
        "timestamp": "2026-12-03T08:00:00+00:00",
        "data": {"order_id": "o1", "total": "10.00"},
    }


def test_after_rotation_both_secrets_sign_until_the_overlap_ends() -> None:
    target = endpoint()
    old = target.secret
    target.rotate("whsec_new", NOW, timedelta(hours=24))
    assert target.signing_secrets(NOW + timedelta(hours=23)) == ["whsec_new", old]
    assert target.signing_secrets(NOW + timedelta(hours=24)) == ["whsec_new"]


def test_500_500_200_succeeds_on_the_third_attempt_with_growing_delays() -> None:
    d, rng = delivery(), random.Random(7)
    first = d.record(status(500, error="HTTP 500"), NOW, POLICY, rng)
    assert (d.status, first.number) == (DeliveryStatus.PENDING, 1)
    assert d.next_attempt_at is not None
    assert timedelta(seconds=5) <= d.next_attempt_at - NOW <= timedelta(seconds=10)
    later = NOW + timedelta(seconds=10)
    d.record(status(500, error="HTTP 500"), later, POLICY, rng)
    assert d.next_attempt_at is not None
    assert timedelta(seconds=20) <= d.next_attempt_at - later <= timedelta(seconds=40)
    third = d.record(status(200), later, POLICY, rng)
    assert (d.status, d.attempt, third.number) == (DeliveryStatus.SUCCEEDED, 3, 3)
    assert d.next_attempt_at is None


def test_the_last_allowed_failure_fails_the_delivery() -> None:
    d = delivery()
    for _ in range(POLICY.max_attempts):
        d.record(status(None, error="timed out"), NOW, POLICY, None)
    assert (d.status, d.attempt, d.next_attempt_at) == (DeliveryStatus.FAILED, 3, None)
    d.replay(NOW, POLICY.max_attempts)
    assert (d.status, d.attempts_left, d.next_attempt_at) == (DeliveryStatus.PENDING, 3, NOW)


def test_410_fails_at_once_and_3xx_is_a_failure_to_retry() -> None:
    gone = delivery()
    gone.record(status(410, error="HTTP 410"), NOW, POLICY, None)
    assert gone.status is DeliveryStatus.FAILED
    moved = delivery()
    moved.record(status(301, error="HTTP 301"), NOW, POLICY, None)
    assert moved.status is DeliveryStatus.PENDING


def test_retry_after_is_honoured_when_longer_than_the_backoff_up_to_its_ceiling() -> None:
    d = delivery()
    d.record(status(429, retry_after=120.0), NOW, POLICY, None)
    assert d.next_attempt_at == NOW + timedelta(seconds=120)
    capped = delivery()
    capped.record(status(503, retry_after=10**9), NOW, POLICY, None)
    assert capped.next_attempt_at == NOW + POLICY.max_delay


def test_backoff_is_capped_and_jittered() -> None:
    policy = RetryPolicy(base_delay=timedelta(seconds=30), factor=4, max_delay=timedelta(hours=1))
    delays = {policy.delay(10, random.Random(seed)) for seed in range(20)}
    assert all(timedelta(minutes=30) <= d <= timedelta(hours=1) for d in delays)
    assert len(delays) > 1


def test_an_endpoint_failing_past_the_limit_is_disabled_and_enable_returns_the_gap() -> None:
    target = endpoint()
    limit = timedelta(days=5)
    assert target.record_failure(NOW, limit) is False
    assert target.record_failure(NOW + timedelta(days=4), limit) is False
    assert target.record_failure(NOW + timedelta(days=5), limit) is True
    assert not target.enabled
    assert target.disabled_reason is not None
    assert target.enable(NOW + timedelta(days=6)) == NOW
    assert target.enabled
    assert target.enable(NOW + timedelta(days=6)) is None


def test_a_success_ends_the_failing_stretch() -> None:
    target = endpoint()
    target.record_failure(NOW, timedelta(days=5))
    target.record_success(NOW + timedelta(days=1))
    assert target.record_failure(NOW + timedelta(days=6), timedelta(days=5)) is False
    assert target.enabled


def test_an_event_for_a_disabled_endpoint_is_recorded_failed_for_the_gap_replay() -> None:
    target = endpoint()
    target.disable("HTTP 410", NOW)
    d = delivery(target)
    assert (d.status, d.error, d.attempt) == (DeliveryStatus.FAILED, ENDPOINT_DISABLED, 0)
