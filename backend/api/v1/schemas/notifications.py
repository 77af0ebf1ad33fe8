"""Response bodies of /notifications, and the shape of a notification id in a request."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, Field

from backend.domain.notifications import Notification

# Ids are opaque strings (API.md); a notification's is its sequence number in decimal, the
# same value as the stream's event `id`. Eighteen digits stay below 2**63.
SEQUENCE_PATTERN = r"^(0|[1-9][0-9]{0,17})$"
NOTIFICATION_ID_PATTERN = r"^[1-9][0-9]{0,17}$"
SequenceText = Annotated[str, Field(pattern=SEQUENCE_PATTERN, examples=["42"])]


def without_null(schema: dict[str, Any]) -> None:
    """Document an optional header as the value it takes when sent (`anyOf` minus null)."""
    branches = [branch for branch in schema.pop("anyOf", []) if branch.get("type") != "null"]
    if len(branches) == 1:
        schema.update(branches[0])
    elif branches:
        schema["anyOf"] = branches


class NotificationOut(BaseModel):
    id: str = Field(examples=["42"], description="Also the stream's event `id`.")
    event_id: str
    type: str = Field(examples=["order.status_changed"])
    title: str
    body: str
    data: dict[str, Any]
    read_at: datetime | None
    created_at: datetime

    @classmethod
    def of(cls, notification: Notification) -> NotificationOut:
        return cls(
            id=str(notification.id),
            event_id=notification.event_id,
            type=notification.type,
            title=notification.title,
            body=notification.body,
            data=notification.data,
            read_at=notification.read_at,
            created_at=notification.created_at,
        )


class NotificationPageOut(BaseModel):
    items: list[NotificationOut]
    total: int
    limit: int
    offset: int


class StreamTicketOut(BaseModel):
    ticket: str = Field(description="Spend it once: `GET /api/v1/notifications/stream?ticket=`.")
    expires_at: datetime
