"""SQL repository of email sends: one row per (event, template) with its delivery state."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select, update

from backend.domain.email import EmailMessage, EmailSend, EmailStatus
from backend.infrastructure.db.repositories.base import SqlRepository
from backend.infrastructure.db.tables import email_sends

e = email_sends.c
ERROR_LENGTH = 500


def _send(row: Any) -> EmailSend:
    return EmailSend(
        id=row["id"],
        event_id=row["event_id"],
        template=row["template"],
        message=EmailMessage(
            recipient=row["recipient"],
            subject=row["subject"],
            text=row["text_body"],
            html=row["html_body"],
            message_id=row["message_id"],
        ),
        status=EmailStatus(row["status"]),
        attempts=int(row["attempts"]),
        next_attempt_at=row["next_attempt_at"],
        last_error=row["last_error"],
        created_at=row["created_at"],
        sent_at=row["sent_at"],
    )


class SqlEmailSendRepository(SqlRepository):
    async def add(self, send: EmailSend) -> bool:
        return bool(await self.add_many([send]))

    async def add_many(self, sends: Sequence[EmailSend]) -> list[str]:
        rows = [
            {
                "id": send.id,
                "event_id": send.event_id,
                "template": send.template,
                "recipient": send.message.recipient,
                "subject": send.message.subject,
                "text_body": send.message.text,
                "html_body": send.message.html,
                "message_id": send.message.message_id,
                "status": send.status.value,
                "attempts": send.attempts,
                "next_attempt_at": send.next_attempt_at,
                "last_error": send.last_error,
                "created_at": send.created_at,
            }
            for send in sends
        ]
        made = await self.insert_new(email_sends, ["event_id", "template"], rows, e.id)
        recorded = {str(row.id) for row in made}
        return [send.id for send in sends if send.id in recorded]

    async def get(self, send_id: str) -> EmailSend | None:
        row = (
            (await self._conn.execute(select(email_sends).where(e.id == send_id)))
            .mappings()
            .first()
        )
        return _send(row) if row else None

    async def claim(self, send_id: str, now: datetime, lease_until: datetime) -> EmailSend | None:
        # A conditional UPDATE is the claim: of two workers, one moves the due time and
        # the other's WHERE no longer matches.
        result = await self._conn.execute(
            update(email_sends)
            .where(
                e.id == send_id,
                e.status == EmailStatus.PENDING.value,
                e.next_attempt_at <= now,
            )
            .values(next_attempt_at=lease_until)
        )
        if not result.rowcount:
            return None
        return await self.get(send_id)

    async def due_ids(self, now: datetime, limit: int) -> list[str]:
        rows = await self._conn.execute(
            select(e.id)
            .where(e.status == EmailStatus.PENDING.value, e.next_attempt_at <= now)
            .order_by(e.next_attempt_at)
            .limit(limit)
        )
        return [str(value) for value in rows.scalars()]

    async def record_sent(self, send_id: str, attempts: int, at: datetime) -> None:
        await self._set(
            send_id,
            status=EmailStatus.SENT.value,
            attempts=attempts,
            next_attempt_at=None,
            last_error=None,
            sent_at=at,
        )

    async def record_retry(
        self, send_id: str, attempts: int, next_attempt_at: datetime, error: str
    ) -> None:
        await self._set(
            send_id,
            attempts=attempts,
            next_attempt_at=next_attempt_at,
            last_error=error[:ERROR_LENGTH],
        )

    async def record_failed(self, send_id: str, attempts: int, error: str) -> None:
        await self._set(
            send_id,
            status=EmailStatus.FAILED.value,
            attempts=attempts,
            next_attempt_at=None,
            last_error=error[:ERROR_LENGTH],
        )

    async def _set(self, send_id: str, **values: Any) -> None:
        await self._conn.execute(update(email_sends).where(e.id == send_id).values(**values))
