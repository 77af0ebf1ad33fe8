"""Domain events. Written to the outbox in the same transaction as the change."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

ORDER_CREATED = "order.created"
ORDER_STATUS_CHANGED = "order.status_changed"
EVENT_TYPES = (ORDER_CREATED, ORDER_STATUS_CHANGED)  # the public ones (notifications, webhooks)
# Internal: an admin asked to validate a pending order now. It travels through the outbox
# like every event so the validation runs in the consumer, deduplicated; it is never
# shown to users or sent to webhooks.
ORDER_VALIDATION_REQUESTED = "order.validation_requested"


@dataclass(frozen=True, slots=True)
class DomainEvent:
    type: str
    aggregate_type: str
    aggregate_id: str
    payload: dict[str, Any]
    id: str = field(default_factory=lambda: str(uuid.uuid4()))
    occurred_at: datetime = field(default_factory=lambda: datetime.now(UTC))


@dataclass(frozen=True, slots=True)
class OutboxRecord:
    """An event as stored in the outbox, with its relay state."""

    event: DomainEvent
    attempts: int
    published_at: datetime | None
    request_id: str | None = None  # of the API request that caused it, for the worker's logs
