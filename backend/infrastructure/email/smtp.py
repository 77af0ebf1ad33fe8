"""The SMTP sender (ADR 0015): standard-library `smtplib` in a worker thread, STARTTLS,
explicit timeouts, and every failure sorted into permanent (5xx) or retryable (4xx,
network, timeouts)."""

from __future__ import annotations

import asyncio
import email.policy
import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage as MimeMessage
from email.utils import format_datetime, localtime

from backend.domain.email import EmailDeliveryFailed, EmailMessage


@dataclass(frozen=True, slots=True)
class SmtpConfig:
    host: str
    port: int = 587
    sender: str = "orderflow@localhost"
    user: str | None = None
    password: str | None = None
    starttls: bool = True
    # Per socket operation (connect, each command, each read): a stalled server costs at
    # most this per step, never a hung worker.
    timeout: float = 10.0


# CRLF line ends for SMTP; headers are not folded at 78 characters (RFC 5322's hard limit
# is 998), so the Message-ID stays on its own line where every client reads it.
MIME_POLICY = email.policy.SMTP.clone(max_line_length=998)


def mime_message(message: EmailMessage, sender: str) -> MimeMessage:
    mime = MimeMessage(policy=MIME_POLICY)
    mime["From"] = sender
    mime["To"] = message.recipient
    mime["Subject"] = message.subject
    mime["Message-ID"] = message.message_id
    mime["Date"] = format_datetime(localtime())
    mime.set_content(message.text)
    mime.add_alternative(message.html, subtype="html")
    return mime


class SmtpSender:
    def __init__(self, config: SmtpConfig) -> None:
        self._config = config

    async def send(self, message: EmailMessage) -> None:
        # smtplib blocks: a worker thread keeps the event loop (and other sends) free.
        await asyncio.to_thread(self._send_blocking, mime_message(message, self._config.sender))

    def _send_blocking(self, mime: MimeMessage) -> None:
        config = self._config
        try:
            with smtplib.SMTP(config.host, config.port, timeout=config.timeout) as smtp:
                if config.starttls:
                    smtp.starttls(context=ssl.create_default_context())
                if config.user:
                    smtp.login(config.user, config.password or "")
                smtp.send_message(mime)
        except smtplib.SMTPRecipientsRefused as error:
            codes = [code for code, _ in error.recipients.values()]
            raise _refused(codes, f"recipient refused: {error.recipients}") from error
        except smtplib.SMTPResponseException as error:
            reason = f"{error.smtp_code} {_text(error.smtp_error)}"
            raise _refused([error.smtp_code], reason) from error
        except (smtplib.SMTPException, OSError) as error:  # network, timeouts, TLS, protocol
            raise EmailDeliveryFailed(
                f"{type(error).__name__}: {error}", permanent=False
            ) from error


def _refused(codes: list[int], reason: str) -> EmailDeliveryFailed:
    """Permanent only when every answer was a 5xx: a 4xx means "not now"."""
    permanent = bool(codes) and all(500 <= code < 600 for code in codes)
    return EmailDeliveryFailed(reason, permanent=permanent, code=max(codes) if codes else None)


def _text(raw: bytes | str) -> str:
    return raw.decode(errors="replace") if isinstance(raw, bytes) else str(raw)
