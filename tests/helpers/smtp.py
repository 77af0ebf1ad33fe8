"""A real SMTP server for tests: aiosmtpd on 127.0.0.1, on a free port, with scripted
answers."""

from __future__ import annotations

import email
from collections.abc import Iterator
from contextlib import contextmanager
from email.message import Message
from typing import Any

from aiosmtpd.controller import Controller

from tests.e2e.processes import free_port


class Mailbox:
    """An aiosmtpd handler that answers DATA with the next scripted reply (250 when none is
    left) and keeps every message it accepted."""

    def __init__(self, *replies: str, refuse_recipient: str | None = None) -> None:
        self.replies = list(replies)
        self.refuse_recipient = refuse_recipient
        self.accepted: list[tuple[list[str], Message]] = []
        self.attempts = 0

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: Any
    ) -> str:
        if self.refuse_recipient:
            self.attempts += 1
            return self.refuse_recipient
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.attempts += 1
        reply = self.replies.pop(0) if self.replies else "250 Message accepted"
        if reply.startswith("250"):
            parsed = email.message_from_bytes(envelope.content)
            self.accepted.append((list(envelope.rcpt_tos), parsed))
        return reply


@contextmanager
def smtp_server(mailbox: Mailbox) -> Iterator[int]:
    """aiosmtpd answering with `mailbox`; the port it listens on."""
    port = free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port
    finally:
        controller.stop()
