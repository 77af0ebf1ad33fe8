"""notifications: in-app notifications, email sends, one-time stream tickets.

`notifications.id` is a monotonic sequence (the SSE event id); (event_id, user_id) is
unique so an event relayed twice still makes one notification. `email_sends` records one
send per (event, template) with its delivery state; `stream_tickets` hold the hashes of the
short-lived tickets a browser's EventSource authenticates with (ADR 0015).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from backend.infrastructure.db import types as t

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UNREAD = "read_at IS NULL"
PENDING = "status = 'pending'"


def upgrade() -> None:
    _create_notifications()
    _create_email_sends()
    _create_stream_tickets()


def _create_notifications() -> None:
    op.create_table(
        "notifications",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("user_id", t.StrUUID(), nullable=False),
        sa.Column("event_id", t.StrUUID(), nullable=False),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("data", t.JSONDocument, nullable=False),
        sa.Column("read_at", t.UTCDateTime(), nullable=True),
        sa.Column("created_at", t.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_notifications_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notifications")),
        sa.UniqueConstraint(
            "event_id", "user_id", name=op.f("uq_notifications_event_id_user_id")
        ),
    )
    op.create_index("ix_notifications_user_id_id", "notifications", ["user_id", "id"])
    op.create_index(
        "ix_notifications_unread",
        "notifications",
        ["user_id", "id"],
        postgresql_where=sa.text(UNREAD),
        sqlite_where=sa.text(UNREAD),
    )


def _create_email_sends() -> None:
    op.create_table(
        "email_sends",
        sa.Column("id", t.StrUUID(), nullable=False),
        sa.Column("event_id", t.StrUUID(), nullable=False),
        sa.Column("template", sa.String(64), nullable=False),
        sa.Column("recipient", sa.String(320), nullable=False),
        sa.Column("subject", sa.String(300), nullable=False),
        sa.Column("text_body", sa.Text(), nullable=False),
        sa.Column("html_body", sa.Text(), nullable=False),
        sa.Column("message_id", sa.String(255), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("next_attempt_at", t.UTCDateTime(), nullable=True),
        sa.Column("last_error", sa.String(500), nullable=True),
        sa.Column("created_at", t.UTCDateTime(), nullable=False),
        sa.Column("sent_at", t.UTCDateTime(), nullable=True),
        sa.CheckConstraint(
            "status IN ('pending', 'sent', 'failed')", name=op.f("ck_email_sends_status")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_email_sends")),
        sa.UniqueConstraint("event_id", "template", name=op.f("uq_email_sends_event_id_template")),
    )
    op.create_index(
        "ix_email_sends_due",
        "email_sends",
        ["next_attempt_at"],
        postgresql_where=sa.text(PENDING),
        sqlite_where=sa.text(PENDING),
    )


def _create_stream_tickets() -> None:
    op.create_table(
        "stream_tickets",
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("user_id", t.StrUUID(), nullable=False),
        sa.Column("created_at", t.UTCDateTime(), nullable=False),
        sa.Column("expires_at", t.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["users.id"],
            name=op.f("fk_stream_tickets_user_id_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("token_hash", name=op.f("pk_stream_tickets")),
    )
    op.create_index("ix_stream_tickets_expires_at", "stream_tickets", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_stream_tickets_expires_at", table_name="stream_tickets")
    op.drop_table("stream_tickets")
    op.drop_index("ix_email_sends_due", table_name="email_sends")
    op.drop_table("email_sends")
    op.drop_index("ix_notifications_unread", table_name="notifications")
    op.drop_index("ix_notifications_user_id_id", table_name="notifications")
    op.drop_table("notifications")
