"""Email: one recorded send per (event, template), its delivery state, and the ports of the
renderer and the sender."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol


class EmailStatus(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class RenderedEmail:
    subject: str
    text: str
    html: str


@dataclass(frozen=True, slots=True)
class EmailMessage:
    recipient: str
    subject: str
    text: str
    html: str
    # Derived from (event id, template): a resend after a lost answer carries the same id,
    # so mail systems that dedup on Message-ID show the mail once.
    message_id: str


@dataclass(frozen=True, slots=True)
class EmailSend:
    id: str
    event_id: str
    template: str
    message: EmailMessage
    status: EmailStatus
    attempts: int
    next_attempt_at: datetime | None
    last_error: str | None
    created_at: datetime
    sent_at: datetime | None = None


class EmailDeliveryFailed(Exception):
    """The SMTP server or the network refused a mail. `permanent`: a 5xx answer, sending the
    same mail again cannot succeed; otherwise (4xx, timeouts, refused connections) it may."""

    def __init__(self, reason: str, *, permanent: bool, code: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent
        self.code = code


class EmailSender(Protocol):
    async def send(self, message: EmailMessage) -> None:
        """Deliver `message` or raise `EmailDeliveryFailed`."""
        ...


class EmailRenderer(Protocol):
    def render(self, template: str, context: Mapping[str, Any]) -> RenderedEmail: ...


@dataclass(frozen=True, slots=True)
class RetrySchedule:
    """Exponential backoff: `base`, 2 x base, 4 x base... capped at `cap`, `max_attempts` in all."""

    max_attempts: int = 6
    base: timedelta = timedelta(seconds=30)
    cap: timedelta = timedelta(hours=1)

    def delay_after(self, attempts: int) -> timedelta | None:
        """How long to wait after `attempts` failed attempts; None: give up."""
        if attempts >= self.max_attempts:
            return None
        delay: timedelta = self.base * (2 ** max(0, attempts - 1))
        return min(self.cap, delay)


class EmailSendRepository(Protocol):
    async def add(self, send: EmailSend) -> bool:
        """False when a send of this (event, template) is already recorded."""
        ...

    async def add_many(self, sends: Sequence[EmailSend]) -> list[str]:
        """`add` for each in one statement: the ids of the sends recorded now."""
        ...

    async def get(self, send_id: str) -> EmailSend | None: ...

    async def claim(self, send_id: str, now: datetime, lease_until: datetime) -> EmailSend | None:
        """Take a pending send that is due: its next attempt moves to `lease_until`, so no
        other worker takes it meanwhile (a worker that dies leaves it due again then)."""
        ...

    async def due_ids(self, now: datetime, limit: int) -> list[str]:
        """Ids of up to `limit` pending sends due at `now`, oldest due first."""
        ...

    async def record_sent(self, send_id: str, attempts: int, at: datetime) -> None: ...

    async def record_retry(
        self, send_id: str, attempts: int, next_attempt_at: datetime, error: str
    ) -> None: ...

    async def record_failed(self, send_id: str, attempts: int, error: str) -> None: ...
