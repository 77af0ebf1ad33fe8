"""SQL repositories of in-app notifications and stream tickets."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, insert, select, update

from backend.domain.notifications import (
    NewNotification,
    Notification,
    NotificationPage,
    NotificationQuery,
)
from backend.infrastructure.db.repositories.base import SqlRepository
from backend.infrastructure.db.tables import notifications, stream_tickets, users

n = notifications.c


def _notification(row: Any) -> Notification:
    return Notification(
        id=int(row["id"]),
        user_id=row["user_id"],
        event_id=row["event_id"],
        type=row["type"],
        title=row["title"],
        body=row["body"],
        data=dict(row["data"]),
        read_at=row["read_at"],
        created_at=row["created_at"],
    )


class SqlNotificationRepository(SqlRepository):
    async def lock_recipient(self, user_id: str) -> bool:
        return bool(await self.lock_recipients([user_id]))

    async def lock_recipients(self, user_ids: Sequence[str]) -> set[str]:
        # FOR NO KEY UPDATE: writers of these users' notifications queue behind each other,
        # while foreign-key checks of other tables (FOR KEY SHARE) are not blocked; ordered
        # by id so two batches lock their common users in the same order. SQLite has one
        # writer at a time anyway (BEGIN IMMEDIATE) and renders no lock clause.
        if not user_ids:
            return set()
        found = await self._conn.execute(
            select(users.c.id)
            .where(users.c.id.in_(sorted(set(user_ids))))
            .order_by(users.c.id)
            .with_for_update(key_share=True)
        )
        return {str(user_id) for user_id in found.scalars()}

    async def add(self, notification: NewNotification) -> Notification | None:
        made = await self.add_many([notification])
        return made[0] if made else None

    async def add_many(self, new: Sequence[NewNotification]) -> list[Notification]:
        rows = [
            {
                "user_id": x.user_id,
                "event_id": x.event_id,
                "type": x.type,
                "title": x.title,
                "body": x.body,
                "data": x.data,
                "created_at": x.created_at,
            }
            for x in new
        ]
        # One multi-row VALUES: the ids are drawn in row order; RETURNING names the rows
        # made (a conflicting pair made none), matched back by (event, user).
        inserted = await self.insert_new(
            notifications, ["event_id", "user_id"], rows, n.id, n.event_id, n.user_id
        )
        made = {(str(row.event_id), str(row.user_id)): int(row.id) for row in inserted}
        out = []
        for row in rows:
            new_id = made.get((str(row["event_id"]), str(row["user_id"])))
            if new_id is not None:
                out.append(_notification({**row, "id": new_id, "read_at": None}))
        return sorted(out, key=lambda x: x.id)

    async def page(self, query: NotificationQuery) -> NotificationPage:
        where = [n.user_id == query.user_id]
        if query.unread_only:
            where.append(n.read_at.is_(None))
        total = (
            await self._conn.execute(select(func.count()).select_from(notifications).where(*where))
        ).scalar_one()
        rows = (
            await self._conn.execute(
                select(notifications)
                .where(*where)
                .order_by(n.id.desc())
                .limit(query.limit)
                .offset(query.offset)
            )
        ).mappings()
        return NotificationPage(items=[_notification(row) for row in rows], total=int(total))

    async def after(self, user_id: str, after_id: int, limit: int) -> list[Notification]:
        rows = (
            await self._conn.execute(
                select(notifications)
                .where(n.user_id == user_id, n.id > after_id)
                .order_by(n.id)
                .limit(limit)
            )
        ).mappings()
        return [_notification(row) for row in rows]

    async def get(self, user_id: str, notification_id: int) -> Notification | None:
        row = (
            (
                await self._conn.execute(
                    select(notifications).where(n.id == notification_id, n.user_id == user_id)
                )
            )
            .mappings()
            .first()
        )
        return _notification(row) if row else None

    async def mark_read(self, user_id: str, notification_id: int, at: datetime) -> bool:
        await self._conn.execute(
            update(notifications)
            .where(n.id == notification_id, n.user_id == user_id, n.read_at.is_(None))
            .values(read_at=at)
        )
        return await self.get(user_id, notification_id) is not None

    async def mark_all_read(self, user_id: str, at: datetime) -> int:
        result = await self._conn.execute(
            update(notifications)
            .where(n.user_id == user_id, n.read_at.is_(None))
            .values(read_at=at)
        )
        return int(result.rowcount)

    async def latest(self, limit_after: int, limit: int) -> list[tuple[int, str]]:
        rows = await self._conn.execute(
            select(n.id, n.user_id).where(n.id > limit_after).order_by(n.id).limit(limit)
        )
        return [(int(row.id), str(row.user_id)) for row in rows]

    async def max_id(self) -> int:
        value = (await self._conn.execute(select(func.max(n.id)))).scalar()
        return int(value or 0)


class SqlStreamTicketRepository(SqlRepository):
    async def add(
        self, token_hash: str, user_id: str, *, created_at: datetime, expires_at: datetime
    ) -> None:
        await self._conn.execute(
            insert(stream_tickets).values(
                token_hash=token_hash,
                user_id=user_id,
                created_at=created_at,
                expires_at=expires_at,
            )
        )

    async def redeem(self, token_hash: str, now: datetime) -> str | None:
        t = stream_tickets.c
        # One statement: two requests racing with one ticket cannot both get it.
        result = await self._conn.execute(
            delete(stream_tickets)
            .where(t.token_hash == token_hash, t.expires_at > now)
            .returning(t.user_id)
        )
        user_id = result.scalar()
        return str(user_id) if user_id is not None else None

    async def purge(self, expired_before: datetime, limit: int) -> int:
        t = stream_tickets.c
        doomed = (
            select(t.token_hash).where(t.expires_at < expired_before).order_by(t.expires_at)
        ).limit(limit)
        hashes = list((await self._conn.execute(doomed)).scalars())
        if not hashes:
            return 0
        result = await self._conn.execute(delete(stream_tickets).where(t.token_hash.in_(hashes)))
        return int(result.rowcount)
