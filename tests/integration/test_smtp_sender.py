"""The SMTP sender against a real SMTP server (aiosmtpd on 127.0.0.1, a free port), and the
email templates."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import pytest
import structlog

from backend.domain.email import EmailDeliveryFailed, EmailMessage
from backend.infrastructure.email import (
    JinjaEmailRenderer,
    LogEmailSender,
    SmtpConfig,
    SmtpSender,
    build_sender,
    log_sender,
)
from tests.e2e.processes import free_port
from tests.helpers.smtp import Mailbox
from tests.helpers.smtp import smtp_server as start_smtp


@pytest.fixture
def smtp_server() -> Iterator[Any]:
    """`smtp_server(mailbox)` starts aiosmtpd with that handler; the port it listens on."""
    with ExitStack() as servers:
        yield lambda mailbox: servers.enter_context(start_smtp(mailbox))


def message(**changes: Any) -> EmailMessage:
    values = {
        "recipient": "alice@example.com",
        "subject": "Order 1234abcd placed",
        "text": "Hello Alice,\nyour order.",
        "html": "<p>Hello Alice, your order.</p>",
        "message_id": "<e1.order_created@orderflow.example>",
        **changes,
    }
    return EmailMessage(**values)


def sender(port: int, **changes: Any) -> SmtpSender:
    config = {"host": "127.0.0.1", "port": port, "starttls": False, "timeout": 2.0, **changes}
    return SmtpSender(SmtpConfig(**config))


async def test_the_mail_arrives_with_recipient_subject_id_and_both_parts(smtp_server: Any) -> None:
    mailbox = Mailbox()
    port = smtp_server(mailbox)
    await sender(port, sender="shop@orderflow.example").send(message())
    [(recipients, mail)] = mailbox.accepted
    assert recipients == ["alice@example.com"]
    assert mail["Subject"] == "Order 1234abcd placed"
    assert mail["From"] == "shop@orderflow.example" and mail["To"] == "alice@example.com"
    assert mail["Message-ID"] == "<e1.order_created@orderflow.example>"
    parts = {part.get_content_type(): part for part in mail.walk()}
    assert "Hello Alice" in parts["text/plain"].get_payload(decode=True).decode()
    assert "<p>Hello Alice" in parts["text/html"].get_payload(decode=True).decode()


async def test_a_4xx_answer_is_retryable_and_names_the_code(smtp_server: Any) -> None:
    mailbox = Mailbox("451 4.3.0 Try again later")
    port = smtp_server(mailbox)
    with pytest.raises(EmailDeliveryFailed) as failure:
        await sender(port).send(message())
    assert failure.value.permanent is False and failure.value.code == 451
    assert "451" in failure.value.reason and mailbox.accepted == []
    await sender(port).send(message())  # the next answer is 250
    assert len(mailbox.accepted) == 1


async def test_a_5xx_answer_is_permanent(smtp_server: Any) -> None:
    port = smtp_server(Mailbox("554 5.7.1 Rejected as spam"))
    with pytest.raises(EmailDeliveryFailed) as failure:
        await sender(port).send(message())
    assert failure.value.permanent is True and failure.value.code == 554


async def test_a_refused_recipient_is_permanent(smtp_server: Any) -> None:
    port = smtp_server(Mailbox(refuse_recipient="550 5.1.1 No such user"))
    with pytest.raises(EmailDeliveryFailed) as failure:
        await sender(port).send(message())
    assert failure.value.permanent is True and failure.value.code == 550
    assert "No such user" in failure.value.reason


async def test_a_greylisted_recipient_is_retryable(smtp_server: Any) -> None:
    port = smtp_server(Mailbox(refuse_recipient="450 4.2.0 Greylisted"))
    with pytest.raises(EmailDeliveryFailed) as failure:
        await sender(port).send(message())
    assert failure.value.permanent is False and failure.value.code == 450


async def test_nothing_listening_is_retryable() -> None:
    with pytest.raises(EmailDeliveryFailed) as failure:
        await sender(free_port()).send(message())
    assert failure.value.permanent is False and failure.value.code is None
    assert "ConnectionRefusedError" in failure.value.reason


async def test_a_server_that_never_greets_times_out_and_is_retryable() -> None:
    with socket.socket() as silent:  # accepts connections (backlog) but never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        port = silent.getsockname()[1]
        with pytest.raises(EmailDeliveryFailed) as failure:
            await sender(port, timeout=0.5).send(message())
    assert failure.value.permanent is False
    assert "timed out" in failure.value.reason.lower() or "Timeout" in failure.value.reason


async def test_starttls_required_but_not_offered_is_not_sent_in_clear(smtp_server: Any) -> None:
    mailbox = Mailbox()
    port = smtp_server(mailbox)
    with pytest.raises(EmailDeliveryFailed) as failure:
        await sender(port, starttls=True).send(message())
    assert failure.value.permanent is False and "STARTTLS" in failure.value.reason
    assert mailbox.accepted == []


async def test_without_an_smtp_host_the_mail_is_written_to_the_log(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    mail_sender = build_sender(None)
    assert isinstance(mail_sender, LogEmailSender)
    # The module's logger is cached on first use (cache_logger_on_first_use) with the processor
    # list configured then; every create_app() configures a new list, and capture_logs() only
    # swaps the current one. After an earlier test logged a mail and an app was created since,
    # the cached logger never reached the capture. A logger made inside the capture does.
    with structlog.testing.capture_logs() as logs:
        monkeypatch.setattr(log_sender, "log", structlog.get_logger("test.email"))
        await mail_sender.send(message())
    [line] = [entry for entry in logs if entry["event"] == "email_logged"]
    assert line["recipient"] == "alice@example.com"
    assert line["subject"] == "Order 1234abcd placed"
    assert line["message_id"] == "<e1.order_created@orderflow.example>"


def test_templates_escape_html_but_not_text_and_keep_the_subject_on_one_line() -> None:
    context = {
        "name": "Ann <script>",
        "short_id": "1234abcd",
        "order_id": "1234abcd-0000",
        "status": "rejected",
        "from_status": "pending",
        "reason": 'Too "big" & <b>bold</b>',
    }
    rendered = JinjaEmailRenderer().render("order_status_changed", context)
    assert rendered.subject == "Order 1234abcd is now rejected"
    assert 'Too "big" & <b>bold</b>' in rendered.text
    assert "&lt;b&gt;bold&lt;/b&gt;" in rendered.html and "<b>bold" not in rendered.html
    assert "Ann &lt;script&gt;" in rendered.html


def test_a_template_missing_a_value_is_an_error() -> None:
    from jinja2 import UndefinedError

    with pytest.raises(UndefinedError):
        JinjaEmailRenderer().render("order_created", {"short_id": "x"})
