"""Fake notification, stream-ticket and email-send repositories (transactional like the
SQL ones: a rollback restores what `_begin` saw)."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from backend.domain.email import EmailSend, EmailStatus
from backend.domain.notifications import (
    NewNotification,
    Notification,
    NotificationPage,
    NotificationQuery,
)


class _Snapshotting:
    _state: tuple[str, ...] = ()

    def _begin(self) -> None:
        self._snapshot = {name: copy.copy(getattr(self, name)) for name in self._state}

    def _commit(self) -> None:
        self._snapshot: dict[str, Any] | None = None

    def _rollback(self) -> None:
        for name, value in (getattr(self, "_snapshot", None) or {}).items():
            setattr(self, name, value)
        self._snapshot = None


class FakeNotificationRepository(_Snapshotting):
    _state = ("rows", "next_id")

    def __init__(self) -> None:
        self.rows: dict[int, Notification] = {}
        self.next_id = 1
        self.locked: list[str] = []
        self.missing_users: set[str] = set()  # lock_recipient finds no such user

    async def lock_recipient(self, user_id: str) -> bool:
        self.locked.append(user_id)
        return user_id not in self.missing_users

    async def lock_recipients(self, user_ids: Sequence[str]) -> set[str]:
        return {u for u in sorted(set(user_ids)) if await self.lock_recipient(u)}

    async def add_many(self, notifications: Sequence[NewNotification]) -> list[Notification]:
        made = [await self.add(n) for n in notifications]
        return [n for n in made if n is not None]

    async def add(self, notification: NewNotification) -> Notification | None:
        if any(
            (n.event_id, n.user_id) == (notification.event_id, notification.user_id)
            for n in self.rows.values()
        ):
            return None
        made = Notification(id=self.next_id, read_at=None, **vars_of(notification))
        self.rows[made.id] = made
        self.next_id += 1
        return made

    def _of(self, user_id: str) -> list[Notification]:
        return sorted((n for n in self.rows.values() if n.user_id == user_id), key=lambda n: n.id)

    async def page(self, query: NotificationQuery) -> NotificationPage:
        mine = [n for n in self._of(query.user_id) if not query.unread_only or n.read_at is None]
        mine.reverse()
        return NotificationPage(mine[query.offset : query.offset + query.limit], len(mine))

    async def after(self, user_id: str, after_id: int, limit: int) -> list[Notification]:
        return [n for n in self._of(user_id) if n.id > after_id][:limit]

    async def get(self, user_id: str, notification_id: int) -> Notification | None:
        found = self.rows.get(notification_id)
        return found if found is not None and found.user_id == user_id else None

    async def mark_read(self, user_id: str, notification_id: int, at: datetime) -> bool:
        found = await self.get(user_id, notification_id)
        if found is None:
            return False
        if found.read_at is None:
            self.rows[notification_id] = replace(found, read_at=at)
        return True

    async def mark_all_read(self, user_id: str, at: datetime) -> int:
        unread = [n for n in self._of(user_id) if n.read_at is None]
        for n in unread:
            self.rows[n.id] = replace(n, read_at=at)
        return len(unread)

    async def latest(self, limit_after: int, limit: int) -> list[tuple[int, str]]:
        return [(i, self.rows[i].user_id) for i in sorted(self.rows) if i > limit_after][:limit]

    async def max_id(self) -> int:
        return max(self.rows, default=0)


def vars_of(notification: NewNotification) -> dict[str, Any]:
    return {
        "user_id": notification.user_id,
        "event_id": notification.event_id,
        "type": notification.type,
        "title": notification.title,
        "body": notification.body,
        "data": notification.data,
        "created_at": notification.created_at,
    }


class FakeStreamTicketRepository(_Snapshotting):
    _state = ("tickets",)

    def __init__(self) -> None:
        self.tickets: dict[str, tuple[str, datetime]] = {}

    async def add(
        self, token_hash: str, user_id: str, *, created_at: datetime, expires_at: datetime
    ) -> None:
        self.tickets[token_hash] = (user_id, expires_at)

    async def redeem(self, token_hash: str, now: datetime) -> str | None:
        found = self.tickets.pop(token_hash, None)
        return found[0] if found is not None and found[1] > now else None

    async def purge(self, expired_before: datetime, limit: int) -> int:
        doomed = sorted(h for h, (_, at) in self.tickets.items() if at < expired_before)[:limit]
        for token_hash in doomed:
            del self.tickets[token_hash]
        return len(doomed)


class FakeEmailSendRepository(_Snapshotting):
    _state = ("sends",)

    def __init__(self) -> None:
        self.sends: dict[str, EmailSend] = {}

    async def add(self, send: EmailSend) -> bool:
        key = (send.event_id, send.template)
        if any((s.event_id, s.template) == key for s in self.sends.values()):
            return False
        self.sends[send.id] = send
        return True

    async def add_many(self, sends: Sequence[EmailSend]) -> list[str]:
        return [send.id for send in sends if await self.add(send)]

    async def get(self, send_id: str) -> EmailSend | None:
        return self.sends.get(send_id)

    def _due(self, send: EmailSend, now: datetime) -> bool:
        due_at = send.next_attempt_at
        return send.status is EmailStatus.PENDING and due_at is not None and due_at <= now

    async def claim(self, send_id: str, now: datetime, lease_until: datetime) -> EmailSend | None:
        send = self.sends.get(send_id)
        if send is None or not self._due(send, now):
            return None
        self.sends[send_id] = replace(send, next_attempt_at=lease_until)
        return self.sends[send_id]

    async def due_ids(self, now: datetime, limit: int) -> list[str]:
        due = [s for s in self.sends.values() if self._due(s, now)]
        return [s.id for s in sorted(due, key=lambda s: s.next_attempt_at or now)][:limit]

    async def record_sent(self, send_id: str, attempts: int, at: datetime) -> None:
        self._set(send_id, status=EmailStatus.SENT, attempts=attempts, sent_at=at,
                  next_attempt_at=None, last_error=None)  # fmt: skip

    async def record_retry(
        self, send_id: str, attempts: int, next_attempt_at: datetime, error: str
    ) -> None:
        self._set(send_id, attempts=attempts, next_attempt_at=next_attempt_at, last_error=error)

    async def record_failed(self, send_id: str, attempts: int, error: str) -> None:
        self._set(send_id, status=EmailStatus.FAILED, attempts=attempts, next_attempt_at=None,
                  last_error=error)  # fmt: skip

    def _set(self, send_id: str, **changes: Any) -> None:
        self.sends[send_id] = replace(self.sends[send_id], **changes)
