"""Email adapters: the SMTP sender, the log sender of the embedded mode, Jinja2 templates."""

from __future__ import annotations

from backend.domain.email import EmailSender
from backend.infrastructure.email.log_sender import LogEmailSender
from backend.infrastructure.email.smtp import SmtpConfig, SmtpSender
from backend.infrastructure.email.templates import JinjaEmailRenderer

__all__ = ["JinjaEmailRenderer", "LogEmailSender", "SmtpConfig", "SmtpSender", "build_sender"]


def build_sender(config: SmtpConfig | None) -> EmailSender:
    """SMTP when a host is configured, otherwise every mail is written to the log."""
    return SmtpSender(config) if config is not None else LogEmailSender()
