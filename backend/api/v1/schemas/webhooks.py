"""Request and response bodies of /webhooks (admin). Secrets appear only in the answers of
create and rotate."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, Field, StringConstraints

from backend.api.v1.schemas.common import NOT_BLANK, StrictModel
from backend.domain.webhooks import DeliveryAttempt, WebhookDelivery, WebhookEndpoint

EventType = Literal["order.created", "order.status_changed"]
WebhookUrl = Annotated[
    str,
    Field(
        min_length=8,
        max_length=2048,
        pattern=r"^[hH][tT][tT][pP][sS]?://[^\s\u0000]+$",
        examples=["https://hooks.example.com/orderflow"],
        description="http(s) URL of the receiver. Its host must resolve only to public "
        "addresses (private, loopback, link-local, CGNAT, multicast, reserved, ULA and "
        "IPv4-mapped addresses, and numeric host spellings such as `2130706433`, are refused "
        "with 422 `unsafe-webhook-target` unless the server allows private targets).",
    ),
]
Description = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500), *NOT_BLANK
]


class WebhookCreateIn(StrictModel):
    url: WebhookUrl
    event_types: list[EventType] = Field(min_length=1, max_length=10)
    description: Description | None = None


class WebhookOut(BaseModel):
    id: str
    url: str
    event_types: list[str]
    description: str | None
    enabled: bool
    disabled_at: datetime | None
    disabled_reason: str | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, endpoint: WebhookEndpoint) -> WebhookOut:
        return cls(
            id=endpoint.id,
            url=endpoint.url,
            event_types=list(endpoint.event_types),
            description=endpoint.description,
            enabled=endpoint.enabled,
            disabled_at=endpoint.disabled_at,
            disabled_reason=endpoint.disabled_reason,
            created_at=endpoint.created_at,
            updated_at=endpoint.updated_at or endpoint.created_at,
        )


class WebhookCreatedOut(WebhookOut):
    secret: str = Field(
        description="`whsec_` + base64 of 32 random bytes: shown only here, store it now.",
        examples=["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"],
    )

    @classmethod
    def created(cls, endpoint: WebhookEndpoint) -> WebhookCreatedOut:
        return cls(**WebhookOut.of(endpoint).model_dump(), secret=endpoint.secret)


class WebhookSecretOut(BaseModel):
    id: str
    secret: str = Field(description="The new secret: shown only here.")
    previous_secret_expires_at: datetime | None = Field(
        description="Until then deliveries are signed with the previous secret too."
    )


class WebhookEnabledOut(WebhookOut):
    replayed: int = Field(description="Failed deliveries of the disabled stretch sent again.")


class WebhookPageOut(BaseModel):
    items: list[WebhookOut]
    total: int
    limit: int
    offset: int


class AttemptOut(BaseModel):
    number: int
    at: datetime
    response_status: int | None
    latency_ms: float
    error: str | None
    response_excerpt: str | None = Field(description="The first KB of the response body.")

    @classmethod
    def of(cls, attempt: DeliveryAttempt) -> AttemptOut:
        return cls(
            number=attempt.number,
            at=attempt.at,
            response_status=attempt.response_status,
            latency_ms=attempt.latency_ms,
            error=attempt.error,
            response_excerpt=attempt.response_excerpt,
        )


class DeliveryOut(BaseModel):
    id: str
    event_id: str = Field(description="Also the `webhook-id` header of every attempt.")
    event_type: str
    attempt: int = Field(description="Attempts made so far (replays included).")
    status: Literal["pending", "succeeded", "failed"]
    response_status: int | None
    error: str | None
    latency_ms: float | None
    response_excerpt: str | None = Field(description="The first KB of the last response.")
    next_attempt_at: datetime | None
    created_at: datetime
    updated_at: datetime
    attempts: list[AttemptOut] = Field(description="Every attempt, oldest first.")

    @classmethod
    def of(cls, delivery: WebhookDelivery) -> DeliveryOut:
        return cls(
            id=delivery.id,
            event_id=delivery.event_id,
            event_type=delivery.event_type,
            attempt=delivery.attempt,
            status=delivery.status.value,
            response_status=delivery.response_status,
            error=delivery.error,
            latency_ms=delivery.latency_ms,
            response_excerpt=delivery.response_excerpt,
            next_attempt_at=delivery.next_attempt_at,
            created_at=delivery.created_at,
            updated_at=delivery.updated_at or delivery.created_at,
            attempts=[AttemptOut.of(a) for a in delivery.attempts],
        )


class DeliveryPageOut(BaseModel):
    items: list[DeliveryOut]
    total: int
    limit: int
    offset: int


class ReplayFailedIn(StrictModel):
    since: AwareDatetime = Field(
        description="Deliveries that failed at or after this time (with its UTC offset) are "
        "sent again.",
        examples=["2026-12-03T08:00:00Z"],
    )


class ReplayedOut(BaseModel):
    replayed: int
