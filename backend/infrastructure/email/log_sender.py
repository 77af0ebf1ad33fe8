"""The embedded mode's mail: written to the log instead of sent (no SMTP_HOST)."""

from __future__ import annotations

from backend.core.logging import get_logger
from backend.domain.email import EmailMessage

log = get_logger(__name__)


class LogEmailSender:
    async def send(self, message: EmailMessage) -> None:
        log.info(
            "email_logged",
            recipient=message.recipient,
            subject=message.subject,
            message_id=message.message_id,
            text=message.text,
        )
