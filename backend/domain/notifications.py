"""In-app notifications and their live stream: entities, errors and repository ports."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from backend.domain.errors import NotAuthenticated, NotFound, RateLimited


@dataclass(frozen=True, slots=True)
class NewNotification:
    """What a consumer writes; the repository gives it its sequence id."""

    user_id: str
    event_id: str
    type: str
    title: str
    body: str
    data: dict[str, Any]
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Notification:
    """`id` grows with every notification and is never reused: the stream's event id."""

    id: int
    user_id: str
    event_id: str
    type: str
    title: str
    body: str
    data: dict[str, Any]
    read_at: datetime | None
    created_at: datetime


@dataclass(frozen=True, slots=True)
class NotificationQuery:
    user_id: str
    unread_only: bool = False
    limit: int = 20
    offset: int = 0


@dataclass(frozen=True, slots=True)
class NotificationPage:
    items: list[Notification] = field(default_factory=list)
    total: int = 0


class NotificationNotFound(NotFound):
    slug = "not-found"
    title = "Notification not found"

    def __init__(self, notification_id: int) -> None:
        super().__init__(f"No notification {notification_id}.")


class StreamTicketInvalid(NotAuthenticated):
    slug = "invalid-stream-ticket"
    title = "Invalid stream ticket"

    def __init__(self) -> None:
        super().__init__(
            "The stream ticket is unknown, expired or already used: "
            "get a new one from POST /api/v1/notifications/stream-ticket."
        )


class TooManyStreams(RateLimited):
    slug = "too-many-streams"
    title = "Too many open streams"

    def __init__(self, limit: int, retry_after: int) -> None:
        super().__init__(
            f"At most {limit} notification streams may be open per user; close one first.",
            retry_after=retry_after,
        )


class NotificationRepository(Protocol):
    async def lock_recipient(self, user_id: str) -> bool:
        """Serialise the writers of one user's notifications until the unit of work ends,
        so that user's ids are committed in increasing order (a reader that has seen id n
        will never later find a smaller one appear). False when there is no such user."""
        ...

    async def lock_recipients(self, user_ids: Sequence[str]) -> set[str]:
        """`lock_recipient` for several users at once (in one order, so two writers never
        wait on each other crosswise); the ids of those that exist."""
        ...

    async def add(self, notification: NewNotification) -> Notification | None:
        """None when this event already made a notification for this user."""
        ...

    async def add_many(self, notifications: Sequence[NewNotification]) -> list[Notification]:
        """`add` for each, in order, in one statement: the ones made (ids increase in the
        given order)."""
        ...

    async def page(self, query: NotificationQuery) -> NotificationPage:
        """Newest first."""
        ...

    async def after(self, user_id: str, after_id: int, limit: int) -> list[Notification]:
        """The user's notifications with an id above `after_id`, oldest first."""
        ...

    async def mark_read(self, user_id: str, notification_id: int, at: datetime) -> bool:
        """False when the user has no such notification (already read is fine)."""
        ...

    async def get(self, user_id: str, notification_id: int) -> Notification | None: ...

    async def mark_all_read(self, user_id: str, at: datetime) -> int: ...

    async def latest(self, limit_after: int, limit: int) -> list[tuple[int, str]]:
        """(id, user id) of up to `limit` notifications with an id above `limit_after`,
        oldest first: what an in-process tail wakes streams with."""
        ...

    async def max_id(self) -> int:
        """The highest id so far (0 when there is none)."""
        ...


class StreamTicketRepository(Protocol):
    async def add(
        self, token_hash: str, user_id: str, *, created_at: datetime, expires_at: datetime
    ) -> None: ...

    async def redeem(self, token_hash: str, now: datetime) -> str | None:
        """Delete the ticket and return its user id, if it exists and has not expired."""
        ...

    async def purge(self, expired_before: datetime, limit: int) -> int: ...


class NotificationSignal(Protocol):
    """Tells every API process that these users have new committed notifications; called
    after commit. Best effort: streams also re-read the database now and then."""

    async def notify(self, user_ids: Sequence[str]) -> None: ...


class StreamWakeup(Protocol):
    """One open stream's doorbell."""

    @property
    def closed(self) -> bool:
        """The process is shutting down: the stream should end."""
        ...

    async def wait(self, timeout: float) -> bool:
        """Return when rung or closed (True), or after `timeout` seconds (False)."""
        ...


class StreamRegistry(Protocol):
    def acquire(self, user_id: str) -> StreamWakeup:
        """A doorbell for one stream of `user_id`, rung when the user may have new
        notifications; raises `TooManyStreams` past the per-user limit."""
        ...

    def release(self, wakeup: StreamWakeup) -> None:
        """The stream ended (idempotent)."""
        ...
